package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// This file holds what is decided from a token's form and header before any
// key is tried: why it is not a JWT, the crit header, and the typ rule of a
// key set.

// parseReason explains why token could not be parsed. A token without any
// dot is most often a key or secret sent where a token signed with it
// belongs; when it is one of the set's own HMAC secrets, the detail says so
// (by fingerprint, never by value).
func parseReason(err error, token string, src Source, keys *KeySet) *Reason {
	var ce *critError
	if errors.As(err, &ce) {
		return &Reason{Code: CritNotUnderstood, Source: src, Detail: Truncate(ce.Error(), 100),
			Hint: "sign tokens without a crit header: Herald understands no JWS extension, and RFC 7515 requires refusing a token that needs one"}
	}
	var ue *utf8Error
	if errors.As(err, &ue) && ue.member != "" && strings.HasPrefix(err.Error(), "claims: ") {
		return &Reason{Code: ClaimInvalid, Source: src,
			Detail: "claim " + ue.Error() + "; clients would fail the connection that carries it",
			Hint:   "JSON text is UTF-8: encode the claim's text as UTF-8 when minting the token"}
	}
	r := &Reason{Code: TokenMalformed, Source: src, Detail: "not a valid JWT: " + Truncate(err.Error(), 80), Hint: malformedHint(src)}
	if strings.IndexByte(token, '.') < 0 {
		r.Detail = "not a JWT: it has no dots, so it looks like a key, a secret or an opaque token rather than a JWT"
		if k := keys.secretEqual(token); k != nil {
			r.Detail = "not a JWT: it is the HMAC secret of key " + k.Fingerprint + " itself, not a token signed with it"
		}
		r.Hint = "sign a JWT with the key and send the JWT (herald token or herald mercure-token mint one for development); never send the secret"
	}
	return r
}

// malformedHint says how to present a token in the place it came from.
func malformedHint(src Source) string {
	switch src {
	case SourceHeader:
		return "send Authorization: Bearer <JWT>, where the JWT is the token itself (header.payload.signature)"
	case SourceCookie, SourceQuery:
		return "put the bare JWT (header.payload.signature) in it, without quotes or a Bearer prefix"
	}
	return "send the compact JWT (header.payload.signature) without a Bearer prefix or quotes"
}

// secretEqual returns the HMAC key of the set whose secret is s, or nil.
// Every static secret is compared in constant time.
func (s *KeySet) secretEqual(v string) *Key {
	if s == nil {
		return nil
	}
	var found *Key
	for _, k := range s.keys {
		if m, ok := k.Material.([]byte); ok && k.Family == FamilyHMAC && subtle.ConstantTimeCompare(m, []byte(v)) == 1 {
			found = k
		}
	}
	return found
}

// WithTypes returns a copy of the set that accepts only tokens whose typ
// header is one of typs (explicit typing, RFC 8725 §3.11): a token meant for
// something else (an ID token, a token of another service signed by the same
// issuer) is then refused even though a key verifies it. Values compare
// without case and without an "application/" prefix. No typs: typ is not checked.
func (s *KeySet) WithTypes(typs ...string) *KeySet {
	c := s.clone()
	c.typs = nil
	for _, t := range typs {
		if t = normTyp(t); t != "" {
			c.typs = append(c.typs, t)
		}
	}
	return c
}

// Types returns the typ values the set accepts; none means typ is not checked.
func (s *KeySet) Types() []string {
	if s == nil {
		return nil
	}
	return s.typs
}

func normTyp(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	return strings.TrimPrefix(t, "application/")
}

// checkTyp applies the set's typ rule to a parsed token.
func (s *KeySet) checkTyp(t *rawToken) *Reason {
	if s == nil || len(s.typs) == 0 {
		return nil
	}
	accepted := strings.Join(s.typs, ", ")
	hint := fmt.Sprintf("mint tokens of this kind with \"typ\": %q in the header; a token made for something else must not be accepted here", s.typs[0])
	typ, ok := t.typ()
	switch {
	case !ok:
		return &Reason{Code: TypNotAllowed, Detail: "the typ header is not a string; accepted: " + accepted, Hint: hint}
	case typ == "":
		return &Reason{Code: TypNotAllowed, Detail: "the token has no typ header; accepted: " + accepted, Hint: hint}
	}
	got := normTyp(typ)
	for _, want := range s.typs {
		if got == want {
			return nil
		}
	}
	return &Reason{Code: TypNotAllowed, Detail: Truncate(fmt.Sprintf("typ %q is not accepted; accepted: %s", typ, accepted), 100), Hint: hint}
}
