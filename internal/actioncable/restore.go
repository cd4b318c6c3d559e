package actioncable

import (
	"sync"
	"time"
)

// Session restore (extended protocol): a client that reconnects with the sid
// of its previous session within actioncable.sessions_ttl gets that
// session's identity, subscriptions and states back without the app being
// asked, and re-subscribes nothing. Sessions are kept on the node that held
// them; a client that reconnects to another node identifies anew.

type savedSession struct {
	user, identifiers, credential, jti string
	issuedAt, expireAt                 time.Time
	cstate                             map[string]string
	rpcInterest                        bool
	subs                               []savedSub
	saved                              time.Time
}

type savedSub struct {
	id, channel       string
	streams           []string
	rpc               bool
	istate            map[string]string
	whisper, presence string
}

// sessionCache holds the sessions that can be restored.
type sessionCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[string]*savedSession
}

func newSessionCache(ttl time.Duration, max int) *sessionCache {
	return &sessionCache{ttl: ttl, max: max, entries: map[string]*savedSession{}}
}

// put keeps a session under its sid; at the bound, expired entries go first,
// then the new one is dropped.
func (c *sessionCache) put(sid string, e *savedSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if len(c.entries) >= c.max {
		for k, v := range c.entries {
			if now.Sub(v.saved) > c.ttl {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			return
		}
	}
	e.saved = now
	c.entries[sid] = e
}

// take returns the session saved under sid and forgets it: a sid restores once.
func (c *sessionCache) take(sid string) *savedSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[sid]
	delete(c.entries, sid)
	if e == nil || time.Since(e.saved) > c.ttl {
		return nil
	}
	return e
}

// save keeps the session for a restore, if its client may come back: the
// extended protocol, welcomed, and not sent away with a disconnect message.
func (s *session) save() {
	h := s.h
	if h.restore == nil || !s.ext || s.kicked.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected {
		return
	}
	e := &savedSession{user: s.user, identifiers: s.identifiers, credential: s.credential, jti: s.jti, issuedAt: s.issuedAt,
		expireAt: s.expireAt, cstate: s.cstate, rpcInterest: s.rpcInterest}
	for _, sub := range s.subs {
		e.subs = append(e.subs, savedSub{id: sub.id, channel: sub.channel, streams: append([]string(nil), sub.streams...),
			rpc: sub.rpc, istate: sub.istate, whisper: sub.whisper, presence: sub.presence})
	}
	h.restore.put(s.sid, e)
}
