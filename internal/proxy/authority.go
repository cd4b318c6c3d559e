package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

// Set is the team's backends that decide for Herald. A nil proxy is off.
type Set struct {
	Connect    *Proxy
	Refresh    *Proxy
	Subscribe  *Proxy
	Publish    *Proxy
	SubRefresh *Proxy
	RPC        *Proxy
	// Named proxies, referred to by namespaces' *_proxy_name options.
	Named map[string]*Proxy
	// RPCNamespaces answer the methods "ns:..." of each namespace.
	RPCNamespaces map[string]*Proxy
	// Headers lists (in canonical form) every transport header any proxy
	// forwards; only these are kept from the upgrade request.
	Headers []string
}

// ForSubscribe returns the proxy that decides subscriptions in ns, or nil.
func (s *Set) ForSubscribe(ns *config.NamespaceOptions) *Proxy {
	if ns.SubscribeProxyName != "" {
		return s.Named[ns.SubscribeProxyName]
	}
	if ns.SubscribeProxyEnabled {
		return s.Subscribe
	}
	return nil
}

// ForPublish returns the proxy that decides client publications in ns, or nil.
func (s *Set) ForPublish(ns *config.NamespaceOptions) *Proxy {
	if ns.PublishProxyName != "" {
		return s.Named[ns.PublishProxyName]
	}
	if ns.PublishProxyEnabled {
		return s.Publish
	}
	return nil
}

// KeepHeaders copies the request's headers that some proxy forwards.
func (s *Set) KeepHeaders(r *http.Request) http.Header {
	if len(s.Headers) == 0 {
		return nil
	}
	out := http.Header{}
	for _, name := range s.Headers {
		if v := r.Header.Values(name); len(v) > 0 {
			out[name] = append([]string(nil), v...)
		}
	}
	return out
}

// Authorities returns the set's deciders for the auth engine.
func (s *Set) Authorities(allowAnonymous, afterToken bool) auth.Authorities {
	a := auth.Authorities{ProxyAfterToken: afterToken}
	if s.Connect != nil {
		a.ConnectProxy = &connectAuthority{p: s.Connect, allowAnonymous: allowAnonymous}
	}
	a.Subscribe = func(ns *config.NamespaceOptions) auth.ChannelAuthority {
		if p := s.ForSubscribe(ns); p != nil {
			return subscribeAuthority{p}
		}
		return nil
	}
	a.Publish = func(ns *config.NamespaceOptions) auth.ChannelAuthority {
		if p := s.ForPublish(ns); p != nil {
			return publishAuthority{p}
		}
		return nil
	}
	return a
}

// Compact normalizes raw JSON from a backend (no raw newlines on the wire);
// null, empty or invalid JSON gives nil.
func Compact(raw json.RawMessage) json.RawMessage { return auth.CompactJSON(raw) }

// CallContext bounds a call to p: the proxy enforces its own timeout; this
// only bounds a stuck call.
func CallContext(p *Proxy) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), p.Timeout()+time.Second)
}

// denied is the refusal of a backend that answered with its own error or
// disconnect: the client gets the backend's code and text.
func denied(what string, e *ErrorReply, d *DisconnectReply) *auth.Reason {
	if d != nil {
		return &auth.Reason{Code: auth.ProxyDenied, Detail: fmt.Sprintf("the %s proxy disconnected the client with %d %q", what, d.Code, auth.Truncate(d.Reason, 100)),
			Reply: &auth.BackendReply{Disconnect: true, Code: d.Code, Message: d.Reason}}
	}
	return &auth.Reason{Code: auth.ProxyDenied, Detail: fmt.Sprintf("the %s proxy refused with error %d %q", what, e.Code, auth.Truncate(e.Message, 100)),
		Reply: &auth.BackendReply{Code: e.Code, Message: e.Message, Temporary: e.Temporary}}
}

func connBase(c *auth.Conn) Base {
	return Base{Client: c.Client, Transport: c.Transport, Protocol: orDefault(c.Protocol, "json"), Encoding: orDefault(c.Encoding, "json")}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// connectAuthority asks the connect proxy who a client is (or, after a
// verified token, whether it may connect).
type connectAuthority struct {
	p              *Proxy
	allowAnonymous bool
}

func (a *connectAuthority) AuthorizeConnect(_ context.Context, req *auth.ConnectRequest, verified *auth.Identity) (*auth.Identity, *auth.Reason) {
	preq := &ConnectRequest{Base: Base{Client: req.Client, Transport: req.Transport, Protocol: orDefault(req.Protocol, "json"), Encoding: orDefault(req.Encoding, "json")},
		Name: req.Name, Version: req.Version, Data: req.Data, Channels: req.Channels}
	if verified != nil {
		preq.User, preq.Meta = verified.User, verified.Meta
	}
	ctx, cancel := CallContext(a.p)
	defer cancel()
	// After a verified token the user comes from the token, so the result may omit it.
	res, perr, pdis, reason := a.p.Connect(ctx, preq, Headers{Transport: req.Headers, Emulated: req.Emulated}, a.allowAnonymous || verified != nil)
	switch {
	case reason != nil:
		return nil, reason
	case pdis != nil || perr != nil:
		return nil, denied("connect", perr, pdis)
	}
	ident := &auth.Identity{User: res.User, Info: Compact(res.Info), Meta: Compact(res.Meta), Source: "proxy", ConnectData: Compact(res.Data)}
	if res.ExpireAt > 0 {
		ident.ExpireAt = time.Unix(res.ExpireAt, 0)
	}
	if verified != nil {
		// The token says who the client is; the backend may not change it.
		if res.User != "" && res.User != verified.User {
			return nil, &auth.Reason{Code: auth.ProxyBadResponse,
				Detail: fmt.Sprintf("connect proxy result user %q differs from the token's user %q", res.User, verified.User),
				Hint:   "after a verified token the connect proxy may omit user or repeat it, not change it"}
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
			ident.Subs = map[string]auth.SubOptions{}
			for ch, o := range verified.Subs {
				ident.Subs[ch] = o
			}
		}
	}
	ident.Channels = append(ident.Channels, res.Channels...)
	if len(res.Subs) > 0 {
		if ident.Subs == nil {
			ident.Subs = map[string]auth.SubOptions{}
		}
		for ch, o := range res.Subs {
			opts := auth.SubOptions{Info: Compact(o.Info), Data: Compact(o.Data)}
			if len(o.Override) > 0 {
				ov, err := auth.DecodeOverride(o.Override)
				if err != nil {
					return nil, &auth.Reason{Code: auth.ProxyBadResponse, Detail: "result.subs[" + ch + "].override: " + err.Error()}
				}
				opts.Override = ov
			}
			ident.Subs[ch] = opts
			if !slices.Contains(ident.Channels, ch) {
				ident.Channels = append(ident.Channels, ch)
			}
		}
	}
	return ident, nil
}

// subscribeAuthority asks the subscribe proxy about a subscription.
type subscribeAuthority struct{ p *Proxy }

func (a subscribeAuthority) AuthorizeChannel(_ context.Context, req *auth.ChannelRequest) (*auth.ChannelGrant, *auth.Reason) {
	ctx, cancel := CallContext(a.p)
	defer cancel()
	c := req.Conn
	res, perr, pdis, reason := a.p.Subscribe(ctx, &SubscribeRequest{Base: connBase(c), User: c.User,
		Channel: req.Channel, Data: req.Data, Meta: c.Meta}, Headers{Transport: c.Headers})
	switch {
	case reason != nil:
		return nil, reason
	case pdis != nil || perr != nil:
		return nil, denied("subscribe", perr, pdis)
	}
	g := &auth.ChannelGrant{Info: Compact(res.Info), Data: Compact(res.Data)}
	if len(res.Override) > 0 {
		if ov, err := auth.DecodeOverride(res.Override); err == nil {
			g.Override = ov
		}
	}
	if res.ExpireAt > 0 {
		g.ExpireAt = time.Unix(res.ExpireAt, 0)
	}
	return g, nil
}

// publishAuthority asks the publish proxy about a client publication; its
// answer decides, and may replace the data.
type publishAuthority struct{ p *Proxy }

func (a publishAuthority) AuthorizeChannel(_ context.Context, req *auth.ChannelRequest) (*auth.ChannelGrant, *auth.Reason) {
	ctx, cancel := CallContext(a.p)
	defer cancel()
	c := req.Conn
	res, perr, pdis, reason := a.p.Publish(ctx, &PublishRequest{Base: connBase(c), User: c.User,
		Channel: req.Channel, Data: req.Data, Meta: c.Meta}, Headers{Transport: c.Headers})
	switch {
	case reason != nil:
		return nil, reason
	case pdis != nil || perr != nil:
		return nil, denied("publish", perr, pdis)
	}
	return &auth.ChannelGrant{Data: Compact(res.Data), SkipHistory: res.SkipHistory, Tags: res.Tags}, nil
}
