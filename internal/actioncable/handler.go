package actioncable

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/conn"
	"github.com/heraldhub/herald/internal/glob"
	"github.com/heraldhub/herald/internal/hub"
)

// Options build the front door.
type Options struct {
	Config  *config.Config
	Hub     *hub.Hub
	Engine  *auth.Engine
	Logger  *slog.Logger
	Pool    *conn.Pool
	Workers *conn.Workers
	// RPCClient sends the RPC requests (tests); nil = a client of its own.
	RPCClient *http.Client
}

// Handler serves the Action Cable WebSocket endpoint.
type Handler struct {
	cfg      *config.Config
	ac       *config.ActionCable
	hub      *hub.Hub
	engine   *auth.Engine
	log      *slog.Logger
	upgrader websocket.Upgrader
	pool     *conn.Pool
	workers  *conn.Workers

	jwtKeys   atomic.Pointer[auth.KeySet] // nil: the connection keys
	jwtFrom   atomic.Pointer[string]
	streamKey []byte
	turboKey  []byte
	turboFrom string
	rpc       *rpcClient // nil: no RPC
	restore   *sessionCache

	sessions conn.Tracker[*session]
}

// DerivedSecret is what AnyCable derives from its application secret for
// one purpose ("broadcast-cable", "rpc-cable"): hex HMAC-SHA256.
func DerivedSecret(secret, purpose string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(purpose))
	return hex.EncodeToString(m.Sum(nil))
}

// New builds the front door.
func New(o Options) (*Handler, error) {
	ac := &o.Config.ActionCable
	h := &Handler{cfg: o.Config, ac: ac, hub: o.Hub, engine: o.Engine, log: o.Logger, pool: o.Pool, workers: o.Workers}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:  256,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		// Origins are checked in ServeHTTP, where the refusal is explained;
		// the subprotocol is chosen there too.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	h.streamKey = []byte(firstOf(ac.Streams.Secret, ac.Secret))
	switch {
	case ac.Turbo.VerifierKey != "":
		h.turboKey, h.turboFrom = []byte(ac.Turbo.VerifierKey), "actioncable.turbo.verifier_key"
	case ac.Turbo.SecretKeyBase != "":
		k, err := auth.TurboKey(ac.Turbo.SecretKeyBase, ac.Turbo.KeyDigest)
		if err != nil {
			return nil, fmt.Errorf("actioncable.turbo: %w", err)
		}
		h.turboKey, h.turboFrom = k, "the key derived from actioncable.turbo.secret_key_base ("+ac.Turbo.KeyDigest+")"
	case len(h.streamKey) > 0:
		h.turboKey, h.turboFrom = h.streamKey, "actioncable.streams.secret"
	}
	if ac.RPC.Endpoint != "" {
		secret := ac.RPC.Secret
		if secret == "" && ac.Secret != "" {
			secret = DerivedSecret(ac.Secret, "rpc-cable")
		}
		if secret == "none" {
			secret = ""
		}
		rc, err := newRPCClient(&ac.RPC, secret, o.RPCClient, h.log)
		if err != nil {
			return nil, err
		}
		h.rpc = rc
	}
	if ac.SessionsTTL > 0 {
		h.restore = newSessionCache(ac.SessionsTTL.D(), 100000)
	}
	h.hub.HandleControlKind(controlKind, h.handleRemoteDisconnect)
	return h, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// SetJWTKeys sets the keys that verify AnyCable tokens; nil = the
// connection keys (client.token). from names them in hints.
func (h *Handler) SetJWTKeys(set *auth.KeySet, from string) {
	h.jwtKeys.Store(set)
	h.jwtFrom.Store(&from)
}

// JWTKeys returns the keys that verify AnyCable tokens.
func (h *Handler) JWTKeys() *auth.KeySet {
	if k := h.jwtKeys.Load(); k != nil {
		return k
	}
	return h.engine.Verifier().Keys()
}

// rules are the AnyCable token rules of a connection.
func (h *Handler) rules() *auth.AnyCableRules {
	from := "client.token"
	if f := h.jwtFrom.Load(); f != nil && *f != "" {
		from = *f
	}
	return &auth.AnyCableRules{Keys: h.jwtKeys.Load(), KeysFrom: from, Param: h.ac.JWT.Param, Leeway: h.ac.JWT.Leeway.D(),
		UserIdentifier: h.ac.UserIdentifier, Anonymous: h.ac.Anonymous || h.cfg.Dev, Enforce: h.ac.JWT.Enforce}
}

// Rules returns the rules AnyCable tokens are verified by (herald explain).
func (h *Handler) Rules() *auth.AnyCableRules { return h.rules() }

// originAllowed applies client.allowed_origins: requests without Origin
// pass; an empty list refuses every Origin.
func (h *Handler) originAllowed(origin string) bool {
	for _, p := range h.cfg.Client.AllowedOrigins {
		if glob.Match(strings.ToLower(p), strings.ToLower(origin)) {
			return true
		}
	}
	return false
}

// negotiate picks the first subprotocol the client offers that Herald
// speaks, and finds an anycable-token.<jwt> entry. The token entry and
// actioncable-unsupported are never chosen.
func (h *Handler) negotiate(r *http.Request) (chosen, token string, offered []string) {
	for _, p := range websocket.Subprotocols(r) {
		if strings.HasPrefix(p, tokenSubprotocol) {
			if token == "" {
				token = strings.TrimPrefix(p, tokenSubprotocol)
			}
			continue
		}
		offered = append(offered, p)
		if chosen == "" {
			for _, ours := range h.ac.Subprotocols {
				if p == ours {
					chosen = p
				}
			}
		}
	}
	return chosen, token, offered
}

// tokenSubprotocol carries an AnyCable token in Sec-WebSocket-Protocol.
const tokenSubprotocol = "anycable-token."

// ServeHTTP upgrades the request and runs the session until it ends.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && !h.originAllowed(origin) {
		hint := "add it to client.allowed_origins (glob patterns such as https://*.example.com)"
		if len(h.cfg.Client.AllowedOrigins) == 0 {
			hint = "client.allowed_origins is empty, which refuses every browser; " + hint
		}
		reason := &auth.Reason{Code: auth.OriginNotAllowed, Detail: fmt.Sprintf("origin %q is not allowed", auth.Truncate(origin, 100)), Hint: hint}
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "action cable connection refused", append(reason.LogAttrs(),
			slog.Any("allowed_origins", h.cfg.Client.AllowedOrigins), slog.String("remote_addr", r.RemoteAddr))...)
		h.engine.Verifier().Refusals.Add(reason, "actioncable", r.RemoteAddr, "")
		writeRefusal(w, http.StatusForbidden, string(reason.Code), reason.Detail, hint)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		writeRefusal(w, http.StatusBadRequest, "not_websocket", "this is the Action Cable WebSocket endpoint",
			"connect with a WebSocket client such as @rails/actioncable or @anycable/web")
		return
	}
	if !h.sessions.Begin() {
		writeRefusal(w, http.StatusServiceUnavailable, "shutting_down", "server is shutting down", "reconnect to another node")
		return
	}

	chosen, subToken, offered := h.negotiate(r)
	var header http.Header
	if chosen != "" {
		header = http.Header{"Sec-Websocket-Protocol": {chosen}}
	}
	c, err := h.upgrader.Upgrade(w, r, header)
	if err != nil {
		h.sessions.Done()
		h.log.Debug("action cable upgrade failed", slog.String("error", err.Error()), slog.String("remote_addr", r.RemoteAddr))
		return
	}
	s := newSession(h, c, r, chosen, subToken)
	if chosen == "" && len(offered) > 0 {
		s.log().Info("no subprotocol Herald speaks was offered; serving the plain Action Cable protocol without one (Rails clients then close the connection)",
			slog.Any("offered", offered), slog.Any("supported", h.ac.Subprotocols))
	}
	if !h.sessions.Add(s) {
		_ = c.Close()
		h.sessions.Done()
		return
	}
	go func() {
		defer h.sessions.Done()
		s.run()
		h.sessions.Remove(s)
	}()
}

func writeRefusal(w http.ResponseWriter, status int, code, detail, hint string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"detail":%q,"hint":%q}`+"\n", code, detail, hint)
}

// Shutdown tells every client to reconnect elsewhere (disconnect with
// server_restart), waits for the sessions to end or ctx, then for the
// disconnect calls to the app.
func (h *Handler) Shutdown(ctx context.Context) error {
	if err := h.sessions.Shutdown(ctx, func(s *session) {
		s.disconnect("server_restart", true, nil, websocketGoingAway, "server restart")
	}, func(s *session) { _ = s.conn.Close() }); err != nil {
		return err
	}
	if h.rpc != nil {
		h.rpc.waitDisconnects(ctx)
	}
	return nil
}

// NumSessions returns the number of open sessions.
func (h *Handler) NumSessions() int { return h.sessions.Len() }

// closeGrace bounds the wait for the client's close frame.
var closeGrace = time.Second

// writeTimeout bounds one write to a client.
const writeTimeout = 5 * time.Second
