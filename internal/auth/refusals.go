package auth

import (
	"sync"
	"time"
)

// Refusal is one refused attempt as the admin view shows it.
type Refusal struct {
	Seq        uint64    `json:"seq"` // 1 for the first refusal the log recorded, then one more each
	Time       time.Time `json:"time"`
	Code       Code      `json:"code"`
	Detail     string    `json:"detail"`
	Hint       string    `json:"hint,omitempty"`
	Source     Source    `json:"token_source,omitempty"`
	Transport  string    `json:"transport,omitempty"`
	RemoteAddr string    `json:"remote_addr,omitempty"`
	Alg        string    `json:"alg,omitempty"`
	Kid        string    `json:"kid,omitempty"`
	Key        string    `json:"key_fingerprint,omitempty"`
	Issuer     string    `json:"iss,omitempty"`
	Audience   string    `json:"aud,omitempty"`
	Subject    string    `json:"sub,omitempty"`
	Expiry     int64     `json:"exp,omitempty"`
	Channel    string    `json:"channel,omitempty"`
}

// RefusalLog keeps the most recent refusals, bounded, and tells its
// listeners (the metrics, the admin page's live feed) of each new one.
type RefusalLog struct {
	mu        sync.Mutex
	ring      []Refusal
	next      int
	full      bool
	listeners map[int]func(Refusal)
	nextID    int
	seq       uint64
}

// NewRefusalLog keeps the last n refusals.
func NewRefusalLog(n int) *RefusalLog { return &RefusalLog{ring: make([]Refusal, n)} }

// Add records a refusal.
func (l *RefusalLog) Add(r *Reason, transport, remoteAddr, channel string) {
	e := Refusal{Time: time.Now().UTC(), Code: r.Code, Detail: r.Detail, Hint: r.Hint, Source: r.Source,
		Transport: transport, RemoteAddr: remoteAddr, Alg: r.Alg, Kid: r.Kid, Key: r.KeyFingerprint,
		Issuer: r.Issuer, Audience: r.Audience, Subject: r.Subject, Expiry: r.Expiry, Channel: channel}
	l.mu.Lock()
	l.seq++
	e.Seq = l.seq
	l.ring[l.next] = e
	l.next = (l.next + 1) % len(l.ring)
	if l.next == 0 {
		l.full = true
	}
	var fs []func(Refusal)
	if len(l.listeners) > 0 {
		fs = make([]func(Refusal), 0, len(l.listeners))
		for _, f := range l.listeners {
			fs = append(fs, f)
		}
	}
	l.mu.Unlock()
	for _, f := range fs {
		f(e)
	}
}

// Listen calls f with every refusal added from now on, after it is
// recorded and outside the log's lock, on the goroutine that adds it: f
// must not block (hand the refusal to a buffered channel, or drop it).
// The returned function stops the calls.
func (l *RefusalLog) Listen(f func(Refusal)) (stop func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.listeners == nil {
		l.listeners = map[int]func(Refusal){}
	}
	id := l.nextID
	l.nextID++
	l.listeners[id] = f
	return func() {
		l.mu.Lock()
		delete(l.listeners, id)
		l.mu.Unlock()
	}
}

// Recent returns the recorded refusals, newest first.
func (l *RefusalLog) Recent() []Refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.next
	if l.full {
		n = len(l.ring)
	}
	out := make([]Refusal, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, l.ring[(l.next-i+len(l.ring))%len(l.ring)])
	}
	return out
}
