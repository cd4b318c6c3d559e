package centrifuge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Unidirectional transports: the client sends one connect request and
// then only listens. Its subscriptions are the server-side ones (token
// channels, the connect proxy's answer); pushes are bare, a refused
// connect is a disconnect push, pings expect no pong. No SDK is needed: a
// browser EventSource or WebSocket, curl or fetch will do.

// parseConnectRequest decodes a unidirectional connect request (a bare
// ConnectRequest, not a command). Empty input is the empty request.
func parseConnectRequest(b []byte) (*ConnectRequest, error) {
	req := &ConnectRequest{}
	if len(b) == 0 {
		return req, nil
	}
	if err := json.Unmarshal(b, req); err != nil {
		return nil, fmt.Errorf("the connect request is not a JSON object: %v", err)
	}
	return req, nil
}

func badConnect(w http.ResponseWriter, err error) {
	writeHTTPRefusal(w, http.StatusBadRequest, "bad_connect_request", err.Error(),
		`send a JSON connect request such as {"token":"<JWT>"}`)
}

// UniWebSocket serves GET /connection/uni_websocket: the connect request in
// cf_connect or in the first message.
func (h *Handler) UniWebSocket() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.refuseDisabled(w, r, trUniWebSocket) {
			return
		}
		var connect *ConnectRequest
		if b := cfConnect(r); b != nil {
			var err error
			if connect, err = parseConnectRequest(b); err != nil {
				badConnect(w, err)
				return
			}
		}
		h.serveWebSocket(w, r, trUniWebSocket, connect)
	})
}

// UniSSE serves GET|POST /connection/uni_sse.
func (h *Handler) UniSSE() http.Handler {
	return h.uniStream(trUniSSE, h.cfg.UniSSE.MaxRequestBodySize, "uni_sse.max_request_body_size", true)
}

// UniHTTPStream serves POST /connection/uni_http_stream.
func (h *Handler) UniHTTPStream() http.Handler {
	return h.uniStream(trUniHTTPStream, h.cfg.UniHTTPStream.MaxRequestBodySize, "uni_http_stream.max_request_body_size", false)
}

func (h *Handler) uniStream(tr *transport, limit int, setting string, get bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.refuseDisabled(w, r, tr) || !h.checkOrigin(w, r) {
			return
		}
		var body []byte
		switch {
		case r.Method == http.MethodGet && get:
			body = cfConnect(r)
		case r.Method == http.MethodPost:
			var err error
			if body, err = readBody(r, limit); err != nil {
				refuseBody(w, err, limit, setting)
				return
			}
		case r.Method == http.MethodOptions && !get:
			preflight(w)
			return
		default:
			allow := "POST, OPTIONS"
			if get {
				allow = "GET, POST"
			}
			methodNotAllowed(w, r, allow)
			return
		}
		req, err := parseConnectRequest(body)
		if err != nil {
			badConnect(w, err)
			return
		}
		h.serveStream(w, r, tr, false, func(s *session) *Disconnect { return s.uniConnect(req) })
	})
}

// uniConnect connects a unidirectional session.
func (s *session) uniConnect(req *ConnectRequest) *Disconnect {
	s.x.frameMu.Lock()
	defer s.x.frameMu.Unlock()
	if s.closeSent.Load() {
		return nil
	}
	return s.handleConnect(0, req)
}

// handleUniMessage handles a message of a uni_websocket client: the first
// is its connect request (unless cf_connect carried it); later ones are
// ignored.
func (s *session) handleUniMessage(data []byte) *Disconnect {
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	if state != stateNew {
		return nil
	}
	req, err := parseConnectRequest(data)
	if err != nil {
		d := DisconnectBadRequest.With(err.Error())
		return &d
	}
	return s.uniConnect(req)
}

// extendUniDeadline gives a uni_websocket client until the next ping plus
// the pong timeout to show it is there (any frame, or a pong).
func (s *session) extendUniDeadline() {
	if s.closeSent.Load() {
		return // closeWith set the deadline of the close handshake
	}
	cfg := &s.h.cfg.Client
	interval := cfg.PingInterval.D()
	if interval <= 0 {
		interval = 25 * time.Second
	}
	pong := cfg.PongTimeout.D()
	if pong <= 0 {
		pong = 10 * time.Second
	}
	_ = s.conn.NetConn().SetReadDeadline(time.Now().Add(interval + pong))
}
