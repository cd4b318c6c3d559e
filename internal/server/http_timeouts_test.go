package server_test

// End-to-end tests of the HTTP timeouts and the limit of connections not
// upgraded yet (docs/configuration.md, "HTTP timeouts and limits").

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// rawConn is a TCP connection to srv that records when the server closes it.
type rawConn struct {
	net.Conn
	br     *bufio.Reader
	mu     sync.Mutex
	closed time.Time
}

func dialRaw(t *testing.T, srv *testutil.Server) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// watch reads (discarding) until the server closes the connection.
func (c *rawConn) watch() {
	go func() {
		_, _ = io.Copy(io.Discard, c.br)
		c.mu.Lock()
		c.closed = time.Now()
		c.mu.Unlock()
	}()
}

func (c *rawConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed.IsZero()
}

func (c *rawConn) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// health sends GET /health on c and reads the answer, leaving c idle.
func (c *rawConn) health(t *testing.T) {
	t.Helper()
	c.send(t, "GET /health HTTP/1.1\r\nHost: herald\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("GET /health: %d close=%v", resp.StatusCode, resp.Close)
	}
}

func TestHTTPTimeoutsCloseIdleAndSlowConnections(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.HTTP.ReadHeaderTimeout = config.Duration(300 * time.Millisecond)
	cfg.HTTP.ReadTimeout = config.Duration(600 * time.Millisecond)
	cfg.HTTP.WriteTimeout = config.Duration(600 * time.Millisecond)
	cfg.HTTP.IdleTimeout = config.Duration(400 * time.Millisecond)
	cfg.Client.StaleCloseDelay = config.Duration(time.Minute)
	cfg.Mercure.Anonymous = true
	srv := testutil.Start(t, cfg)

	// Long-lived connections, opened first: a WebSocket and a Mercure
	// stream, each on a fresh connection and after a request on a
	// keep-alive connection (then net/http serves the upgrade).
	ws := srv.Dial(t, nil)
	kaWS := dialRaw(t, srv)
	kaWS.health(t)
	d := websocket.Dialer{HandshakeTimeout: wait, NetDialContext: func(context.Context, string, string) (net.Conn, error) { return kaWS.Conn, nil }}
	ws2, _, err := d.Dial(srv.WSURL(), nil)
	if err != nil {
		t.Fatalf("WebSocket upgrade on a keep-alive connection: %v", err)
	}
	defer ws2.Close()
	sse := subscribeOK(t, srv, topics("https://example.com/t"), nil)
	kaSSE := dialRaw(t, srv)
	kaSSE.health(t)
	kaSSE.send(t, "GET "+srv.Cfg.Mercure.Path+"?topic="+url.QueryEscape("https://example.com/t")+" HTTP/1.1\r\nHost: herald\r\n\r\n")
	resp, err := http.ReadResponse(kaSSE.br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("Mercure subscription on a keep-alive connection: %v %v", err, resp)
	}

	// Many connections that hold the server without sending a request.
	const n = 25
	var short []*rawConn
	for i := 0; i < n; i++ {
		idle := dialRaw(t, srv) // a keep-alive connection after its request
		idle.health(t)
		silent := dialRaw(t, srv)  // connects and sends nothing
		partial := dialRaw(t, srv) // headers never finished
		partial.send(t, "GET /health HTTP/1.1\r\nHost: herald\r\n")
		apiBody := dialRaw(t, srv) // headers, then not the promised body
		apiBody.send(t, "POST /api/publish HTTP/1.1\r\nHost: herald\r\nX-API-Key: "+testutil.APIKey+"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		pubBody := dialRaw(t, srv)
		pubBody.send(t, "POST "+srv.Cfg.Mercure.Path+" HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer "+testutil.PublisherToken(t, "*")+
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntopic=")
		short = append(short, idle, silent, partial, apiBody, pubBody)
	}
	for _, c := range short {
		c.watch()
	}
	if !eventually(5*time.Second, func() bool {
		for _, c := range short {
			if !c.isClosed() {
				return false
			}
		}
		return true
	}) {
		open := 0
		for _, c := range short {
			if !c.isClosed() {
				open++
			}
		}
		t.Fatalf("%d of %d idle, silent or slow connections still open after 5s (timeouts 300-600ms)", open, len(short))
	}

	// The long-lived connections outlived every timeout and still work.
	if r := ws.Connect(testutil.UserToken(t, "long-1")); r["client"] == nil {
		t.Fatalf("WebSocket after the timeouts: %v", r)
	}
	_ = ws2.SetWriteDeadline(time.Now().Add(wait))
	if err := ws2.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, testutil.UserToken(t, "long-2")))); err != nil {
		t.Fatalf("WebSocket upgraded through net/http, after the timeouts: %v", err)
	}
	_ = ws2.SetReadDeadline(time.Now().Add(wait))
	if _, msg, err := ws2.ReadMessage(); err != nil || !strings.Contains(string(msg), `"connect"`) {
		t.Fatalf("WebSocket upgraded through net/http, after the timeouts: %q %v", msg, err)
	}
	srv.Publish(t, url.Values{"topic": {"https://example.com/t"}, "data": {"still-here"}})
	if ev := sse.Next(wait); ev.Data != "still-here" {
		t.Fatalf("Mercure stream after the timeouts: %+v", ev)
	}
	got := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "data: still-here" {
				got <- true
				return
			}
		}
		got <- false
	}()
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("Mercure stream served through net/http ended before the update")
		}
	case <-time.After(wait):
		t.Fatal("Mercure stream served through net/http: no update")
	}
}

func TestHTTPPendingConnectionLimit(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.HTTP.MaxPendingConns = 4
	cfg.Mercure.Anonymous = true
	srv := testutil.Start(t, cfg)

	// Upgraded connections do not count.
	for i := 0; i < 3; i++ {
		srv.Dial(t, nil)
		subscribeOK(t, srv, topics("https://example.com/x"), nil)
	}
	var held []*rawConn
	for i := 0; i < 4; i++ {
		held = append(held, dialRaw(t, srv)) // silent: pending until read_header_timeout (10s)
	}
	// The limit is reached once the server has counted the four (a dial
	// returns when the kernel accepted it, before the server counts it):
	// a fifth is refused.
	pending := func() float64 { return srv.Metrics().Snapshot().Total("http_pending_connections") }
	if !eventually(wait, func() bool { return pending() == 4 }) {
		t.Fatalf("herald_http_pending_connections = %v, want the 4 silent connections", pending())
	}
	var body string
	if !eventually(wait, func() bool {
		c := dialRaw(t, srv)
		defer c.Close()
		c.send(t, "GET /health HTTP/1.1\r\nHost: herald\r\n\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""
	}) {
		t.Fatalf("a connection over http.max_pending_conns was not refused with 503 (last body %q)", body)
	}
	if !strings.Contains(body, "http.max_pending_conns") {
		t.Fatalf("503 body %q does not name the setting", body)
	}
	expectLog(t, srv, "level=WARN", "refusing new connections")
	// One leaves: a new connection is served again.
	_ = held[0].Close()
	if !eventually(wait, func() bool {
		c := dialRaw(t, srv)
		defer c.Close()
		c.send(t, "GET /health HTTP/1.1\r\nHost: herald\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		return err == nil && resp.StatusCode == http.StatusOK
	}) {
		t.Fatal("no connection served after one pending connection closed")
	}

	t.Run("per IP", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.HTTP.MaxPendingConnsPerIP = 2
		srv := testutil.Start(t, cfg)
		a, b := dialRaw(t, srv), dialRaw(t, srv)
		a.health(t)
		b.health(t) // two idle keep-alive connections from 127.0.0.1
		c := dialRaw(t, srv)
		c.send(t, "GET /health HTTP/1.1\r\nHost: herald\r\n\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("third connection from one address: %v %v", err, resp)
		}
		b2, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b2), "http.max_pending_conns_per_ip") {
			t.Fatalf("503 body %q", b2)
		}
	})
}
