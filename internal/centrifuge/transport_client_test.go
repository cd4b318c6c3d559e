package centrifuge_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// Clients of the transports besides JSON over WebSocket (testutil.Client),
// over real sockets.

// httpClient keeps no idle connections: test servers come and go on
// random ports, and a pooled connection to a stopped one fails a POST.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// transportsConfig is the test configuration with every transport on.
func transportsConfig() *config.Config {
	cfg := testutil.Config()
	t := &cfg.Transports
	t.HTTPStream.Enabled, t.SSE.Enabled = true, true
	t.UniWebSocket.Enabled, t.UniSSE.Enabled, t.UniHTTPStream.Enabled = true, true, true
	return cfg
}

func delimit(m interface{ MarshalCF() ([]byte, error) }) []byte {
	b, err := m.MarshalCF()
	if err != nil {
		panic(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

// decodeReplies splits varint-delimited Protobuf replies.
func decodeReplies(t testing.TB, b []byte) []*protocol.Reply {
	t.Helper()
	var out []*protocol.Reply
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			t.Fatalf("bad record in % x", b)
		}
		var r protocol.Reply
		if err := r.UnmarshalCF(b[k : k+int(n)]); err != nil {
			t.Fatalf("undecodable reply: %v", err)
		}
		out = append(out, &r)
		b = b[k+int(n):]
	}
	return out
}

// pbClient speaks Protobuf over a WebSocket.
type pbClient struct {
	t       testing.TB
	conn    *websocket.Conn
	id      uint32
	queue   []*protocol.Reply
	Pushes  []*protocol.Push
	Pings   int
	lastRaw []byte
}

// dialProtobuf opens a Protobuf WebSocket: by subprotocol, or by query.
func dialProtobuf(t testing.TB, srv *testutil.Server, query string) *pbClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	var h http.Header
	if query == "" {
		d.Subprotocols = []string{"centrifuge-protobuf"}
	}
	conn, _, err := d.Dial(srv.WSURL()+query, h)
	if err != nil {
		t.Fatalf("dial protobuf: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &pbClient{t: t, conn: conn}
}

func (c *pbClient) sendRaw(b []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next reply, reading frames as needed.
func (c *pbClient) next(timeout time.Duration) (*protocol.Reply, error) {
	for len(c.queue) == 0 {
		_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
		typ, b, err := c.conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		if typ != websocket.BinaryMessage {
			c.t.Fatalf("Protobuf frames must be binary, got type %d: %q", typ, b)
		}
		c.lastRaw = b
		c.queue = decodeReplies(c.t, b)
	}
	r := c.queue[0]
	c.queue = c.queue[1:]
	return r, nil
}

// call sends cmd with the next id and waits for its reply; pushes and
// pings seen meanwhile are collected.
func (c *pbClient) call(cmd *protocol.Command) *protocol.Reply {
	c.t.Helper()
	c.id++
	cmd.Id = c.id
	c.sendRaw(delimit(cmd))
	for {
		r, err := c.next(5 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for reply %d: %v", cmd.Id, err)
		}
		if c.collect(r) {
			continue
		}
		if r.Id == cmd.Id {
			return r
		}
	}
}

func (c *pbClient) collect(r *protocol.Reply) bool {
	switch {
	case r.Push != nil:
		c.Pushes = append(c.Pushes, r.Push)
		return true
	case r.Id == 0:
		c.Pings++
		return true
	}
	return false
}

// push waits for the next push.
func (c *pbClient) push() *protocol.Push {
	c.t.Helper()
	if len(c.Pushes) > 0 {
		p := c.Pushes[0]
		c.Pushes = c.Pushes[1:]
		return p
	}
	for {
		r, err := c.next(5 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for a push: %v", err)
		}
		if r.Push != nil {
			return r.Push
		}
		c.collect(r)
	}
}

func (c *pbClient) expectClose(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_ = c.conn.SetReadDeadline(deadline)
		if _, _, err := c.conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
	c.t.Fatal("no close frame")
	return 0
}

// stream is a client of an HTTP response stream (http_stream, sse, uni_*).
type stream struct {
	t     testing.TB
	srv   *testutil.Server
	resp  *http.Response
	items chan []byte
	sse   bool
	proto bool
	buf   []byte // Protobuf bytes read but not yet decoded
}

// openStream sends the request that starts a stream and reads its body in
// the background: lines (JSON), SSE events, or raw bytes (Protobuf).
func openStream(t testing.TB, srv *testutil.Server, method, path, contentType string, body []byte) *stream {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+srv.Addr+path, bytes.NewReader(body))
	if body == nil {
		req.Body = http.NoBody
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := &stream{t: t, srv: srv, resp: resp, items: make(chan []byte, 256),
		sse: strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"), proto: contentType == "application/octet-stream"}
	go s.read()
	return s
}

func (s *stream) read() {
	defer close(s.items)
	if s.proto {
		for {
			b := make([]byte, 4096)
			n, err := s.resp.Body.Read(b)
			if n > 0 {
				s.items <- b[:n]
			}
			if err != nil {
				return
			}
		}
	}
	br := bufio.NewReader(s.resp.Body)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		if s.sse {
			if !bytes.HasPrefix(line, []byte("data: ")) {
				continue // the leading empty line, event separators
			}
			line = line[len("data: "):]
		}
		s.items <- line
	}
}

// next returns the next JSON message of the stream, or nil at its end.
func (s *stream) next(timeout time.Duration) map[string]any {
	s.t.Helper()
	select {
	case b, ok := <-s.items:
		if !ok {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			s.t.Fatalf("stream item %q is not JSON: %v", b, err)
		}
		return m
	case <-time.After(timeout):
		s.t.Fatalf("nothing on the stream within %s", timeout)
	}
	return nil
}

// nextWith skips pings until a message with key arrives.
func (s *stream) nextWith(key string) map[string]any {
	s.t.Helper()
	for {
		m := s.next(5 * time.Second)
		if m == nil {
			s.t.Fatalf("the stream ended while waiting for %q", key)
		}
		if _, ok := m[key]; ok {
			return m
		}
	}
}

// nextProto returns the next Protobuf reply of the stream.
func (s *stream) nextProto(timeout time.Duration) *protocol.Reply {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		if len(s.buf) > 0 {
			if n, k := binary.Uvarint(s.buf); k > 0 && uint64(len(s.buf)-k) >= n {
				var r protocol.Reply
				if err := r.UnmarshalCF(s.buf[k : k+int(n)]); err != nil {
					s.t.Fatalf("undecodable reply: %v", err)
				}
				s.buf = s.buf[k+int(n):]
				return &r
			}
		}
		select {
		case b, ok := <-s.items:
			if !ok {
				return nil
			}
			s.buf = append(s.buf, b...)
		case <-deadline:
			s.t.Fatalf("no reply on the stream within %s", timeout)
		}
	}
}

// ended waits for the end of the stream.
func (s *stream) ended(timeout time.Duration) {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-s.items:
			if !ok {
				return
			}
		case <-deadline:
			s.t.Fatal("the stream did not end")
		}
	}
}

// emulate posts a command frame of the session to /emulation and returns
// the status and body.
func emulate(t testing.TB, srv *testutil.Server, contentType string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Addr+"/emulation", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("/emulation: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// emulateJSON sends commands of a JSON session through /emulation.
func emulateJSON(t testing.TB, srv *testutil.Server, session, node string, frame string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"session": session, "node": node, "data": frame})
	if status, b := emulate(t, srv, "application/json", body); status != http.StatusNoContent {
		t.Fatalf("/emulation: %d %s", status, b)
	}
}
