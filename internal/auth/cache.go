package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCache remembers tokens whose asymmetric signature was verified, keyed
// by the token's SHA-256, so a reconnect storm with still-valid tokens does not
// pay RSA/ECDSA verification again. Entries never outlive the token's exp (or
// ten minutes), the cache is bounded, and it is cleared when keys change.
// Claims are still checked on every use; only the signature check is skipped.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	entries map[[32]byte]cacheEntry
}

type cacheEntry struct {
	claims  claimSet
	key     *Key
	expires time.Time
}

const cacheMaxAge = 10 * time.Minute

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: map[[32]byte]cacheEntry{}}
}

func (c *verifiedCache) get(token string, now time.Time) (claimSet, *Key, bool) {
	h := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[h]
	if !ok {
		return nil, nil, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, h)
		return nil, nil, false
	}
	return e.claims, e.key, true
}

func (c *verifiedCache) put(token string, claims claimSet, key *Key, now time.Time) {
	expires := now.Add(cacheMaxAge)
	if exp, ok, err := claims.num("exp"); ok && err == nil && time.Unix(exp, 0).Before(expires) {
		expires = time.Unix(exp, 0)
	}
	if !key.NotAfter.IsZero() && key.NotAfter.Before(expires) {
		expires = key.NotAfter
	}
	if !now.Before(expires) {
		return
	}
	h := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Drop expired entries, then (if still full) an arbitrary tenth.
		n := 0
		for k, e := range c.entries {
			if !now.Before(e.expires) || n < c.max/10 {
				delete(c.entries, k)
				n++
			}
		}
	}
	c.entries[h] = cacheEntry{claims: claims, key: key, expires: expires}
}

func (c *verifiedCache) clear() {
	c.mu.Lock()
	c.entries = map[[32]byte]cacheEntry{}
	c.mu.Unlock()
}

func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
