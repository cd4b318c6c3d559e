package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxJWKSBody is the largest JWKS response accepted.
const maxJWKSBody = 1 << 20

// JWKS defaults.
const (
	DefaultJWKSTimeout         = time.Second
	DefaultJWKSRefreshInterval = 10 * time.Minute
	DefaultJWKSMinRefetch      = 30 * time.Second
)

// JWKSOptions tune a JWKS provider. Zero values mean the defaults.
type JWKSOptions struct {
	Client          *http.Client  // nil = a client with Timeout
	Timeout         time.Duration // per request, default 1s
	RefreshInterval time.Duration // background refresh, default 10m
	MinRefetch      time.Duration // an unknown kid triggers a fetch at most once per this, default 30s
	// Alg, when set, pins every key to this alg (JWKs with another alg or
	// family are skipped). Otherwise a JWK's own alg is used, or its family's
	// default: RS256 for RSA, ES256/ES384/ES512 by curve, EdDSA for Ed25519.
	Alg    string
	Logger *slog.Logger // may be nil
	// OnChange, when set, is called after a fetch changed the key set (not
	// on the first load), outside any lock: a verifier that caches
	// verifications should forget them, since a key may have been withdrawn.
	OnChange func()
	// OnFetch, when set, is told the outcome of every fetch: ok,
	// not_modified or error (for the metrics). It must not block.
	OnFetch func(outcome string)
}

// ValidateJWKS checks a JWKS URL and its options, for configuration
// loading: NewJWKS itself never fails, its fetches would.
func ValidateJWKS(rawURL string, o JWKSOptions) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("jwks url %q is not an http(s) URL", Truncate(rawURL, 100))
	}
	if o.Alg != "" {
		if err := checkKeyAlg(o.Alg); err != nil {
			return err
		}
		if AlgFamily(o.Alg) == FamilyHMAC {
			return fmt.Errorf("alg %s cannot be used with a JWKS URL: HMAC secrets are never fetched", o.Alg)
		}
	}
	return nil
}

// JWKS is a KeyProvider that fetches keys from a JWKS URL. It keeps the
// last good set when a fetch fails, refreshes in the background, and
// fetches again (at most once per MinRefetch) when asked for an unknown kid.
// It is safe for concurrent use.
type JWKS struct {
	url    string
	o      JWKSOptions
	client *http.Client
	log    *slog.Logger
	now    func() time.Time // tests replace it before use

	mu          sync.Mutex
	keys        []*Key
	loaded      bool
	lastAttempt time.Time // end of the last fetch, good or bad
	lastErr     error
	etag        string
	flight      *jwksFlight // the fetch under way, if any
	ctx         context.Context
	retry       *time.Timer // a fetch for an unknown kid, due when MinRefetch has passed
	retryAt     time.Time
}

// jwksFlight is one fetch that concurrent callers share.
type jwksFlight struct {
	done chan struct{}
	err  error
}

// NewJWKS returns a provider for url. Call Start to load it; Lookup also
// loads it on demand.
func NewJWKS(url string, o JWKSOptions) *JWKS {
	if o.Timeout <= 0 {
		o.Timeout = DefaultJWKSTimeout
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultJWKSRefreshInterval
	}
	if o.MinRefetch <= 0 {
		o.MinRefetch = DefaultJWKSMinRefetch
	}
	j := &JWKS{url: url, o: o, client: o.Client, log: o.Logger, now: time.Now}
	if j.client == nil {
		j.client = &http.Client{Timeout: o.Timeout}
	}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	return j
}

// Name identifies the provider in messages.
func (j *JWKS) Name() string { return "jwks " + j.url }

// Keys returns the keys of the last good fetch.
func (j *JWKS) Keys() []*Key {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]*Key(nil), j.keys...)
}

// Start fetches the keys once (a failure is logged, not fatal: Lookup and
// the background refresh try again), then refreshes every RefreshInterval
// until ctx ends. After a failed fetch it retries sooner: MinRefetch,
// doubling up to RefreshInterval. Call it once.
func (j *JWKS) Start(ctx context.Context) {
	j.mu.Lock()
	j.ctx = ctx
	j.mu.Unlock()
	err := j.Refresh(ctx)
	go j.loop(ctx, err)
}

func (j *JWKS) loop(ctx context.Context, err error) {
	failures := 0
	for {
		delay := j.o.RefreshInterval
		if err != nil {
			failures++
			delay = j.o.MinRefetch
			for i := 1; i < failures && delay < j.o.RefreshInterval; i++ {
				delay *= 2
			}
			delay = min(delay, j.o.RefreshInterval)
		} else {
			failures = 0
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err = j.Refresh(ctx)
	}
}

// Refresh fetches the keys now (joining a fetch already under way). On
// failure the last good set is kept and the error returned.
func (j *JWKS) Refresh(ctx context.Context) error {
	return j.fetchIf(ctx, func() bool { return true })
}

// Lookup returns the keys that may carry kid (those with this kid and those
// without a kid; every key when kid is ""). When kid is unknown (or no set
// was ever loaded) and the last fetch ended at least MinRefetch ago, it
// fetches first, sharing the fetch with concurrent callers. It fails only
// when no set was ever loaded.
func (j *JWKS) Lookup(kid string) ([]*Key, error) {
	_ = j.fetchIf(context.Background(), func() bool {
		if j.loaded && (kid == "" || j.hasKid(kid)) {
			return false
		}
		// Join a fetch under way; start one only MinRefetch after the last.
		if j.flight != nil || j.lastAttempt.IsZero() || j.now().Sub(j.lastAttempt) >= j.o.MinRefetch {
			return true
		}
		// Too soon: fetch when MinRefetch has passed, so that a key
		// published meanwhile is picked up at a time the refusal can name.
		j.scheduleRetry()
		return false
	})
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.loaded {
		if j.lastErr != nil {
			return nil, fmt.Errorf("no keys loaded yet: %v", j.lastErr)
		}
		return nil, errors.New("no keys loaded yet")
	}
	var out []*Key
	for _, k := range j.keys {
		if kid == "" || k.ID == "" || k.ID == kid {
			out = append(out, k)
		}
	}
	return out, nil
}

// scheduleRetry arranges one fetch at lastAttempt + MinRefetch; j.mu is held.
func (j *JWKS) scheduleRetry() {
	at := j.lastAttempt.Add(j.o.MinRefetch)
	if j.retry != nil || j.ctx == nil {
		return
	}
	ctx := j.ctx
	j.retryAt = at
	j.retry = time.AfterFunc(max(at.Sub(j.now()), 0), func() {
		j.mu.Lock()
		j.retry, j.retryAt = nil, time.Time{}
		j.mu.Unlock()
		if ctx.Err() == nil {
			_ = j.Refresh(ctx)
		}
	})
}

// FetchState is what a key provider tells about its fetches, so that a
// refusal can say whether the keys are fresh and when they will be next.
type FetchState struct {
	// Last is when the last fetch ended, good or bad; zero if none did.
	Last time.Time
	// Next is when the provider fetches again for an unknown kid: a fetch
	// is scheduled then, or the first lookup of an unknown kid from then on
	// fetches. Zero when a fetch would happen at once.
	Next time.Time
	// Scheduled is set when a fetch at Next is already arranged.
	Scheduled bool
	// MinRefetch is the shortest time between two fetches for unknown kids.
	MinRefetch time.Duration
	// Err is the error of the last fetch, nil when it succeeded.
	Err error
	// Kids lists the kids of the current keys.
	Kids []string
	// Now is the provider's clock when the state was taken.
	Now time.Time
}

// State returns the provider's fetch state.
func (j *JWKS) State() FetchState {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := FetchState{Last: j.lastAttempt, MinRefetch: j.o.MinRefetch, Err: j.lastErr, Kids: keyKids(j.keys), Now: j.now()}
	if !j.retryAt.IsZero() {
		st.Next, st.Scheduled = j.retryAt, true
	} else if next := j.lastAttempt.Add(j.o.MinRefetch); !j.lastAttempt.IsZero() && next.After(j.now()) {
		st.Next = next
	}
	return st
}

// hasKid reports whether a current key has kid; j.mu is held.
func (j *JWKS) hasKid(kid string) bool {
	for _, k := range j.keys {
		if k.ID == kid {
			return true
		}
	}
	return false
}

// fetchIf, when want (called with j.mu held) says a fetch is needed, joins
// the fetch under way or starts one, and returns that fetch's error.
func (j *JWKS) fetchIf(ctx context.Context, want func() bool) error {
	j.mu.Lock()
	if !want() {
		// A known kid never waits for a background refresh.
		j.mu.Unlock()
		return nil
	}
	if f := j.flight; f != nil {
		j.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := &jwksFlight{done: make(chan struct{})}
	j.flight = f
	etag := ""
	if j.loaded {
		etag = j.etag
	}
	j.mu.Unlock()

	res := j.fetch(ctx, etag)
	if j.o.OnFetch != nil {
		switch {
		case res.err != nil:
			j.o.OnFetch("error")
		case res.notModified:
			j.o.OnFetch("not_modified")
		default:
			j.o.OnFetch("ok")
		}
	}

	j.mu.Lock()
	changed := j.apply(res)
	j.flight = nil
	f.err = res.err
	j.mu.Unlock()
	close(f.done)
	if changed && j.o.OnChange != nil {
		j.o.OnChange()
	}
	return res.err
}

// fetchResult is what one fetch learned.
type fetchResult struct {
	keys        []*Key
	skipped     []skippedJWK
	etag        string
	notModified bool
	err         error
}

// apply records a fetch; j.mu is held. It reports whether a loaded set changed.
func (j *JWKS) apply(r fetchResult) (changed bool) {
	j.lastAttempt = j.now()
	if r.err != nil {
		j.lastErr = r.err
		j.log.Warn("jwks fetch failed; keeping the last good keys", "url", j.url, "error", r.err.Error(),
			"keys_kept", len(j.keys), "loaded", j.loaded)
		return false
	}
	j.lastErr = nil
	if r.notModified {
		return false
	}
	for _, s := range r.skipped {
		if s.private {
			j.log.Warn("jwks endpoint publishes a private key; it is ignored and should be withdrawn", "url", j.url, "jwk", s.String())
		}
	}
	changed = !sameKeys(j.keys, r.keys)
	first := !j.loaded
	j.keys, j.loaded, j.etag = r.keys, true, r.etag
	if changed || first {
		attrs := []any{"url", j.url, "keys", len(r.keys), "kids", strings.Join(keyKids(r.keys), ",")}
		if len(r.skipped) > 0 {
			attrs = append(attrs, "skipped", skippedText(r.skipped))
		}
		j.log.Info("jwks keys loaded", attrs...)
	}
	return changed && !first
}

// sameKeys reports whether two sets hold the same keys, in any order.
func sameKeys(a, b []*Key) bool {
	if len(a) != len(b) {
		return false
	}
	ids := map[string]int{}
	for _, k := range a {
		ids[k.ID+"\x00"+strings.Join(k.Algs, ",")+"\x00"+k.Fingerprint]++
	}
	for _, k := range b {
		id := k.ID + "\x00" + strings.Join(k.Algs, ",") + "\x00" + k.Fingerprint
		if ids[id] == 0 {
			return false
		}
		ids[id]--
	}
	return true
}

// fetch GETs the URL and parses the set.
func (j *JWKS) fetch(ctx context.Context, etag string) fetchResult {
	if err := ValidateJWKS(j.url, JWKSOptions{Alg: j.o.Alg}); err != nil {
		return fetchResult{err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, j.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return fetchResult{err: fmt.Errorf("bad request: %v", err)}
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := j.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isNetTimeout(err) {
			return fetchResult{err: fmt.Errorf("no answer within %s", j.o.Timeout)}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fetchResult{err: fmt.Errorf("request failed: %v", err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && etag != "" {
		return fetchResult{notModified: true}
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
		if len(b) > 0 {
			msg += ": " + bodyExcerpt(b, 80)
		}
		return fetchResult{err: errors.New(msg)}
	}
	if resp.ContentLength > maxJWKSBody {
		return fetchResult{err: fmt.Errorf("response is %d bytes; the limit is 1 MiB", resp.ContentLength)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isNetTimeout(err) {
			return fetchResult{err: fmt.Errorf("no complete answer within %s", j.o.Timeout)}
		}
		return fetchResult{err: fmt.Errorf("reading the response: %v", err)}
	}
	if len(body) > maxJWKSBody {
		return fetchResult{err: errors.New("response is larger than 1 MiB")}
	}
	keys, skipped, err := parseJWKSDoc(body, jwkOptions{alg: j.o.Alg, familyDefault: true, origin: j.Name()})
	if err != nil {
		return fetchResult{err: fmt.Errorf("%v; response starts %s", err, bodyExcerpt(body, 80))}
	}
	if len(keys) == 0 {
		return fetchResult{err: fmt.Errorf("no usable key: %s", Truncate(skippedText(skipped), 300))}
	}
	return fetchResult{keys: keys, skipped: skipped, etag: resp.Header.Get("ETag")}
}

func isNetTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// bodyExcerpt quotes at most n bytes of b for a log line.
func bodyExcerpt(b []byte, n int) string {
	s := strconv.Quote(Truncate(string(b), n))
	if len(b) > n {
		s += "..."
	}
	return s
}
