package auth

import (
	"fmt"
	"strings"
	"time"
)

// Check is one step of verifying a token, as `herald explain` prints it.
type Check struct {
	Name    string
	OK      bool
	Skipped bool // not applicable, or not reachable
	Code    Code // when failed
	Detail  string
	Hint    string
}

// ExplainRequest names the token to explain and, for subscription tokens,
// what it must match.
type ExplainRequest struct {
	Token        string
	Subscription bool
	Channel      string
	User         string
	Client       string
}

// Explain runs every check of the verification on token, independently where
// it can (claims are read even when the signature fails, and marked
// unverified), and says whether the token would be accepted.
func (v *Verifier) Explain(req ExplainRequest) ([]Check, bool) {
	var checks []Check
	pass := func(name, format string, args ...any) {
		checks = append(checks, Check{Name: name, OK: true, Detail: fmt.Sprintf(format, args...)})
	}
	fail := func(name string, r *Reason) {
		checks = append(checks, Check{Name: name, Code: r.Code, Detail: r.Detail, Hint: r.Hint})
	}
	skip := func(name, why string) { checks = append(checks, Check{Name: name, Skipped: true, Detail: why}) }

	keys, rules := v.Keys(), &v.policy.Rules
	if req.Subscription {
		keys, rules = v.SubscriptionKeys(), v.subRules()
	}
	tok := strings.TrimSpace(req.Token)
	if len(tok) > MaxTokenSize {
		fail("size", &Reason{Code: TokenTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(tok), MaxTokenSize)})
		return checks, false
	}
	pass("size", "%d bytes (limit %d)", len(tok), MaxTokenSize)

	t, err := parseJWT(tok)
	if err != nil {
		r := parseReason(err, tok, "", keys)
		name := "structure"
		if r.Code == CritNotUnderstood {
			name = "header"
		}
		fail(name, r)
		return checks, false
	}
	claims, alg, kid := t.claims, t.alg, t.kid
	desc := "alg " + alg
	if kid != "" {
		desc += ", kid " + kid
	}
	typ, _ := t.typ()
	if typ != "" {
		desc += ", typ " + typ
	}
	for _, h := range t.ignored {
		desc += ", header " + h + " ignored"
	}
	pass("structure", "%s", desc)
	if len(keys.Types()) > 0 {
		if r := keys.checkTyp(t); r != nil {
			fail("typ", r)
		} else {
			pass("typ", "%q accepted", typ)
		}
	}

	verified := false
	if found, r := keys.Lookup(alg, kid, v.now()); r != nil {
		fail("key", r)
		skip("signature", "no key to check it with")
	} else {
		var names []string
		for _, k := range found {
			names = append(names, k.String())
		}
		pass("key", "%s", strings.Join(names, "; "))
		if _, r := v.signedBy(t, found, keys, ""); r != nil {
			fail("signature", r)
		} else {
			verified = true
			pass("signature", "valid")
		}
	}
	suffix := ""
	if !verified {
		suffix = " (unverified claims)"
	}
	for _, chk := range claimChecks {
		if r := chk.fn(v, claims, rules); r != nil {
			fail(chk.name, r)
			continue
		}
		switch chk.name {
		case "exp":
			if exp, ok, _ := claims.num("exp"); ok {
				pass("exp", "expires %s (in %s)%s", time.Unix(exp, 0).UTC().Format(time.RFC3339), time.Until(time.Unix(exp, 0)).Truncate(time.Second), suffix)
			} else {
				pass("exp", "no exp: the token never expires%s", suffix)
			}
		case "aud", "iss":
			if (chk.name == "aud" && len(rules.Audience) == 0) || (chk.name == "iss" && len(rules.Issuer) == 0) {
				skip(chk.name, "not checked (not configured)")
			} else {
				pass(chk.name, "accepted%s", suffix)
			}
		default:
			pass(chk.name, "ok%s", suffix)
		}
	}
	user, r := claims.user(rules, v.policy.DisallowAnonymousTokens)
	switch {
	case r != nil:
		fail("user", r)
	case req.Subscription && req.User != "" && user != req.User:
		fail("user", &Reason{Code: SubscriptionTokenMismatch,
			Detail: fmt.Sprintf("token user %q != connection user %q", user, req.User),
			Hint:   "the sub claim of a subscription token must equal the connection's user"})
	case user == "":
		pass("user", "anonymous (empty %s)%s", orDefault(rules.UserClaim, "sub"), suffix)
	default:
		pass("user", "%q from claim %s%s", user, orDefault(rules.UserClaim, "sub"), suffix)
	}
	if req.Subscription {
		ch, _, _ := claims.str("channel")
		switch {
		case ch == "":
			fail("channel", &Reason{Code: ClaimInvalid, Detail: "subscription token has no channel claim"})
		case req.Channel != "" && ch != req.Channel:
			fail("channel", &Reason{Code: SubscriptionTokenMismatch, Detail: fmt.Sprintf("token channel %q != %q", ch, req.Channel)})
		default:
			pass("channel", "%q", ch)
		}
	} else if _, ok := claims["channel"]; ok {
		fail("channel", &Reason{Code: ClaimInvalid, Detail: "connection JWT contains a channel claim (this looks like a subscription token)",
			Hint: "connect with a connection token; use subscription tokens only in subscribe"})
	}
	jti, _, _ := claims.str("jti")
	var iat time.Time
	if n, ok, _ := claims.num("iat"); ok {
		iat = time.Unix(n, 0)
	}
	if r := v.revoked.Check(user, jti, iat); r != nil {
		fail("revocation", r)
	} else {
		pass("revocation", "not revoked (on this server)")
	}

	// The verdict comes from the real verification path.
	if req.Subscription {
		u := req.User
		if u == "" {
			u = user
		}
		ch := req.Channel
		if ch == "" {
			ch, _, _ = claims.str("channel")
		}
		_, r = v.Subscription(SubscriptionRequest{Token: tok, Channel: ch, User: u, Client: req.Client})
	} else {
		_, r = v.connectToken(tok, SourceConnectCommand)
	}
	return checks, r == nil
}
