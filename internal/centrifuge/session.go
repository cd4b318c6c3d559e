package centrifuge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/conn"
	"github.com/heraldhub/herald/internal/hub"
)

type sessionState uint8

const (
	stateNew sessionState = iota
	stateConnected
	stateConnectFailed // a connect error was sent: any further command is 3501
)

// writeTimeout bounds one write to the socket; a client that cannot take a
// frame in this time is disconnected.
const writeTimeout = 5 * time.Second

// session is one client connection: the protocol's state machine, over
// any of the transports (transport.go) and in either encoding (codec.go).
// Commands are applied in order, on pooled workers (WebSocket) or on the
// goroutine of the HTTP request that carried them (emulation); the hub owns
// the channels and subscriptions.
type session struct {
	// q and the fields Deliver reads come first and together: a delivery
	// to a plain WebSocket session touches only their cache lines (with
	// thousands of sessions, every other line read is a cache miss).
	q conn.Queue
	// plain: JSON over a bidirectional transport, the common case, whose
	// deliveries need nothing but the shared JSON encoding.
	plain bool
	// proto: the session speaks Protobuf (binary frames, varint-delimited).
	proto bool
	// framePing: cf_ws_frame_ping_pong, WebSocket ping frames instead of {} pings.
	framePing bool
	// deltas counts the subscriptions with delta compression, so that
	// other sessions' deliveries need no lock.
	deltas    atomic.Int32
	closeSent atomic.Bool
	// The flags of the state below, guarded by mu, packed here.
	state      sessionState
	pingOut    bool // a ping was sent and its pong has not arrived
	registered bool // added to the hub
	closed     bool // cleanup has run: no new subscriptions

	h  *Handler
	tr *transport
	// conn is the WebSocket of websocket and uni_websocket sessions.
	conn *websocket.Conn
	// x holds what only some sessions need: set at creation for streams
	// and unidirectional transports, later (under mu) for delta compression.
	// An idle WebSocket's memory is what limits how many one node holds.
	x *sessionExt
	// Only what the session needs of the upgrade request is kept, so the
	// request and net/http's buffers are freed when ServeHTTP returns.
	remoteAddr string
	origin     string
	// who is the client and user for log lines, set at connect.
	who atomic.Pointer[[2]string]

	// mu guards the session state and subscriptions. It is never held while
	// calling into the hub, which calls back into Deliver and Control.
	mu          sync.Mutex
	clientID    string
	user        string
	info        json.RawMessage
	expireAt    time.Time
	subs        map[string]*subscription
	staleTimer  *time.Timer
	pingTimer   *time.Timer
	pongTimer   *time.Timer
	expireTimer *time.Timer
	authConn    *auth.Conn
	jti         string
	issuedAt    time.Time
	// upgradeHeaders are the upgrade request's headers that proxies forward.
	upgradeHeaders http.Header
	httpTokens     []auth.Candidate // tokens found on the upgrade request

	// Command rate limit (token bucket), used only by the goroutine that
	// handles a frame.
	rateTokens float64
	rateLast   time.Time
}

// sessionExt is the state of sessions other than a plain WebSocket.
type sessionExt struct {
	nc net.Conn // the connection of a stream
	// framer frames one write of the session's messages (the queue's own).
	framer conn.Framer
	// streamEnd ends an HTTP response body (the last chunk), when it has one.
	streamEnd []byte
	// id identifies the session of an emulation or unidirectional transport.
	id string
	// frameMu orders the frames of a session whose commands arrive on
	// several requests (emulation) or before its reader starts (uni).
	frameMu sync.Mutex
	// inbox holds frames other nodes forwarded, applied in order (guarded
	// by the session's mu).
	inbox        [][]byte
	inboxRunning bool
	// deltaSubs is the delta compression state of subscriptions (guarded
	// by the session's mu).
	deltaSubs map[*hub.Subscription]*deltaState
}

// netConn is the session's network connection.
func (s *session) netConn() net.Conn {
	if s.conn != nil {
		return s.conn.NetConn()
	}
	return s.x.nc
}

// id is the session id of an emulation or unidirectional session.
func (s *session) id() string {
	if s.x == nil {
		return ""
	}
	return s.x.id
}

// subscription is the protocol's state of one hub subscription.
type subscription struct {
	hs         *hub.Subscription
	channel    string
	serverSide bool
	expireAt   time.Time
	timer      *time.Timer
}

// newSession prepares a session of transport tr for request r; attach
// gives it its connection.
func newSession(h *Handler, tr *transport, proto bool, r *http.Request) *session {
	s := &session{h: h, tr: tr, proto: proto, plain: !proto && !tr.uni, remoteAddr: r.RemoteAddr, origin: r.Header.Get("Origin"), subs: map[string]*subscription{},
		framePing:  tr == trWebSocket && r.URL.Query().Get("cf_ws_frame_ping_pong") == "true",
		rateTokens: float64(h.cfg.Client.CommandBurst), rateLast: time.Now()}
	if tr != trWebSocket {
		s.x = &sessionExt{id: uuid.NewString()}
	}
	return s
}

// attach sets the session's connection and the framing of its writes.
func (s *session) attach(nc net.Conn, framer conn.Framer) {
	if s.x != nil {
		s.x.nc, s.x.framer = nc, framer
	}
	s.q.Init(nc, s.h.pool, conn.QueueOptions{Framer: framer, Owner: s,
		MaxBytes: s.h.cfg.Client.QueueMaxSize, WriteTimeout: writeTimeout, Door: "centrifugo", Transport: s.tr.name})
}

// sessionLog writes log lines with the session's remote address, client and
// user. It builds nothing unless the level is enabled: a per-session
// slog.Logger.With cost about 8 µs of every connect.
type sessionLog struct{ s *session }

func (s *session) log() sessionLog { return sessionLog{s} }

func (l sessionLog) LogAttrs(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	h := l.s.h.log
	if !h.Enabled(ctx, level) {
		return
	}
	base := make([]slog.Attr, 0, 3+len(attrs))
	base = append(base, slog.String("remote_addr", l.s.remoteAddr))
	if w := l.s.who.Load(); w != nil {
		base = append(base, slog.String("client", w[0]), slog.String("user", w[1]))
	}
	h.LogAttrs(ctx, level, msg, append(base, attrs...)...)
}

func (l sessionLog) Debug(msg string, attrs ...slog.Attr) {
	l.LogAttrs(context.Background(), slog.LevelDebug, msg, attrs...)
}
func (l sessionLog) Info(msg string, attrs ...slog.Attr) {
	l.LogAttrs(context.Background(), slog.LevelInfo, msg, attrs...)
}
func (l sessionLog) Warn(msg string, attrs ...slog.Attr) {
	l.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

// ID implements hub.Client.
func (s *session) ID() string { return s.clientID }

// User implements hub.Client.
func (s *session) User() string { return s.user }

// run reads a WebSocket session's messages until the connection ends.
func (s *session) run() {
	cfg := &s.h.cfg.Client
	limit := cfg.MessageSizeLimit
	if s.tr.uni {
		limit = s.h.cfg.UniWebSocket.MessageSizeLimit
	}
	s.conn.SetReadLimit(int64(limit))
	// Pongs go through Herald's frame writer like every other frame.
	s.conn.SetPingHandler(func(data string) error {
		_ = s.q.WriteNow(conn.ControlFrame(conn.OpPong, []byte(data)), writeTimeout)
		return nil
	})
	switch {
	case s.tr.uni:
		// The client need not send anything after its connect request; a
		// pong to a ping frame shows it is there.
		s.conn.SetPongHandler(func(string) error { s.extendUniDeadline(); return nil })
		s.extendUniDeadline()
	case s.framePing:
		// Tools such as wscat and Postman answer WebSocket ping frames but not {}.
		s.conn.SetPongHandler(func(string) error {
			s.mu.Lock()
			s.pingOut = false
			if s.pongTimer != nil {
				s.pongTimer.Stop()
			}
			s.mu.Unlock()
			return nil
		})
	}
	var done chan *Disconnect
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				// The library has sent close 1009. Drain what the client is still
				// sending, briefly, so that it reads the close frame instead of a
				// connection reset.
				s.log().Info("disconnect: message too big", slog.Int("code", 1009), slog.Int("message_size_limit", limit))
				nc := s.conn.NetConn()
				_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
				_, _ = io.Copy(io.Discard, io.LimitReader(nc, int64(limit)*4))
			}
			break
		}
		if done == nil {
			done = make(chan *Disconnect, 1)
		}
		handle := s.handleFrame
		if s.tr.uni {
			handle = s.handleUniMessage
		}
		if d := conn.Do(s.h.workers, done, func() *Disconnect { return handle(data) }); d != nil {
			s.closeWith(*d)
			// Keep reading until the client answers the close frame or the
			// read deadline set by closeWith passes.
		}
	}
	s.cleanup()
	_ = s.conn.Close()
}

// armStale closes a session that has not connected in time with 3502.
func (s *session) armStale() {
	cfg := &s.h.cfg.Client
	s.mu.Lock()
	s.staleTimer = time.AfterFunc(cfg.StaleCloseDelay.D(), func() {
		s.mu.Lock()
		stale := s.state != stateConnected
		s.mu.Unlock()
		if stale {
			s.closeWith(DisconnectStale.With(fmt.Sprintf("no connect within %s", cfg.StaleCloseDelay.D())))
		}
	})
	s.mu.Unlock()
}

// handleFrame applies every command of a frame in order.
func (s *session) handleFrame(data []byte) *Disconnect {
	if s.x != nil {
		// A WebSocket's reader hands over one frame at a time; the frames
		// of an emulation session come on concurrent requests.
		s.x.frameMu.Lock()
		defer s.x.frameMu.Unlock()
	}
	if s.closeSent.Load() {
		return nil
	}
	cmds, err := s.decode(data)
	if err != nil {
		d := DisconnectBadRequest.With("undecodable frame: " + err.Error())
		if errors.Is(err, errEmptyFrame) {
			d = DisconnectBadRequest.With("empty frame")
		}
		return &d
	}
	for _, cmd := range cmds {
		if d := s.handleCommand(cmd); d != nil {
			return d
		}
	}
	return nil
}

func (s *session) handleCommand(cmd *Command) *Disconnect {
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	bad := func(detail string) *Disconnect {
		d := DisconnectBadRequest.With(detail)
		return &d
	}
	if state == stateConnectFailed {
		return bad("command after a connect error")
	}
	if state == stateConnected && cmd.ID != 0 && !s.allowCommand() {
		s.replyError(cmd.ID, ErrTooManyRequests.With(fmt.Sprintf("client.command_rate_limit is %d per second", s.h.cfg.Client.CommandRateLimit)))
		return nil
	}
	// Dispatch on the first request field, in the protocol's order.
	switch {
	case cmd.Connect != nil:
		if cmd.ID == 0 {
			return bad("command id must be > 0")
		}
		if state == stateConnected {
			return bad("client already authenticated")
		}
		return s.handleConnect(cmd.ID, cmd.Connect)
	case state != stateConnected:
		if cmd.ID == 0 {
			return bad("pong before connect")
		}
		return bad("first command must be connect")
	case cmd.Send != nil:
		d := DisconnectNotAvailable.With("no handler for send")
		return &d
	case cmd.Ping != nil:
		return bad("ping command is not supported; answer server pings with {}")
	case cmd.ID == 0 && !isEmpty(cmd):
		return bad("command id must be > 0")
	case cmd.Subscribe != nil:
		return s.handleSubscribe(cmd.ID, cmd.Subscribe)
	case cmd.Unsubscribe != nil:
		return s.handleUnsubscribe(cmd.ID, cmd.Unsubscribe)
	case cmd.Publish != nil:
		return s.handlePublish(cmd.ID, cmd.Publish)
	case cmd.Presence != nil:
		return s.handlePresence(cmd.ID, cmd.Presence)
	case cmd.PresenceStats != nil:
		return s.handlePresenceStats(cmd.ID, cmd.PresenceStats)
	case cmd.History != nil:
		return s.handleHistory(cmd.ID, cmd.History)
	case cmd.RPC != nil:
		return s.handleRPC(cmd.ID, cmd.RPC)
	case cmd.Refresh != nil:
		return s.handleRefresh(cmd.ID, cmd.Refresh)
	case cmd.SubRefresh != nil:
		return s.handleSubRefresh(cmd.ID, cmd.SubRefresh)
	case cmd.ID != 0:
		return bad("command has no known request field")
	default:
		return s.handlePong()
	}
}

// isEmpty reports whether a command has no request field (a pong).
func isEmpty(cmd *Command) bool {
	return cmd.Subscribe == nil && cmd.Unsubscribe == nil && cmd.Publish == nil && cmd.Presence == nil &&
		cmd.PresenceStats == nil && cmd.History == nil && cmd.RPC == nil && cmd.Refresh == nil && cmd.SubRefresh == nil
}

// allowCommand takes a token from the connection's bucket. Refused commands
// get error 111, which is temporary: SDKs retry them later.
func (s *session) allowCommand() bool {
	rate := s.h.cfg.Client.CommandRateLimit
	if rate <= 0 {
		return true
	}
	now := time.Now()
	burst := float64(s.h.cfg.Client.CommandBurst)
	s.rateTokens += now.Sub(s.rateLast).Seconds() * float64(rate)
	if s.rateTokens > burst {
		s.rateTokens = burst
	}
	s.rateLast = now
	if s.rateTokens < 1 {
		return false
	}
	s.rateTokens--
	return true
}

// --- ping / pong ---

func (s *session) schedulePing(first bool) {
	interval := s.h.cfg.Client.PingInterval.D()
	if interval <= 0 {
		return
	}
	delay := interval
	if first {
		// The first ping goes out at a random time in [interval/2, interval]
		// so that reconnect storms do not ping in lockstep.
		delay = interval/2 + rand.N(interval/2+1)
	}
	s.pingTimer = time.AfterFunc(delay, s.sendPing)
}

func (s *session) sendPing() {
	s.mu.Lock()
	if s.state != stateConnected {
		s.mu.Unlock()
		return
	}
	if s.tr.uni {
		// Unidirectional clients send no pongs: {} keeps proxies and the
		// client's own timeout content, and a WebSocket also gets a ping
		// frame, whose pong extends its read deadline.
		s.schedulePing(false)
		s.mu.Unlock()
		if s.conn != nil {
			_ = s.q.WriteNow(conn.ControlFrame(conn.OpPing, nil), writeTimeout)
		}
		s.enqueue(s.pingMsg())
		return
	}
	s.pingOut = true
	timeout := s.h.cfg.Client.PongTimeout.D()
	if s.pongTimer != nil {
		s.pongTimer.Stop()
	}
	s.pongTimer = time.AfterFunc(timeout, func() {
		s.mu.Lock()
		missing := s.pingOut
		s.mu.Unlock()
		if missing {
			s.closeWith(DisconnectNoPong.With(fmt.Sprintf("no pong within %s", timeout)))
		}
	})
	s.schedulePing(false)
	framePing := s.framePing
	s.mu.Unlock()
	if framePing {
		_ = s.q.WriteNow(conn.ControlFrame(conn.OpPing, nil), writeTimeout)
		return
	}
	s.enqueue(s.pingMsg())
}

func (s *session) handlePong() *Disconnect {
	s.mu.Lock()
	if !s.pingOut {
		s.mu.Unlock()
		d := DisconnectBadRequest.With("pong without a ping")
		return &d
	}
	s.pingOut = false
	if s.pongTimer != nil {
		s.pongTimer.Stop()
	}
	s.mu.Unlock()
	return nil
}
