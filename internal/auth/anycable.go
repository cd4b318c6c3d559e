package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AnyCable's JWT identification: a connection token whose ext claim is a
// JSON string holding the Action Cable connection identifiers
// ({"ext":"{\"user_id\":\"42\"}","exp":…}). It is verified like every Herald
// token (pinned algorithms, every key type, rotation, JWKS, revocation), then
// by AnyCable's claim rules: ext is required, exp and nbf are checked when
// present, nothing else is.

// MaxIdentifiers bounds the connection identifiers of a token or an RPC answer.
const MaxIdentifiers = 16 << 10

// AnyCableRules say how a front door verifies AnyCable tokens.
type AnyCableRules struct {
	// Keys verify the tokens; nil = the connection keys (client.token).
	Keys *KeySet
	// KeysFrom names where the keys come from, for hints
	// ("actioncable.jwt.secret", "client.token").
	KeysFrom string
	// Param is the query parameter that carries the token (the header is
	// X-<param>), for hints.
	Param  string
	Leeway time.Duration
	// UserIdentifier names the identifier that is Herald's user (see UserOf).
	UserIdentifier string
	// Anonymous accepts a connection that presents no token; Enforce
	// refuses it even where the policy allows anonymous connections.
	Anonymous, Enforce bool
}

func (r *AnyCableRules) keys(v *Verifier) *KeySet {
	if r.Keys != nil {
		return r.Keys
	}
	return v.Keys()
}

// UserOf returns Herald's user for Action Cable connection identifiers: the
// value of the identifier named key; with key "" the only identifier's value
// when there is exactly one; otherwise the whole identifiers string.
func UserOf(identifiers, key string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(identifiers), &m) != nil {
		return identifiers
	}
	var raw json.RawMessage
	switch {
	case key != "":
		raw = m[key]
	case len(m) == 1:
		for _, v := range m {
			raw = v
		}
	}
	if len(raw) == 0 || isNull(raw) {
		return identifiers
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil && f == float64(int64(f)) {
		return strconv.FormatInt(int64(f), 10)
	}
	return string(compactJSON(raw))
}

// anyCableConnect decides a connection attempt by AnyCable's rules.
func (v *Verifier) anyCableConnect(req *Request) (*Identity, *Reason) {
	rules := req.AnyCable
	cand, r := v.pick(req)
	switch {
	case r != nil && r.Code != TokenMissing:
		return nil, r
	case cand != nil:
		return v.anyCableToken(cand.Token, cand.Source, rules)
	case rules.Enforce:
		return nil, &Reason{Code: TokenMissing,
			Detail: "no AnyCable token: the client sent none and actioncable.jwt.enforce is on",
			Hint:   fmt.Sprintf("put the token in the %s query parameter, the X-%s header or an anycable-token.<jwt> subprotocol (@anycable/web reads <meta name=\"cable-token\">)", rules.Param, rules.Param)}
	case r == nil || rules.Anonymous:
		return &Identity{}, nil // anonymous
	}
	r.Detail = "no credentials: the client sent no AnyCable token, no RPC is configured to identify it, and anonymous connections are off"
	r.Hint = fmt.Sprintf("send an AnyCable JWT in the %s query parameter, or set actioncable.rpc.endpoint (the app's connection class decides), or actioncable.anonymous", rules.Param)
	return nil, r
}

// anyCableToken verifies an AnyCable token.
func (v *Verifier) anyCableToken(token string, src Source, rules *AnyCableRules) (*Identity, *Reason) {
	claims, key, r := v.verify(token, src, rules.keys(v))
	if r != nil {
		anyCableHint(r, rules)
		return nil, r
	}
	fail := func(r *Reason) (*Identity, *Reason) {
		r.Source, r.KeyFingerprint = src, key.Fingerprint
		r.annotate(claims, nil)
		return nil, r
	}
	ids, r := anyCableIdentifiers(claims)
	if r != nil {
		return fail(r)
	}
	cr := &Rules{Leeway: rules.Leeway}
	for _, chk := range []func(*Verifier, claimSet, *Rules) *Reason{checkExp, checkNbf} {
		if r := chk(v, claims, cr); r != nil {
			if r.Code == TokenExpired {
				r.Hint = "@anycable/web fetches a fresh token on the token_expired disconnect (its tokenRefresher); mint tokens with a longer ttl if it happens often"
			}
			return fail(r)
		}
	}
	id := &Identity{User: UserOf(ids, rules.UserIdentifier), Identifiers: ids, Source: src, KeyFingerprint: key.Fingerprint}
	id.JTI, _, _ = claims.str("jti")
	if iat, ok, _ := claims.num("iat"); ok {
		id.IssuedAt = time.Unix(iat, 0)
	}
	if r := v.revoked.Check(id.User, id.JTI, id.IssuedAt); r != nil {
		return fail(r)
	}
	if exp, ok, _ := claims.num("exp"); ok && exp > 0 {
		id.ExpireAt = time.Unix(exp, 0)
		if !id.ExpireAt.After(v.now()) {
			id.ExpireAt = id.ExpireAt.Add(rules.Leeway)
		}
	}
	return id, nil
}

// anyCableIdentifiers reads the ext claim.
func anyCableIdentifiers(claims claimSet) (string, *Reason) {
	hint := `put the connection identifiers in ext as a JSON string: {"ext":"{\"user_id\":\"42\"}"} (AnyCable::JWT.encode and anycable-rails' helpers do)`
	raw, ok := claims["ext"]
	if !ok || isNull(raw) {
		r := &Reason{Code: ClaimInvalid, Detail: "AnyCable token has no ext claim (the connection identifiers)", Hint: hint}
		if _, sub := claims["sub"]; sub {
			r.Hint = "this looks like a Herald connection token (sub): it is for /connection/websocket; " + hint
		}
		return "", r
	}
	ids, err := unquote(raw)
	if err != nil || raw[0] != '"' {
		return "", &Reason{Code: ClaimInvalid, Detail: fmt.Sprintf("claim ext must be a JSON string holding the identifiers, got %s", jsonKind(raw)), Hint: hint}
	}
	if len(ids) > MaxIdentifiers {
		return "", &Reason{Code: ClaimInvalid, Detail: fmt.Sprintf("claim ext is %d bytes, limit %d", len(ids), MaxIdentifiers)}
	}
	if !json.Valid([]byte(ids)) || bytes.IndexAny([]byte(ids), "\r\n") >= 0 {
		return "", &Reason{Code: ClaimInvalid, Detail: "claim ext is not one line of JSON text", Hint: hint}
	}
	return ids, nil
}

// anyCableHint makes the hints of key problems speak of AnyCable's secrets.
func anyCableHint(r *Reason, rules *AnyCableRules) {
	from := rules.KeysFrom
	if from == "" {
		from = "client.token"
	}
	switch r.Code {
	case SignatureInvalid:
		r.Hint = fmt.Sprintf("the app signs AnyCable tokens with its AnyCable secret (jwt_secret, else secret: config/anycable.yml, ANYCABLE_JWT_SECRET or ANYCABLE_SECRET); Herald verifies with %s, fingerprint %s. Compute the app's: printf %%s \"$ANYCABLE_JWT_SECRET\" | sha256sum | cut -c1-8", from, r.KeyFingerprint)
	case KeysNotConfigured:
		r.Detail = "an AnyCable token was sent but no key verifies AnyCable tokens"
		r.Hint = "set actioncable.jwt.secret (the app's AnyCable jwt_secret), or actioncable.secret, or client.token.hmac_secret_key"
	}
}

// ExplainAnyCable explains an AnyCable token as the Action Cable door
// verifies it: every check of the head (size, structure, key, signature),
// exp and nbf, the identifiers of the ext claim and the user they give, and
// the verdict of the real path.
func (v *Verifier) ExplainAnyCable(token string, rules *AnyCableRules) ([]Check, bool) {
	e := &explainer{v: v}
	tok := strings.TrimSpace(token)
	t, verified := e.head(tok, rules.keys(v))
	for i := range e.checks {
		if c := &e.checks[i]; c.Code == SignatureInvalid || c.Code == KeysNotConfigured {
			r := &Reason{Code: c.Code, Detail: c.Detail, Hint: c.Hint, KeyFingerprint: keyFingerprints(rules.keys(v))}
			anyCableHint(r, rules)
			c.Detail, c.Hint = r.Detail, r.Hint
		}
	}
	if t == nil {
		return e.checks, false
	}
	claims := t.claims
	suffix := ""
	if !verified {
		suffix = " (unverified claims)"
	}
	cr := &Rules{Leeway: rules.Leeway}
	for _, chk := range []claimCheck{{"exp", checkExp}, {"nbf", checkNbf}} {
		if r := chk.fn(v, claims, cr); r != nil {
			if r.Code == TokenExpired {
				r.Hint = "@anycable/web fetches a fresh token on the token_expired disconnect; mint tokens with a longer ttl if it happens often"
			}
			e.fail(chk.name, r)
			continue
		}
		if exp, ok, _ := claims.num("exp"); ok && chk.name == "exp" {
			e.pass("exp", "expires %s (in %s)%s", time.Unix(exp, 0).UTC().Format(time.RFC3339), time.Until(time.Unix(exp, 0)).Truncate(time.Second), suffix)
		} else if chk.name == "exp" {
			e.pass("exp", "no exp: the token never expires%s", suffix)
		} else {
			e.pass(chk.name, "ok%s", suffix)
		}
	}
	ids, r := anyCableIdentifiers(claims)
	if r != nil {
		e.fail("ext", r)
	} else {
		e.pass("ext", "identifiers %s%s", Truncate(ids, 200), suffix)
		e.pass("user", "%q%s", UserOf(ids, rules.UserIdentifier), suffix)
	}
	_, r = v.anyCableToken(tok, SourceQuery, rules)
	return e.checks, r == nil
}

// keyFingerprints names the keys of a set, for hints.
func keyFingerprints(set *KeySet) string {
	var fps []string
	for _, k := range set.Keys() {
		fps = append(fps, k.Fingerprint)
	}
	return strings.Join(fps, ",")
}
