package centrifuge

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/centrifugal/protocol"
)

// POST /emulation carries the commands of an http_stream or sse session
// after its connect: {"session","node","data"} in JSON (data is a JSON
// string holding the command frame) or a Protobuf EmulationRequest. The
// session is found by its id on this node; a request for a session of
// another node goes to that node as a control message of the broker, and
// the commands are applied there exactly as if they had come on a socket.
// Replies go down the session's stream; the answer here is 204.

// controlEmulation is the kind of the node-directed control message that
// carries an emulation request to the node holding the session.
const controlEmulation = "centrifuge_emulation"

// emulationMsg is an emulation request forwarded to the session's node.
type emulationMsg struct {
	Session string `json:"session"`
	Data    []byte `json:"data"`
}

// Emulation serves POST /emulation.
func (h *Handler) Emulation() http.Handler {
	return http.HandlerFunc(h.serveEmulation)
}

func (h *Handler) serveEmulation(w http.ResponseWriter, r *http.Request) {
	if !h.enabled(trHTTPStream) && !h.enabled(trSSE) {
		h.log.Info("request to a transport that is off", slog.String("transport", "emulation"), slog.String("path", r.URL.Path),
			slog.String("hint", "set http_stream.enabled or sse.enabled: true"), slog.String("remote_addr", r.RemoteAddr))
		writeHTTPRefusal(w, http.StatusNotFound, "transport_disabled", "emulation is off: neither http_stream nor sse is on",
			"set http_stream.enabled or sse.enabled: true (on by default with --dev)")
		return
	}
	if !h.checkOrigin(w, r) {
		return
	}
	body, ok := postBody(w, r, h.cfg.Emulation.MaxRequestBodySize, "emulation.max_request_body_size")
	if !ok {
		return
	}
	node, id, frame, err := decodeEmulation(body, isOctetStream(r))
	if err != nil {
		writeHTTPRefusal(w, http.StatusBadRequest, "bad_emulation_request", err.Error(),
			`send {"session":"<session>","node":"<node>","data":"<command frame>"}, or a Protobuf EmulationRequest with Content-Type: application/octet-stream`)
		return
	}
	if node == "" || node == h.hub.NodeID() {
		s := h.emulationSession(id)
		if s == nil {
			writeHTTPRefusal(w, http.StatusNotFound, "session_not_found", fmt.Sprintf("no session %q on this node", id),
				"the stream has ended: the client reconnects and gets a new session")
			return
		}
		if d := s.handleFrame(frame); d != nil {
			s.closeWith(*d)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !h.knownNode(node) {
		writeHTTPRefusal(w, http.StatusNotFound, "node_not_found", fmt.Sprintf("no live node %q", node),
			"the node that held the session is gone: the client reconnects")
		return
	}
	if err := h.hub.SendControl(node, controlEmulation, emulationMsg{Session: id, Data: frame}); err != nil {
		h.log.Warn("emulation request not forwarded", slog.String("node", node), slog.String("error", err.Error()))
		writeHTTPRefusal(w, http.StatusInternalServerError, "forward_failed", "the request could not reach node "+node+": "+err.Error(),
			"the client retries; check the broker")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decodeEmulation reads an emulation request body.
func decodeEmulation(body []byte, proto bool) (node, session string, frame []byte, err error) {
	if proto {
		var req protocol.EmulationRequest
		if err := req.UnmarshalCF(body); err != nil {
			return "", "", nil, fmt.Errorf("undecodable Protobuf EmulationRequest: %v", err)
		}
		node, session, frame = req.Node, req.Session, req.Data
	} else {
		var req struct {
			Node    string          `json:"node"`
			Session string          `json:"session"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return "", "", nil, fmt.Errorf("the body is not a JSON object: %v", err)
		}
		var text string
		if err := json.Unmarshal(req.Data, &text); err != nil {
			return "", "", nil, errNotJSONEmulation
		}
		node, session, frame = req.Node, req.Session, []byte(text)
	}
	if session == "" {
		return "", "", nil, fmt.Errorf("no session")
	}
	return node, session, frame, nil
}

// emulationSession returns the live emulation session id; one that is
// closing counts as gone (its stream has ended or is ending).
func (h *Handler) emulationSession(id string) *session {
	h.emuMu.Lock()
	s := h.emu[id]
	h.emuMu.Unlock()
	if s == nil || s.closeSent.Load() {
		return nil
	}
	return s
}

// knownNode reports whether node is a live node of the cluster.
func (h *Handler) knownNode(node string) bool {
	for _, n := range h.hub.Nodes() {
		if n.ID == node {
			return true
		}
	}
	return false
}

// handleEmulationControl applies an emulation request another node
// forwarded. It runs on the broker's delivery: the frame goes to the
// session's inbox, which applies frames in the order they came.
func (h *Handler) handleEmulationControl(from string, payload json.RawMessage) {
	var m emulationMsg
	if err := json.Unmarshal(payload, &m); err != nil {
		h.log.Warn("undecodable emulation request", slog.String("from", from), slog.String("error", err.Error()))
		return
	}
	s := h.emulationSession(m.Session)
	if s == nil {
		h.log.Debug("emulation request for a session that is gone", slog.String("session", m.Session), slog.String("from", from))
		return
	}
	s.mu.Lock()
	if len(s.x.inbox) >= maxInbox {
		s.mu.Unlock()
		go s.closeWith(DisconnectSlow.With(fmt.Sprintf("more than %d forwarded command frames waiting", maxInbox)))
		return
	}
	s.x.inbox = append(s.x.inbox, m.Data)
	start := !s.x.inboxRunning
	s.x.inboxRunning = true
	s.mu.Unlock()
	if start {
		go s.drainInbox()
	}
}

// maxInbox bounds the forwarded frames waiting for one session.
const maxInbox = 256

// drainInbox applies forwarded frames in order until none is left.
func (s *session) drainInbox() {
	for {
		s.mu.Lock()
		if len(s.x.inbox) == 0 {
			s.x.inboxRunning = false
			s.mu.Unlock()
			return
		}
		frame := s.x.inbox[0]
		s.x.inbox = s.x.inbox[1:]
		s.mu.Unlock()
		if d := s.handleFrame(frame); d != nil {
			s.closeWith(*d)
		}
	}
}
