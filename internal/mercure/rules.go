package mercure

import (
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
