package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"github.com/heraldhub/herald/internal/config"
)

// ConnectRequest is a connection attempt as a front door presents it: where
// its tokens were found and what the team's backend may need to decide.
type ConnectRequest struct {
	Request
	// Client is the id the front door gave the connection (the connect
	// proxy receives it, as the proxies of its later calls do).
	Client string
	// Protocol and Encoding name the wire format ("json", "protobuf"), for
	// the connect proxy and the callout.
	Protocol string
	Encoding string
	// Name, Version and Data come from the client's connect message.
	Name    string
	Version string
	Data    json.RawMessage
	// Channels are the channels the client asks to recover on connect.
	Channels []string
	// Headers are the transport headers kept for the proxies and the callout.
	Headers http.Header
	// Emulated are headers the client sent inside its connect message
	// (untrusted; proxies forward those on their allowlist).
	Emulated map[string]string
	// OwnBackend says that the front door's protocol has a backend of its
	// own (AnyCable RPC): Backend, when not nil, decides connections that
	// present no token, in place of the connect proxy, which is not asked.
	OwnBackend bool
	Backend    ConnectAuthority
}

// ConnectAuthority decides connections for the engine: the team's connect
// proxy or its auth callout. proxy and callout implement it.
type ConnectAuthority interface {
	// AuthorizeConnect decides a connection. verified is the identity from
	// a token when the authority runs after one, nil otherwise.
	AuthorizeConnect(ctx context.Context, req *ConnectRequest, verified *Identity) (*Identity, *Reason)
}

// ChannelAuthority decides what a connection may do on a channel for the
// engine: the team's subscribe or publish proxy.
type ChannelAuthority interface {
	AuthorizeChannel(ctx context.Context, req *ChannelRequest) (*ChannelGrant, *Reason)
}

// Authorities are the deciders besides tokens, in the engine's order.
type Authorities struct {
	// Callout decides every connection alone when set (it sees the tokens).
	Callout ConnectAuthority
	// ConnectProxy decides connections that present no token, and with
	// ProxyAfterToken also those whose token was verified.
	ConnectProxy    ConnectAuthority
	ProxyAfterToken bool
	// Subscribe and Publish return the authority that decides a channel's
	// subscriptions or client publications, or nil.
	Subscribe func(ns *config.NamespaceOptions) ChannelAuthority
	Publish   func(ns *config.NamespaceOptions) ChannelAuthority
}

// Engine is the one auth decision every front door asks: who a connection
// is, and what it may do on a channel. It knows no wire protocol.
type Engine struct {
	v   *Verifier
	a   Authorities
	dev bool
}

// NewEngine returns an engine over a verifier and the authorities. In
// development mode every channel operation is allowed.
func NewEngine(v *Verifier, a Authorities, dev bool) *Engine {
	return &Engine{v: v, a: a, dev: dev}
}

// Verifier returns the token verifier.
func (e *Engine) Verifier() *Verifier { return e.v }

// HasConnectProxy reports whether a connect proxy decides connections.
func (e *Engine) HasConnectProxy() bool { return e.a.ConnectProxy != nil }

// Authenticate decides who a connection is. The order of authorities:
//
//  1. the auth callout, when configured, decides alone;
//  2. a token, verified with the key sets; a token that fails is refused
//     (never a fallback to anonymous, which would hide the problem);
//  3. the connect proxy, when no token was presented (and after a verified
//     token with ProxyAfterToken: then the token says who, the proxy whether);
//  4. anonymous, when the policy allows it.
func (e *Engine) Authenticate(ctx context.Context, req *ConnectRequest) (*Identity, *Reason) {
	if e.a.Callout != nil {
		return e.a.Callout.AuthorizeConnect(ctx, req, nil)
	}
	ident, reason := e.v.Connect(&req.Request)
	proxy, after := e.a.ConnectProxy, e.a.ProxyAfterToken
	if req.OwnBackend {
		proxy, after = req.Backend, false
	}
	noToken := (reason != nil && reason.Code == TokenMissing) || (reason == nil && ident.Source == "")
	afterToken := reason == nil && !noToken && after
	if proxy != nil && (noToken || afterToken) {
		if req.AnyCable != nil && req.AnyCable.Enforce {
			return ident, reason
		}
		var verified *Identity
		if afterToken {
			verified = ident
		}
		return proxy.AuthorizeConnect(ctx, req, verified)
	}
	return ident, reason
}

// CompactJSON normalizes raw JSON from a backend or a token (no raw newlines
// on the wire); null, empty or invalid JSON gives nil.
func CompactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil
	}
	return buf.Bytes()
}

// InvalidUTF8At returns the offset of the first byte of b that is not part
// of valid UTF-8, or -1. Text that goes out in WebSocket text frames must be
// valid UTF-8: clients fail the connection otherwise (RFC 6455).
func InvalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}
