package auth

import "strings"

// This file recognises a token or a secret in the wrong place: a token
// signed with a key Herald holds for another purpose (a Mercure subscriber
// token sent to publish, a connection token sent to Mercure), and a secret
// wrapped in quotes that became part of it.

// NamedKeySet is a key set and what its tokens are for, for messages
// ("a Mercure subscriber token").
type NamedKeySet struct {
	Name string
	Set  *KeySet
}

// Recognize returns the first of sets whose keys verify token's signature,
// and the key; ok is false when none does (or the token does not parse).
// Only the signature is checked: the question is who signed the token.
func (v *Verifier) Recognize(token string, sets []NamedKeySet) (name string, key *Key, ok bool) {
	if len(token) > MaxTokenSize {
		return "", nil, false
	}
	t, err := parseJWT(token)
	if err != nil {
		return "", nil, false
	}
	for _, ns := range sets {
		if ns.Set.Empty() {
			continue
		}
		tried, r := ns.Set.Lookup(t.alg, t.kid, v.now())
		if r != nil {
			continue
		}
		for _, k := range tried {
			if v.verifySignature(k, t) {
				return ns.Name, k, true
			}
		}
	}
	return "", nil, false
}

// Misplaced amends r, a refusal of a token at a door whose keys did not
// verify it, when another of Herald's key sets does: the token is then a
// token for something else, and r says which. It reports whether it did.
func (v *Verifier) Misplaced(r *Reason, token, wanted string, others []NamedKeySet) bool {
	switch r.Code {
	case SignatureInvalid, UnknownKid, AlgNotAllowed:
	case TokenMalformed:
		// A secret of another key set sent as the token.
		if strings.IndexByte(token, '.') >= 0 {
			return false
		}
		for _, ns := range others {
			if k := ns.Set.secretEqual(token); k != nil {
				r.Detail = "not a JWT: it is the HMAC secret of key " + k.Fingerprint + " itself (the key of " + ns.Name + "), not a token signed with it"
				return true
			}
		}
		return false
	default:
		return false
	}
	name, key, ok := v.Recognize(token, others)
	if !ok {
		return false
	}
	r.Detail = Truncate("this is "+name+" (signed with key "+key.Fingerprint+"), not "+wanted, 120)
	r.Hint = "send " + wanted + " here; " + name + " is for another purpose, and its key verifies only that"
	r.KeyFingerprint = key.Fingerprint
	return true
}

// QuotedSecret reports whether an HMAC key's secret starts and ends with the
// same quote character (' or "), which a shell or a .env file would have
// removed: the quotes are then part of the secret, and a signer that uses
// the secret without them signs with another key. It returns the
// fingerprint of the secret without the quotes.
func QuotedSecret(k *Key) (unquotedFingerprint string, ok bool) {
	m, isBytes := k.Material.([]byte)
	if !isBytes || k.Family != FamilyHMAC || len(m) < 3 {
		return "", false
	}
	q := m[0]
	if (q != '\'' && q != '"') || m[len(m)-1] != q || strings.IndexByte(string(m[1:len(m)-1]), q) >= 0 {
		return "", false
	}
	return Fingerprint(m[1 : len(m)-1]), true
}
