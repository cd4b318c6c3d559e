package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/auth"
)

// logBuf collects log output safely.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// backend is a test backend on 127.0.0.1 that records what it received.
type backend struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	last *http.Request
	body []byte
}

func (b *backend) lastRequest() (*http.Request, []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.body
}

func newBackend(t *testing.T, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.last, b.body = r.Clone(context.Background()), body
		b.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

// answer returns a handler that answers status with body as JSON.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func newProxy(t *testing.T, c Config) (*Proxy, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if c.Name == "" {
		c.Name = "test"
	}
	p, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Close)
	return p, logs
}

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func base() Base {
	return Base{Client: "c1", Transport: "websocket", Protocol: "json", Encoding: "json"}
}

// callMethod calls method and returns the reason, if any, and a summary.
func callMethod(t *testing.T, p *Proxy, method string, h Headers) (any, *ErrorReply, *DisconnectReply, *auth.Reason) {
	t.Helper()
	c := tctx(t)
	switch method {
	case "connect":
		res, e, d, r := p.Connect(c, &ConnectRequest{Base: base(), Name: "js"}, h, false)
		return res, e, d, r
	case "refresh":
		res, r := p.Refresh(c, &RefreshRequest{Base: base(), User: "u1"}, h)
		return res, nil, nil, r
	case "subscribe":
		res, e, d, r := p.Subscribe(c, &SubscribeRequest{Base: base(), User: "u1", Channel: "chat:1"}, h)
		return res, e, d, r
	case "publish":
		res, e, d, r := p.Publish(c, &PublishRequest{Base: base(), User: "u1", Channel: "chat:1", Data: []byte(`{"x":1}`)}, h)
		return res, e, d, r
	case "sub_refresh":
		res, r := p.SubRefresh(c, &SubRefreshRequest{Base: base(), User: "u1", Channel: "chat:1"}, h)
		return res, nil, nil, r
	case "rpc":
		res, e, d, r := p.RPC(c, &RPCRequest{Base: base(), User: "u1", Method: "ns:m", Data: []byte(`{}`)}, h)
		return res, e, d, r
	}
	t.Fatalf("unknown method %s", method)
	return nil, nil, nil, nil
}

func wantReason(t *testing.T, r *auth.Reason, code auth.Code, substrings ...string) {
	t.Helper()
	if r == nil {
		t.Fatalf("got no reason, want %s", code)
	}
	if r.Code != code {
		t.Fatalf("code = %s, want %s (detail %q)", r.Code, code, r.Detail)
	}
	for _, s := range substrings {
		if !strings.Contains(r.Detail, s) {
			t.Errorf("detail %q does not contain %q", r.Detail, s)
		}
	}
	if len(r.Detail) > maxDetail {
		t.Errorf("detail is %d bytes (> %d): %q", len(r.Detail), maxDetail, r.Detail)
	}
	if strings.ContainsAny(r.Detail, "\r\n") {
		t.Errorf("detail is not one line: %q", r.Detail)
	}
	if r.Hint == "" {
		t.Errorf("no hint for %s (%q)", r.Code, r.Detail)
	}
}

// waitFor polls cond until it holds or the bounded wait ends.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
