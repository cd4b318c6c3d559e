package auth

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// MercureClaimsMax caps each of mercure.publish and mercure.subscribe.
const MercureClaimsMax = 1000

// MercureGrant is what a verified Mercure token allows: the topic selectors
// of its mercure (or https://mercure.rocks/) claim.
type MercureGrant struct {
	Publish   []string
	Subscribe []string
	// HasClaim is false when the token carries neither mercure claim.
	HasClaim bool
	// Payload is the raw JSON of mercure.payload, nil when absent.
	Payload json.RawMessage
	// Expiry is exp; zero when the token has none (draft-07 does not require it).
	Expiry time.Time
	Source Source
	// KeyFingerprint names the key that verified the token.
	KeyFingerprint string
}

// mercureClaimNames lists the claims a grant is read from; the namespaced one
// wins (identity providers such as Auth0 keep only namespaced custom claims).
var mercureClaimNames = []string{"https://mercure.rocks/", "mercure"}

// VerifyMercure verifies a Mercure (draft-07) token with keys, the set of the
// role ("publisher" or "subscriber"): size, structure, pinned algorithm and
// signature as for every Herald token, then exp and nbf when present (neither
// is required unless rules say so), then the mercure claim. rules give the
// leeway for clock skew and the role's exp rules (nil: 5 s leeway, exp optional).
func (v *Verifier) VerifyMercure(token string, src Source, keys *KeySet, role string, rules *Rules) (*MercureGrant, *Reason) {
	if rules == nil {
		rules = &Rules{Leeway: 5 * time.Second}
	}
	if rules.Setting == "" {
		r := *rules
		r.Setting = "mercure." + role
		rules = &r
	}
	c, key, r := v.verify(token, src, keys)
	if r != nil {
		if r.Code == KeysNotConfigured {
			r.Detail = "a token was sent but no Mercure " + role + " key is configured"
			r.Hint = fmt.Sprintf("set mercure.%s.secret (HERALD_MERCURE_%s_SECRET) or mercure.%s.keys", role, strings.ToUpper(role), role)
		}
		return nil, r
	}
	for _, chk := range []func(*Verifier, claimSet, *Rules) *Reason{checkExp, checkNbf} {
		if r := chk(v, c, rules); r != nil {
			r.Source, r.KeyFingerprint = src, key.Fingerprint
			r.annotate(c, rules)
			if r.Code == TokenExpired {
				r.Hint = "give the client a fresh token (an EventSource reconnects with the same cookie or URL: renew the cookie before it expires)"
			}
			return nil, r
		}
	}
	g := &MercureGrant{Source: src, KeyFingerprint: key.Fingerprint}
	if exp, has, _ := c.num("exp"); has {
		g.Expiry = time.Unix(exp, 0)
	} else if iat, has, _ := c.num("iat"); has && rules.MaxLifetimeWithoutExp > 0 {
		g.Expiry = time.Unix(iat, 0).Add(rules.MaxLifetimeWithoutExp)
	}
	bad := func(format string, args ...any) (*MercureGrant, *Reason) {
		r := &Reason{Code: ClaimInvalid, Source: src, KeyFingerprint: key.Fingerprint, Detail: fmt.Sprintf(format, args...),
			Hint: `shape it as {"mercure":{"publish":["<selector>"],"subscribe":["<selector>"],"payload":{}}}`}
		r.annotate(c, rules)
		return nil, r
	}
	for _, name := range mercureClaimNames {
		raw, ok := c[name]
		if !ok || isNull(raw) {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return bad("claim %s is %s, not an object", name, jsonKind(raw))
		}
		g.HasClaim = true
		for _, f := range []struct {
			name string
			dst  *[]string
		}{{"publish", &g.Publish}, {"subscribe", &g.Subscribe}} {
			fr, ok := m[f.name]
			if !ok || isNull(fr) {
				continue
			}
			if err := json.Unmarshal(fr, f.dst); err != nil {
				return bad("claim %s.%s must be an array of strings, got %s", name, f.name, jsonKind(fr))
			}
			if len(*f.dst) > MercureClaimsMax {
				return bad("claim %s.%s has %d selectors, at most %d are allowed", name, f.name, len(*f.dst), MercureClaimsMax)
			}
		}
		if p, ok := m["payload"]; ok && !isNull(p) {
			g.Payload = compactJSON(p)
		}
		break
	}
	return g, nil
}
