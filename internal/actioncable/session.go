package actioncable

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/conn"
	"github.com/heraldhub/herald/internal/hub"
)

// Close codes and texts of the WebSocket close frame. Rails clients ignore
// them; @anycable/core relies on the disconnect message before them.
const (
	websocketNormal    = websocket.CloseNormalClosure
	websocketGoingAway = websocket.CloseGoingAway
	websocketError     = websocket.CloseInternalServerErr
)

// session is one Action Cable connection: the protocol's state machine.
// The reader runs on its own goroutine and handles each message in order on
// a pooled worker, so a connection's commands (and its RPC calls) keep their
// order; the hub owns the streams.
type session struct {
	h          *Handler
	conn       *websocket.Conn
	protocol   string // negotiated subprotocol ("" when none)
	ext        bool   // the extended protocol
	remoteAddr string
	origin     string
	// What the app's RPC gets of the upgrade request, captured once.
	url     string
	headers map[string]string
	// Credentials found on the upgrade request.
	tokens     []auth.Candidate
	restoreSID string
	who        atomic.Pointer[[2]string]

	// mu guards what follows. It is never held while calling the hub, which
	// calls back into Deliver and Control.
	mu          sync.Mutex
	sid         string // the hub client id, welcome's sid, RPC metadata sid
	user        string
	identifiers string
	credential  string // hash of what identified the session, binding restores
	expireAt    time.Time
	authConn    *auth.Conn
	jti         string
	issuedAt    time.Time
	connected   bool
	closed      bool
	rpcInterest bool // the app identified the session or ran one of its channels
	subs        map[string]*subscription
	streams     map[string]*stream
	cstate      map[string]string
	pingTimer   *time.Timer
	lastSeen    time.Time // the last message from the client
	rateTokens  float64
	rateLast    time.Time

	q         conn.Queue
	closeSent atomic.Bool
	kicked    atomic.Bool // the server sent a disconnect message: no restore
}

// subscription is one identifier of the session.
type subscription struct {
	id       string
	channel  string   // the Action Cable channel (class) name
	streams  []string // the hub channels it follows
	rpc      bool     // the app runs it
	istate   map[string]string
	whisper  string // stream whispers go to ("" = none)
	presence string // stream presence is kept in ("" = none)
	joined   string // the presence id it joined with
}

// stream is a hub subscription of the session, shared by the identifiers
// that follow the stream.
type stream struct {
	hs  *hub.Subscription
	ids []string
}

func newSession(h *Handler, c *websocket.Conn, r *http.Request, protocol, subToken string) *session {
	s := &session{h: h, conn: c, protocol: protocol, ext: protocol == protoExt, remoteAddr: r.RemoteAddr,
		origin: r.Header.Get("Origin"), sid: uuid.NewString(), subs: map[string]*subscription{}, streams: map[string]*stream{},
		lastSeen: time.Now(), rateTokens: float64(h.cfg.Client.CommandBurst), rateLast: time.Now()}
	s.url = requestURL(r)
	s.headers = h.forwardedHeaders(r)
	param := h.ac.JWT.Param
	if v := r.Header.Get("X-" + param); v != "" {
		s.tokens = append(s.tokens, auth.Candidate{Source: auth.SourceHeader, Token: strings.TrimSpace(v)})
	} else if subToken != "" {
		s.tokens = append(s.tokens, auth.Candidate{Source: auth.SourceSubprotocol, Token: subToken})
	}
	if v := r.URL.Query().Get(param); v != "" {
		s.tokens = append(s.tokens, auth.Candidate{Source: auth.SourceQuery, Token: v})
	}
	if s.ext {
		s.restoreSID = r.Header.Get("X-Anycable-Restore-Sid")
		if s.restoreSID == "" {
			s.restoreSID = r.URL.Query().Get("sid")
		}
	}
	s.q.Init(c.NetConn(), h.pool, conn.QueueOptions{Framer: conn.TextFrames, Owner: s,
		MaxBytes: h.cfg.Client.QueueMaxSize, WriteTimeout: writeTimeout, Door: "actioncable", Transport: "websocket"})
	return s
}

// requestURL is the upgrade request's URL made absolute, as the app's RPC
// builds its request from it.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// sessionLog writes log lines with the session's remote address, sid and
// user, building nothing unless the level is enabled.
type sessionLog struct{ s *session }

func (s *session) log() sessionLog { return sessionLog{s} }

func (l sessionLog) LogAttrs(level slog.Level, msg string, attrs ...slog.Attr) {
	lg := l.s.h.log
	if !lg.Enabled(context.Background(), level) {
		return
	}
	base := make([]slog.Attr, 0, 4+len(attrs))
	base = append(base, slog.String("door", "actioncable"), slog.String("remote_addr", l.s.remoteAddr))
	if w := l.s.who.Load(); w != nil {
		base = append(base, slog.String("sid", w[0]), slog.String("user", w[1]))
	}
	lg.LogAttrs(context.Background(), level, msg, append(base, attrs...)...)
}

func (l sessionLog) Debug(msg string, attrs ...slog.Attr) { l.LogAttrs(slog.LevelDebug, msg, attrs...) }
func (l sessionLog) Info(msg string, attrs ...slog.Attr)  { l.LogAttrs(slog.LevelInfo, msg, attrs...) }
func (l sessionLog) Warn(msg string, attrs ...slog.Attr)  { l.LogAttrs(slog.LevelWarn, msg, attrs...) }

// refused logs a refusal with every structured field (never a token) and
// keeps it for /debug/auth.
func (s *session) refused(msg string, r *auth.Reason, identifier, channel string) {
	attrs := r.LogAttrs()
	if identifier != "" {
		attrs = append(attrs, slog.String("identifier", auth.Truncate(identifier, 200)))
	}
	if channel != "" {
		attrs = append(attrs, slog.String("channel", channel))
	}
	s.log().Info(msg, attrs...)
	s.h.engine.Verifier().Refusals.Add(r, "actioncable", s.remoteAddr, channel)
}

// shown is the Herald reason a client may see, in development mode only.
func (s *session) shown(r *auth.Reason) *auth.Reason {
	if r == nil || !s.h.cfg.FullReasons() {
		return nil
	}
	return r
}

// ID implements hub.Client.
func (s *session) ID() string { return s.sid }

// Door implements hub.DoorClient: the metrics count the session under it.
func (s *session) Door() (door, transport string) { return "actioncable", "websocket" }

// User implements hub.Client.
func (s *session) User() string { return s.user }

func (s *session) run() {
	s.conn.SetReadLimit(int64(s.h.cfg.Client.MessageSizeLimit))
	s.conn.SetPingHandler(func(data string) error {
		_ = s.q.WriteNow(conn.ControlFrame(conn.OpPong, []byte(data)), writeTimeout)
		return nil
	})
	done := make(chan struct{}, 1)
	// Identification runs before any client message is read, so no command
	// overtakes it.
	conn.Do(s.h.workers, done, func() struct{} { s.identify(); return struct{}{} })
	for !s.closeSent.Load() {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				s.log().Info("disconnect: message too big", slog.Int("message_size_limit", s.h.cfg.Client.MessageSizeLimit))
				nc := s.conn.NetConn()
				_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
				_, _ = io.Copy(io.Discard, io.LimitReader(nc, int64(s.h.cfg.Client.MessageSizeLimit)*4))
			}
			break
		}
		conn.Do(s.h.workers, done, func() struct{} { s.handleMessage(data); return struct{}{} })
	}
	if s.closeSent.Load() {
		// Wait briefly for the client's close frame after ours.
		for {
			if _, _, err := s.conn.ReadMessage(); err != nil {
				break
			}
		}
	}
	s.cleanup()
	_ = s.conn.Close()
}

// handleMessage applies one client message.
func (s *session) handleMessage(data []byte) {
	if s.closeSent.Load() {
		return
	}
	s.mu.Lock()
	s.lastSeen = time.Now()
	allowed := s.allowCommand()
	s.mu.Unlock()
	if !allowed {
		s.log().Debug("message dropped: client.command_rate_limit", slog.Int("command_rate_limit", s.h.cfg.Client.CommandRateLimit))
		return
	}
	cmd, err := decodeCommand(data)
	if err != nil {
		s.log().Info("invalid message ignored", slog.String("error", err.Error()), slog.Int("bytes", len(data)))
		return
	}
	if cmd.Type == "pong" && cmd.Command == "" {
		return // actioncable-v1.1-json pongs: any message counts as alive
	}
	if cmd.Command != "pong" && (cmd.Identifier == "" || len(cmd.Identifier) > s.h.ac.MaxIdentifier) {
		s.log().Info("message ignored: the identifier is missing or longer than actioncable.max_identifier",
			slog.String("command", auth.Truncate(cmd.Command, 32)), slog.Int("max_identifier", s.h.ac.MaxIdentifier))
		return
	}
	switch cmd.Command {
	case "subscribe":
		s.handleSubscribe(cmd)
	case "unsubscribe":
		s.handleUnsubscribe(cmd.Identifier)
	case "message":
		s.handlePerform(cmd)
	case "pong":
	case "history", "whisper", "join", "leave", "presence":
		if !s.ext {
			s.log().Info("command ignored: it needs the extended protocol (actioncable-v1-ext-json)", slog.String("command", cmd.Command))
			return
		}
		s.handleExt(cmd)
	default:
		s.log().Info("unknown command ignored", slog.String("command", auth.Truncate(cmd.Command, 32)))
	}
}

// allowCommand takes a token from the connection's bucket (s.mu held).
func (s *session) allowCommand() bool {
	rate := s.h.cfg.Client.CommandRateLimit
	if rate <= 0 {
		return true
	}
	now := time.Now()
	burst := float64(s.h.cfg.Client.CommandBurst)
	s.rateTokens = min(burst, s.rateTokens+now.Sub(s.rateLast).Seconds()*float64(rate))
	s.rateLast = now
	if s.rateTokens < 1 {
		return false
	}
	s.rateTokens--
	return true
}

// --- ping ---

func (s *session) schedulePingLocked() {
	s.pingTimer = time.AfterFunc(s.h.ac.PingInterval.D(), s.sendPing)
}

func (s *session) sendPing() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	silent := time.Since(s.lastSeen)
	s.schedulePingLocked()
	s.mu.Unlock()
	if pt := s.h.ac.PongTimeout.D(); s.ext && pt > 0 && silent > pt {
		s.log().Info("disconnect: no pong", slog.Duration("silent", silent.Truncate(time.Millisecond)), slog.Duration("pong_timeout", pt))
		s.disconnect("no_pong", true, nil, websocketNormal, "No Pong")
		return
	}
	s.enqueue(pingFrame(time.Now().Unix()))
}

// --- writing and closing ---

func (s *session) enqueue(b []byte) { s.q.Enqueue(b) }

// Slow implements conn.Owner.
func (s *session) Slow(queued int) {
	s.log().Info("client is too slow", slog.Int("queued_bytes", queued), slog.Int("queue_max_size", s.h.cfg.Client.QueueMaxSize))
	go s.disconnect("too_slow", true, nil, websocketNormal, "Too Slow")
}

// WriteFailed implements conn.Owner.
func (s *session) WriteFailed(err error) {
	s.log().Debug("write failed", slog.String("error", err.Error()))
	go s.disconnect("", false, nil, websocketError, "Write Error")
}

// disconnect sends the frames before (the app's transmissions), the
// disconnect message (unless reason is "") and a close frame, and makes the
// reader stop soon. The first call wins.
func (s *session) disconnect(reason string, reconnect bool, r *auth.Reason, code int, text string, before ...[]byte) {
	if !s.closeSent.CompareAndSwap(false, true) {
		return
	}
	if reason != "" {
		s.kicked.Store(true)
	}
	s.q.Close()
	why := reason // herald_disconnects_total: the Action Cable reason, else the close code
	if why == "" {
		why = strconv.Itoa(code)
	}
	s.h.hub.Disconnecting(s, why)
	s.mu.Lock()
	if s.pingTimer != nil {
		s.pingTimer.Stop()
	}
	s.mu.Unlock()
	level := slog.LevelInfo
	if reason == "server_restart" || reason == "" {
		level = slog.LevelDebug
	}
	s.log().LogAttrs(level, "disconnect", slog.String("reason", reason), slog.Bool("reconnect", reconnect), slog.Int("code", code))
	var buf []byte
	for _, m := range before {
		buf = conn.TextFrames(buf, [][]byte{m})
	}
	if reason != "" {
		buf = conn.TextFrames(buf, [][]byte{disconnectFrame(reason, reconnect, s.shown(r))})
	}
	buf = append(buf, conn.ControlFrame(conn.OpClose, websocket.FormatCloseMessage(code, auth.Truncate(text, 120)))...)
	_ = s.q.WriteNow(buf, closeGrace)
	_ = s.conn.SetReadDeadline(time.Now().Add(closeGrace))
}
