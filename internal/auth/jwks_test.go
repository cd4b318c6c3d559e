package auth

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// jwksServer is a JWKS endpoint on 127.0.0.1 whose answer tests change.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	status   int
	body     string
	etag     string
	delay    time.Duration // answer after this (or when the client gives up)
	entered  chan struct{} // when set, receives one value per request
	release  chan struct{} // when set, requests wait for it to be closed
}

func newJWKSServer(t *testing.T, body string) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve)) // listens on 127.0.0.1
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mu.Lock()
	status, body, etag, delay, entered, release := s.status, s.body, s.etag, s.delay, s.entered, s.release
	s.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if release != nil {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func (s *jwksServer) set(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// logBuffer collects log lines safely.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestJWKS(t *testing.T, url string, o JWKSOptions) (*JWKS, *fakeClock, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	j := NewJWKS(url, o)
	clock := newFakeClock()
	j.now = clock.now
	return j, clock, logs
}

func kidsOf(keys []*Key) string {
	var out []string
	for _, k := range keys {
		out = append(out, k.ID+":"+strings.Join(k.Algs, "/"))
	}
	return strings.Join(out, ",")
}

func TestJWKSInitialLoad(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwksText(t,
		jwkOf(t, testRSA.Public(), map[string]any{"kid": "r1", "alg": "PS256", "use": "sig"}),
		jwkOf(t, testRSA2.Public(), map[string]any{"kid": "r2"}), // no alg: RS256
		jwkOf(t, testP384.Public(), map[string]any{"kid": "e1"}), // no alg: ES384 by curve
		jwkOf(t, testEd.Public(), map[string]any{"kid": "d1"}),   // no alg: EdDSA
		jwkOf(t, testP256.Public(), map[string]any{"kid": "enc", "use": "enc"}),
		jwkOf(t, []byte("published-secret"), map[string]any{"kid": "oct", "alg": "HS256"}),
		jwkOf(t, testP521, map[string]any{"kid": "priv"}),
	))
	j, _, logs := newTestJWKS(t, srv.URL, JWKSOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j.Start(ctx)

	if got := kidsOf(j.Keys()); got != "r1:PS256,r2:RS256,e1:ES384,d1:EdDSA" {
		t.Fatalf("keys %s", got)
	}
	if j.Name() != "jwks "+srv.URL {
		t.Fatalf("name %q", j.Name())
	}
	for _, tc := range []struct {
		kid, alg string
		priv     any
	}{{"r1", "PS256", testRSA}, {"r2", "RS256", testRSA2}, {"e1", "ES384", testP384}, {"d1", "EdDSA", testEd}} {
		keys, err := j.Lookup(tc.kid)
		if err != nil || len(keys) != 1 || keys[0].ID != tc.kid {
			t.Fatalf("Lookup(%s) = %v, %v", tc.kid, keys, err)
		}
		if keys[0].Origin != "jwks "+srv.URL {
			t.Fatalf("origin %q", keys[0].Origin)
		}
		mustVerify(t, keys[0], signWith(t, tc.alg, tc.priv, tc.kid))
	}
	if all, err := j.Lookup(""); err != nil || len(all) != 4 {
		t.Fatalf("Lookup(\"\") = %v, %v", all, err)
	}
	if srv.requests.Load() != 1 {
		t.Fatalf("%d requests, want 1", srv.requests.Load())
	}
	if l := logs.String(); !strings.Contains(l, "publishes a private key") || !strings.Contains(l, `kid \"priv\"`) {
		t.Fatalf("no warning about the private key:\n%s", l)
	}
	if l := logs.String(); strings.Contains(l, "published-secret") {
		t.Fatal("log shows a secret")
	}

	// Through a KeySet, as the verifier uses it.
	set := NewKeySet().WithProviders(j)
	keys, r := set.Lookup("ES384", "e1", time.Now())
	if r != nil || len(keys) != 1 {
		t.Fatalf("KeySet.Lookup: %v %v", keys, r)
	}
	if _, r := set.Lookup("HS256", "oct", time.Now()); r == nil || r.Code != AlgNotAllowed {
		t.Fatalf("an oct key from a JWKS URL must not verify: %v", r)
	}
}

func TestJWKSAlgOption(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwksText(t,
		jwkOf(t, testRSA.Public(), map[string]any{"kid": "a"}),
		jwkOf(t, testRSA2.Public(), map[string]any{"kid": "b", "alg": "RS256"}),
		jwkOf(t, testP256.Public(), map[string]any{"kid": "c"}),
	))
	j, _, _ := newTestJWKS(t, srv.URL, JWKSOptions{Alg: "PS384"})
	if err := j.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := kidsOf(j.Keys()); got != "a:PS384" {
		t.Fatalf("keys %s", got)
	}
	mustVerify(t, j.Keys()[0], signWith(t, "PS384", testRSA, "a"))

	j, _, _ = newTestJWKS(t, srv.URL, JWKSOptions{Alg: "HS256"})
	if err := j.Refresh(context.Background()); err == nil || err.Error() != "alg HS256 cannot be used with a JWKS URL: HMAC secrets are never fetched" {
		t.Fatalf("err %v", err)
	}
	if err := ValidateJWKS("ftp://example.invalid/keys", JWKSOptions{}); err == nil {
		t.Fatal("ftp URL accepted")
	}
	if err := ValidateJWKS(srv.URL, JWKSOptions{Alg: "ES256"}); err != nil {
		t.Fatal(err)
	}
}

func TestJWKSRotation(t *testing.T) {
	testKeys(t)
	oldSet := jwksText(t, jwkOf(t, testRSA.Public(), map[string]any{"kid": "old", "alg": "RS256"}))
	newSet := jwksText(t, jwkOf(t, testRSA2.Public(), map[string]any{"kid": "new", "alg": "RS256"}))
	srv := newJWKSServer(t, oldSet)
	var changes atomic.Int64
	j, clock, _ := newTestJWKS(t, srv.URL, JWKSOptions{MinRefetch: 30 * time.Second, OnChange: func() { changes.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j.Start(ctx)
	set := NewKeySet().WithProviders(j)
	oldTok, newTok := signWith(t, "RS256", testRSA, "old"), signWith(t, "RS256", testRSA2, "new")
	keys, r := set.Lookup("RS256", "old", clock.now())
	if r != nil {
		t.Fatal(r)
	}
	mustVerify(t, keys[0], oldTok)

	// The issuer rotates: the endpoint now serves only the new key.
	srv.set(http.StatusOK, newSet)
	// Within MinRefetch of the last fetch the new kid is not fetched yet.
	if _, r := set.Lookup("RS256", "new", clock.now()); r == nil || r.Code != UnknownKid {
		t.Fatalf("want unknown_kid before MinRefetch, got %v", r)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	clock.advance(30 * time.Second)
	keys, r = set.Lookup("RS256", "new", clock.now())
	if r != nil || len(keys) != 1 || keys[0].ID != "new" {
		t.Fatalf("after refetch: %v %v", keys, r)
	}
	mustVerify(t, keys[0], newTok)
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	if changes.Load() != 1 {
		t.Fatalf("OnChange called %d times, want 1", changes.Load())
	}
	// The old kid is gone after the refresh.
	if got := kidsOf(j.Keys()); got != "new:RS256" {
		t.Fatalf("keys %s", got)
	}
	if _, r := set.Lookup("RS256", "old", clock.now()); r == nil || r.Code != UnknownKid {
		t.Fatalf("old kid: %v", r)
	}

	// Refresh swaps back; an unchanged set does not call OnChange.
	srv.set(http.StatusOK, oldSet)
	if err := j.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := j.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kidsOf(j.Keys()); got != "old:RS256" || changes.Load() != 2 {
		t.Fatalf("keys %s, %d changes", got, changes.Load())
	}
}

func TestJWKSUnknownKidRefetchIsRateLimited(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwksText(t, jwkOf(t, testRSA.Public(), map[string]any{"kid": "k1", "alg": "RS256"})))
	j, clock, _ := newTestJWKS(t, srv.URL, JWKSOptions{MinRefetch: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j.Start(ctx)
	for i := 0; i < 100; i++ {
		keys, err := j.Lookup(fmt.Sprintf("attacker-%d", i))
		if err != nil || len(keys) != 0 {
			t.Fatalf("Lookup: %v %v", keys, err)
		}
		clock.advance(time.Second / 2) // 50s in all: still within MinRefetch
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("%d requests within MinRefetch, want 1", n)
	}
	clock.advance(10 * time.Second)
	for i := 0; i < 100; i++ {
		_, _ = j.Lookup("still-unknown")
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2 (one refetch after MinRefetch)", n)
	}
	// A known kid never fetches.
	clock.advance(time.Hour)
	for i := 0; i < 10; i++ {
		if keys, err := j.Lookup("k1"); err != nil || len(keys) != 1 {
			t.Fatalf("Lookup(k1) = %v, %v", keys, err)
		}
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestJWKSFailureKeepsLastGoodSet(t *testing.T) {
	testKeys(t)
	good := jwksText(t, jwkOf(t, testP256.Public(), map[string]any{"kid": "e1", "alg": "ES256"}))
	srv := newJWKSServer(t, good)
	j, clock, logs := newTestJWKS(t, srv.URL, JWKSOptions{Timeout: 200 * time.Millisecond, MinRefetch: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j.Start(ctx)
	tok := signWith(t, "ES256", testP256, "e1")

	long := strings.Repeat("x", 10000)
	cases := []struct {
		name   string
		status int
		body   string
		delay  time.Duration
		want   string
	}{
		{"500", http.StatusInternalServerError, "internal error " + long, 0, `HTTP 500: "internal error xxxxx`},
		{"404", http.StatusNotFound, "", 0, "HTTP 404"},
		{"bad JSON", http.StatusOK, `<html>oops ` + long, 0, `not a JWKS: invalid JSON at byte 1; response starts "<html>oops xxx`},
		{"not a set", http.StatusOK, `{"kty":"EC"}`, 0, `not a JWKS: no "keys" list; response starts "{\"kty\":\"EC\"}"`},
		{"no usable key", http.StatusOK, jwksText(t, jwkOf(t, testP256.Public(), map[string]any{"kid": "x", "use": "enc"})), 0,
			`no usable key: JWK 0 (kid "x"): JWK is an encryption key (use enc)`},
		{"empty set", http.StatusOK, `{"keys":[]}`, 0, "no usable key: it has no keys"},
		{"timeout", http.StatusOK, good, 2 * time.Second, "no answer within 200ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv.set(tc.status, tc.body)
			srv.mu.Lock()
			srv.delay = tc.delay
			srv.mu.Unlock()
			defer func() {
				srv.mu.Lock()
				srv.delay = 0
				srv.mu.Unlock()
			}()
			start := time.Now()
			err := j.Refresh(ctx)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err %v, want %s...", err, tc.want)
			}
			if time.Since(start) > time.Second {
				t.Fatalf("the fetch took %s; Timeout not enforced", time.Since(start))
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error too long (%d bytes)", len(err.Error()))
			}
			// The last good set still verifies.
			if got := kidsOf(j.Keys()); got != "e1:ES256" {
				t.Fatalf("keys %s", got)
			}
			clock.advance(time.Hour) // an unknown kid refetches (and fails) too
			keys, err := j.Lookup("e1")
			if err != nil || len(keys) != 1 {
				t.Fatalf("Lookup: %v %v", keys, err)
			}
			mustVerify(t, keys[0], tok)
			if _, err := j.Lookup("other"); err != nil {
				t.Fatalf("Lookup of an unknown kid after a failure: %v", err)
			}
		})
	}
	l := logs.String()
	if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "url="+srv.URL) || !strings.Contains(l, "HTTP 500") {
		t.Fatalf("no WARN with url and reason:\n%s", l)
	}
	for _, line := range strings.Split(l, "\n") {
		if len(line) > 1000 {
			t.Fatalf("log line of %d bytes (response body logged?)", len(line))
		}
	}
	// The endpoint recovers.
	srv.set(http.StatusOK, jwksText(t, jwkOf(t, testEd.Public(), map[string]any{"kid": "d1"})))
	if err := j.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kidsOf(j.Keys()); got != "d1:EdDSA" {
		t.Fatalf("keys %s", got)
	}
}

func TestJWKSNeverLoaded(t *testing.T) {
	srv := newJWKSServer(t, "down")
	srv.set(http.StatusServiceUnavailable, "down")
	j, clock, logs := newTestJWKS(t, srv.URL, JWKSOptions{MinRefetch: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j.Start(ctx) // not fatal
	if len(j.Keys()) != 0 {
		t.Fatal("keys without a load")
	}
	_, err := j.Lookup("k1")
	if err == nil || err.Error() != `no keys loaded yet: HTTP 503: "down"` {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("no warning:\n%s", logs.String())
	}
	// The KeySet reports jwks_unavailable.
	set := NewKeySet().WithProviders(j)
	if _, r := set.Lookup("RS256", "k1", time.Now()); r == nil || r.Code != JWKSUnavailable || !strings.Contains(r.Detail, "HTTP 503") {
		t.Fatalf("reason %v", r)
	}
	// Even a token without kid retries a never-loaded provider, at most once per MinRefetch.
	n := srv.requests.Load()
	_, _ = j.Lookup("")
	if srv.requests.Load() != n {
		t.Fatal("refetched within MinRefetch")
	}
	testKeys(t)
	srv.set(http.StatusOK, jwksText(t, jwkOf(t, testRSA.Public(), map[string]any{"kid": "k1", "alg": "RS256"})))
	clock.advance(time.Minute)
	if keys, err := j.Lookup(""); err != nil || len(keys) != 1 {
		t.Fatalf("after recovery: %v %v", keys, err)
	}

	// An address nobody listens on.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	j2, _, _ := newTestJWKS(t, url, JWKSOptions{})
	if _, err := j2.Lookup("k1"); err == nil || !strings.HasPrefix(err.Error(), "no keys loaded yet: request failed: ") {
		t.Fatalf("err %v", err)
	}
}

func TestJWKSConcurrentLookupsShareOneFetch(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwksText(t, jwkOf(t, testRSA.Public(), map[string]any{"kid": "k1", "alg": "RS256"})))
	srv.entered = make(chan struct{}, 100)
	srv.release = make(chan struct{})
	j, _, _ := newTestJWKS(t, srv.URL, JWKSOptions{Timeout: 5 * time.Second})

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys, err := j.Lookup("k1")
			if err == nil && len(keys) != 1 {
				err = fmt.Errorf("got %d keys", len(keys))
			}
			errs <- err
		}()
	}
	select {
	case <-srv.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the server")
	}
	time.Sleep(50 * time.Millisecond) // let the other Lookups pile up behind the fetch
	close(srv.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.requests.Load(); got != 1 {
		t.Fatalf("%d requests for %d concurrent Lookups, want 1", got, n)
	}
	// Concurrent Keys, Lookup and Refresh are race-free.
	var wg2 sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg2.Add(3)
		go func() { defer wg2.Done(); _ = j.Keys() }()
		go func() { defer wg2.Done(); _, _ = j.Lookup("k" + strconv.Itoa(i)) }()
		go func() { defer wg2.Done(); _ = j.Refresh(context.Background()) }()
	}
	wg2.Wait()
}

func TestJWKSBodyOverOneMiBRefused(t *testing.T) {
	testKeys(t)
	big := `{"pad":"` + strings.Repeat("a", 1<<20) + `","keys":[` +
		jsonText(t, jwkOf(t, testRSA.Public(), map[string]any{"kid": "k1", "alg": "RS256"})) + `]}`
	srv := newJWKSServer(t, big) // with Content-Length
	j, _, _ := newTestJWKS(t, srv.URL, JWKSOptions{})
	if err := j.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "the limit is 1 MiB") {
		t.Fatalf("err %v", err)
	}
	// Chunked, without Content-Length.
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(big); i += 64 << 10 {
			_, _ = w.Write([]byte(big[i:min(i+64<<10, len(big))]))
			w.(http.Flusher).Flush()
		}
	}))
	defer chunked.Close()
	j, _, _ = newTestJWKS(t, chunked.URL, JWKSOptions{})
	if err := j.Refresh(context.Background()); err == nil || err.Error() != "response is larger than 1 MiB" {
		t.Fatalf("err %v", err)
	}
	if len(j.Keys()) != 0 {
		t.Fatal("keys from an oversized body")
	}
}

func TestJWKSNotModified(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwksText(t, jwkOf(t, testRSA.Public(), map[string]any{"kid": "k1", "alg": "RS256"})))
	srv.etag = `"v1"`
	j, _, _ := newTestJWKS(t, srv.URL, JWKSOptions{})
	for i := 0; i < 3; i++ {
		if err := j.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := kidsOf(j.Keys()); got != "k1:RS256" || srv.requests.Load() != 3 {
		t.Fatalf("keys %s after %d requests", got, srv.requests.Load())
	}
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwksText(t, jwkOf(t, testRSA.Public(), map[string]any{"kid": "a", "alg": "RS256"})))
	j := NewJWKS(srv.URL, JWKSOptions{RefreshInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	j.Start(ctx)
	srv.set(http.StatusOK, jwksText(t, jwkOf(t, testRSA2.Public(), map[string]any{"kid": "b", "alg": "RS256"})))
	deadline := time.Now().Add(5 * time.Second)
	for kidsOf(j.Keys()) != "b:RS256" {
		if time.Now().After(deadline) {
			t.Fatalf("no background refresh; keys %s", kidsOf(j.Keys()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	time.Sleep(50 * time.Millisecond) // a fetch under way at cancel may still end
	n := srv.requests.Load()
	time.Sleep(100 * time.Millisecond)
	if srv.requests.Load() != n {
		t.Fatal("refresh goes on after ctx ended")
	}
}

func TestJWKSKnownKidDoesNotWaitForARefresh(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwksText(t, jwkOf(t, testRSA.Public(), map[string]any{"kid": "k1", "alg": "RS256"})))
	j, clock, _ := newTestJWKS(t, srv.URL, JWKSOptions{Timeout: 10 * time.Second})
	if err := j.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}, 10), make(chan struct{})
	srv.mu.Lock()
	srv.entered, srv.release = entered, release
	srv.mu.Unlock()
	refreshed := make(chan error, 1)
	go func() { refreshed <- j.Refresh(context.Background()) }()
	<-entered // the refresh is blocked at the server

	got := make(chan int, 1)
	go func() {
		keys, _ := j.Lookup("k1")
		got <- len(keys)
	}()
	select {
	case n := <-got:
		if n != 1 {
			t.Fatalf("%d keys", n)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a known kid waited for the refresh")
	}
	// An unknown kid joins the fetch under way, even within MinRefetch.
	clock.advance(time.Second)
	joined := make(chan struct{})
	go func() { _, _ = j.Lookup("k2"); close(joined) }()
	select {
	case <-joined:
		t.Fatal("an unknown kid did not wait for the fetch under way")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-joined
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}
