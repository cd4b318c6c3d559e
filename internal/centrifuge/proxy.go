package centrifuge

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/proxy"
)

// metaLocked returns the connection's server-only meta. Called with s.mu held.
func (s *session) metaLocked() json.RawMessage {
	if s.authConn == nil {
		return nil
	}
	return s.authConn.Meta
}

func (s *session) proxyBase() proxy.Base {
	return proxy.Base{Client: s.clientID, Transport: s.tr.name, Protocol: s.protocolName(), Encoding: "json"}
}

func (s *session) proxyHeaders(emulated map[string]string) proxy.Headers {
	return proxy.Headers{Transport: s.upgradeHeaders, Emulated: emulated}
}

func replyErrorFrom(e *proxy.ErrorReply) *Error {
	return &Error{Code: e.Code, Message: auth.Truncate(e.Message, maxErrorMessage), Temporary: e.Temporary}
}

func disconnectFrom(d *proxy.DisconnectReply) *Disconnect {
	return &Disconnect{Code: d.Code, Reason: auth.Truncate(d.Reason, maxCloseReason)}
}

func (s *session) handleRPC(id uint32, req *RPCRequest) *Disconnect {
	h := s.h
	px := h.proxies.RPC
	if ns, _, ok := strings.Cut(req.Method, ":"); ok && len(h.proxies.RPCNamespaces) > 0 {
		if px = h.proxies.RPCNamespaces[ns]; px == nil {
			s.replyError(id, ErrMethodNotFound.With(fmt.Sprintf("no proxy for the RPC namespace %q (rpc.namespaces)", ns)))
			return nil
		}
	}
	if px == nil {
		if len(h.proxies.RPCNamespaces) > 0 {
			s.replyError(id, ErrMethodNotFound.With("no proxy for methods without a namespace (rpc.proxy)"))
			return nil
		}
		s.replyError(id, ErrNotAvailable.With("no RPC handler is configured"))
		return nil
	}
	if strings.TrimSpace(req.Method) == "" && len(req.Data) == 0 {
		s.replyError(id, ErrBadRequest.With("rpc needs a method or data"))
		return nil
	}
	ctx, cancel := proxy.CallContext(px)
	defer cancel()
	s.mu.Lock()
	meta := s.metaLocked()
	s.mu.Unlock()
	res, perr, pdis, reason := px.RPC(ctx, &proxy.RPCRequest{Base: s.proxyBase(), User: s.user, Method: req.Method,
		Data: req.Data, Meta: meta}, s.proxyHeaders(nil))
	switch {
	case reason != nil:
		s.refused("rpc failed at the rpc proxy", reason, "")
		e := &Error{Code: ErrInternal.Code, Message: ErrInternal.Message, Temporary: proxy.Temporary(reason)}
		s.replyError(id, e.With(s.h.shown(reason)))
	case pdis != nil:
		return disconnectFrom(pdis)
	case perr != nil:
		s.replyError(id, replyErrorFrom(perr))
	default:
		s.reply(&Reply{ID: id, RPC: &RPCResult{Data: proxy.Compact(res.Data)}})
	}
	return nil
}

// refreshRetry is how soon a failed refresh proxy call is tried again.
var refreshRetry = 10 * time.Second

// refreshViaProxy runs when the connection expires and a refresh proxy is
// configured: the backend extends the connection, or says it has expired
// (3005). When the backend cannot be asked, Herald retries until the grace
// period (client.expired_close_delay) is over, then closes with 3005.
func (s *session) refreshViaProxy() {
	h := s.h
	s.mu.Lock()
	user, meta, at, connected := s.user, s.metaLocked(), s.expireAt, s.state == stateConnected
	s.mu.Unlock()
	if !connected || at.IsZero() {
		return
	}
	ctx, cancel := proxy.CallContext(h.proxies.Refresh)
	defer cancel()
	res, reason := h.proxies.Refresh.Refresh(ctx, &proxy.RefreshRequest{Base: s.proxyBase(), User: user, Meta: meta}, s.proxyHeaders(nil))
	grace := h.cfg.Client.ExpiredCloseDelay.D()
	switch {
	case reason != nil:
		s.refused("refresh proxy failed", reason, "")
		if time.Now().After(at.Add(grace)) {
			s.closeWith(DisconnectExpired.With("the refresh proxy could not be asked"))
			return
		}
		s.mu.Lock()
		if s.expireTimer != nil {
			s.expireTimer.Stop()
		}
		s.expireTimer = time.AfterFunc(min(refreshRetry, time.Until(at.Add(grace))+time.Millisecond), s.refreshViaProxy)
		s.mu.Unlock()
	case res.Expired:
		s.log().Info("disconnect: the refresh proxy says the connection expired")
		s.closeWith(DisconnectExpired)
	case res.ExpireAt <= time.Now().Unix():
		r := &auth.Reason{Code: auth.ProxyBadResponse, Detail: "refresh proxy result has neither expired:true nor a future expire_at",
			Hint: "answer {\"result\":{\"expire_at\":<unix seconds in the future>}} or {\"result\":{\"expired\":true}}"}
		s.refused("refresh proxy answered without a new expiry", r, "")
		s.closeWith(*withReason(DisconnectExpired, r, s.h.shown(r)))
	default:
		s.mu.Lock()
		s.expireAt = time.Unix(res.ExpireAt, 0)
		if info := proxy.Compact(res.Info); info != nil {
			s.info = info
		}
		if m := proxy.Compact(res.Meta); m != nil {
			c := *s.authConn
			c.Meta = m
			s.authConn = &c
		}
		s.armExpiryLocked()
		s.mu.Unlock()
	}
}

// subRefreshViaProxy runs when a subscription with a sub_refresh proxy
// expires: the backend extends it or ends it (unsubscribe 2501, or 3006 for a
// server-side subscription); an unreachable backend is retried until the
// grace period (client.expired_sub_close_delay) is over.
func (s *session) subRefreshViaProxy(sub *subscription) {
	h := s.h
	s.mu.Lock()
	current := !s.closed && s.subs[sub.channel] == sub
	user, meta, at := s.user, s.metaLocked(), sub.expireAt
	s.mu.Unlock()
	if !current || at.IsZero() {
		return
	}
	ctx, cancel := proxy.CallContext(h.proxies.SubRefresh)
	defer cancel()
	res, reason := h.proxies.SubRefresh.SubRefresh(ctx, &proxy.SubRefreshRequest{Base: s.proxyBase(), User: user, Channel: sub.channel, Meta: meta}, s.proxyHeaders(nil))
	grace := h.cfg.Client.ExpiredSubCloseDelay.D()
	end := func(why string) {
		s.endSub(sub, UnsubscribeSubscriptionExpired, "subscription expired", DisconnectSubExpired.With(why))
	}
	switch {
	case reason != nil:
		s.refused("sub_refresh proxy failed", reason, sub.channel)
		if time.Now().After(at.Add(grace)) {
			end("the sub_refresh proxy could not be asked")
			return
		}
		s.mu.Lock()
		if sub.timer != nil {
			sub.timer.Stop()
		}
		sub.timer = time.AfterFunc(min(refreshRetry, time.Until(at.Add(grace))+time.Millisecond), func() { s.subRefreshViaProxy(sub) })
		s.mu.Unlock()
	case res.Expired || res.ExpireAt <= time.Now().Unix():
		s.log().Info("subscription ended by the sub_refresh proxy", slog.String("channel", sub.channel))
		end("expired")
	default:
		if info := proxy.Compact(res.Info); info != nil {
			sub.hs.SetChanInfo(info)
		}
		s.mu.Lock()
		sub.expireAt = time.Unix(res.ExpireAt, 0)
		s.armSubExpiryLocked(sub)
		s.mu.Unlock()
	}
}
