package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// cookieName holds the session id (random, never the key).
const cookieName = "herald_admin"

// maxSessions bounds the logins kept; past it the one that expires first goes.
const maxSessions = 1000

// sessions are the logged-in browsers: a random id in an HttpOnly,
// SameSite=Strict cookie, kept here by its SHA-256 with its expiry.
type sessions struct {
	mu  sync.Mutex
	m   map[[32]byte]time.Time
	ttl time.Duration
	now func() time.Time
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{m: map[[32]byte]time.Time{}, ttl: ttl, now: time.Now}
}

// create starts a session and returns its id.
func (s *sessions) create() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		var first [32]byte
		var firstExp time.Time
		for k, exp := range s.m {
			if !exp.After(now) {
				delete(s.m, k)
			} else if firstExp.IsZero() || exp.Before(firstExp) {
				first, firstExp = k, exp
			}
		}
		if len(s.m) >= maxSessions {
			delete(s.m, first)
		}
	}
	s.m[sha256.Sum256([]byte(id))] = now.Add(s.ttl)
	return id
}

// valid reports whether id is a live session.
func (s *sessions) valid(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.m[k]
	if ok && !exp.After(s.now()) {
		delete(s.m, k)
		return false
	}
	return ok
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.m, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

// loginLimit bounds failed logins per client address: a key cannot be
// guessed at network speed.
type loginLimit struct {
	mu     sync.Mutex
	fails  map[string][]time.Time
	max    int
	window time.Duration
	now    func() time.Time
}

func newLoginLimit() *loginLimit {
	return &loginLimit{fails: map[string][]time.Time{}, max: 10, window: time.Minute, now: time.Now}
}

// allowed reports whether addr may try again.
func (l *loginLimit) allowed(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(hostOf(addr))) < l.max
}

// failed records a failed login from addr.
func (l *loginLimit) failed(addr string) {
	h := hostOf(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) >= 10000 {
		l.fails = map[string][]time.Time{} // bounded: start over
	}
	l.fails[h] = append(l.recent(h), l.now())
}

// recent returns the failures of host within the window; l.mu is held.
func (l *loginLimit) recent(host string) []time.Time {
	cut := l.now().Add(-l.window)
	ts := l.fails[host]
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, host)
		return nil
	}
	l.fails[host] = ts
	return ts
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// sameOrigin checks a POST against cross-site requests (with the
// SameSite=Strict cookie): a browser sends Origin with every POST, and it
// must be this server's own. Requests without Origin (curl, scripts with the
// key) pass.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") == "" || r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false // includes "null"
	}
	return strings.EqualFold(u.Host, r.Host)
}

// safeNext returns where to go after logging in: a path of the admin page only.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/admin/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return "/admin/"
}
