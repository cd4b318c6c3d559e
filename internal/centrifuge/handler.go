package centrifuge

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/conn"
	"github.com/heraldhub/herald/internal/glob"
	"github.com/heraldhub/herald/internal/hub"
	"github.com/heraldhub/herald/internal/proxy"
)

// Options configure the front door.
type Options struct {
	Config  *config.Config
	Hub     *hub.Hub
	Engine  *auth.Engine
	Sources *auth.Sources
	Proxies *proxy.Set // nil: no proxies
	Logger  *slog.Logger
	Version string
	// Pool writes every connection's frames; Workers handle their commands.
	Pool    *conn.Pool
	Workers *conn.Workers
}

// Handler serves GET /connection/websocket.
type Handler struct {
	cfg      *config.Config
	hub      *hub.Hub
	engine   *auth.Engine
	sources  *auth.Sources
	proxies  *proxy.Set
	log      *slog.Logger
	version  string
	upgrader websocket.Upgrader

	workers *conn.Workers
	pool    *conn.Pool

	sessions conn.Tracker[*session]
	emuMu    sync.Mutex
	emu      map[string]*session // emulation sessions by id
}

// NewHandler builds the WebSocket front door.
func NewHandler(o Options) *Handler {
	proxies := o.Proxies
	if proxies == nil {
		proxies = &proxy.Set{}
	}
	h := &Handler{cfg: o.Config, hub: o.Hub, engine: o.Engine, sources: o.Sources, proxies: proxies, log: o.Logger, version: o.Version,
		emu: map[string]*session{}, workers: o.Workers, pool: o.Pool}
	h.upgrader = websocket.Upgrader{
		// Small read buffers and pooled write buffers keep an idle connection
		// cheap; the write buffer is held only while a write is in progress.
		// Commands are small; a larger message costs a few more reads.
		ReadBufferSize:  256,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{"centrifuge-json", "centrifuge-protobuf"},
		// Origins are checked in ServeHTTP, where the refusal can be explained.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	h.hub.HandleControlKind(controlEmulation, h.handleEmulationControl)
	return h
}

// shown is what a client sees of a refusal, after the protocol's own text.
func (h *Handler) shown(r *auth.Reason) string {
	if !h.cfg.FullReasons() {
		return string(r.Code)
	}
	s := r.Error()
	if r.Hint != "" {
		s += " (" + r.Hint + ")"
	}
	return s
}

// refused logs a refusal with every structured field (never the token) and
// keeps it for /debug/auth.
func (s *session) refused(msg string, r *auth.Reason, channel string) {
	attrs := r.LogAttrs()
	if channel != "" {
		attrs = append(attrs, slog.String("channel", channel))
	}
	s.log().LogAttrs(context.Background(), slog.LevelInfo, msg, attrs...)
	s.h.engine.Verifier().Refusals.Add(r, s.tr.name, s.remoteAddr, channel)
}

// deniedText is what a client sees of a channel_not_permitted refusal: the
// rule that refused it, or only the code.
func (h *Handler) deniedText(r *auth.Reason) string {
	if h.cfg.FullReasons() {
		return r.Detail
	}
	return string(r.Code)
}

// originAllowed applies client.allowed_origins with Centrifugo's semantics:
// requests without Origin pass; an empty list refuses every Origin.
func (h *Handler) originAllowed(origin string) bool {
	for _, p := range h.cfg.Client.AllowedOrigins {
		if glob.Match(strings.ToLower(p), strings.ToLower(origin)) {
			return true
		}
	}
	return false
}

// wantsProtobuf reports whether a WebSocket client asks for Protobuf: the
// subprotocol the upgrade agreed on decides, then the query.
func wantsProtobuf(r *http.Request, agreed string) bool {
	switch agreed {
	case "centrifuge-protobuf":
		return true
	case "centrifuge-json":
		return false
	}
	q := r.URL.Query()
	return q.Get("format") == "protobuf" || q.Get("cf_protocol") == "protobuf"
}

// ServeHTTP upgrades the request and runs the session until it ends.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serveWebSocket(w, r, trWebSocket, nil)
}

// admit counts a new connection, or answers 503 when the server is closing.
func (h *Handler) admit(w http.ResponseWriter) bool {
	if !h.sessions.Begin() {
		writeHTTPRefusal(w, http.StatusServiceUnavailable, "shutting_down", "server is shutting down", "reconnect to another node")
		return false
	}
	return true
}

// register adds a session to those Shutdown ends; false when closing.
func (h *Handler) register(s *session) bool {
	if !h.sessions.Add(s) {
		return false
	}
	if s.tr.emulation {
		h.emuMu.Lock()
		h.emu[s.id()] = s
		h.emuMu.Unlock()
	}
	return true
}

func (h *Handler) unregister(s *session) {
	h.sessions.Remove(s)
	if s.tr.emulation {
		h.emuMu.Lock()
		if h.emu[s.id()] == s {
			delete(h.emu, s.id())
		}
		h.emuMu.Unlock()
	}
}

// serveWebSocket upgrades a request of the websocket or uni_websocket
// transport; connect is a uni_websocket connect request from cf_connect.
func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request, tr *transport, connect *ConnectRequest) {
	if !h.checkOrigin(w, r) || !h.admit(w) {
		return
	}
	// The upgrade response carries no CORS headers.
	for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers", "Vary"} {
		w.Header().Del(k)
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has already answered with an HTTP error.
		h.sessions.Done()
		h.log.Debug("websocket upgrade failed", slog.String("error", err.Error()), slog.String("remote_addr", r.RemoteAddr))
		return
	}
	proto := tr == trWebSocket && wantsProtobuf(r, ws.Subprotocol())
	s := newSession(h, tr, proto, r)
	s.conn = ws
	framer := conn.TextFrameLines
	switch {
	case proto:
		framer = conn.BinaryFrame
	case tr.uni && !h.cfg.UniWebSocket.JoinPushMessages:
		framer = conn.TextFrames
	}
	s.attach(ws.NetConn(), framer)
	// Tokens on the upgrade request are collected now: a ticket works once.
	s.httpTokens = h.sources.FromHTTP(r, "")
	s.upgradeHeaders = h.proxies.KeepHeaders(r)
	if !h.register(s) {
		s.closeWith(DisconnectShutdown)
		_ = ws.Close()
		h.sessions.Done()
		return
	}
	// The session runs on its own goroutine and ServeHTTP returns, so
	// net/http's per-request buffers and objects (about 10 KiB) are freed
	// for the whole life of the connection.
	go func() {
		defer h.sessions.Done()
		s.armStale()
		if connect != nil {
			if d := conn.Do(h.workers, make(chan *Disconnect, 1), func() *Disconnect { return s.uniConnect(connect) }); d != nil {
				s.closeWith(*d)
			}
		}
		s.run()
		h.unregister(s)
	}()
}

func writeHTTPRefusal(w http.ResponseWriter, status int, code, detail, hint string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"detail":%q,"hint":%q}`+"\n", code, detail, hint)
}

// Shutdown disconnects every session with 3001 (clients reconnect elsewhere)
// and waits for them to end, or for ctx.
func (h *Handler) Shutdown(ctx context.Context) error {
	return h.sessions.Shutdown(ctx, func(s *session) { s.closeWith(DisconnectShutdown) }, func(s *session) { _ = s.netConn().Close() })
}

// NumSessions returns the number of open sessions, of every transport.
func (h *Handler) NumSessions() int { return h.sessions.Len() }

var closeGrace = time.Second
