package auth

import "encoding/json"

// ClaimOf returns the claim at path (a name, or a dotted path into nested
// objects) of a token that the Verifier has already accepted, for services
// that map more of a token than an Identity carries (the NATS callout's
// {{claim:NAME}} permissions). It does not verify the token.
func ClaimOf(token, path string) (json.RawMessage, bool) {
	t, err := parseJWT(token)
	if err != nil {
		return nil, false
	}
	return t.claims.path(path)
}
