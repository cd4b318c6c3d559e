package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/hub"
	"github.com/heraldhub/herald/internal/server"
)

// Secret and APIKey are the credentials of test servers.
const (
	Secret = "test-secret-0123456789abcdef0123456789"
	APIKey = "test-api-key"
	// MercurePublisherSecret and MercureSubscriberSecret verify Mercure
	// publisher and subscriber tokens (HS256).
	MercurePublisherSecret  = "mercure-publisher-secret-0123456789abcdef"
	MercureSubscriberSecret = "mercure-subscriber-secret-0123456789abcdef"
)

// LogBuffer collects log output safely for assertions.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Server is a running test server.
type Server struct {
	*server.Server
	Addr string
	Cfg  *config.Config
	Logs *LogBuffer
	t    testing.TB
	done chan error
	stop sync.Once
}

// HubPublish publishes JSON data to a channel through the hub, as the
// server API does.
func (s *Server) HubPublish(channel string, data []byte) error {
	if _, herr := s.Hub().Publish(context.Background(), &hub.PublishRequest{Channel: channel, Data: data}); herr != nil {
		return herr
	}
	return nil
}

// FloodUntilGone publishes 32 KiB publications to channel until none of
// user's connections is left on the node (a subscriber that stopped reading
// is dropped as too slow) or 10 seconds pass.
func (s *Server) FloodUntilGone(channel, user string) {
	data, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 32<<10)})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && s.Hub().NumUserClients(user) > 0 {
		for range 50 {
			_ = s.HubPublish(channel, data)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Config returns a configuration for tests: fast timings, a secret, an API
// key, and permissive channels without a namespace plus a "chat" namespace.
func Config() *config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.LogLevel = "debug"
	cfg.Client.Token.HMACSecretKey = Secret
	cfg.HTTPAPI.Key = APIKey
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	cfg.Client.ReasonDetail = "full"
	cfg.Mercure.Publisher.Secret = MercurePublisherSecret
	cfg.Mercure.Subscriber.Secret = MercureSubscriberSecret
	wn := &cfg.Channel.WithoutNamespace
	wn.Presence = true
	wn.JoinLeave = true
	wn.HistorySize = 10
	wn.HistoryTTL = config.Duration(time.Minute)
	wn.AllowSubscribeForClient = true
	wn.AllowPublishForClient = true
	wn.AllowHistoryForClient = true
	wn.AllowPresenceForClient = true
	return cfg
}

// Start starts a server with cfg (nil = Config()) and stops it at test end.
func Start(t testing.TB, cfg *config.Config) *Server {
	t.Helper()
	if cfg == nil {
		cfg = Config()
	}
	if problems := cfg.Validate(); len(problems) > 0 {
		t.Fatalf("test config invalid: %v", problems)
	}
	logs := &LogBuffer{}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	srv, err := server.New(cfg, log, "test")
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &Server{Server: srv, Addr: srv.Addr(), Cfg: cfg, Logs: logs, t: t, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve() }()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("server %s (node %s) log:\n%s", s.Addr, srv.Hub().NodeID(), logs.String())
		}
	})
	return s
}

// Stop shuts the server down (clients are told, as on SIGTERM) and waits
// for it; it is called at test end too.
func (s *Server) Stop() {
	s.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			s.t.Errorf("server %s did not stop", s.Addr)
		}
	})
}

// Done is closed with Serve's result when the server stops.
func (s *Server) Done() <-chan error { return s.done }

// WSURL is the WebSocket endpoint.
func (s *Server) WSURL() string { return "ws://" + s.Addr + "/connection/websocket" }

// Token mints an HS256 token with the test secret.
func Token(t testing.TB, claims map[string]any) string {
	t.Helper()
	tok, err := auth.SignHS256(Secret, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// UserToken mints a connection token for user valid for an hour.
func UserToken(t testing.TB, user string) string {
	return Token(t, map[string]any{"sub": user, "exp": time.Now().Add(time.Hour).Unix()})
}

// API calls POST /api/<method> with the test key and returns status and body.
func (s *Server) API(t testing.TB, method string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr+"/api/"+method, bytes.NewReader(b))
	req.Header.Set("X-API-Key", APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("api %s: %v", method, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("api %s: body %q is not JSON: %v", method, raw, err)
	}
	return resp.StatusCode, out
}

// Client is a raw protocol client over a real WebSocket.
type Client struct {
	t      testing.TB
	Conn   *websocket.Conn
	lines  []string
	nextID uint32
	// Pushes collects pushes seen while waiting for replies.
	Pushes []map[string]any
	// Pings counts server pings seen.
	Pings int
}

// Dial opens a WebSocket to the server with optional headers.
func (s *Server) Dial(t testing.TB, header http.Header) *Client {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(s.WSURL(), header)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("dial: %v %s", err, body)
	}
	c := &Client{t: t, Conn: conn}
	t.Cleanup(func() { _ = conn.Close() })
	return c
}

// Send writes one raw frame.
func (c *Client) Send(frame string) {
	c.t.Helper()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.Conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// ErrClosed is returned by ReadLine when the server closed the connection.
type ErrClosed struct {
	Code   int
	Reason string
}

func (e *ErrClosed) Error() string { return fmt.Sprintf("closed %d %q", e.Code, e.Reason) }

// ReadLine returns the next JSON object the server sent (frames are split on newlines).
func (c *Client) ReadLine(timeout time.Duration) (string, error) {
	if len(c.lines) == 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
		_, data, err := c.Conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return "", &ErrClosed{Code: ce.Code, Reason: ce.Text}
			}
			return "", err
		}
		if bytes.HasSuffix(data, []byte("\n")) {
			return "", fmt.Errorf("server frame ends with a newline: %q", data)
		}
		c.lines = strings.Split(string(data), "\n")
	}
	l := c.lines[0]
	c.lines = c.lines[1:]
	return l, nil
}

// Next returns the next decoded message, failing the test on error.
func (c *Client) Next(timeout time.Duration) map[string]any {
	c.t.Helper()
	l, err := c.ReadLine(timeout)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(l), &m); err != nil {
		c.t.Fatalf("server sent invalid JSON %q: %v", l, err)
	}
	return m
}

// Call sends a command with a fresh id and returns its reply, collecting
// pushes and pings that arrive first.
func (c *Client) Call(method string, params any) map[string]any {
	c.t.Helper()
	c.nextID++
	id := c.nextID
	p, _ := json.Marshal(params)
	c.Send(fmt.Sprintf(`{"id":%d,%q:%s}`, id, method, p))
	return c.WaitReply(id)
}

// WaitReply waits for the reply with id.
func (c *Client) WaitReply(id uint32) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := c.Next(time.Until(deadline))
		if got, ok := m["id"].(float64); ok && uint32(got) == id {
			return m
		}
		c.collect(m)
	}
	c.t.Fatalf("no reply to id %d", id)
	return nil
}

func (c *Client) collect(m map[string]any) {
	if len(m) == 0 {
		c.Pings++
		return
	}
	if p, ok := m["push"].(map[string]any); ok {
		c.Pushes = append(c.Pushes, p)
	}
}

// WaitPush returns the next push (from those collected, or read), skipping pings.
func (c *Client) WaitPush(timeout time.Duration) map[string]any {
	c.t.Helper()
	if len(c.Pushes) > 0 {
		p := c.Pushes[0]
		c.Pushes = c.Pushes[1:]
		return p
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		m := c.Next(time.Until(deadline))
		if len(m) == 0 {
			c.Pings++
			continue
		}
		if p, ok := m["push"].(map[string]any); ok {
			return p
		}
		c.t.Fatalf("expected a push, got %v", m)
	}
	c.t.Fatalf("no push within %s", timeout)
	return nil
}

// Connect sends connect with token (may be empty) and returns the result.
func (c *Client) Connect(token string) map[string]any {
	c.t.Helper()
	r := c.Call("connect", map[string]any{"token": token})
	res, ok := r["connect"].(map[string]any)
	if !ok {
		c.t.Fatalf("connect failed: %v", r)
	}
	return res
}

// ExpectClose reads until the server closes and returns the close code and reason.
func (c *Client) ExpectClose(timeout time.Duration) (int, string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		l, err := c.ReadLine(time.Until(deadline))
		if err != nil {
			var ce *ErrClosed
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			c.t.Fatalf("expected a close frame, got %v", err)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(l), &m)
		c.collect(m)
	}
	c.t.Fatalf("connection not closed within %s", timeout)
	return 0, ""
}

// ErrorCode returns the error code of a reply, or 0.
func ErrorCode(reply map[string]any) int {
	if e, ok := reply["error"].(map[string]any); ok {
		return int(e["code"].(float64))
	}
	return 0
}

// ErrorMessage returns the error message of a reply.
func ErrorMessage(reply map[string]any) string {
	if e, ok := reply["error"].(map[string]any); ok {
		s, _ := e["message"].(string)
		return s
	}
	return ""
}
