package centrifuge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/heraldhub/herald/internal/auth"
)

// transport is what a session runs over. One session type serves all of
// them; they differ in how a connection starts, how messages are framed,
// how the session ends and which pushes are wrapped.
type transport struct {
	name string // as proxies, logs and the refusals feed name it
	// uni: the client sends one connect request and then only listens;
	// pushes are bare, pings expect no pong.
	uni bool
	// emulation: bidirectional over an HTTP response; the client's later
	// commands arrive on POST /emulation, by session id.
	emulation bool
	// setting is the configuration key that switches the transport on.
	setting string
}

var (
	trWebSocket     = &transport{name: "websocket"}
	trHTTPStream    = &transport{name: "http_stream", emulation: true, setting: "http_stream.enabled"}
	trSSE           = &transport{name: "sse", emulation: true, setting: "sse.enabled"}
	trUniWebSocket  = &transport{name: "uni_websocket", uni: true, setting: "uni_websocket.enabled"}
	trUniSSE        = &transport{name: "uni_sse", uni: true, setting: "uni_sse.enabled"}
	trUniHTTPStream = &transport{name: "uni_http_stream", uni: true, setting: "uni_http_stream.enabled"}
)

// enabled reports whether the configuration switches tr on.
func (h *Handler) enabled(tr *transport) bool {
	t := &h.cfg.Transports
	switch tr {
	case trHTTPStream:
		return t.HTTPStream.Enabled
	case trSSE:
		return t.SSE.Enabled
	case trUniWebSocket:
		return t.UniWebSocket.Enabled
	case trUniSSE:
		return t.UniSSE.Enabled
	case trUniHTTPStream:
		return t.UniHTTPStream.Enabled
	}
	return true
}

// refuseDisabled answers a request to a transport that is off: a JSON body
// that names the setting, and a line in the log, rather than a bare 404.
func (h *Handler) refuseDisabled(w http.ResponseWriter, r *http.Request, tr *transport) bool {
	if h.enabled(tr) {
		return false
	}
	h.log.Info("request to a transport that is off", slog.String("transport", tr.name), slog.String("path", r.URL.Path),
		slog.String("hint", "set "+tr.setting+": true"), slog.String("remote_addr", r.RemoteAddr))
	writeHTTPRefusal(w, http.StatusNotFound, "transport_disabled",
		fmt.Sprintf("the %s transport is off", tr.name), "set "+tr.setting+": true (on by default with --dev)")
	return true
}

// checkOrigin applies client.allowed_origins and, for an allowed origin,
// sets the CORS headers of the connection endpoints and /emulation. It
// answers a refused request itself.
func (h *Handler) checkOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !h.originAllowed(origin) {
		hint := "add it to client.allowed_origins (glob patterns such as https://*.example.com)"
		if len(h.cfg.Client.AllowedOrigins) == 0 {
			hint = "client.allowed_origins is empty, which refuses every browser; " + hint
		}
		h.log.Info("connection refused: request Origin is not authorized",
			slog.String("reason", string(auth.OriginNotAllowed)), slog.String("origin", origin),
			slog.Any("allowed_origins", h.cfg.Client.AllowedOrigins), slog.String("hint", hint),
			slog.String("path", r.URL.Path), slog.String("remote_addr", r.RemoteAddr))
		writeHTTPRefusal(w, http.StatusForbidden, string(auth.OriginNotAllowed),
			fmt.Sprintf("origin %q is not allowed", origin), hint)
		return false
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", origin)
	hd.Set("Access-Control-Allow-Credentials", "true")
	hd.Add("Vary", "Origin")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		hd.Set("Access-Control-Allow-Headers", req)
	}
	return true
}

// preflight answers an OPTIONS request of a POST endpoint.
// postBody answers a CORS preflight or a method other than POST, or reads
// the body of a POST within limit (setting names the limit in the refusal).
// ok is false when the request has been answered.
func postBody(w http.ResponseWriter, r *http.Request, limit int, setting string) (body []byte, ok bool) {
	switch r.Method {
	case http.MethodOptions:
		preflight(w)
		return nil, false
	case http.MethodPost:
	default:
		methodNotAllowed(w, r, "POST, OPTIONS")
		return nil, false
	}
	body, err := readBody(r, limit)
	if err != nil {
		refuseBody(w, err, limit, setting)
		return nil, false
	}
	return body, true
}

func preflight(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Max-Age", "300")
	w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	w.WriteHeader(http.StatusNoContent)
}

// methodNotAllowed answers a method the endpoint does not serve.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeHTTPRefusal(w, http.StatusMethodNotAllowed, "method_not_allowed",
		fmt.Sprintf("%s is not served at %s", r.Method, r.URL.Path), "use "+allow)
}

var errBodyTooLarge = errors.New("request body too large")

// readBody reads a request body of at most limit bytes.
func readBody(r *http.Request, limit int) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, errBodyTooLarge
	}
	return b, nil
}

// refuseBody answers a body that could not be read.
func refuseBody(w http.ResponseWriter, err error, limit int, setting string) {
	if errors.Is(err, errBodyTooLarge) {
		writeHTTPRefusal(w, http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("the request body is over %d bytes", limit), "raise "+setting)
		return
	}
	// The client went away or sent a broken body; 499 as the reference.
	writeHTTPRefusal(w, 499, "body_unreadable", "the request body could not be read: "+err.Error(), "send the whole body")
}

// cfConnect returns the connect request a GET carried in cf_connect, or
// nil when there is none.
func cfConnect(r *http.Request) []byte {
	v, ok := r.URL.Query()["cf_connect"]
	if !ok || len(v) == 0 {
		return nil
	}
	return []byte(v[0])
}

// isOctetStream reports whether a request asks for Protobuf.
func isOctetStream(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "application/octet-stream")
}

// streamHead is the head of a streaming response: its status line and
// headers, written by Herald on the hijacked connection.
func streamHead(r *http.Request, extra http.Header, contentType string, chunked bool) []byte {
	var b bytes.Buffer
	proto := "HTTP/1.1"
	if !r.ProtoAtLeast(1, 1) {
		proto = "HTTP/1.0"
	}
	b.WriteString(proto + " 200 OK\r\n")
	h := http.Header{}
	for k, v := range extra {
		h[k] = v
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("X-Accel-Buffering", "no")
	h.Set("Cache-Control", "private, no-cache, no-store, must-revalidate, max-age=0")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "0")
	if chunked {
		h.Set("Transfer-Encoding", "chunked")
	} else {
		h.Set("Connection", "close")
	}
	_ = h.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}
