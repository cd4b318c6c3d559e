package mercure

// This file holds what the hub asks of tokens and origins besides
// verification: the claim rules of each role, naming a token made for
// another purpose, and the CORS details of refusals.

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

// rules returns the claim rules of a role's tokens.
func (h *Handler) rules(role string) *auth.Rules { return RoleRules(h.cfg, role) }

// RoleRules returns the claim rules of the tokens of a Mercure role
// ("publisher" or "subscriber"): the leeway and the role's exp rules.
func RoleRules(m *config.Mercure, role string) *auth.Rules {
	k := &m.Publisher
	if role == "subscriber" {
		k = &m.Subscriber
	}
	return &auth.Rules{Leeway: m.Leeway.D(), RequireExp: k.RequireExp,
		MaxLifetimeWithoutExp: k.MaxLifetimeWithoutExp.D(), Setting: "mercure." + role}
}

// misplaced amends a refusal of tok at the role's door when another of
// Herald's key sets verifies it: a subscriber token sent to publish, a
// publisher token sent to subscribe, a connection token sent to either.
func (h *Handler) misplaced(r *auth.Reason, tok, role string) {
	other := auth.NamedKeySet{Name: "a Mercure subscriber token", Set: h.subKeys.Load()}
	if role == "subscriber" {
		other = auth.NamedKeySet{Name: "a Mercure publisher token", Set: h.pubKeys.Load()}
	}
	h.verifier.Misplaced(r, tok, "a Mercure "+role+" token", []auth.NamedKeySet{other,
		{Name: "a connection token (client.token keys)", Set: h.verifier.Keys()}})
}

// exposedHeaders are the response headers a cross-origin page may read: the
// stream's Last-Event-ID, and the RFC 6750 challenge that says why a request
// was refused.
const exposedHeaders = "Last-Event-ID, WWW-Authenticate"

// sameOrigin reports whether origin is the hub's own (the host the request
// was sent to): such a request is not cross-origin, whatever cors_origins say.
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// refuseExtraBytes answers a subscription request that was followed by more
// bytes (pipelining, or a stray line ending) with 400, and closes nc.
func refuseExtraBytes(nc net.Conn) {
	const body = "a subscription request must not be followed by more data on its connection\n"
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = fmt.Fprintf(nc, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	_ = nc.Close()
}
