package auth

import (
	"encoding/json"
	"fmt"
	"io"
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

// explainer collects the checks of one explanation.
type explainer struct {
	v      *Verifier
	checks []Check
}

func (e *explainer) pass(name, format string, args ...any) {
	e.checks = append(e.checks, Check{Name: name, OK: true, Detail: fmt.Sprintf(format, args...)})
}

func (e *explainer) fail(name string, r *Reason) {
	e.checks = append(e.checks, Check{Name: name, Code: r.Code, Detail: r.Detail, Hint: r.Hint})
}

func (e *explainer) skip(name, why string) {
	e.checks = append(e.checks, Check{Name: name, Skipped: true, Detail: why})
}

// head checks what comes before the claims: size, structure, crit, typ, key
// and signature. It returns the parsed token (nil when the claims cannot be
// read) and whether the signature was verified.
func (e *explainer) head(tok string, keys *KeySet) (*rawToken, bool) {
	if len(tok) > MaxTokenSize {
		e.fail("size", &Reason{Code: TokenTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(tok), MaxTokenSize)})
		return nil, false
	}
	e.pass("size", "%d bytes (limit %d)", len(tok), MaxTokenSize)
	t, err := parseJWT(tok)
	if err != nil {
		r := parseReason(err, tok, "", keys)
		name := "structure"
		if r.Code == CritNotUnderstood {
			name = "header"
		}
		e.fail(name, r)
		return nil, false
	}
	desc := "alg " + t.alg
	if t.kid != "" {
		desc += ", kid " + t.kid
	}
	typ, _ := t.typ()
	if typ != "" {
		desc += ", typ " + typ
	}
	for _, h := range t.ignored {
		desc += ", header " + h + " ignored"
	}
	e.pass("structure", "%s", desc)
	if len(keys.Types()) > 0 {
		if r := keys.checkTyp(t); r != nil {
			e.fail("typ", r)
		} else {
			e.pass("typ", "%q accepted", typ)
		}
	}
	if keys.Empty() {
		e.fail("key", &Reason{Code: KeysNotConfigured, Detail: "no verification key is configured for this kind of token"})
		e.skip("signature", "no key to check it with")
		return t, false
	}
	found, r := keys.Lookup(t.alg, t.kid, e.v.now())
	if r != nil {
		e.fail("key", r)
		e.skip("signature", "no key to check it with")
		return t, false
	}
	var names []string
	for _, k := range found {
		names = append(names, k.String())
	}
	e.pass("key", "%s", strings.Join(names, "; "))
	k, r := e.v.signedBy(t, found, keys, "")
	if r != nil {
		e.fail("signature", r)
		return t, false
	}
	e.pass("signature", "valid")
	if note := jwksNote(keys, k, t.kid); note != "" {
		e.pass("jwks", "%s", note)
	}
	return t, true
}

// Explain runs every check of the verification on token, independently where
// it can (claims are read even when the signature fails, and marked
// unverified), and says whether the token would be accepted.
func (v *Verifier) Explain(req ExplainRequest) ([]Check, bool) {
	e := &explainer{v: v}
	pass, fail, skip := e.pass, e.fail, e.skip
	keys, rules := v.Keys(), &v.policy.Rules
	if req.Subscription {
		keys, rules = v.SubscriptionKeys(), v.subRules()
	}
	tok := strings.TrimSpace(req.Token)
	t, verified := e.head(tok, keys)
	if t == nil {
		return e.checks, false
	}
	claims := t.claims
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
	user, r := claims.user(rules)
	switch {
	case r != nil:
		fail("user", r)
	case user == "" && !req.Subscription && v.policy.DisallowAnonymousTokens:
		fail("user", anonymousRefused(""))
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
	return e.checks, r == nil
}

// ExplainMercure explains a Mercure token of role ("publisher" or
// "subscriber") verified with keys and rules, as the hub would verify it.
func (v *Verifier) ExplainMercure(token, role string, keys *KeySet, rules *Rules) ([]Check, bool) {
	e := &explainer{v: v}
	tok := strings.TrimSpace(token)
	t, verified := e.head(tok, keys)
	if t == nil {
		return e.checks, false
	}
	suffix := ""
	if !verified {
		suffix = " (unverified claims)"
	}
	for _, chk := range []claimCheck{{"exp", checkExp}, {"nbf", checkNbf}} {
		if r := chk.fn(v, t.claims, rules); r != nil {
			e.fail(chk.name, r)
		} else {
			e.pass(chk.name, "ok%s", suffix)
		}
	}
	g, r := v.VerifyMercure(tok, "", keys, role, rules)
	switch {
	case r != nil && r.Code == ClaimInvalid:
		e.fail("mercure", r)
	case r != nil:
		// Refused before the claim (signature, exp): read the claim anyway.
		e.pass("mercure", "%s%s", mercureClaimText(t.claims), suffix)
	case !g.HasClaim:
		e.pass("mercure", "no mercure claim: the token may publish nothing and receives public updates only")
	default:
		e.pass("mercure", "publish %v, subscribe %v", g.Publish, g.Subscribe)
		if role == "publisher" && len(g.Publish) == 0 {
			e.fail("publish", &Reason{Code: TopicNotPermitted, Detail: "the token has no mercure.publish selectors, so it may publish nothing",
				Hint: `sign publisher tokens with {"mercure":{"publish":["<topic or URI template>"]}}`})
		}
	}
	return e.checks, r == nil && (role != "publisher" || len(g.Publish) > 0)
}

// mercureClaimText shows the raw mercure claim of unverified claims.
func mercureClaimText(c claimSet) string {
	for _, name := range mercureClaimNames {
		if raw, ok := c[name]; ok {
			return "claim " + name + ": " + Truncate(string(raw), 200)
		}
	}
	return "no mercure claim"
}

// HasMercureClaim reports whether token (not verified) carries a mercure
// claim, and whether it lists publish selectors: herald explain uses it to
// explain a Mercure token as one.
func HasMercureClaim(token string) (has, publish bool) {
	t, err := parseJWT(strings.TrimSpace(token))
	if err != nil {
		return false, false
	}
	for _, name := range mercureClaimNames {
		if raw, ok := t.claims[name]; ok {
			var m map[string]json.RawMessage
			_ = json.Unmarshal(raw, &m)
			_, publish = m["publish"]
			return true, publish
		}
	}
	return false, false
}

// jwksNote tells, for a token verified by a key of a JWKS endpoint, that
// this verdict rests on keys fetched now: a running server caches the
// endpoint, and until its cache has the kid it refuses the token with
// unknown_kid, naming when it fetches again.
func jwksNote(keys *KeySet, k *Key, kid string) string {
	for _, p := range keys.Providers() {
		if p.Name() != k.Origin {
			continue
		}
		st := p.State()
		id := "the key"
		if kid != "" {
			id = fmt.Sprintf("kid %q", kid)
		}
		return fmt.Sprintf("%s is in %s as fetched at %s; a running server whose copy predates it refuses this token (unknown_kid, naming its next fetch) until it fetches again, at most %s after a token names the kid",
			id, p.Name(), st.Last.UTC().Format(time.RFC3339), st.MinRefetch)
	}
	return ""
}

// WriteExplanation prints checks and the verdict as `herald explain` and
// the admin page's token explainer show them: one line per check (PASS,
// FAIL or skip, its name, the reason code and detail), the hint of a failed
// check under it, and the verdict.
func WriteExplanation(w io.Writer, checks []Check, ok bool) {
	for _, c := range checks {
		mark := "PASS"
		switch {
		case c.Skipped:
			mark = "skip"
		case !c.OK:
			mark = "FAIL"
		}
		line := c.Detail
		if c.Code != "" {
			line = string(c.Code) + ": " + c.Detail
		}
		fmt.Fprintf(w, "%s  %-10s %s\n", mark, c.Name, line)
		if c.Hint != "" && !c.OK {
			fmt.Fprintf(w, "      %-10s hint: %s\n", "", c.Hint)
		}
	}
	if ok {
		fmt.Fprintln(w, "verdict: accepted")
	} else {
		fmt.Fprintln(w, "verdict: refused")
	}
}
