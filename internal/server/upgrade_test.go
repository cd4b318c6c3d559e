package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/testutil"
)

// rawHTTP writes a raw request on a new connection and returns the response.
func rawHTTP(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", request, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// The listener routes WebSocket upgrades itself and everything else to
// net/http; requests that only start like the WebSocket path, and requests
// shorter than it, must still be answered by net/http at once.
func TestListenerRouting(t *testing.T) {
	srv := testutil.Start(t, nil)
	cases := []struct {
		name, request string
		status        int
		body          string
	}{
		{"short request to another path", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404, "404 page not found"},
		{"tiny request", "GET /\r\n\r\n", 400, ""},
		{"health", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 200, `{"status":"ok"}`},
		{"longer path with the same start", "GET /connection/websocketx HTTP/1.1\r\nHost: x\r\n\r\n", 404, "404 page not found"},
		{"WebSocket path without an upgrade", "GET /connection/websocket HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Bad Request"},
		{"WebSocket path with a query, no upgrade", "GET /connection/websocket?format=json HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Bad Request"},
		{"a transport that is off names its setting", "POST /connection/http_stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 404, "http_stream.enabled"},
		{"POST served by the listener reads its body", "POST /connection/uni_sse HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n{x}", 404, "uni_sse.enabled"},
		{"POST to the WebSocket path", "POST /connection/websocket HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400, "Bad Request"},
		{"malformed request line on the WebSocket path", "GET /connection/websocket\r\n\r\n", 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, body := rawHTTP(t, srv.Addr, tc.request)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("status %d body %q, want %d with %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("answered after %s", d)
			}
		})
	}
}

// A refused upgrade is a complete HTTP response with the reason as JSON.
func TestListenerRefusedUpgrade(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.AllowedOrigins = []string{"https://app.example.com"}
	srv := testutil.Start(t, cfg)
	resp, body := rawHTTP(t, srv.Addr, "GET /connection/websocket HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n"+
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	var m map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil || resp.StatusCode != 403 || m["error"] != "origin_not_allowed" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/json" || !resp.Close {
		t.Fatalf("headers %v", resp.Header)
	}
}

// Oversized upgrade request headers get 431, as from net/http.
func TestListenerHeaderLimit(t *testing.T) {
	srv := testutil.Start(t, nil)
	resp, _ := rawHTTP(t, srv.Addr, "GET /connection/websocket HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 200<<10)+"\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// Keep-alive connections that net/http serves still carry several requests
// (the routed bytes are replayed once, then the connection reads as usual).
func TestListenerKeepAlive(t *testing.T) {
	srv := testutil.Start(t, nil)
	c, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
}

// A connection that sends half a request and stops is closed at the
// header timeout and does not hold up others.
func TestListenerSlowHandshakeDoesNotBlock(t *testing.T) {
	srv := testutil.Start(t, nil)
	c, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /connec")
	ws := srv.Dial(t, nil)
	ws.Connect(testutil.UserToken(t, "u"))
}

// A Mercure stream (routed by the listener, hijacked by the hub) notices at
// once that its client left (the heartbeat, 40 s by default, would otherwise
// be the first write to fail), and the subscription is removed.
func TestListenerStreamEndsWhenClientLeaves(t *testing.T) {
	srv := testutil.Start(t, nil)
	c, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	_, _ = io.WriteString(c, "GET /.well-known/mercure?topic=a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testutil.SubscriberToken(t)+"\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.TransferEncoding == nil || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("status %d, transfer encoding %v", resp.StatusCode, resp.TransferEncoding)
	}
	first := make([]byte, 2)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != ":\n" {
		t.Fatalf("first bytes %q, %v", first, err)
	}
	connected := func() int { return srv.Mercure().NumSubscribers() }
	if n := connected(); n != 1 {
		t.Fatalf("%d subscribers connected, want 1", n)
	}
	_ = c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for connected() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the subscription outlived its client")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A stream's POST served by the listener that waits for 100 Continue gets
// it before its body is read, as net/http would send it.
func TestListenerExpectContinue(t *testing.T) {
	cfg := testutil.Config()
	cfg.UniHTTPStream.Enabled = true
	srv := testutil.Start(t, cfg)
	c, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	_, _ = io.WriteString(c, "POST /connection/uni_http_stream HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	_, _ = br.ReadString('\n')
	_, _ = io.WriteString(c, "{")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("response %v %v", resp, err)
	}
}
