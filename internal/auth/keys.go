package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
)

// Family is a group of JWT algorithms that share one kind of key. A key is
// pinned to its family: an HMAC secret never verifies an RS256 token and a
// public key never verifies an HS256 token.
type Family string

// Key families.
const (
	FamilyHMAC Family = "HMAC"
)

// familyAlgs lists the algorithms a key of each family may verify.
var familyAlgs = map[Family][]string{
	FamilyHMAC: {"HS256", "HS384", "HS512"},
}

// Key is one verification key.
type Key struct {
	ID          string // optional kid
	Family      Family
	Algs        []string // algorithms this key may verify, within its family
	material    []byte
	Fingerprint string // first 8 hex digits of SHA-256 of the key material
}

// Fingerprint returns the short, non-reversible name of key material:
// the first 8 hex digits of its SHA-256. The same value is given by
// `printf %s "$SECRET" | sha256sum | cut -c1-8`.
func Fingerprint(material []byte) string {
	sum := sha256.Sum256(material)
	return hex.EncodeToString(sum[:4])
}

// NewHMACKey returns an HMAC key that verifies HS256, HS384 and HS512 tokens.
func NewHMACKey(secret string) (*Key, error) {
	if secret == "" {
		return nil, fmt.Errorf("empty HMAC secret")
	}
	return &Key{Family: FamilyHMAC, Algs: familyAlgs[FamilyHMAC], material: []byte(secret), Fingerprint: Fingerprint([]byte(secret))}, nil
}

// KeySet is the set of keys tokens are verified with. It is immutable; a
// Verifier swaps whole sets atomically so keys can be reloaded without a restart.
type KeySet struct {
	keys []*Key
}

// NewKeySet builds a key set.
func NewKeySet(keys ...*Key) *KeySet { return &KeySet{keys: keys} }

// Keys returns the keys of the set.
func (s *KeySet) Keys() []*Key { return s.keys }

// Empty reports whether the set has no keys.
func (s *KeySet) Empty() bool { return s == nil || len(s.keys) == 0 }

// forAlg returns the keys that may verify alg (and kid, when both name one).
func (s *KeySet) forAlg(alg, kid string) []*Key {
	var out []*Key
	for _, k := range s.keys {
		if kid != "" && k.ID != "" && k.ID != kid {
			continue
		}
		for _, a := range k.Algs {
			if a == alg {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// algs lists every algorithm the set accepts, for messages.
func (s *KeySet) algs() string {
	seen := map[string]bool{}
	var out []string
	for _, k := range s.keys {
		for _, a := range k.Algs {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return strings.Join(out, "/")
}

// fingerprints lists the fingerprints of the set, for messages.
func (s *KeySet) fingerprints() string {
	var out []string
	for _, k := range s.keys {
		out = append(out, k.Fingerprint)
	}
	return strings.Join(out, ",")
}

type keySetHolder struct{ p atomic.Pointer[KeySet] }
