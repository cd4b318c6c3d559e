package actioncable_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// Helpers: a real server with the Action Cable door on, and a raw Action
// Cable client over a real WebSocket.

const (
	protoJSON = "actioncable-v1-json"
	protoExt  = "actioncable-v1-ext-json"
	// cableSecret signs AnyCable tokens and stream names in these tests.
	cableSecret = "anycable-test-secret-0123456789abcdef"
)

func cableConfig() *config.Config {
	cfg := testutil.Config()
	cfg.ActionCable.Enabled = true
	cfg.ActionCable.JWT.Secret = cableSecret
	cfg.ActionCable.Streams.Secret = cableSecret
	return cfg
}

func startCable(t *testing.T, mutate func(*config.Config)) *testutil.Server {
	t.Helper()
	cfg := cableConfig()
	if mutate != nil {
		mutate(cfg)
	}
	return testutil.Start(t, cfg)
}

type cable struct {
	t        *testing.T
	conn     *websocket.Conn
	protocol string
	pings    int
	frames   chan frame
}

// frame is a message read by the cable's reader goroutine (or the error
// that ended it).
type frame struct {
	m   map[string]any
	raw string
	err error
}

func (c *cable) readLoop() {
	defer close(c.frames)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.frames <- frame{err: err}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			c.frames <- frame{err: fmt.Errorf("frame %q is not a JSON object: %v", data, err)}
			return
		}
		if strings.Contains(string(data), "\n") {
			c.frames <- frame{err: fmt.Errorf("frame %q holds a raw newline", data)}
			return
		}
		c.frames <- frame{m: m, raw: string(data)}
	}
}

type dialOpts struct {
	protocols []string
	header    http.Header
	query     string
}

func dialCable(t *testing.T, srv *testutil.Server, o dialOpts) *cable {
	t.Helper()
	c, resp, err := tryDial(srv, o)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("dial: %v %s", err, body)
	}
	c.t = t
	t.Cleanup(func() { _ = c.conn.Close() })
	return c
}

func tryDial(srv *testutil.Server, o dialOpts) (*cable, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: o.protocols}
	url := "ws://" + srv.Addr + srv.Cfg.ActionCable.Path
	if o.query != "" {
		url += "?" + o.query
	}
	conn, resp, err := d.Dial(url, o.header)
	if err != nil {
		return nil, resp, err
	}
	c := &cable{conn: conn, protocol: conn.Subprotocol(), frames: make(chan frame, 1024)}
	go c.readLoop()
	return c, resp, nil
}

// dialWelcome dials with the plain protocol and reads the welcome.
func dialWelcome(t *testing.T, srv *testutil.Server, protocol string, query string) (*cable, map[string]any) {
	t.Helper()
	c := dialCable(t, srv, dialOpts{protocols: []string{protocol}, query: query})
	return c, c.expect("welcome")
}

func (c *cable) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

var errTimeout = errors.New("timeout")

// read returns the next message (pings included), or an error (a close,
// or errTimeout).
func (c *cable) read(timeout time.Duration) (map[string]any, string, error) {
	select {
	case f, ok := <-c.frames:
		if !ok {
			return nil, "", io.EOF
		}
		return f.m, f.raw, f.err
	case <-time.After(timeout):
		return nil, "", errTimeout
	}
}

// next returns the next message that is not a ping.
func (c *cable) next(timeout time.Duration) (map[string]any, string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, raw, err := c.read(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("no message within %s: %v", timeout, err)
		}
		if m["type"] == "ping" {
			c.pings++
			continue
		}
		return m, raw
	}
}

// expect reads until a message of type typ ("" = a data frame) and returns it.
func (c *cable) expect(typ string) map[string]any {
	c.t.Helper()
	m, raw := c.next(5 * time.Second)
	got, _ := m["type"].(string)
	if got != typ {
		c.t.Fatalf("got %s, want type %q", raw, typ)
	}
	return m
}

// expectRaw returns the next message's text.
func (c *cable) expectRaw() string {
	c.t.Helper()
	_, raw := c.next(5 * time.Second)
	return raw
}

// quiet fails when a message other than a ping arrives within d.
func (c *cable) quiet(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, raw, err := c.read(time.Until(deadline))
		if err == errTimeout {
			return
		}
		if err != nil {
			c.t.Fatalf("connection ended: %v", err)
		}
		if m["type"] != "ping" {
			c.t.Fatalf("unexpected message %s", raw)
		}
	}
}

// expectClose reads until the close frame and returns the messages before it.
func (c *cable) expectClose() (int, string, []map[string]any) {
	c.t.Helper()
	var msgs []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, _, err := c.read(time.Until(deadline))
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text, msgs
			}
			c.t.Fatalf("expected a close frame, got %v (messages %v)", err, msgs)
		}
		if m["type"] != "ping" {
			msgs = append(msgs, m)
		}
	}
}

func subscribe(id string) map[string]any {
	return map[string]any{"command": "subscribe", "identifier": id}
}

func ident(params map[string]any) string {
	b, _ := json.Marshal(params)
	return string(b)
}

func pubsub(stream string) string {
	return ident(map[string]any{"channel": "$pubsub", "stream_name": stream})
}

// broadcast posts body to /_broadcast with a bearer key; it returns the
// status and the body.
func broadcast(t *testing.T, srv *testutil.Server, key string, body any) (int, string) {
	t.Helper()
	var b []byte
	if s, ok := body.(string); ok {
		b = []byte(s)
	} else {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Addr+srv.Cfg.ActionCable.Broadcast.Path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("broadcast: %v", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(rb)
}

// waitLog waits until the server log holds every one of wants.
func waitLog(t *testing.T, srv *testutil.Server, wants ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs := srv.Logs.String()
		missing := ""
		for _, w := range wants {
			if !strings.Contains(logs, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log has no %q", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const testAPIKey = testutil.APIKey

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func testutilUserToken(t *testing.T) string { return testutil.UserToken(t, "centrifugo-user") }

func signStream(name string) string { return auth.SignStream(name, []byte(cableSecret)) }
