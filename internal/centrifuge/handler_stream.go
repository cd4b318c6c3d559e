package centrifuge

import (
	"log/slog"
	"net"
	"net/http"

	"github.com/heraldhub/herald/internal/conn"
)

// HTTP streaming and SSE: a session whose server-to-client half is one
// long HTTP response. The response head is committed before the connect
// request is processed, so a refused connect is told in the stream (an
// error reply, or a disconnect push) as on a WebSocket. Herald writes the
// response itself on the hijacked connection, through the same queue,
// writers, limits and slow-client rule as a WebSocket.

// Framers of the streaming transports.
var (
	linesChunked = conn.ChunkedEach("", "\n")
	linesRaw     = conn.RawEach("", "\n")
	eventsChunk  = conn.ChunkedEach("data: ", "\n\n")
	eventsRaw    = conn.RawEach("data: ", "\n\n")
)

// HTTPStream serves POST /connection/http_stream.
func (h *Handler) HTTPStream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.refuseDisabled(w, r, trHTTPStream) || !h.checkOrigin(w, r) {
			return
		}
		body, ok := postBody(w, r, h.cfg.HTTPStream.MaxRequestBodySize, "http_stream.max_request_body_size")
		if !ok {
			return
		}
		h.serveStream(w, r, trHTTPStream, isOctetStream(r), func(s *session) *Disconnect { return s.handleFrame(body) })
	})
}

// SSE serves GET|POST /connection/sse: the connect command frame in the
// cf_connect query parameter (EventSource) or in a POST body.
func (h *Handler) SSE() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.refuseDisabled(w, r, trSSE) || !h.checkOrigin(w, r) {
			return
		}
		var body []byte
		switch r.Method {
		case http.MethodGet:
			if body = cfConnect(r); body == nil {
				writeHTTPRefusal(w, http.StatusBadRequest, "connect_missing", "no cf_connect query parameter",
					"pass the connect command as ?cf_connect=<URL-encoded JSON>, or POST it")
				return
			}
		case http.MethodPost:
			limit := h.cfg.SSE.MaxRequestBodySize
			var err error
			if body, err = readBody(r, limit); err != nil {
				refuseBody(w, err, limit, "sse.max_request_body_size")
				return
			}
		default:
			methodNotAllowed(w, r, "GET, POST")
			return
		}
		h.serveStream(w, r, trSSE, false, func(s *session) *Disconnect { return s.handleFrame(body) })
	})
}

// serveStream hijacks the connection, writes the response head and runs a
// session of tr over it; start handles the connect request.
func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request, tr *transport, proto bool, start func(*session) *Disconnect) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeHTTPRefusal(w, http.StatusHTTPVersionNotSupported, "http_version_not_supported",
			"streaming transports are served over HTTP/1.x", "connect over HTTP/1.1")
		return
	}
	if !h.admit(w) {
		return
	}
	extra := w.Header().Clone() // CORS headers
	nc, _, err := hj.Hijack()
	if err != nil {
		h.sessions.Done()
		h.log.Debug("hijack failed", slog.String("error", err.Error()), slog.String("remote_addr", r.RemoteAddr))
		return
	}
	chunked := r.ProtoAtLeast(1, 1)
	sse := tr == trSSE || tr == trUniSSE
	s := newSession(h, tr, proto, r)
	s.httpTokens = h.sources.FromHTTP(r, "")
	s.upgradeHeaders = h.proxies.KeepHeaders(r)
	s.attach(nc, streamFramer(sse, proto, chunked))
	contentType := ""
	if sse {
		contentType = "text/event-stream; charset=utf-8"
	}
	head := streamHead(r, extra, contentType, chunked)
	if sse {
		// An SSE body starts with an empty line, flushed at once.
		if chunked {
			head = append(head, "2\r\n\r\n\r\n"...)
		} else {
			head = append(head, "\r\n"...)
		}
	}
	if chunked {
		s.x.streamEnd = []byte(conn.LastChunk)
	}
	if err := s.q.WriteNow(head, writeTimeout); err != nil || !h.register(s) {
		s.q.Close()
		_ = nc.Close()
		h.sessions.Done()
		return
	}
	go func() {
		defer h.sessions.Done()
		s.armStale()
		if d := start(s); d != nil {
			s.closeWith(*d)
		}
		s.waitGone(nc)
		s.cleanup()
		_ = nc.Close()
		h.unregister(s)
	}()
}

func streamFramer(sse, proto, chunked bool) conn.Framer {
	switch {
	case sse && chunked:
		return eventsChunk
	case sse:
		return eventsRaw
	case proto && chunked:
		return conn.Chunked
	case proto:
		return conn.Raw
	case chunked:
		return linesChunked
	}
	return linesRaw
}

// waitGone returns when the client closes the connection (or closeWith
// does). Anything the client sends on it is discarded.
func (s *session) waitGone(nc net.Conn) {
	var b [64]byte
	for {
		if _, err := nc.Read(b[:]); err != nil {
			return
		}
	}
}
