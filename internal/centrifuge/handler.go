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

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  bool
	wg       sync.WaitGroup
}

// NewHandler builds the WebSocket front door.
func NewHandler(o Options) *Handler {
	proxies := o.Proxies
	if proxies == nil {
		proxies = &proxy.Set{}
	}
	h := &Handler{cfg: o.Config, hub: o.Hub, engine: o.Engine, sources: o.Sources, proxies: proxies, log: o.Logger, version: o.Version,
		sessions: map[*session]struct{}{}, workers: o.Workers, pool: o.Pool}
	h.upgrader = websocket.Upgrader{
		// Small read buffers and pooled write buffers keep an idle connection
		// cheap; the write buffer is held only while a write is in progress.
		// Commands are small; a larger message costs a few more reads.
		ReadBufferSize:  256,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{"centrifuge-json"},
		// Origins are checked in ServeHTTP, where the refusal can be explained.
		CheckOrigin: func(*http.Request) bool { return true },
	}
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
	s.h.engine.Verifier().Refusals.Add(r, "websocket", s.remoteAddr, channel)
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

func wantsProtobuf(r *http.Request) bool {
	q := r.URL.Query()
	if q.Get("format") == "protobuf" || q.Get("cf_protocol") == "protobuf" {
		return true
	}
	for _, p := range websocket.Subprotocols(r) {
		if p == "centrifuge-protobuf" {
			return true
		}
	}
	return false
}

// ServeHTTP upgrades the request and runs the session until it ends.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && !h.originAllowed(origin) {
		hint := "add it to client.allowed_origins (glob patterns such as https://*.example.com)"
		if len(h.cfg.Client.AllowedOrigins) == 0 {
			hint = "client.allowed_origins is empty, which refuses every browser; " + hint
		}
		h.log.Info("connection refused: request Origin is not authorized",
			slog.String("reason", string(auth.OriginNotAllowed)), slog.String("origin", origin),
			slog.Any("allowed_origins", h.cfg.Client.AllowedOrigins), slog.String("hint", hint),
			slog.String("remote_addr", r.RemoteAddr))
		writeHTTPRefusal(w, http.StatusForbidden, string(auth.OriginNotAllowed),
			fmt.Sprintf("origin %q is not allowed", origin), hint)
		return
	}
	if wantsProtobuf(r) {
		writeHTTPRefusal(w, http.StatusBadRequest, "protocol_not_supported",
			"the Protobuf encoding is not supported yet", "use the JSON encoding (the SDK default)")
		return
	}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		writeHTTPRefusal(w, http.StatusServiceUnavailable, "shutting_down", "server is shutting down", "reconnect to another node")
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()

	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has already answered with an HTTP error.
		h.wg.Done()
		h.log.Debug("websocket upgrade failed", slog.String("error", err.Error()), slog.String("remote_addr", r.RemoteAddr))
		return
	}
	s := newSession(h, conn, r)
	// Tokens on the upgrade request are collected now: a ticket works once.
	s.httpTokens = h.sources.FromHTTP(r, "")
	s.upgradeHeaders = h.proxies.KeepHeaders(r)
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		s.closeWith(DisconnectShutdown)
		_ = conn.Close()
		h.wg.Done()
		return
	}
	h.sessions[s] = struct{}{}
	h.mu.Unlock()
	// The session runs on its own goroutine and ServeHTTP returns, so
	// net/http's per-request buffers and objects (about 10 KiB) are freed
	// for the whole life of the connection.
	go func() {
		defer h.wg.Done()
		s.run()
		h.mu.Lock()
		delete(h.sessions, s)
		h.mu.Unlock()
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
	h.mu.Lock()
	h.closing = true
	sessions := make([]*session, 0, len(h.sessions))
	for s := range h.sessions {
		sessions = append(sessions, s)
	}
	h.mu.Unlock()
	for _, s := range sessions {
		go s.closeWith(DisconnectShutdown)
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		h.mu.Lock()
		for s := range h.sessions {
			_ = s.conn.Close()
		}
		h.mu.Unlock()
		return ctx.Err()
	}
}

// NumSessions returns the number of open WebSocket sessions.
func (h *Handler) NumSessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

var closeGrace = time.Second
