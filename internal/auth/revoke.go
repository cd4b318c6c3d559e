package auth

import (
	"fmt"
	"sync"
	"time"
)

// Revocations is the list of revoked tokens: by jti, and per user every token
// issued before a time. Entries are kept until the revoked tokens would have
// expired anyway (the until time given when revoking).
type Revocations struct {
	mu    sync.RWMutex
	jtis  map[string]time.Time // jti -> until
	users map[string]userRevocation
	now   func() time.Time
	// OnChange is called after every revocation, to check live connections.
	onChange []func()
}

type userRevocation struct {
	before time.Time // tokens issued before this are revoked
	until  time.Time
}

// NewRevocations returns an empty list.
func NewRevocations(now func() time.Time) *Revocations {
	return &Revocations{jtis: map[string]time.Time{}, users: map[string]userRevocation{}, now: now}
}

// OnChange registers f to run after each revocation.
func (r *Revocations) OnChange(f func()) {
	r.mu.Lock()
	r.onChange = append(r.onChange, f)
	r.mu.Unlock()
}

func (r *Revocations) changed() {
	r.mu.RLock()
	fs := append([]func(){}, r.onChange...)
	r.mu.RUnlock()
	for _, f := range fs {
		f()
	}
}

// RevokeToken revokes the token with this jti until the given time.
func (r *Revocations) RevokeToken(jti string, until time.Time) {
	r.mu.Lock()
	r.sweepLocked()
	r.jtis[jti] = until
	r.mu.Unlock()
	r.changed()
}

// RevokeUser revokes every token of user issued before the given time, until until.
func (r *Revocations) RevokeUser(user string, issuedBefore, until time.Time) {
	r.mu.Lock()
	r.sweepLocked()
	if old, ok := r.users[user]; ok && old.before.After(issuedBefore) {
		issuedBefore = old.before
	}
	r.users[user] = userRevocation{before: issuedBefore, until: until}
	r.mu.Unlock()
	r.changed()
}

func (r *Revocations) sweepLocked() {
	now := r.now()
	for k, until := range r.jtis {
		if now.After(until) {
			delete(r.jtis, k)
		}
	}
	for k, u := range r.users {
		if now.After(u.until) {
			delete(r.users, k)
		}
	}
}

// Len returns the number of entries (for the admin view).
func (r *Revocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.jtis) + len(r.users)
}

// Check returns token_revoked when the token is revoked. A token without iat
// cannot prove it was issued after a user's revocation, so it counts as before.
func (r *Revocations) Check(user, jti string, issuedAt time.Time) *Reason {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	if jti != "" {
		if until, ok := r.jtis[jti]; ok && !now.After(until) {
			return &Reason{Code: TokenRevoked, Detail: fmt.Sprintf("token jti %q was revoked", Truncate(jti, 40)),
				Hint: "the user must get a new token"}
		}
	}
	if u, ok := r.users[user]; ok && user != "" && !now.After(u.until) && (issuedAt.IsZero() || issuedAt.Before(u.before)) {
		return &Reason{Code: TokenRevoked,
			Detail: fmt.Sprintf("tokens of user %q issued before %s were revoked", Truncate(user, 40), u.before.UTC().Format(time.RFC3339)),
			Hint:   "the user must get a new token (with iat after the revocation)"}
	}
	return nil
}
