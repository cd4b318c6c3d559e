package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// Family is a group of JWT algorithms that share one kind of key. A key
// never verifies a token of another family: an HMAC secret never verifies an
// RS256 token and a public key never verifies an HS256 token.
type Family string

// Key families.
const (
	FamilyHMAC  Family = "HMAC"
	FamilyRSA   Family = "RSA"   // RS256/384/512 and PS256/384/512
	FamilyEC    Family = "EC"    // ES256/384/512
	FamilyEdDSA Family = "EdDSA" // Ed25519
)

// familyAlgs lists the algorithms a key of each family may verify.
var familyAlgs = map[Family][]string{
	FamilyHMAC:  {"HS256", "HS384", "HS512"},
	FamilyRSA:   {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
	FamilyEC:    {"ES256", "ES384", "ES512"},
	FamilyEdDSA: {"EdDSA"},
}

// AlgFamily returns the family of a JWT algorithm name, or "" when Herald
// does not support it ("none" included).
func AlgFamily(alg string) Family {
	for f, algs := range familyAlgs {
		for _, a := range algs {
			if a == alg {
				return f
			}
		}
	}
	return ""
}

// Key is one verification key, pinned to the algorithms it may verify.
type Key struct {
	ID     string   // kid; "" matches any kid
	Family Family   // kind of key material
	Algs   []string // pinned algorithms, all within Family
	// Material is []byte for HMAC, *rsa.PublicKey, *ecdsa.PublicKey or
	// ed25519.PublicKey for the others.
	Material any
	// Fingerprint is the first 8 hex digits of the SHA-256 of the key
	// material (the secret's bytes, or the public key's DER SubjectPublicKeyInfo).
	Fingerprint string
	// Origin says where the key came from, for logs: "inline", "env NAME",
	// "file PATH", "jwks URL".
	Origin string
	// NotAfter, when set, is when the key stops verifying (a previous HMAC
	// secret kept during rotation).
	NotAfter time.Time
}

// String describes the key without its material.
func (k *Key) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", strings.Join(k.Algs, "/"), k.Fingerprint)
	if k.ID != "" {
		fmt.Fprintf(&b, " kid=%s", k.ID)
	}
	if k.Origin != "" {
		fmt.Fprintf(&b, " from %s", k.Origin)
	}
	if !k.NotAfter.IsZero() {
		fmt.Fprintf(&b, " until %s", k.NotAfter.UTC().Format(time.RFC3339))
	}
	return b.String()
}

func (k *Key) allows(alg string) bool {
	for _, a := range k.Algs {
		if a == alg {
			return true
		}
	}
	return false
}

// Fingerprint returns the short, non-reversible name of key material: the
// first 8 hex digits of its SHA-256. For an HMAC secret the same value is
// given by `printf %s "$SECRET" | sha256sum | cut -c1-8`.
func Fingerprint(material []byte) string {
	sum := sha256.Sum256(material)
	return hex.EncodeToString(sum[:4])
}

// NewHMACKey returns an HMAC key that verifies HS256, HS384 and HS512 tokens
// (the Centrifugo-compatible client.token.hmac_secret_key).
func NewHMACKey(secret string) (*Key, error) {
	if secret == "" {
		return nil, fmt.Errorf("empty HMAC secret")
	}
	return &Key{Family: FamilyHMAC, Algs: familyAlgs[FamilyHMAC], Material: []byte(secret),
		Fingerprint: Fingerprint([]byte(secret)), Origin: "inline"}, nil
}

// KeyProvider supplies keys that can change on their own, such as a JWKS
// endpoint. Lookup may fetch (at most once per interval) when kid is unknown.
type KeyProvider interface {
	// Keys returns the keys currently known.
	Keys() []*Key
	// Lookup returns the keys for kid ("" = all), fetching again when kid is
	// unknown and the last fetch is old enough. err is set when the provider
	// has never managed to load any key.
	Lookup(kid string) (keys []*Key, err error)
	// Name identifies the provider in messages ("jwks https://...").
	Name() string
	// State tells when the provider fetched and will fetch again.
	State() FetchState
}

// KeySet is the set of keys tokens are verified with: static keys plus
// providers. It is immutable once built; a Verifier swaps whole sets
// atomically so keys can be reloaded without a restart.
type KeySet struct {
	keys      []*Key
	providers []KeyProvider
	typs      []string // accepted typ values, normalised; none = not checked
}

// NewKeySet builds a key set from static keys.
func NewKeySet(keys ...*Key) *KeySet { return &KeySet{keys: keys} }

func (s *KeySet) clone() *KeySet {
	if s == nil {
		return &KeySet{}
	}
	c := *s
	return &c
}

// WithProviders returns a copy of the set that also consults providers.
func (s *KeySet) WithProviders(p ...KeyProvider) *KeySet {
	c := s.clone()
	c.providers = append(append([]KeyProvider(nil), s.providers...), p...)
	return c
}

// Keys returns the static keys and the providers' current keys.
func (s *KeySet) Keys() []*Key {
	if s == nil {
		return nil
	}
	out := append([]*Key(nil), s.keys...)
	for _, p := range s.providers {
		out = append(out, p.Keys()...)
	}
	return out
}

// expired returns the static keys that would take alg and kid but whose
// NotAfter has passed.
func (s *KeySet) expired(alg, kid string, now time.Time) []*Key {
	var out []*Key
	for _, k := range s.keys {
		if k.allows(alg) && (kid == "" || k.ID == "" || k.ID == kid) && !k.NotAfter.IsZero() && now.After(k.NotAfter) {
			out = append(out, k)
		}
	}
	return out
}

// has reports whether k is one of the set's keys now (a cached verification
// counts only while its key is still in the set).
func (s *KeySet) has(k *Key) bool {
	for _, x := range s.keys {
		if x == k {
			return true
		}
	}
	for _, p := range s.providers {
		for _, x := range p.Keys() {
			if x == k {
				return true
			}
		}
	}
	return false
}

// Providers returns the set's providers.
func (s *KeySet) Providers() []KeyProvider {
	if s == nil {
		return nil
	}
	return s.providers
}

// Empty reports whether the set has no keys and no providers.
func (s *KeySet) Empty() bool { return s == nil || (len(s.keys) == 0 && len(s.providers) == 0) }

// Lookup returns the keys that may verify a token with this alg and kid at
// time now, or the Reason why there is none: alg_not_allowed (no key of the
// set accepts alg), unknown_kid (keys accept alg, but none has this kid),
// jwks_unavailable (a provider that would be asked has never loaded).
func (s *KeySet) Lookup(alg, kid string, now time.Time) ([]*Key, *Reason) {
	if AlgFamily(alg) == "" {
		shown := alg
		if shown == "" {
			shown = "(none)"
		}
		return nil, &Reason{Code: AlgNotAllowed,
			Detail: fmt.Sprintf("token alg %s is not supported; accepted: %s", shown, s.algs()),
			Hint:   "sign tokens with an algorithm of a configured key"}
	}
	var (
		out      []*Key
		algMatch bool
		expired  *Key
	)
	consider := func(keys []*Key) {
		for _, k := range keys {
			if !k.allows(alg) {
				continue
			}
			algMatch = true
			if kid != "" && k.ID != "" && k.ID != kid {
				continue
			}
			if !k.NotAfter.IsZero() && now.After(k.NotAfter) {
				expired = k
				continue
			}
			out = append(out, k)
		}
	}
	consider(s.keys)
	var providerErr error
	var providerName string
	fetched := make([]bool, len(s.providers))
	for i, p := range s.providers {
		before := p.State().Last
		keys, err := p.Lookup(kid)
		fetched[i] = !p.State().Last.Equal(before)
		if err != nil && providerErr == nil {
			providerErr, providerName = err, p.Name()
		}
		consider(keys)
		// A provider's keys may accept alg only after a fetch; any key of
		// the provider with this family counts as an alg match.
		for _, k := range p.Keys() {
			if k.allows(alg) {
				algMatch = true
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	switch {
	case providerErr != nil:
		return nil, &Reason{Code: JWKSUnavailable,
			Detail: fmt.Sprintf("%s has no keys: %s", providerName, Truncate(providerErr.Error(), 80)),
			Hint:   "check that Herald can reach the JWKS endpoint and that it serves keys"}
	case !algMatch:
		return nil, &Reason{Code: AlgNotAllowed,
			Detail: fmt.Sprintf("token alg %s has no configured key; accepted: %s", alg, s.algs()),
			Hint:   "sign tokens with an algorithm of a configured key"}
	case expired != nil && kid == expired.ID:
		return nil, &Reason{Code: SignatureInvalid, KeyFingerprint: expired.Fingerprint,
			Detail: fmt.Sprintf("key %s stopped verifying at %s", expired.Fingerprint, expired.NotAfter.UTC().Format(time.RFC3339)),
			Hint:   "sign with the current secret; the previous one was valid only during rotation"}
	default:
		detail := fmt.Sprintf("no %s key has kid %q; known: %s", alg, Truncate(kid, 40), s.kids(alg))
		hint := "the token's kid must name a configured or published key"
		if note, h := s.fetchNote(fetched); note != "" {
			detail += "; " + note
			hint = h
		}
		return nil, &Reason{Code: UnknownKid, Detail: detail, Hint: hint}
	}
}

// fetchNote says, for an unknown kid, what the JWKS providers did: fetched
// just now (the kid is not published), or not yet allowed to fetch again,
// and when they will (a key published meanwhile is picked up then). It
// returns the note for the detail and the hint.
func (s *KeySet) fetchNote(fetched []bool) (note, hint string) {
	var notes, hints []string
	for i, p := range s.providers {
		st := p.State()
		switch {
		case fetched[i] && st.Err == nil:
			notes = append(notes, "fetched just now")
			hints = append(hints, "publish the key in "+p.Name()+", or fix the signer's kid")
		case fetched[i]:
			notes = append(notes, "fetch failed just now")
			hints = append(hints, p.Name()+" failed ("+Truncate(st.Err.Error(), 60)+"); fix it, or the signer's kid")
		case !st.Next.IsZero():
			in := st.Next.Sub(st.Now).Round(time.Second)
			notes = append(notes, fmt.Sprintf("fetched %s ago, next fetch in %s", st.Now.Sub(st.Last).Round(time.Second), in))
			hints = append(hints, fmt.Sprintf("%s is fetched at most once per %s for unknown kids; a key published since %s is picked up at %s (in %s), then this token is accepted",
				p.Name(), st.MinRefetch, st.Last.UTC().Format("15:04:05Z"), st.Next.UTC().Format("15:04:05Z"), in))
		}
	}
	if len(notes) == 0 {
		return "", ""
	}
	return "jwks " + strings.Join(notes, ", "), strings.Join(hints, "; ")
}

// algs lists every algorithm the set accepts, for messages.
func (s *KeySet) algs() string {
	seen := map[string]bool{}
	for _, k := range s.Keys() {
		for _, a := range k.Algs {
			seen[a] = true
		}
	}
	if len(seen) == 0 {
		return "none (no keys)"
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return strings.Join(out, "/")
}

// kids lists the kids of keys accepting alg, for messages.
func (s *KeySet) kids(alg string) string {
	var out []string
	for _, k := range s.Keys() {
		if k.allows(alg) && k.ID != "" {
			out = append(out, k.ID)
		}
	}
	if len(out) == 0 {
		return "(none)"
	}
	sort.Strings(out)
	return Truncate(strings.Join(out, ","), 60)
}

type keySetHolder struct{ p atomic.Pointer[KeySet] }
