package centrifuge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/callout"
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

// session is one WebSocket connection. The reader runs in the HTTP handler's
// goroutine and applies commands in order; a writer goroutine exists only
// while there is something to write, so an idle connection costs one goroutine.
type session struct {
	h    *Handler
	conn *websocket.Conn
	// Only what the session needs of the upgrade request is kept, so the
	// request and net/http's buffers are freed when ServeHTTP returns.
	remoteAddr string
	origin     string
	// who is the client and user for log lines, set at connect.
	who atomic.Pointer[[2]string]

	// mu guards the session state and subscriptions. It is never held while
	// calling into the hub or broker, which call back into Deliver.
	mu          sync.Mutex
	state       sessionState
	clientID    string
	user        string
	info        json.RawMessage
	expireAt    time.Time
	subs        map[string]*subscription
	pingOut     bool // a ping was sent and its pong has not arrived
	staleTimer  *time.Timer
	pingTimer   *time.Timer
	pongTimer   *time.Timer
	expireTimer *time.Timer
	registered  bool            // added to the hub
	closed      bool            // cleanup has run: no new subscriptions
	grants      *callout.Grants // set when the auth callout authorized the connection
	meta        json.RawMessage // server-only data from the token or the connect proxy
	// upgradeHeaders are the upgrade request's headers that proxies forward.
	upgradeHeaders http.Header
	jti            string
	issuedAt       time.Time
	httpTokens     []auth.Candidate // tokens found on the upgrade request
	framePing      bool             // cf_ws_frame_ping_pong: WebSocket ping frames instead of {} pings

	// Command rate limit (token bucket), used only by the reader goroutine.
	rateTokens float64
	rateLast   time.Time

	// wmu guards the outgoing queue.
	wmu        sync.Mutex
	fc         frameConn
	queue      [][]byte
	spare      [][]byte // the previous queue, reused
	queueBytes int
	writing    bool
	closing    bool
}

type subscription struct {
	channel       string
	ns            *hub.Namespace
	serverSide    bool
	presence      bool
	joinLeave     bool // namespace publishes join/leave for this channel
	pushJoinLeave bool // this client receives join/leave pushes
	positioned    bool
	recoverable   bool
	chanInfo      json.RawMessage
	expireAt      time.Time
	timer         *time.Timer

	live   bool            // replies sent; deliver directly
	buffer []*hub.Delivery // deliveries that arrived before the subscribe reply
	epoch  string
	offset uint64 // last offset delivered, for positioned subscriptions
}

func newSession(h *Handler, conn *websocket.Conn, r *http.Request) *session {
	s := &session{h: h, conn: conn, fc: newFrameConn(conn.NetConn()), remoteAddr: r.RemoteAddr, origin: r.Header.Get("Origin"), subs: map[string]*subscription{},
		framePing:  r.URL.Query().Get("cf_ws_frame_ping_pong") == "true",
		rateTokens: float64(h.cfg.Client.CommandBurst), rateLast: time.Now()}
	return s
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

func (l sessionLog) log(level slog.Level, msg string, args []any) {
	if !l.s.h.log.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(args))
	for _, a := range args {
		if at, ok := a.(slog.Attr); ok {
			attrs = append(attrs, at)
		}
	}
	l.LogAttrs(context.Background(), level, msg, attrs...)
}

func (l sessionLog) Debug(msg string, args ...any) { l.log(slog.LevelDebug, msg, args) }
func (l sessionLog) Info(msg string, args ...any)  { l.log(slog.LevelInfo, msg, args) }
func (l sessionLog) Warn(msg string, args ...any)  { l.log(slog.LevelWarn, msg, args) }
func (l sessionLog) Error(msg string, args ...any) { l.log(slog.LevelError, msg, args) }

// ID implements hub.Client.
func (s *session) ID() string { return s.clientID }

// User implements hub.Client.
func (s *session) User() string { return s.user }

func (s *session) run() {
	cfg := &s.h.cfg.Client
	s.conn.SetReadLimit(int64(cfg.MessageSizeLimit))
	// Pongs go through Herald's frame writer like every other frame.
	s.conn.SetPingHandler(func(data string) error {
		_ = s.writeControl(websocket.PongMessage, []byte(data), writeTimeout)
		return nil
	})
	if s.framePing {
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
	s.mu.Lock()
	s.staleTimer = time.AfterFunc(cfg.StaleCloseDelay.D(), func() {
		s.mu.Lock()
		stale := s.state != stateConnected
		s.mu.Unlock()
		if stale {
			s.log().Info("disconnect: no connect command in time", slog.Duration("stale_close_delay", cfg.StaleCloseDelay.D()))
			s.closeWith(DisconnectStale.With(fmt.Sprintf("no connect within %s", cfg.StaleCloseDelay.D())))
		}
	})
	s.mu.Unlock()
	var done chan *Disconnect
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				// The library has sent close 1009. Drain what the client is still
				// sending, briefly, so that it reads the close frame instead of a
				// connection reset.
				s.log().Info("disconnect: message too big", slog.Int("message_size_limit", cfg.MessageSizeLimit))
				nc := s.conn.NetConn()
				_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
				_, _ = io.Copy(io.Discard, io.LimitReader(nc, int64(cfg.MessageSizeLimit)*4))
			}
			break
		}
		if done == nil {
			done = make(chan *Disconnect, 1)
		}
		if d := s.h.workers.handle(s, data, done); d != nil {
			s.closeWith(*d)
			// Keep reading until the client answers the close frame or the
			// read deadline set by closeWith passes.
		}
	}
	s.cleanup()
	_ = s.conn.Close()
}

// handleFrame applies every command of a frame in order.
func (s *session) handleFrame(data []byte) *Disconnect {
	s.wmu.Lock()
	closing := s.closing
	s.wmu.Unlock()
	if closing {
		return nil
	}
	cmds, err := decodeFrame(data)
	if err != nil {
		d := DisconnectBadRequest.With("undecodable frame: " + err.Error())
		if errors.Is(err, errEmptyFrame) {
			d = DisconnectBadRequest.With("empty frame")
		}
		s.log().Info("disconnect: bad frame", slog.String("detail", d.Reason))
		return &d
	}
	for _, cmd := range cmds {
		if d := s.handleCommand(cmd); d != nil {
			return d
		}
	}
	return nil
}

func (s *session) reply(r *Reply) { s.enqueue(encodeReply(r)) }

func (s *session) replyError(id uint32, e *Error) { s.reply(&Reply{ID: id, Error: e}) }

func (s *session) handleCommand(cmd *Command) *Disconnect {
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	bad := func(detail string) *Disconnect {
		d := DisconnectBadRequest.With(detail)
		s.log().Info("disconnect: protocol violation", slog.String("detail", detail))
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
		if isPong(cmd) {
			return bad("pong before connect")
		}
		return bad("first command must be connect")
	case cmd.Subscribe != nil:
		return s.withID(cmd, func() *Disconnect { return s.handleSubscribe(cmd.ID, cmd.Subscribe) })
	case cmd.Unsubscribe != nil:
		return s.withID(cmd, func() *Disconnect { return s.handleUnsubscribe(cmd.ID, cmd.Unsubscribe) })
	case cmd.Publish != nil:
		return s.withID(cmd, func() *Disconnect { return s.handlePublish(cmd.ID, cmd.Publish) })
	case cmd.Presence != nil:
		return s.withID(cmd, func() *Disconnect { return s.handlePresence(cmd.ID, cmd.Presence) })
	case cmd.PresenceStats != nil:
		return s.withID(cmd, func() *Disconnect { return s.handlePresenceStats(cmd.ID, cmd.PresenceStats) })
	case cmd.History != nil:
		return s.withID(cmd, func() *Disconnect { return s.handleHistory(cmd.ID, cmd.History) })
	case cmd.RPC != nil:
		return s.withID(cmd, func() *Disconnect { return s.handleRPC(cmd.ID, cmd.RPC) })
	case cmd.Send != nil:
		d := DisconnectNotAvailable.With("no handler for send")
		return &d
	case cmd.Refresh != nil:
		return s.withID(cmd, func() *Disconnect { return s.handleRefresh(cmd.ID, cmd.Refresh) })
	case cmd.SubRefresh != nil:
		return s.withID(cmd, func() *Disconnect { return s.handleSubRefresh(cmd.ID, cmd.SubRefresh) })
	case cmd.Ping != nil:
		return bad("ping command is not supported; answer server pings with {}")
	case cmd.ID != 0:
		return bad("command has no known request field")
	default:
		return s.handlePong()
	}
}

func isPong(cmd *Command) bool { return cmd.ID == 0 }

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

func (s *session) withID(cmd *Command, f func() *Disconnect) *Disconnect {
	if cmd.ID == 0 {
		d := DisconnectBadRequest.With("command id must be > 0")
		return &d
	}
	return f()
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
			s.log().Info("disconnect: no pong", slog.Duration("pong_timeout", timeout))
			s.closeWith(DisconnectNoPong)
		}
	})
	s.schedulePing(false)
	framePing := s.framePing
	s.mu.Unlock()
	if framePing {
		_ = s.writeControl(websocket.PingMessage, nil, writeTimeout)
		return
	}
	s.enqueue(pingFrame)
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

// --- connect ---

func (s *session) handleConnect(id uint32, req *ConnectRequest) *Disconnect {
	h := s.h
	areq := &auth.Request{
		Transport:  "websocket",
		Tokens:     h.sources.WithConnect(s.httpTokens, req.Token),
		Origin:     s.origin,
		RemoteAddr: s.remoteAddr,
	}
	if h.callout != nil {
		return s.connectViaCallout(id, req, areq)
	}
	ident, reason := h.verifier.Connect(areq)
	// Credential precedence: a token; else the connect proxy; else anonymous.
	var connectData json.RawMessage
	noToken := (reason != nil && reason.Code == auth.TokenMissing) || (reason == nil && ident.Source == "")
	afterToken := reason == nil && !noToken && h.cfg.Client.Proxy.ConnectMode == "always"
	if h.proxies.Connect != nil && (noToken || afterToken) {
		var verified *auth.Identity
		if afterToken {
			verified = ident
		}
		var e *Error
		var d *Disconnect
		if ident, connectData, e, d = s.connectViaProxy(req, verified); d != nil {
			return d
		} else if e != nil {
			return s.connectFailed(id, e)
		}
		reason = nil
	}
	if reason != nil {
		s.refused("connection refused", reason, "")
		e, d := connectOutcome(reason, h.shown(reason))
		if d != nil {
			return d
		}
		return s.connectFailed(id, e)
	}
	return s.accept(id, req, ident, connectData)
}

// accept completes a connect whose identity is decided: expiry, limits,
// server-side subscriptions, registration and the reply.
func (s *session) accept(id uint32, req *ConnectRequest, ident *auth.Identity, connectData json.RawMessage) *Disconnect {
	h := s.h
	now := time.Now()
	if !ident.ExpireAt.IsZero() && !ident.ExpireAt.After(now) {
		s.log().Info("connection refused", slog.String("reason", "connection_expired"), slog.String("detail", "expire_at is in the past"), slog.String("user", ident.User))
		return s.connectFailed(id, ErrExpired.With("expire_at is in the past"))
	}
	if limit := h.cfg.Client.UserConnectionLimit; limit > 0 && ident.User != "" {
		if n := len(h.hub.UserClients(ident.User, "")); n >= limit {
			s.log().Info("connection refused: user connection limit", slog.String("user", ident.User), slog.Int("user_connection_limit", limit))
			d := DisconnectConnectionLimit.With(fmt.Sprintf("user has %d connections, client.user_connection_limit is %d", n, limit))
			return &d
		}
	}
	if len(ident.Channels) > h.cfg.Client.ChannelLimit {
		d := DisconnectChannelLimit.With(fmt.Sprintf("%d server-side channels, limit %d", len(ident.Channels), h.cfg.Client.ChannelLimit))
		return &d
	}
	// Resolve every server-side channel before accepting.
	type serverSub struct {
		channel string
		ns      *hub.Namespace
	}
	var serverSubs []serverSub
	for _, ch := range ident.Channels {
		ns, err := h.hub.Namespaces().Resolve(ch)
		if err != nil {
			e := channelError(err)
			return s.connectFailed(id, e.With(fmt.Sprintf("token channel %q: %s", ch, err)))
		}
		serverSubs = append(serverSubs, serverSub{ch, ns})
	}

	s.mu.Lock()
	s.clientID = uuid.NewString()
	s.user = ident.User
	s.info = ident.Info
	s.jti, s.issuedAt = ident.JTI, ident.IssuedAt
	s.meta = ident.Meta
	s.expireAt = ident.ExpireAt
	s.state = stateConnected
	s.staleTimer.Stop()
	s.who.Store(&[2]string{s.clientID, s.user})
	s.mu.Unlock()
	h.hub.AddClient(s)
	s.mu.Lock()
	s.registered = true
	s.mu.Unlock()

	res := &ConnectResult{Client: s.clientID, Version: h.version, Data: connectData}
	// With a refresh proxy the server extends the connection itself, so the
	// client is not told to refresh (no expires/ttl).
	if !ident.ExpireAt.IsZero() && h.proxies.Refresh == nil {
		res.Expires = true
		res.TTL = ttlUntil(ident.ExpireAt, now)
	}
	if interval := h.cfg.Client.PingInterval.D(); interval > 0 && !s.framePing {
		res.Ping = uint32(interval / time.Second)
		if res.Ping == 0 {
			res.Ping = 1
		}
		res.Pong = true
	}
	// Server-side subscriptions: their results go into the connect reply, and
	// their deliveries are held back until that reply is queued.
	var pending []*subscription
	for _, ss := range serverSubs {
		opts := ident.Subs[ss.channel]
		var recoverReq *SubscribeRequest
		if req.Subs != nil {
			recoverReq = req.Subs[ss.channel]
		}
		sub, result, e := s.subscribe(ss.channel, ss.ns, subscribeParams{
			serverSide: true, chanInfo: opts.Info, data: opts.Data, override: opts.Override,
			recover: recoverReq, grantsHistory: true,
		})
		if e != nil {
			s.log().Warn("server-side subscription failed", slog.String("channel", ss.channel), slog.String("error", e.Message))
			continue
		}
		if res.Subs == nil {
			res.Subs = map[string]*SubscribeResult{}
		}
		res.Subs[ss.channel] = result
		pending = append(pending, sub)
	}
	s.mu.Lock()
	s.enqueue(encodeReply(&Reply{ID: id, Connect: res}))
	for _, sub := range pending {
		s.goLiveLocked(sub)
	}
	s.schedulePing(true)
	s.armExpiryLocked()
	s.mu.Unlock()
	for _, sub := range pending {
		s.afterSubscribe(sub)
	}
	s.log().Info("client connected", slog.String("token_source", string(ident.Source)), slog.String("key_fingerprint", ident.KeyFingerprint),
		slog.String("client_name", auth.Truncate(req.Name, 16)), slog.String("client_version", auth.Truncate(req.Version, 64)))
	return nil
}

func (s *session) connectFailed(id uint32, e *Error) *Disconnect {
	s.mu.Lock()
	s.state = stateConnectFailed
	s.mu.Unlock()
	s.replyError(id, e)
	return nil
}

func ttlUntil(t, now time.Time) uint32 {
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	secs := uint32((d + time.Second - 1) / time.Second)
	return secs
}

// armExpiryLocked (re)starts the connection expiry check: after expiry plus
// the grace period, a connection that did not refresh is closed with 3005.
func (s *session) armExpiryLocked() {
	if s.expireTimer != nil {
		s.expireTimer.Stop()
		s.expireTimer = nil
	}
	if s.expireAt.IsZero() {
		return
	}
	grace := s.h.cfg.Client.ExpiredCloseDelay.D()
	at := s.expireAt
	if s.h.proxies.Refresh != nil {
		s.expireTimer = time.AfterFunc(time.Until(at), s.refreshViaProxy)
		return
	}
	s.expireTimer = time.AfterFunc(time.Until(at)+grace, func() {
		s.mu.Lock()
		expired := !s.expireAt.IsZero() && !time.Now().Before(s.expireAt.Add(grace))
		s.mu.Unlock()
		if expired {
			s.log().Info("disconnect: connection expired and was not refreshed", slog.String("reason", string(auth.TokenExpired)))
			s.closeWith(DisconnectExpired)
		}
	})
}

// --- refresh ---

func (s *session) handleRefresh(id uint32, req *RefreshRequest) *Disconnect {
	if s.h.proxies.Refresh != nil {
		d := DisconnectBadRequest.With("server-side refresh expected: the refresh proxy extends connections")
		return &d
	}
	ident, reason := s.h.verifier.Refresh(req.Token, s.user)
	if reason != nil {
		s.refused("refresh refused", reason, "")
		if reason.Code == auth.TokenExpired || reason.Code == auth.TokenNotYetValid {
			d := DisconnectExpired.With(s.h.shown(reason))
			return &d
		}
		d := DisconnectInvalidToken.With(s.h.shown(reason))
		return &d
	}
	now := time.Now()
	s.mu.Lock()
	s.expireAt = ident.ExpireAt
	s.jti, s.issuedAt = ident.JTI, ident.IssuedAt
	if ident.Info != nil {
		s.info = ident.Info
	}
	s.armExpiryLocked()
	s.mu.Unlock()
	res := &RefreshResult{}
	if !ident.ExpireAt.IsZero() {
		res.Expires = true
		res.TTL = ttlUntil(ident.ExpireAt, now)
	}
	s.reply(&Reply{ID: id, Refresh: res})
	return nil
}

// --- subscribe ---

type subscribeParams struct {
	serverSide        bool
	token             bool
	chanInfo          json.RawMessage
	data              json.RawMessage
	override          *auth.Override
	expireAt          time.Time
	recover           *SubscribeRequest // recovery position, when resubscribing
	positioned        bool              // client asked for positioning
	recoverable       bool              // client asked for recovery
	joinLeave         bool              // client asked for join/leave pushes
	grantsHistory     bool              // the client may read history (recovery allowed)
	grantsPresence    bool
	rejectUnrecovered bool
}

func boolOr(p *bool, def bool) bool {
	if p != nil {
		return *p
	}
	return def
}

func channelError(err error) *Error {
	var ce *hub.ChannelError
	if errors.As(err, &ce) && ce.Kind == hub.UnknownNamespace {
		return ErrUnknownChannel
	}
	return ErrBadRequest
}

func (s *session) handleSubscribe(id uint32, req *SubscribeRequest) *Disconnect {
	h := s.h
	ns, err := h.hub.Namespaces().Resolve(req.Channel)
	if err == nil {
		err = ns.CheckRegex(req.Channel)
	}
	if err != nil {
		s.replyError(id, channelError(err).With(err.Error()))
		return nil
	}
	s.mu.Lock()
	_, already := s.subs[req.Channel]
	count := len(s.subs)
	s.mu.Unlock()
	if already {
		s.replyError(id, ErrAlreadySubscribed)
		return nil
	}
	if count >= h.cfg.Client.ChannelLimit {
		s.replyError(id, ErrLimitExceeded.With(fmt.Sprintf("channel_limit is %d", h.cfg.Client.ChannelLimit)))
		return nil
	}
	p := subscribeParams{positioned: req.Positioned, recoverable: req.Recoverable, joinLeave: req.JoinLeave,
		rejectUnrecovered: req.Flag&flagRejectUnrecovered != 0}
	if req.Recover {
		p.recover = req
	}
	// Permission, in the protocol's decision order.
	switch {
	case hub.IsPrivate(req.Channel) && req.Token == "":
		return s.deny(id, req.Channel, "channel is private ($ prefix) and needs a subscription token")
	case req.Token != "":
		grant, reason := h.verifier.Subscription(auth.SubscriptionRequest{Token: req.Token, Channel: req.Channel, User: s.user, Client: s.clientID})
		if reason != nil {
			s.refused("subscription refused", reason, req.Channel)
			shown := h.shown(reason)
			switch reason.Code {
			case auth.TokenExpired, auth.TokenNotYetValid:
				s.replyError(id, ErrTokenExpired.With(shown))
				return nil
			case auth.JWKSUnavailable:
				s.replyError(id, ErrInternal.With(shown))
				return nil
			case auth.SubscriptionTokenMismatch:
				if h.cfg.Client.SubscriptionTokenMismatchError {
					s.replyError(id, ErrPermissionDenied.With(shown))
					return nil
				}
				d := DisconnectInvalidToken.With(shown)
				return &d
			default:
				s.replyError(id, ErrPermissionDenied.With(shown))
				return nil
			}
		}
		if !grant.ExpireAt.IsZero() && !grant.ExpireAt.After(time.Now()) {
			s.replyError(id, ErrExpired.With("subscription expire_at is in the past"))
			return nil
		}
		p.token = true
		p.chanInfo, p.data, p.override, p.expireAt = grant.Info, grant.Data, grant.Override, grant.ExpireAt
	default:
		if g := s.grants; g != nil {
			// The callout's grants decide for connections it authorized.
			if !g.Allows("subscribe", req.Channel) {
				return s.deny(id, req.Channel, "the callout's grants do not include subscribe on this channel")
			}
		} else if limited, allowed := hub.UserLimited(req.Channel, s.user); limited && ns.AllowUserLimitedChannels {
			if !allowed {
				return s.deny(id, req.Channel, fmt.Sprintf("user-limited channel does not list user %q", s.user))
			}
		} else if px := h.proxies.forSubscribe(ns); px != nil {
			// The subscribe proxy decides (Centrifugo's order: after tokens
			// and user-limited channels, before the allow_* flags).
			if e, d := s.subscribeViaProxy(px, req, &p); d != nil {
				return d
			} else if e != nil {
				s.replyError(id, e)
				return nil
			}
		} else if !s.allowed(ns.AllowSubscribeForClient, false, ns.AllowSubscribeForAnonymous, req.Channel) {
			return s.deny(id, req.Channel, s.denyDetail(ns, "subscribe", ns.AllowSubscribeForClient, ns.AllowSubscribeForAnonymous))
		}
	}
	// The subscribing client counts as a subscriber for these grants.
	p.grantsHistory = p.token || ns.AllowRecovery || s.allowed(ns.AllowHistoryForClient || ns.AllowHistoryForSubscriber, false, ns.AllowHistoryForAnonymous, "")
	p.grantsPresence = p.token || s.allowed(ns.AllowPresenceForClient || ns.AllowPresenceForSubscriber, false, ns.AllowPresenceForAnonymous, "")
	if p.positioned && ns.AllowPositioning {
		p.grantsHistory = true
	}
	sub, result, e := s.subscribe(req.Channel, ns, p)
	if e != nil {
		s.replyError(id, e)
		return nil
	}
	s.mu.Lock()
	s.enqueue(encodeReply(&Reply{ID: id, Subscribe: result}))
	s.goLiveLocked(sub)
	s.mu.Unlock()
	s.afterSubscribe(sub)
	return nil
}

// allowed applies an allow_*_for_client / _for_subscriber / _for_anonymous
// triple (or dev mode). channel, when set, is checked for current subscription.
func (s *session) allowed(forClient, forSubscriber, forAnonymous bool, subscribedTo string) bool {
	if s.h.cfg.Dev {
		return true
	}
	if s.user == "" && !forAnonymous {
		return false
	}
	if forClient {
		return true
	}
	if forSubscriber && subscribedTo != "" {
		s.mu.Lock()
		_, ok := s.subs[subscribedTo]
		s.mu.Unlock()
		return ok
	}
	return false
}

func (s *session) denyDetail(ns *hub.Namespace, op string, forClient, forAnonymous bool) string {
	if s.user == "" && forClient && !forAnonymous {
		return fmt.Sprintf("%s: allow_%s_for_anonymous is false and the connection is anonymous", ns.Label(), op)
	}
	return fmt.Sprintf("%s: allow_%s_for_client is false and no token grants it", ns.Label(), op)
}

func (s *session) deny(id uint32, channel, detail string) *Disconnect {
	r := &auth.Reason{Code: auth.ChannelNotPermitted, Detail: detail,
		Hint: "set the namespace's allow_* option, or use a subscription token"}
	s.refused("permission denied", r, channel)
	shown := string(r.Code)
	if s.h.cfg.FullReasons() {
		shown = detail
	}
	s.replyError(id, ErrPermissionDenied.With(shown))
	return nil
}

// subscribe registers a subscription in buffering mode and computes its
// result (position, recovery). The caller queues the reply and then calls
// goLiveLocked, which flushes what arrived meanwhile, so nothing is lost or
// duplicated between the history read and live delivery.
func (s *session) subscribe(channel string, ns *hub.Namespace, p subscribeParams) (*subscription, *SubscribeResult, *Error) {
	var ov auth.Override
	if p.override != nil {
		ov = *p.override
	}
	history := ns.HistoryEnabled()
	sub := &subscription{
		channel: channel, ns: ns, serverSide: p.serverSide, chanInfo: p.chanInfo, expireAt: p.expireAt,
		presence:  boolOr(ov.Presence, ns.Presence),
		joinLeave: boolOr(ov.JoinLeave, ns.JoinLeave),
	}
	sub.pushJoinLeave = sub.joinLeave && (boolOr(ov.ForcePushJoinLeave, ns.ForcePushJoinLeave) || (p.joinLeave && (p.grantsPresence || p.serverSide)))
	if history {
		sub.recoverable = boolOr(ov.ForceRecovery, ns.ForceRecovery) || (p.recoverable && (p.grantsHistory || ns.AllowRecovery)) ||
			(p.serverSide && p.recover != nil && p.recover.Recover)
		sub.positioned = sub.recoverable || boolOr(ov.ForcePositioning, ns.ForcePositioning) || (p.positioned && (p.grantsHistory || ns.AllowPositioning))
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, ErrInternal.With("connection is closing")
	}
	if _, ok := s.subs[channel]; ok {
		s.mu.Unlock()
		return nil, nil, ErrAlreadySubscribed
	}
	s.subs[channel] = sub
	s.mu.Unlock()
	if err := s.h.hub.Subscribe(channel, s); err != nil {
		s.dropSub(sub)
		return nil, nil, ErrInternal
	}
	// A subscription made by the server API can race with the connection's
	// cleanup; never leave the hub holding a closed connection.
	if !s.current(sub) {
		_ = s.h.hub.Unsubscribe(channel, s)
		return nil, nil, ErrInternal.With("connection is closing")
	}
	res := &SubscribeResult{Data: p.data}
	if !sub.expireAt.IsZero() && !s.subRefreshedByProxy(sub) {
		res.Expires = true
		res.TTL = ttlUntil(sub.expireAt, time.Now())
	}
	if sub.positioned {
		res.Positioned = true
		res.Recoverable = sub.recoverable
		var e *Error
		if e = s.position(sub, res, p); e != nil {
			s.dropSub(sub)
			return nil, nil, e
		}
	}
	return sub, res, nil
}

// position fills the stream position and, when asked, recovers missed
// publications. Recovery is all or nothing.
func (s *session) position(sub *subscription, res *SubscribeResult, p subscribeParams) *Error {
	h := s.h
	limit := h.cfg.Client.RecoveryMaxPublicationLimit
	rec := p.recover
	if sub.recoverable && rec != nil && rec.Recover {
		res.WasRecovering = true
		since := &broker.StreamPosition{Offset: rec.Offset, Epoch: rec.Epoch}
		pubs, top, err := h.hub.History(sub.channel, sub.ns, broker.HistoryFilter{Since: since, Limit: limit + 1})
		if err != nil {
			return ErrInternal
		}
		recovered := rec.Epoch == top.Epoch && rec.Offset <= top.Offset
		if recovered && rec.Offset < top.Offset {
			n := len(pubs)
			recovered = n > 0 && n <= limit && pubs[0].Offset == rec.Offset+1 && pubs[n-1].Offset == top.Offset
		}
		res.Epoch = top.Epoch
		if recovered {
			res.Recovered = true
			res.Offset = rec.Offset
			for _, pub := range pubs {
				res.Publications = append(res.Publications, wirePub(pub))
			}
		} else {
			if p.rejectUnrecovered {
				return ErrUnrecoverablePosition.With(fmt.Sprintf("position %d/%s is no longer in the stream", rec.Offset, rec.Epoch))
			}
			res.Offset = top.Offset
		}
		s.mu.Lock()
		sub.epoch, sub.offset = top.Epoch, top.Offset
		s.mu.Unlock()
		return nil
	}
	_, top, err := h.hub.History(sub.channel, sub.ns, broker.HistoryFilter{Limit: 0})
	if err != nil {
		return ErrInternal
	}
	res.Epoch, res.Offset = top.Epoch, top.Offset
	s.mu.Lock()
	sub.epoch, sub.offset = top.Epoch, top.Offset
	s.mu.Unlock()
	return nil
}

// goLiveLocked flushes deliveries buffered while the subscription was being
// set up (skipping those already sent as recovered publications) and switches
// it to live delivery. Called with s.mu held, after the reply was queued.
func (s *session) goLiveLocked(sub *subscription) {
	buf := sub.buffer
	sub.buffer = nil
	sub.live = true
	for _, d := range buf {
		s.deliverLocked(sub, d)
	}
	s.armSubExpiryLocked(sub)
}

// current reports whether sub is still one of the live connection's subscriptions.
func (s *session) current(sub *subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && s.subs[sub.channel] == sub
}

// afterSubscribe adds presence and announces the join.
func (s *session) afterSubscribe(sub *subscription) {
	h := s.h
	info := s.clientInfo(sub)
	if sub.presence {
		if err := h.hub.Presence().AddPresence(sub.channel, s.clientID, info); err != nil {
			s.log().Warn("presence add failed", slog.String("channel", sub.channel), slog.String("error", err.Error()))
		}
		// If the subscription ended meanwhile (a server API subscription racing
		// with a disconnect), its removal may have run first: undo the add.
		if !s.current(sub) {
			_ = h.hub.Presence().RemovePresence(sub.channel, s.clientID)
			return
		}
	}
	if sub.joinLeave {
		_ = h.hub.Broker().PublishJoin(sub.channel, info)
	}
}

func (s *session) clientInfo(sub *subscription) *broker.ClientInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	ci := &broker.ClientInfo{User: s.user, Client: s.clientID, ConnInfo: s.info}
	if sub != nil {
		ci.ChanInfo = sub.chanInfo
	}
	return ci
}

// dropSub removes a subscription without telling the client.
func (s *session) dropSub(sub *subscription) {
	s.mu.Lock()
	if s.subs[sub.channel] != sub {
		s.mu.Unlock()
		return
	}
	delete(s.subs, sub.channel)
	if sub.timer != nil {
		sub.timer.Stop()
	}
	s.mu.Unlock()
	_ = s.h.hub.Unsubscribe(sub.channel, s)
}

// removeSub removes a live subscription: presence and leave included.
func (s *session) removeSub(sub *subscription) {
	info := s.clientInfo(sub)
	s.dropSub(sub)
	if sub.presence {
		_ = s.h.hub.Presence().RemovePresence(sub.channel, s.clientID)
	}
	if sub.joinLeave {
		_ = s.h.hub.Broker().PublishLeave(sub.channel, info)
	}
}

func (s *session) armSubExpiryLocked(sub *subscription) {
	if sub.timer != nil {
		sub.timer.Stop()
		sub.timer = nil
	}
	if sub.expireAt.IsZero() {
		return
	}
	grace := s.h.cfg.Client.ExpiredSubCloseDelay.D()
	if s.subRefreshedByProxy(sub) {
		sub.timer = time.AfterFunc(time.Until(sub.expireAt), func() { s.subRefreshViaProxy(sub) })
		return
	}
	sub.timer = time.AfterFunc(time.Until(sub.expireAt)+grace, func() {
		s.mu.Lock()
		current := s.subs[sub.channel] == sub
		expired := current && !sub.expireAt.IsZero() && !time.Now().Before(sub.expireAt.Add(grace))
		s.mu.Unlock()
		if !expired {
			return
		}
		s.log().Info("subscription expired and was not refreshed", slog.String("channel", sub.channel))
		if sub.serverSide {
			s.closeWith(DisconnectSubExpired)
			return
		}
		s.removeSub(sub)
		s.enqueue(encodeReply(&Reply{Push: &Push{Channel: sub.channel,
			Unsubscribe: &UnsubscribePush{Code: UnsubscribeSubscriptionExpired, Reason: "subscription expired"}}}))
	})
}

// --- unsubscribe ---

func (s *session) handleUnsubscribe(id uint32, req *UnsubscribeRequest) *Disconnect {
	s.mu.Lock()
	sub := s.subs[req.Channel]
	s.mu.Unlock()
	if sub != nil {
		s.removeSub(sub)
	}
	s.reply(&Reply{ID: id, Unsubscribe: &struct{}{}})
	return nil
}

// --- sub_refresh ---

func (s *session) handleSubRefresh(id uint32, req *SubRefreshRequest) *Disconnect {
	s.mu.Lock()
	sub := s.subs[req.Channel]
	s.mu.Unlock()
	if sub == nil {
		s.replyError(id, ErrPermissionDenied.With(fmt.Sprintf("not subscribed to %q", req.Channel)))
		return nil
	}
	grant, reason := s.h.verifier.Subscription(auth.SubscriptionRequest{Token: req.Token, Source: auth.SourceSubRefreshCommand,
		Channel: req.Channel, User: s.user, Client: s.clientID})
	if reason != nil {
		s.refused("sub_refresh refused", reason, req.Channel)
		if reason.Code == auth.TokenExpired || reason.Code == auth.TokenNotYetValid {
			d := DisconnectSubExpired.With(s.h.shown(reason))
			return &d
		}
		d := DisconnectInvalidToken.With(s.h.shown(reason))
		return &d
	}
	s.mu.Lock()
	sub.expireAt = grant.ExpireAt
	if grant.Info != nil {
		sub.chanInfo = grant.Info
	}
	s.armSubExpiryLocked(sub)
	s.mu.Unlock()
	res := &RefreshResult{}
	if !grant.ExpireAt.IsZero() {
		res.Expires = true
		res.TTL = ttlUntil(grant.ExpireAt, time.Now())
	}
	s.reply(&Reply{ID: id, SubRefresh: res})
	return nil
}

// --- publish, presence, history ---

func (s *session) resolveFor(id uint32, channel string) *hub.Namespace {
	ns, err := s.h.hub.Namespaces().Resolve(channel)
	if err != nil {
		s.replyError(id, channelError(err).With(err.Error()))
		return nil
	}
	return ns
}

func (s *session) handlePublish(id uint32, req *PublishRequest) *Disconnect {
	ns := s.resolveFor(id, req.Channel)
	if ns == nil {
		return nil
	}
	pubProxy := s.h.proxies.forPublish(ns)
	viaProxy := pubProxy != nil
	if g := s.grants; g != nil && !viaProxy {
		if !g.Allows("publish", req.Channel) {
			return s.deny(id, req.Channel, "the callout's grants do not include publish on this channel")
		}
	} else if !viaProxy && !s.allowed(ns.AllowPublishForClient, ns.AllowPublishForSubscriber, ns.AllowPublishForAnonymous, req.Channel) {
		detail := fmt.Sprintf("%s: publish needs allow_publish_for_client, or allow_publish_for_subscriber while subscribed", ns.Label())
		if s.user == "" && (ns.AllowPublishForClient || ns.AllowPublishForSubscriber) && !ns.AllowPublishForAnonymous {
			detail = fmt.Sprintf("%s: allow_publish_for_anonymous is false and the connection is anonymous", ns.Label())
		}
		return s.deny(id, req.Channel, detail)
	}
	data, err := hub.NormalizeData(req.Data)
	if err != nil {
		s.replyError(id, ErrBadRequest.With(err.Error()))
		return nil
	}
	pub := &broker.Publication{}
	if viaProxy {
		// The publish proxy's answer decides, and may replace the data.
		var skip bool
		var e *Error
		var d *Disconnect
		if data, skip, pub.Tags, e, d = s.publishViaProxy(pubProxy, req, data); d != nil {
			return d
		} else if e != nil {
			s.replyError(id, e)
			return nil
		}
		if skip {
			nsCopy := *ns
			nsCopy.HistorySize, nsCopy.HistoryTTL = 0, 0
			ns = &nsCopy
		}
	}
	s.mu.Lock()
	var chanInfo json.RawMessage
	if sub := s.subs[req.Channel]; sub != nil {
		chanInfo = sub.chanInfo
	}
	info := &broker.ClientInfo{User: s.user, Client: s.clientID, ConnInfo: s.info, ChanInfo: chanInfo}
	s.mu.Unlock()
	pub.Data, pub.Info = data, info
	if _, err := s.h.hub.Publish(req.Channel, ns, pub); err != nil {
		s.log().Error("publish failed", slog.String("channel", req.Channel), slog.String("error", err.Error()))
		s.replyError(id, ErrInternal)
		return nil
	}
	s.reply(&Reply{ID: id, Publish: &struct{}{}})
	return nil
}

func (s *session) handlePresence(id uint32, req *ChannelRequest) *Disconnect {
	ns := s.presenceAllowed(id, req.Channel)
	if ns == nil {
		return nil
	}
	p, err := s.h.hub.Presence().Presence(req.Channel)
	if err != nil {
		s.replyError(id, ErrInternal)
		return nil
	}
	s.reply(&Reply{ID: id, Presence: &PresenceResult{Presence: p}})
	return nil
}

func (s *session) handlePresenceStats(id uint32, req *ChannelRequest) *Disconnect {
	ns := s.presenceAllowed(id, req.Channel)
	if ns == nil {
		return nil
	}
	st, err := s.h.hub.Presence().PresenceStats(req.Channel)
	if err != nil {
		s.replyError(id, ErrInternal)
		return nil
	}
	s.reply(&Reply{ID: id, PresenceStats: &st})
	return nil
}

func (s *session) presenceAllowed(id uint32, channel string) *hub.Namespace {
	ns := s.resolveFor(id, channel)
	if ns == nil {
		return nil
	}
	if !ns.Presence {
		s.replyError(id, ErrNotAvailable.With(fmt.Sprintf("presence is off in %s", ns.Label())))
		return nil
	}
	if g := s.grants; g != nil {
		if !g.Allows("presence", channel) {
			s.deny(id, channel, "the callout's grants do not include presence on this channel")
			return nil
		}
	} else if !s.allowed(ns.AllowPresenceForClient, ns.AllowPresenceForSubscriber, ns.AllowPresenceForAnonymous, channel) {
		s.deny(id, channel, fmt.Sprintf("%s: presence needs allow_presence_for_client, or allow_presence_for_subscriber while subscribed", ns.Label()))
		return nil
	}
	return ns
}

func (s *session) handleHistory(id uint32, req *HistoryRequest) *Disconnect {
	h := s.h
	ns := s.resolveFor(id, req.Channel)
	if ns == nil {
		return nil
	}
	if !ns.HistoryEnabled() {
		s.replyError(id, ErrNotAvailable.With(fmt.Sprintf("history is off in %s (needs history_size and history_ttl)", ns.Label())))
		return nil
	}
	if g := s.grants; g != nil {
		if !g.Allows("history", req.Channel) {
			s.deny(id, req.Channel, "the callout's grants do not include history on this channel")
			return nil
		}
	} else if !s.allowed(ns.AllowHistoryForClient, ns.AllowHistoryForSubscriber, ns.AllowHistoryForAnonymous, req.Channel) {
		s.deny(id, req.Channel, fmt.Sprintf("%s: history needs allow_history_for_client, or allow_history_for_subscriber while subscribed", ns.Label()))
		return nil
	}
	pubs, top, e := hub.ReadHistory(h.hub, req.Channel, ns, req.Limit, req.Since, req.Reverse, h.cfg.Client.HistoryMaxPublicationLimit)
	if e != nil {
		s.replyError(id, historyError(e))
		return nil
	}
	res := &HistoryResult{Epoch: top.Epoch, Offset: top.Offset}
	for _, p := range pubs {
		res.Publications = append(res.Publications, wirePub(p))
	}
	s.reply(&Reply{ID: id, History: res})
	return nil
}

func historyError(e *hub.HistoryError) *Error {
	switch e.Kind {
	case hub.HistoryBadRequest:
		return ErrBadRequest.With(e.Msg)
	case hub.HistoryUnrecoverable:
		return ErrUnrecoverablePosition.With(e.Msg)
	default:
		return ErrInternal
	}
}

// --- delivery ---

// Deliver implements hub.Client. It never blocks: it queues the encoded push.
func (s *session) Deliver(d *hub.Delivery) {
	s.mu.Lock()
	sub := s.subs[d.Channel]
	if sub != nil {
		if !sub.live {
			sub.buffer = append(sub.buffer, d)
		} else {
			s.deliverLocked(sub, d)
		}
	}
	s.mu.Unlock()
}

func (s *session) deliverLocked(sub *subscription, d *hub.Delivery) {
	switch d.Kind {
	case hub.KindJoin, hub.KindLeave:
		if !sub.pushJoinLeave {
			return
		}
	case hub.KindPublication:
		if sub.positioned && d.Pub.Offset > 0 {
			if d.Epoch != sub.epoch {
				go s.closeWith(DisconnectInsufficientState.With("stream epoch changed"))
				return
			}
			if d.Pub.Offset <= sub.offset {
				return // already delivered (recovered or sent before)
			}
			if d.Pub.Offset != sub.offset+1 {
				go s.closeWith(DisconnectInsufficientState.With(fmt.Sprintf("gap in %s: expected offset %d, got %d", sub.channel, sub.offset+1, d.Pub.Offset)))
				return
			}
			sub.offset = d.Pub.Offset
		}
	}
	s.enqueue(d.Encoded(hub.FormatCentrifugeJSON, encodeDelivery))
}

// --- server API control (hub.Client) ---

// ServerSubscribe implements hub.Client.
func (s *session) ServerSubscribe(channel string, o hub.ServerSubscription) error {
	ns, err := s.h.hub.Namespaces().Resolve(channel)
	if err != nil {
		return err
	}
	p := subscribeParams{serverSide: true, chanInfo: o.Info, data: o.Data, expireAt: o.ExpireAt, grantsHistory: true}
	if o.RecoverSince != nil {
		p.recover = &SubscribeRequest{Recover: true, Offset: o.RecoverSince.Offset, Epoch: o.RecoverSince.Epoch}
	}
	sub, res, e := s.subscribe(channel, ns, p)
	if e != nil {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if e == ErrAlreadySubscribed || closed {
			return nil // already there, or the connection is going away
		}
		return e
	}
	s.mu.Lock()
	s.enqueue(encodeReply(&Reply{Push: &Push{Channel: channel, Subscribe: res}}))
	s.goLiveLocked(sub)
	s.mu.Unlock()
	s.afterSubscribe(sub)
	return nil
}

// ServerUnsubscribe implements hub.Client.
func (s *session) ServerUnsubscribe(channel string, code uint32, reason string) {
	s.mu.Lock()
	sub := s.subs[channel]
	s.mu.Unlock()
	if sub == nil {
		return
	}
	s.removeSub(sub)
	s.enqueue(encodeReply(&Reply{Push: &Push{Channel: channel, Unsubscribe: &UnsubscribePush{Code: code, Reason: reason}}}))
}

// Disconnect implements hub.Client.
func (s *session) Disconnect(code uint32, reason string) {
	s.closeWith(Disconnect{Code: code, Reason: auth.Truncate(reason, maxCloseReason)})
}

// Send implements hub.Client: an asynchronous message push.
func (s *session) Send(data []byte) {
	s.enqueue(encodeReply(&Reply{Push: &Push{Message: &MessagePush{Data: data}}}))
}

// CheckRevoked implements hub.Client: a connection whose token was revoked
// is closed with 3500 (terminal; the user must get a new token).
func (s *session) CheckRevoked() {
	s.mu.Lock()
	user, jti, iat, connected := s.user, s.jti, s.issuedAt, s.state == stateConnected
	s.mu.Unlock()
	if !connected {
		return
	}
	if r := s.h.verifier.RevokedIdentity(user, jti, iat); r != nil {
		r.Source = "live"
		s.refused("connection closed: token revoked", r, "")
		s.closeWith(DisconnectInvalidToken.With(s.h.shown(r)))
	}
}

// ServerRefresh implements hub.Client.
func (s *session) ServerRefresh(r hub.ServerRefresh) {
	if r.Expired {
		s.closeWith(DisconnectExpired)
		return
	}
	s.mu.Lock()
	if !r.ExpireAt.IsZero() {
		s.expireAt = r.ExpireAt
		s.armExpiryLocked()
	}
	if r.Info != nil {
		s.info = r.Info
	}
	s.mu.Unlock()
}

// --- teardown ---

// cleanup runs once, in the reader goroutine, when the connection ends.
func (s *session) cleanup() {
	s.wmu.Lock()
	s.closing = true
	s.queue = nil
	s.wmu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.stopTimersLocked()
	subs := make([]*subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		subs = append(subs, sub)
	}
	registered := s.registered
	s.registered = false
	s.mu.Unlock()
	for _, sub := range subs {
		s.removeSub(sub)
	}
	if registered {
		s.h.hub.RemoveClient(s)
		s.log().Debug("client disconnected")
	}
}

func (s *session) stopTimersLocked() {
	for _, t := range []*time.Timer{s.staleTimer, s.pingTimer, s.pongTimer, s.expireTimer} {
		if t != nil {
			t.Stop()
		}
	}
	for _, sub := range s.subs {
		if sub.timer != nil {
			sub.timer.Stop()
		}
	}
}
