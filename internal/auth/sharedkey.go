package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// SharedKey is a secret shared with a trusted caller: the server API key,
// the admin key. It is kept as a digest and compared in constant time, so
// neither the content nor the length of the key leaks through timing.
type SharedKey struct {
	sum [32]byte
	set bool
}

// NewSharedKey keeps key ("" means none is configured).
func NewSharedKey(key string) *SharedKey {
	return &SharedKey{sum: sha256.Sum256([]byte(key)), set: key != ""}
}

// Configured reports whether a key is set.
func (k *SharedKey) Configured() bool { return k.set }

// Matches reports, in constant time, whether presented is the key.
func (k *SharedKey) Matches(presented string) bool {
	sum := sha256.Sum256([]byte(presented))
	return k.set && subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1
}

// CheckAPIKey decides a server API request by its key: nil when it
// matches, else api_key_not_configured, api_key_missing or api_key_wrong.
// bearer says the request had an Authorization: Bearer header instead.
func (k *SharedKey) CheckAPIKey(presented string, bearer bool) *Reason {
	switch {
	case !k.set:
		return &Reason{Code: APIKeyNotConfigured, Detail: "the server API has no key configured, so it refuses every request",
			Hint: "set http_api.key (HERALD_HTTP_API_KEY or --api-key)"}
	case presented == "":
		hint := "send the key in the X-API-Key header or as Authorization: apikey <key>"
		if bearer {
			hint = "the API key goes in X-API-Key or Authorization: apikey <key>, not Authorization: Bearer"
		}
		return &Reason{Code: APIKeyMissing, Detail: "no API key in the request", Hint: hint}
	case !k.Matches(presented):
		return &Reason{Code: APIKeyWrong, Detail: "the API key does not match http_api.key",
			Hint: "check that the publisher and Herald use the same key"}
	}
	return nil
}

// CheckAdminKey decides an operator request by its admin key.
func (k *SharedKey) CheckAdminKey(presented string) *Reason {
	if !k.Matches(presented) {
		return &Reason{Code: AdminKeyWrong, Detail: "missing or wrong admin key",
			Hint: "send admin.key in the X-Admin-Key header or as Authorization: Bearer <key>"}
	}
	return nil
}

// AdminKeyOf returns the admin key an operator request presents: the
// X-Admin-Key header, or else an Authorization: Bearer header (what
// Prometheus sends with its authorization setting).
func AdminKeyOf(h http.Header) string {
	if k := h.Get("X-Admin-Key"); k != "" {
		return k
	}
	if scheme, k, ok := strings.Cut(h.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "bearer") {
		return strings.TrimSpace(k)
	}
	return ""
}
