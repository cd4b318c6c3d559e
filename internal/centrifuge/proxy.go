package centrifuge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/callout"
	"github.com/heraldhub/herald/internal/hub"
	"github.com/heraldhub/herald/internal/proxy"
)

// Proxies are the team's backends that decide for Herald. A nil proxy is off.
type Proxies struct {
	Connect    *proxy.Proxy
	Refresh    *proxy.Proxy
	Subscribe  *proxy.Proxy
	Publish    *proxy.Proxy
	SubRefresh *proxy.Proxy
	RPC        *proxy.Proxy
	// Named proxies, referred to by namespaces' *_proxy_name options.
	Named map[string]*proxy.Proxy
	// RPCNamespaces answer the methods "ns:..." of each namespace.
	RPCNamespaces map[string]*proxy.Proxy
	// Headers lists (in canonical form) every transport header any proxy
	// forwards; only these are kept from the upgrade request.
	Headers []string
}

// forSubscribe returns the proxy that decides subscriptions in ns, or nil.
func (p *Proxies) forSubscribe(ns *hub.Namespace) *proxy.Proxy {
	if ns.SubscribeProxyName != "" {
		return p.Named[ns.SubscribeProxyName]
	}
	if ns.SubscribeProxyEnabled {
		return p.Subscribe
	}
	return nil
}

// forPublish returns the proxy that decides publications in ns, or nil.
func (p *Proxies) forPublish(ns *hub.Namespace) *proxy.Proxy {
	if ns.PublishProxyName != "" {
		return p.Named[ns.PublishProxyName]
	}
	if ns.PublishProxyEnabled {
		return p.Publish
	}
	return nil
}

// keepHeaders copies the upgrade request's headers that some proxy forwards.
func (p *Proxies) keepHeaders(r *http.Request) http.Header {
	if len(p.Headers) == 0 {
		return nil
	}
	out := http.Header{}
	for _, name := range p.Headers {
		if v := r.Header.Values(name); len(v) > 0 {
			out[name] = append([]string(nil), v...)
		}
	}
	return out
}

func (s *session) proxyBase() proxy.Base {
	return proxy.Base{Client: s.clientID, Transport: "websocket", Protocol: "json", Encoding: "json"}
}

func (s *session) proxyHeaders(emulated map[string]string) proxy.Headers {
	return proxy.Headers{Transport: s.upgradeHeaders, Emulated: emulated}
}

func proxyCtx(p *proxy.Proxy) (context.Context, context.CancelFunc) {
	// The proxy enforces its own timeout; this only bounds a stuck call.
	return context.WithTimeout(context.Background(), p.Timeout()+time.Second)
}

// proxyRefusal maps a proxy failure to a reply error: temporary failures
// (timeout, unreachable, overloaded, circuit open) are error 100 with
// temporary set, so SDKs retry with backoff; a backend that answers wrongly
// gets terminal, which ends the retry loop.
func (s *session) proxyRefusal(r *auth.Reason, terminal *Error) *Error {
	shown := s.h.shown(r)
	if proxy.Temporary(r) {
		return ErrInternal.With(shown)
	}
	return terminal.With(shown)
}

func replyErrorFrom(e *proxy.ErrorReply) *Error {
	return &Error{Code: e.Code, Message: auth.Truncate(e.Message, maxErrorMessage), Temporary: e.Temporary}
}

func disconnectFrom(d *proxy.DisconnectReply) *Disconnect {
	return &Disconnect{Code: d.Code, Reason: auth.Truncate(d.Reason, maxCloseReason)}
}

// connectViaProxy asks the connect proxy who the client is (or, after a
// verified token, whether it may connect). It returns the identity and the
// result data for the connect reply, or the protocol outcome.
func (s *session) connectViaProxy(req *ConnectRequest, verified *auth.Identity) (*auth.Identity, json.RawMessage, *Error, *Disconnect) {
	h := s.h
	preq := &proxy.ConnectRequest{Base: s.proxyBase(), Name: req.Name, Version: req.Version, Data: req.Data}
	if verified != nil {
		preq.User, preq.Meta = verified.User, verified.Meta
	}
	preq.Client = "" // the client id is assigned after the connect is accepted
	for ch := range req.Subs {
		preq.Channels = append(preq.Channels, ch)
	}
	ctx, cancel := proxyCtx(h.proxies.Connect)
	defer cancel()
	// After a verified token the user comes from the token, so the result may omit it.
	allowAnon := h.verifier.Policy().AllowAnonymous || verified != nil
	res, perr, pdis, reason := h.proxies.Connect.Connect(ctx, preq, s.proxyHeaders(req.Headers), allowAnon)
	switch {
	case reason != nil:
		s.refused("connection refused by the connect proxy", reason, "")
		return nil, nil, s.proxyRefusal(reason, ErrUnauthorized), nil
	case pdis != nil:
		s.log().Info("connect proxy disconnected the client", "code", pdis.Code)
		return nil, nil, nil, disconnectFrom(pdis)
	case perr != nil:
		s.log().Info("connect proxy refused the client", "code", perr.Code)
		return nil, nil, replyErrorFrom(perr), nil
	}
	ident := &auth.Identity{User: res.User, Info: compact(res.Info), Meta: compact(res.Meta), Source: "proxy"}
	if res.ExpireAt > 0 {
		ident.ExpireAt = time.Unix(res.ExpireAt, 0)
	}
	if verified != nil {
		// The token says who the client is; the backend may not change it.
		if res.User != "" && res.User != verified.User {
			r := &auth.Reason{Code: auth.ProxyBadResponse,
				Detail: fmt.Sprintf("connect proxy result user %q differs from the token's user %q", res.User, verified.User),
				Hint:   "after a verified token the connect proxy may omit user or repeat it, not change it"}
			s.refused("connection refused by the connect proxy", r, "")
			return nil, nil, ErrUnauthorized.With(s.h.shown(r)), nil
		}
		ident.User, ident.Source, ident.KeyFingerprint = verified.User, verified.Source, verified.KeyFingerprint
		ident.JTI, ident.IssuedAt = verified.JTI, verified.IssuedAt
		if ident.Info == nil {
			ident.Info = verified.Info
		}
		if ident.Meta == nil {
			ident.Meta = verified.Meta
		}
		if ident.ExpireAt.IsZero() {
			ident.ExpireAt = verified.ExpireAt
		}
		ident.Channels = append(ident.Channels, verified.Channels...)
		if len(verified.Subs) > 0 {
			if ident.Subs == nil {
				ident.Subs = map[string]auth.SubOptions{}
			}
			for ch, o := range verified.Subs {
				ident.Subs[ch] = o
			}
		}
	}
	ident.Channels = append(ident.Channels, res.Channels...)
	if len(res.Subs) > 0 {
		ident.Subs = map[string]auth.SubOptions{}
		for ch, o := range res.Subs {
			opts := auth.SubOptions{Info: compact(o.Info), Data: compact(o.Data)}
			if len(o.Override) > 0 {
				ov, err := auth.DecodeOverride(o.Override)
				if err != nil {
					r := &auth.Reason{Code: auth.ProxyBadResponse, Detail: "result.subs[" + ch + "].override: " + err.Error()}
					s.refused("connection refused by the connect proxy", r, "")
					return nil, nil, ErrUnauthorized.With(s.h.shown(r)), nil
				}
				opts.Override = ov
			}
			ident.Subs[ch] = opts
			if !slices.Contains(ident.Channels, ch) {
				ident.Channels = append(ident.Channels, ch)
			}
		}
	}
	if ident.User == "" {
		s.log().Info("connect proxy accepted an anonymous connection")
	}
	return ident, compact(res.Data), nil, nil
}

// compact normalizes raw JSON from a backend (no raw newlines on the wire).
func compact(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	out, err := hub.NormalizeData(raw)
	if err != nil {
		return nil
	}
	return out
}

// subscribeViaProxy asks the subscribe proxy. ok reports permission; when
// not ok, the error or disconnect is the answer.
func (s *session) subscribeViaProxy(px *proxy.Proxy, req *SubscribeRequest, p *subscribeParams) (*Error, *Disconnect) {
	ctx, cancel := proxyCtx(px)
	defer cancel()
	res, perr, pdis, reason := px.Subscribe(ctx, &proxy.SubscribeRequest{Base: s.proxyBase(), User: s.user,
		Channel: req.Channel, Data: req.Data, Meta: s.meta}, s.proxyHeaders(nil))
	switch {
	case reason != nil:
		s.refused("subscription refused by the subscribe proxy", reason, req.Channel)
		return s.proxyRefusal(reason, ErrPermissionDenied), nil
	case pdis != nil:
		return nil, disconnectFrom(pdis)
	case perr != nil:
		return replyErrorFrom(perr), nil
	}
	p.chanInfo, p.data = compact(res.Info), compact(res.Data)
	if len(res.Override) > 0 {
		if ov, err := auth.DecodeOverride(res.Override); err == nil {
			p.override = ov
		}
	}
	if res.ExpireAt > 0 {
		p.expireAt = time.Unix(res.ExpireAt, 0)
	}
	return nil, nil
}

// publishViaProxy asks the publish proxy; its result may replace the data.
func (s *session) publishViaProxy(px *proxy.Proxy, req *PublishRequest, data json.RawMessage) (json.RawMessage, bool, map[string]string, *Error, *Disconnect) {
	ctx, cancel := proxyCtx(px)
	defer cancel()
	res, perr, pdis, reason := px.Publish(ctx, &proxy.PublishRequest{Base: s.proxyBase(), User: s.user,
		Channel: req.Channel, Data: data, Meta: s.meta}, s.proxyHeaders(nil))
	switch {
	case reason != nil:
		s.refused("publication refused by the publish proxy", reason, req.Channel)
		return nil, false, nil, s.proxyRefusal(reason, ErrPermissionDenied), nil
	case pdis != nil:
		return nil, false, nil, nil, disconnectFrom(pdis)
	case perr != nil:
		return nil, false, nil, replyErrorFrom(perr), nil
	}
	if d := compact(res.Data); d != nil {
		data = d
	}
	return data, res.SkipHistory, res.Tags, nil, nil
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
	ctx, cancel := proxyCtx(px)
	defer cancel()
	res, perr, pdis, reason := px.RPC(ctx, &proxy.RPCRequest{Base: s.proxyBase(), User: s.user, Method: req.Method,
		Data: req.Data, Meta: s.meta}, s.proxyHeaders(nil))
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
		s.reply(&Reply{ID: id, RPC: &RPCResult{Data: compact(res.Data)}})
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
	user, meta, at, connected := s.user, s.meta, s.expireAt, s.state == stateConnected
	s.mu.Unlock()
	if !connected || at.IsZero() {
		return
	}
	ctx, cancel := proxyCtx(h.proxies.Refresh)
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
		s.closeWith(DisconnectExpired.With(s.h.shown(r)))
	default:
		s.mu.Lock()
		s.expireAt = time.Unix(res.ExpireAt, 0)
		if info := compact(res.Info); info != nil {
			s.info = info
		}
		if m := compact(res.Meta); m != nil {
			s.meta = m
		}
		s.armExpiryLocked()
		s.mu.Unlock()
	}
}

// subRefreshedByProxy reports whether the sub_refresh proxy extends sub.
func (s *session) subRefreshedByProxy(sub *subscription) bool {
	return s.h.proxies.SubRefresh != nil && sub.ns.SubRefreshProxyEnabled
}

// subRefreshViaProxy runs when a subscription with a sub_refresh proxy
// expires: the backend extends it or ends it (unsubscribe 2501, or 3006 for a
// server-side subscription); an unreachable backend is retried until the
// grace period (client.expired_sub_close_delay) is over.
func (s *session) subRefreshViaProxy(sub *subscription) {
	h := s.h
	s.mu.Lock()
	current := !s.closed && s.subs[sub.channel] == sub
	user, meta, at := s.user, s.meta, sub.expireAt
	s.mu.Unlock()
	if !current || at.IsZero() {
		return
	}
	ctx, cancel := proxyCtx(h.proxies.SubRefresh)
	defer cancel()
	res, reason := h.proxies.SubRefresh.SubRefresh(ctx, &proxy.SubRefreshRequest{Base: s.proxyBase(), User: user, Channel: sub.channel, Meta: meta}, s.proxyHeaders(nil))
	grace := h.cfg.Client.ExpiredSubCloseDelay.D()
	end := func(why string) {
		if sub.serverSide {
			s.closeWith(DisconnectSubExpired.With(why))
			return
		}
		s.removeSub(sub)
		s.enqueue(encodeReply(&Reply{Push: &Push{Channel: sub.channel,
			Unsubscribe: &UnsubscribePush{Code: UnsubscribeSubscriptionExpired, Reason: "subscription expired"}}}))
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
		s.log().Info("subscription ended by the sub_refresh proxy", "channel", sub.channel)
		end("expired")
	default:
		s.mu.Lock()
		sub.expireAt = time.Unix(res.ExpireAt, 0)
		if info := compact(res.Info); info != nil {
			sub.chanInfo = info
		}
		s.armSubExpiryLocked(sub)
		s.mu.Unlock()
	}
}

// connectViaCallout lets the signed auth callout decide the connection: who
// the client is, and its channel grants. It fails closed.
func (s *session) connectViaCallout(id uint32, req *ConnectRequest, areq *auth.Request) *Disconnect {
	h := s.h
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, reason := h.callout.Authorize(ctx, &callout.Request{RemoteAddr: s.remoteAddr, Transport: "websocket", Protocol: "json",
		Tokens: areq.Tokens, Header: s.upgradeHeaders})
	if reason != nil {
		s.refused("connection refused by the auth callout", reason, "")
		if reason.Code == auth.CalloutUnavailable {
			return s.connectFailed(id, ErrInternal.With(h.shown(reason)))
		}
		return s.connectFailed(id, ErrUnauthorized.With(h.shown(reason)))
	}
	if res.MaxConnections > 0 && res.User != "" {
		if n := len(h.hub.UserClients(res.User, "")); n >= res.MaxConnections {
			d := DisconnectConnectionLimit.With(fmt.Sprintf("user has %d connections, the callout allows %d", n, res.MaxConnections))
			return &d
		}
	}
	g := res.Grants
	s.mu.Lock()
	s.grants = &g
	s.mu.Unlock()
	ident := &auth.Identity{User: res.User, Info: compact(res.Info), Meta: compact(res.Meta), ExpireAt: res.ExpireAt, Source: "callout"}
	return s.accept(id, req, ident, nil)
}
