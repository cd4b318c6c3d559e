package proxy

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/auth"
)

func TestNewValidates(t *testing.T) {
	bad := []struct {
		c    Config
		want string
	}{
		{Config{Endpoint: ""}, "scheme must be http or https"},
		{Config{Endpoint: "ftp://x/y"}, "scheme must be http or https"},
		{Config{Endpoint: "grpc://127.0.0.1:1000"}, "grpc:// proxies are not supported"},
		{Config{Endpoint: "http:///path"}, "has no host"},
		{Config{Endpoint: "http://a b/"}, "not a URL"},
		{Config{Endpoint: "http://h/", Timeout: -1}, "negative"},
		{Config{Endpoint: "http://h/", HTTPHeaders: []string{"Bad Header"}}, "not a valid header name"},
		{Config{Endpoint: "http://h/", HTTPHeaders: []string{"connection"}}, `"connection" cannot be forwarded`},
		{Config{Endpoint: "http://h/", EmulatedHeaders: []string{"Content-Type"}}, `"Content-Type" cannot be forwarded`},
		{Config{Endpoint: "http://h/", StaticHeaders: map[string]string{"Host": "x"}}, `"Host" cannot be forwarded`},
		{Config{Endpoint: "http://h/", StaticHeaders: map[string]string{"X-A": "a\r\nX-B: b"}}, "control character"},
		{Config{Endpoint: "http://h/", StatusTransforms: []StatusTransform{{StatusCode: 200, ToError: &ErrorReply{Code: 403}}}}, "not a non-2xx"},
		{Config{Endpoint: "http://h/", StatusTransforms: []StatusTransform{{StatusCode: 403}}}, "exactly one of to_error and to_disconnect"},
		{Config{Endpoint: "http://h/", StatusTransforms: []StatusTransform{{StatusCode: 403, ToError: &ErrorReply{Code: 3}}}}, "outside 100-1999"},
		{Config{Endpoint: "http://h/", StatusTransforms: []StatusTransform{{StatusCode: 401, ToDisconnect: &DisconnectReply{Code: 3501}}}}, "outside 4000-4999"},
		{Config{Endpoint: "http://h/", StatusTransforms: []StatusTransform{
			{StatusCode: 401, ToDisconnect: &DisconnectReply{Code: 4501}}, {StatusCode: 401, ToError: &ErrorReply{Code: 401}}}}, "mapped twice"},
	}
	for _, tc := range bad {
		_, err := New(tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tc.c, err, tc.want)
		}
	}
	// Credentials in the endpoint never show.
	_, err := New(Config{Endpoint: "ftp://user:hunter22@h/x?api_key=SECRETKEY"})
	if err == nil || strings.Contains(err.Error(), "hunter22") || strings.Contains(err.Error(), "SECRETKEY") {
		t.Errorf("error shows credentials: %v", err)
	}

	p, err := New(Config{Endpoint: "https://user:hunter22@backend.example/connect?api_key=SECRETKEY"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Timeout() != DefaultTimeout || cap(p.sem) != DefaultMaxConcurrent || p.br.threshold != DefaultBreakerFailures ||
		p.br.cooldown != DefaultBreakerCooldown || p.Name() != "proxy" {
		t.Errorf("defaults not applied: %v %d %d %v %q", p.Timeout(), cap(p.sem), p.br.threshold, p.br.cooldown, p.Name())
	}
	if got := p.Endpoint(); got != "https://backend.example/connect?…" {
		t.Errorf("shown endpoint %q", got)
	}
}

func TestStatusTransforms(t *testing.T) {
	status := atomic.Int64{}
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		_, _ = io.WriteString(w, "denied\n")
	})
	p, _ := newProxy(t, Config{Endpoint: b.URL, StatusTransforms: []StatusTransform{
		{StatusCode: 403, ToError: &ErrorReply{Code: 403, Message: "permission denied"}},
		{StatusCode: 401, ToDisconnect: &DisconnectReply{Code: 4501, Reason: "unauthorized"}},
	}})
	status.Store(403)
	_, e, d, r := p.Subscribe(tctx(t), &SubscribeRequest{Base: base(), Channel: "c"}, Headers{})
	if r != nil || d != nil || e == nil || *e != (ErrorReply{Code: 403, Message: "permission denied"}) {
		t.Fatalf("403: e %v d %v r %v", e, d, r)
	}
	e.Code = 1 // the caller's copy: the transform stays intact
	status.Store(401)
	_, e, d, r = p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	if r != nil || e != nil || d == nil || *d != (DisconnectReply{Code: 4501, Reason: "unauthorized"}) {
		t.Fatalf("401: e %v d %v r %v", e, d, r)
	}
	status.Store(403)
	_, e, _, _ = p.RPC(tctx(t), &RPCRequest{Base: base()}, Headers{})
	if e == nil || e.Code != 403 {
		t.Fatalf("transform was changed by a caller: %v", e)
	}
	// Refresh proxies may not answer errors, whatever their origin.
	_, r = p.Refresh(tctx(t), &RefreshRequest{Base: base()}, Headers{})
	wantReason(t, r, auth.ProxyBadResponse, `refresh proxy answered error 403 "permission denied"`)

	// Without a transform: ProxyHTTPStatus.
	status.Store(404)
	_, _, _, r = p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyHTTPStatus, "backend answered 404 Not Found: denied")
	if Temporary(r) {
		t.Error("404 is temporary")
	}
}

func TestHTTPStatus(t *testing.T) {
	cases := []struct {
		status    int
		body      string
		want      []string
		hint      string
		temporary bool
	}{
		{403, "Forbidden: bad session\n", []string{"backend answered 403 Forbidden: Forbidden: bad session"},
			`map it with status_to_code_transforms, or answer 200 with {"error":{...}} or {"disconnect":{...}}`, false},
		{401, "", []string{"backend answered 401 Unauthorized (empty body)"}, "status_to_code_transforms", false},
		{500, "<html><body>\x00\x01boom\tcrash</body></html>" + strings.Repeat("z", 200), []string{"backend answered 500 Internal Server Error: <html><body>", "boom crash", "…"}, "check its logs", true},
		{503, "down", []string{"backend answered 503 Service Unavailable: down"}, "circuit breaker", true},
		{422, `{"error":"x"}`, []string{`backend answered 422 Unprocessable Entity: {"error":"x"}`}, "answer 200", false},
		{599, "", []string{"backend answered 599 (empty body)"}, "check its logs", true},
	}
	for _, tc := range cases {
		b := newBackend(t, answer(tc.status, tc.body))
		p, _ := newProxy(t, Config{Endpoint: b.URL})
		_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
		wantReason(t, r, auth.ProxyHTTPStatus, tc.want...)
		if !strings.Contains(r.Hint, tc.hint) {
			t.Errorf("%d: hint %q does not contain %q", tc.status, r.Hint, tc.hint)
		}
		if Temporary(r) != tc.temporary {
			t.Errorf("%d: temporary = %v", tc.status, Temporary(r))
		}
		if strings.Contains(r.Detail, "z"+strings.Repeat("z", 64)) {
			t.Errorf("body not bounded: %q", r.Detail)
		}
	}
}

// TestRedirectNotFollowed: a 3xx is a ProxyHTTPStatus; the target is never called.
func TestRedirectNotFollowed(t *testing.T) {
	target := newBackend(t, answer(200, `{"result":{"user":"1"}}`))
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/login?next=SECRETNEXT", http.StatusFound)
	})
	p, _ := newProxy(t, Config{Endpoint: b.URL})
	_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyHTTPStatus, "backend answered 302 Found")
	if target.hits.Load() != 0 {
		t.Error("redirect followed")
	}
	if !strings.Contains(r.Hint, target.URL+"/login") || strings.Contains(r.Hint, "SECRETNEXT") {
		t.Errorf("hint %q", r.Hint)
	}
}

func TestTimeoutIsTemporary(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	p, _ := newProxy(t, Config{Endpoint: b.URL + "/connect", Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyTimeout, "backend "+b.URL+"/connect did not answer within 100ms")
	if !Temporary(r) {
		t.Error("timeout not temporary")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %s", el)
	}
}

// TestSlowBodyIsTimeout: headers in time but the body stalls.
func TestSlowBodyIsTimeout(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"result":`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	p, _ := newProxy(t, Config{Endpoint: b.URL, Timeout: 100 * time.Millisecond})
	_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyTimeout, "did not answer within 100ms")
}

func TestRefusedIsTemporary(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p, _ := newProxy(t, Config{Endpoint: "http://" + addr + "/connect"})
	_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyUnreachable, "backend http://"+addr+"/connect unreachable: connection refused")
	if !Temporary(r) {
		t.Error("unreachable not temporary")
	}
}

func TestTLSFailureIsUnreachable(t *testing.T) {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	s.StartTLS()
	defer s.Close()
	// A generous timeout: on a loaded machine (and under -race) a TLS
	// handshake can take longer than the default second, which would make
	// this a timeout instead of the TLS failure under test.
	p, _ := newProxy(t, Config{Endpoint: s.URL, Timeout: 15 * time.Second})
	_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyUnreachable, "unreachable: TLS:", "unknown authority")

	// http:// to a TLS server: the backend closes the connection (or answers 400).
	p2, _ := newProxy(t, Config{Endpoint: strings.Replace(s.URL, "https://", "http://", 1)})
	_, _, _, r = p2.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	if r == nil {
		t.Fatal("no reason")
	}
	t.Logf("http to https: %s: %s", r.Code, r.Detail)
}

// TestCanceledIsNotABackendFailure: a caller that gives up does not count toward the breaker.
func TestCanceledIsNotABackendFailure(t *testing.T) {
	arrived := make(chan struct{}, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	p, _ := newProxy(t, Config{Endpoint: b.URL, BreakerFailures: 1})
	c, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-arrived:
		case <-time.After(3 * time.Second):
		}
		cancel()
	}()
	_, _, _, r := p.Connect(c, &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyTimeout, "canceled by Herald")
	if p.br.state != stClosed {
		t.Error("a canceled call opened the circuit")
	}
}

func TestBreaker(t *testing.T) {
	var status atomic.Int64
	status.Store(503)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(status.Load()))
		_, _ = io.WriteString(w, `{"result":{"user":"1"}}`)
	})
	const cooldown = 300 * time.Millisecond
	p, logs := newProxy(t, Config{Endpoint: b.URL, BreakerFailures: 3, BreakerCooldown: cooldown})
	call := func() *auth.Reason {
		_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
		return r
	}
	for i := 0; i < 3; i++ {
		wantReason(t, call(), auth.ProxyHTTPStatus, "503")
	}
	opened := time.Now()
	r := call()
	wantReason(t, r, auth.ProxyCircuitOpen, "backend "+b.URL+" failed 3 times in a row; calls are paused for 300ms")
	if !Temporary(r) {
		t.Error("circuit open not temporary")
	}
	for i := 0; i < 5; i++ {
		call()
	}
	if n := b.hits.Load(); n != 3 {
		t.Fatalf("backend called %d times, want 3 (the open circuit must not call it)", n)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "circuit opened") ||
		!strings.Contains(logs.String(), "endpoint="+b.URL) {
		t.Errorf("opening not logged at WARN with the endpoint:\n%s", logs)
	}

	// After the cool-down one trial goes through; it fails: open again, one more hit.
	waitFor(t, "the cool-down", 3*time.Second, func() bool { return time.Since(opened) > cooldown })
	wantReason(t, call(), auth.ProxyHTTPStatus, "503")
	if n := b.hits.Load(); n != 4 {
		t.Fatalf("hits %d after the failed trial, want 4", n)
	}
	reopened := time.Now()
	wantReason(t, call(), auth.ProxyCircuitOpen)
	if !strings.Contains(logs.String(), "circuit re-opened") {
		t.Error("re-opening not logged")
	}

	// The backend recovers: the next trial closes the circuit.
	status.Store(200)
	waitFor(t, "the second cool-down", 3*time.Second, func() bool { return time.Since(reopened) > cooldown })
	if r := call(); r != nil {
		t.Fatalf("trial: %v", r)
	}
	for i := 0; i < 3; i++ {
		if r := call(); r != nil {
			t.Fatalf("after close: %v", r)
		}
	}
	if n := b.hits.Load(); n != 8 {
		t.Errorf("hits %d, want 8", n)
	}
	if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "circuit closed") {
		t.Errorf("closing not logged at INFO:\n%s", logs)
	}
}

// TestBreakerHalfOpenOneTrial: while the trial is in flight, other calls are refused.
func TestBreakerHalfOpenOneTrial(t *testing.T) {
	var block atomic.Bool
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if block.Load() {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
			answer(200, `{"result":{"user":"1"}}`)(w, r)
			return
		}
		w.WriteHeader(502)
	})
	p, _ := newProxy(t, Config{Endpoint: b.URL, BreakerFailures: 1, BreakerCooldown: 50 * time.Millisecond})
	_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyHTTPStatus, "502")
	opened := time.Now()
	block.Store(true)
	waitFor(t, "the cool-down", 3*time.Second, func() bool { return time.Since(opened) > 60*time.Millisecond })
	done := make(chan *auth.Reason, 1)
	go func() {
		_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
		done <- r
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("trial never arrived")
	}
	_, _, _, r = p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyCircuitOpen, "one trial call is in flight")
	close(release)
	select {
	case r := <-done:
		if r != nil {
			t.Fatalf("trial: %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("trial did not finish")
	}
	if b.hits.Load() != 2 {
		t.Errorf("hits %d, want 2", b.hits.Load())
	}
}

// TestBreakerIgnores4xxAndBadAnswers: a backend that answers, even wrongly, is alive.
func TestBreakerIgnores4xxAndBadAnswers(t *testing.T) {
	var n atomic.Int64
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(403)
			return
		}
		_, _ = io.WriteString(w, "<html>")
	})
	p, _ := newProxy(t, Config{Endpoint: b.URL, BreakerFailures: 2})
	for i := 0; i < 6; i++ {
		_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
		if r == nil || r.Code == auth.ProxyCircuitOpen {
			t.Fatalf("call %d: %v", i, r)
		}
	}
	if b.hits.Load() != 6 {
		t.Errorf("hits %d", b.hits.Load())
	}
}

// TestBreakerSuccessResets: failures must be consecutive.
func TestBreakerSuccessResets(t *testing.T) {
	var n atomic.Int64
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			answer(200, `{"result":{"user":"1"}}`)(w, r)
			return
		}
		w.WriteHeader(500)
	})
	p, _ := newProxy(t, Config{Endpoint: b.URL, BreakerFailures: 3})
	for i := 0; i < 9; i++ {
		_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
		if r != nil && r.Code == auth.ProxyCircuitOpen {
			t.Fatalf("call %d: circuit opened without 3 consecutive failures", i)
		}
	}
}

func TestConcurrencyLimit(t *testing.T) {
	const max = 3
	arrived := make(chan struct{}, max+1)
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		answer(200, `{"result":{"user":"1"}}`)(w, r)
	})
	p, logs := newProxy(t, Config{Endpoint: b.URL, MaxConcurrent: max})
	var wg sync.WaitGroup
	errs := make(chan *auth.Reason, max)
	for i := 0; i < max; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
			errs <- r
		}()
	}
	for i := 0; i < max; i++ {
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d requests arrived", i)
		}
	}
	start := time.Now()
	_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyOverloaded, "3 requests to backend "+b.URL+" are already in flight (max_concurrent 3)")
	if !Temporary(r) {
		t.Error("overloaded not temporary")
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("the refusal waited %s", el)
	}
	if b.hits.Load() != max {
		t.Errorf("hits %d, want %d", b.hits.Load(), max)
	}
	close(release)
	wg.Wait()
	close(errs)
	for r := range errs {
		if r != nil {
			t.Errorf("in-flight call: %v", r)
		}
	}
	if _, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false); r != nil {
		t.Errorf("after the limit cleared: %v", r)
	}
	if !strings.Contains(logs.String(), "concurrency limit reached") || !strings.Contains(logs.String(), "accepts calls again") {
		t.Errorf("limit state changes not logged:\n%s", logs)
	}
}

func TestHeaderForwarding(t *testing.T) {
	b := newBackend(t, answer(200, `{"result":{"user":"1"}}`))
	p, _ := newProxy(t, Config{
		Endpoint:        b.URL,
		HTTPHeaders:     []string{"cookie", "Authorization", "X-Forwarded-For"},
		EmulatedHeaders: []string{"X-App-Session", "x-forwarded-for", "X-Tenant", "X-Evil"},
		StaticHeaders:   map[string]string{"X-Herald-Node": "eu-1", "X-Tenant": "static", "X-App-Session": "static"},
	})
	h := Headers{
		Transport: http.Header{
			"Cookie":          {"sid=abc123session"},
			"Authorization":   {"Bearer transport-token-xyz"},
			"x-forwarded-for": {"1.2.3.4"}, // not canonical: matched case-insensitively
			"X-Secret":        {"not-listed"},
			"User-Agent":      {"Mozilla/5.0"},
			"Origin":          {"https://app.example"},
		},
		Emulated: map[string]string{
			"x-app-session":   "emu-session",
			"X-Forwarded-For": "6.6.6.6", // a spoof: the transport header wins
			"X-Tenant":        "emu-tenant",
			"X-Not-Listed":    "x",
			"Content-Type":    "text/plain",
			"X-Evil":          "a\r\nX-Injected: 1",
		},
	}
	if _, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, h, false); r != nil {
		t.Fatal(r)
	}
	req, _ := b.lastRequest()
	want := map[string]string{
		"Cookie":          "sid=abc123session",
		"Authorization":   "Bearer transport-token-xyz",
		"X-Forwarded-For": "1.2.3.4",
		"X-App-Session":   "emu-session",
		"X-Tenant":        "emu-tenant",
		"X-Herald-Node":   "eu-1",
		"Content-Type":    "application/json",
	}
	for k, v := range want {
		if got := req.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"X-Secret", "Origin", "X-Not-Listed", "X-Evil", "X-Injected"} {
		if v := req.Header.Get(k); v != "" {
			t.Errorf("%s forwarded: %q", k, v)
		}
	}
	if ua := req.Header.Get("User-Agent"); strings.Contains(ua, "Mozilla") {
		t.Errorf("User-Agent forwarded: %q", ua)
	}

	// Emulated headers are not forwarded on the strength of http_headers.
	p2, _ := newProxy(t, Config{Endpoint: b.URL, HTTPHeaders: []string{"Authorization"}})
	if _, _, _, r := p2.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{Emulated: map[string]string{"Authorization": "Bearer emu"}}, false); r != nil {
		t.Fatal(r)
	}
	req, _ = b.lastRequest()
	if v := req.Header.Get("Authorization"); v != "" {
		t.Errorf("emulated Authorization forwarded via http_headers: %q", v)
	}

	// Nothing is forwarded without allowlists.
	p3, _ := newProxy(t, Config{Endpoint: b.URL})
	if _, _, _, r := p3.Connect(tctx(t), &ConnectRequest{Base: base()}, h, false); r != nil {
		t.Fatal(r)
	}
	req, _ = b.lastRequest()
	for _, k := range []string{"Cookie", "Authorization", "X-Forwarded-For", "X-App-Session", "X-Tenant"} {
		if v := req.Header.Get(k); v != "" {
			t.Errorf("%s forwarded without an allowlist: %q", k, v)
		}
	}
}

// TestNoSecretsInReasons: tokens, cookies and Authorization values echoed by a
// backend never reach a Reason or a log line.
func TestNoSecretsInReasons(t *testing.T) {
	const (
		jwt      = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI1NiJ9.c2lnbmF0dXJlLXZhbHVl"
		cookie   = "sess=cookie-secret-value-42"
		authz    = "Bearer authz-secret-token-77"
		emulated = "emulated-secret-99"
		subToken = "sub-token-secret-55"
		static   = "static-api-key-31"
		query    = "endpoint-query-key"
		password = "endpoint-password"
	)
	secrets := []string{jwt, "cookie-secret-value-42", "authz-secret-token-77", emulated, subToken, static, query, password}
	var mode atomic.Int64
	var echo atomic.Value
	echo.Store("")
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		all := r.Header.Get("Cookie") + " " + r.Header.Get("Authorization") + " " + r.Header.Get("X-Session") + " " +
			r.Header.Get("X-Api-Key") + " " + string(body) + " " + jwt
		echo.Store(all)
		switch mode.Load() {
		case 0:
			w.WriteHeader(401)
			_, _ = io.WriteString(w, "bad creds: "+all)
		case 1:
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<p>"+all+"</p>")
		case 2:
			_, _ = io.WriteString(w, `{"error":{"code":1000,"message":"`+strings.ReplaceAll(all, `"`, `'`)+`"}}`)
		}
	})
	p, logs := newProxy(t, Config{
		Endpoint:        strings.Replace(b.URL, "http://", "http://user:"+password+"@", 1) + "/x?key=" + query,
		HTTPHeaders:     []string{"Cookie", "Authorization"},
		EmulatedHeaders: []string{"X-Session"},
		StaticHeaders:   map[string]string{"X-Api-Key": static},
	})
	h := Headers{Transport: http.Header{"Cookie": {cookie}, "Authorization": {authz}}, Emulated: map[string]string{"X-Session": emulated}}
	check := func(what string, r *auth.Reason) {
		t.Helper()
		if r == nil {
			t.Fatalf("%s: no reason", what)
		}
		for _, s := range secrets {
			for _, part := range []string{s, s[:12]} {
				if strings.Contains(r.Detail, part) || strings.Contains(r.Hint, part) || strings.Contains(r.Error(), part) {
					t.Errorf("%s: secret %q in reason %q / %q", what, part, r.Detail, r.Hint)
				}
			}
		}
		t.Logf("%s: %s", what, r.Detail)
	}
	for m := int64(0); m < 2; m++ {
		mode.Store(m)
		_, _, _, r := p.Subscribe(tctx(t), &SubscribeRequest{Base: base(), Channel: "c", Token: subToken}, h)
		check("subscribe", r)
		_, _, _, r = p.Connect(tctx(t), &ConnectRequest{Base: base()}, h, false)
		check("connect", r)
	}
	mode.Store(2)
	_, r := p.Refresh(tctx(t), &RefreshRequest{Base: base()}, h)
	check("refresh", r)
	if !strings.Contains(echo.Load().(string), "cookie-secret-value-42") {
		t.Fatal("the backend did not get the cookie: the test proves nothing")
	}

	// Transport failures.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	p2, logs2 := newProxy(t, Config{Endpoint: "http://user:" + password + "@" + addr + "/x?key=" + query, HTTPHeaders: []string{"Cookie"}})
	_, _, _, r = p2.Connect(tctx(t), &ConnectRequest{Base: base()}, h, false)
	check("refused", r)

	for _, out := range []string{logs.String(), logs2.String()} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q in the log:\n%s", s, out)
			}
		}
	}
}

func TestPrintable(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"  hello\n\n world \t", "hello world"},
		{"a\x00b\x7fc", "a b c"},
		{"\xff\xfeok", "??ok"},
		{strings.Repeat("é", 40), strings.Repeat("é", 32) + "…"},
		{"token " + "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "token [redacted]"},
		{"my secret-value-1 here", "my [redacted] here"},
	}
	for _, tc := range cases {
		if got := printable([]byte(tc.in), snippetLen, []string{"secret-value-1"}); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
