package centrifuge

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/cfcodes"
	"github.com/heraldhub/herald/internal/hub"
	"github.com/heraldhub/herald/internal/proxy"
)

// --- connect ---

func (s *session) handleConnect(id uint32, req *ConnectRequest) *Disconnect {
	h := s.h
	// The id exists before the connect is decided, so that the connect
	// proxy and the callout receive the id the client then gets.
	s.mu.Lock()
	s.clientID = uuid.NewString()
	s.mu.Unlock()
	creq := &auth.ConnectRequest{
		Request: auth.Request{Transport: s.tr.name, Tokens: h.sources.WithConnect(s.httpTokens, req.Token),
			Origin: s.origin, RemoteAddr: s.remoteAddr},
		Client: s.clientID, Protocol: s.protocolName(), Encoding: "json", Name: req.Name, Version: req.Version, Data: req.Data,
		Headers: s.upgradeHeaders, Emulated: req.Headers,
	}
	for ch := range req.Subs {
		creq.Channels = append(creq.Channels, ch)
	}
	ident, reason := h.engine.Authenticate(context.Background(), creq)
	if reason != nil {
		s.refused("connection refused", reason, "")
		e, d := connectRefusal(reason, h.shown(reason))
		if d != nil {
			return d
		}
		return s.connectFailed(id, e)
	}
	return s.accept(id, req, ident)
}

// connectRefusal maps a refused connection to the protocol: the backend's
// own answer when it gave one; error 100 (temporary) or 101 for the
// proxies and the callout; the token table otherwise.
func connectRefusal(r *auth.Reason, shown string) (*Error, *Disconnect) {
	if r.Reply != nil {
		return backendOutcome(r.Reply)
	}
	code := string(r.Code)
	if strings.HasPrefix(code, "proxy_") || strings.HasPrefix(code, "callout_") {
		if proxy.Temporary(r) || r.Code == auth.CalloutUnavailable {
			return ErrInternal.With(shown), nil
		}
		return ErrUnauthorized.With(shown), nil
	}
	return connectOutcome(r, shown)
}

// accept completes a connect whose identity is decided: expiry, limits,
// server-side subscriptions, registration and the reply.
func (s *session) accept(id uint32, req *ConnectRequest, ident *auth.Identity) *Disconnect {
	h := s.h
	now := time.Now()
	if !ident.ExpireAt.IsZero() && !ident.ExpireAt.After(now) {
		s.log().Info("connection refused", slog.String("reason", "connection_expired"), slog.String("detail", "expire_at is in the past"), slog.String("user", ident.User))
		return s.connectFailed(id, ErrExpired.With("expire_at is in the past"))
	}
	if len(ident.Channels) > h.cfg.Client.ChannelLimit {
		d := DisconnectChannelLimit.With(fmt.Sprintf("%d server-side channels, limit %d", len(ident.Channels), h.cfg.Client.ChannelLimit))
		return &d
	}
	// Resolve every server-side channel before accepting.
	for _, ch := range ident.Channels {
		if _, err := h.hub.Namespaces().Resolve(ch); err != nil {
			e := ErrUnknownChannel
			if !strings.Contains(err.Error(), "unknown namespace") {
				e = ErrBadRequest
			}
			return s.connectFailed(id, e.With(fmt.Sprintf("token channel %q: %s", ch, err)))
		}
	}
	limit, limitText := h.cfg.Client.UserConnectionLimit, "client.user_connection_limit is %d"
	if ident.MaxConnections > 0 && (limit <= 0 || ident.MaxConnections < limit) {
		limit, limitText = ident.MaxConnections, "the callout allows %d"
	}

	s.mu.Lock()
	s.user = ident.User
	s.info = ident.Info
	s.jti, s.issuedAt = ident.JTI, ident.IssuedAt
	s.expireAt = ident.ExpireAt
	s.authConn = &auth.Conn{Client: s.clientID, User: ident.User, Transport: s.tr.name, Protocol: s.protocolName(), Encoding: "json",
		Meta: ident.Meta, Grants: ident.Grants, Headers: s.upgradeHeaders}
	s.mu.Unlock()
	if err := h.hub.AddClient(s, limit); err != nil {
		detail := err.Msg + ", " + fmt.Sprintf(limitText, limit)
		s.log().Info("connection refused: user connection limit", slog.String("user", ident.User), slog.String("detail", detail))
		d := DisconnectConnectionLimit.With(detail)
		return &d
	}
	s.mu.Lock()
	s.state = stateConnected
	s.registered = true
	if s.staleTimer != nil {
		s.staleTimer.Stop()
	}
	s.who.Store(&[2]string{s.clientID, s.user})
	s.mu.Unlock()

	res := &ConnectResult{Client: s.clientID, Version: h.version, Data: ident.ConnectData}
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
		res.Pong = !s.tr.uni // unidirectional clients cannot answer
	}
	if s.tr.emulation || s.tr.uni {
		res.Session = s.id()
	}
	if s.tr.emulation {
		res.Node = h.hub.NodeID()
	}
	// Server-side subscriptions: their results go into the connect reply, and
	// their deliveries are held back until that reply is queued.
	var pending []*subscription
	for _, ch := range ident.Channels {
		opts := ident.Subs[ch]
		var recover *broker.StreamPosition
		if r := req.Subs[ch]; r != nil && r.Recover {
			recover = &broker.StreamPosition{Offset: r.Offset, Epoch: r.Epoch}
		}
		sub, result, e := s.subscribe(&hub.SubscribeRequest{Channel: ch, ServerSide: true, Recover: recover,
			Grant: &auth.ChannelGrant{Info: opts.Info, Data: opts.Data, Override: opts.Override, History: true, Presence: true}})
		if e != nil {
			s.log().Warn("server-side subscription failed", slog.String("channel", ch), slog.String("error", e.Message))
			continue
		}
		if res.Subs == nil {
			res.Subs = map[string]*SubscribeResult{}
		}
		res.Subs[ch] = result
		pending = append(pending, sub)
	}
	if s.tr.uni {
		s.push(&Push{Connect: res})
	} else {
		s.reply(&Reply{ID: id, Connect: res})
	}
	for _, sub := range pending {
		s.activate(sub)
	}
	s.mu.Lock()
	s.schedulePing(true)
	s.armExpiryLocked()
	s.mu.Unlock()
	s.log().Info("client connected", slog.String("token_source", string(ident.Source)), slog.String("key_fingerprint", ident.KeyFingerprint),
		slog.String("client_name", auth.Truncate(req.Name, 16)), slog.String("client_version", auth.Truncate(req.Version, 64)))
	return nil
}

func (s *session) connectFailed(id uint32, e *Error) *Disconnect {
	s.mu.Lock()
	s.state = stateConnectFailed
	s.mu.Unlock()
	s.log().Info("connect refused", slog.Int("code", int(e.Code)), slog.String("message", e.Message))
	if s.tr.uni {
		// A unidirectional client gets no error replies: a disconnect.
		d := uniConnectDisconnect(e)
		return &d
	}
	s.replyError(id, e)
	return nil
}

// uniConnectDisconnect maps a connect error to the disconnect a
// unidirectional client gets instead (the reference's default mapping).
func uniConnectDisconnect(e *Error) Disconnect {
	var d Disconnect
	switch e.Code {
	case ErrTokenExpired.Code, ErrExpired.Code:
		d = DisconnectExpired
	case ErrTooManyRequests.Code:
		d = cfcodes.DisconnectTooManyRequests
	case ErrPermissionDenied.Code:
		d = DisconnectPermissionDenied
	default:
		d = DisconnectServerError
	}
	return Disconnect{Code: d.Code, Reason: auth.Truncate(e.Message, maxCloseReason)}
}

// protocolName is the session's encoding as proxies and logs name it.
func (s *session) protocolName() string {
	if s.proto {
		return "protobuf"
	}
	return "json"
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
			s.closeWith(DisconnectExpired.With("not refreshed in time"))
		}
	})
}

// --- refresh ---

func (s *session) handleRefresh(id uint32, req *RefreshRequest) *Disconnect {
	if s.h.proxies.Refresh != nil {
		d := DisconnectBadRequest.With("server-side refresh expected: the refresh proxy extends connections")
		return &d
	}
	ident, reason := s.h.engine.Verifier().Refresh(req.Token, s.user)
	if reason != nil {
		s.refused("refresh refused", reason, "")
		if reason.Code == auth.TokenExpired || reason.Code == auth.TokenNotYetValid {
			return withReason(DisconnectExpired, reason, s.h.shown(reason))
		}
		return withReason(DisconnectInvalidToken, reason, s.h.shown(reason))
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
