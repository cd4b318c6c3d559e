package mercure

import (
	"github.com/heraldhub/herald/internal/auth"
)

// rules returns the claim rules of a role's tokens: the leeway and the
// role's exp rules.
func (h *Handler) rules(role string) *auth.Rules {
	k := &h.cfg.Publisher
	if role == "subscriber" {
		k = &h.cfg.Subscriber
	}
	return &auth.Rules{Leeway: h.cfg.Leeway.D(), RequireExp: k.RequireExp,
		MaxLifetimeWithoutExp: k.MaxLifetimeWithoutExp.D(), Setting: "mercure." + role}
}
