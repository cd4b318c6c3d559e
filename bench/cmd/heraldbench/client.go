package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// makeTokens signs one HS256 connection token per connection before any
// measurement starts, so client-side signing is not in the timed window.
func makeTokens(n int, ttl time.Duration) ([]string, error) {
	exp := time.Now().Add(ttl).Unix()
	out := make([]string, n)
	for i := range out {
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "user" + strconv.Itoa(i), "exp": exp})
		s, err := t.SignedString([]byte(hmacSecret))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// recorder collects what one subscriber received during the measured
// window: a bit per expected seq (for missing and duplicate checks) and the
// latency of every delivery.
type recorder struct {
	mu         sync.Mutex
	seen       []uint64 // bitset over seq in [0, m)
	lat        []int64  // receive - send, ns
	got        int
	dups       int
	outOfRange int
	lastRecv   int64 // unix ns of the last measured delivery
}

func (r *recorder) reset(m int) {
	r.mu.Lock()
	r.seen = make([]uint64, (m+63)/64)
	r.lat = make([]int64, 0, m)
	r.got, r.dups, r.outOfRange, r.lastRecv = 0, 0, 0, 0
	r.mu.Unlock()
}

// client is one benchmark WebSocket connection.
type client struct {
	idx int
	ws  *websocket.Conn // WebSocket transport
	sse *sseConn        // SSE (Mercure) transport
	pb  bool            // the WebSocket speaks Protobuf
	// cable: the WebSocket speaks Action Cable (one message per frame).
	cable bool
	buf   []byte
	rec   recorder
	run   *runState
	done  chan struct{}
	err   error
}

// runState is shared by every client of a run.
type runState struct {
	m         int          // seqs expected in the measured window
	delivered atomic.Int64 // measured deliveries (first copies and duplicates)
	pubFrames atomic.Int64 // WebSocket messages that carried at least one measured publication
	warm      atomic.Int64 // warm-up deliveries (seq < 0)
	pings     atomic.Int64 // server pings answered
	other     atomic.Int64 // other messages (replies, unexpected pushes)
	closed    atomic.Int64 // connections closed by the server or failed
	closeCode sync.Map     // close code -> count
}

var (
	pongFrame = []byte("{}")
	keySeq    = []byte(`"seq":`)
	keyT      = []byte(`"t":`)
	keyPub    = []byte(`"pub":`)
)

// dialer dials loopback only.
var dialer = &websocket.Dialer{
	HandshakeTimeout: 15 * time.Second,
	ReadBufferSize:   4096,
	WriteBufferSize:  1024,
	NetDialContext:   (&net.Dialer{Timeout: 15 * time.Second}).DialContext,
}

// connectClient dials, sends connect with the token and waits for its reply,
// then subscribes to channel and waits for that reply: what an SDK does.
func connectClient(wsURL, token, channel string, idx int, rs *runState) (*client, error) {
	ws, _, err := dialer.Dial(wsURL, nil)
	if err != nil {
		return nil, err
	}
	c := &client{idx: idx, ws: ws, run: rs, done: make(chan struct{}), buf: make([]byte, 0, 512)}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	cmd := make([]byte, 0, len(token)+48)
	cmd = append(cmd, `{"id":1,"connect":{"token":"`...)
	cmd = append(cmd, token...)
	cmd = append(cmd, `"}}`...)
	if err := c.command(cmd, 1); err != nil {
		ws.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	cmd = cmd[:0]
	cmd = append(cmd, `{"id":2,"subscribe":{"channel":`...)
	cmd = strconv.AppendQuote(cmd, channel)
	cmd = append(cmd, `}}`...)
	if err := c.command(cmd, 2); err != nil {
		ws.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	return c, nil
}

// command writes one command and reads until the reply with id arrives.
func (c *client) command(cmd []byte, id int) error {
	if err := c.ws.WriteMessage(websocket.TextMessage, cmd); err != nil {
		return err
	}
	prefix := []byte(`{"id":` + strconv.Itoa(id) + `,`)
	for {
		data, err := c.readFrame()
		if err != nil {
			return err
		}
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if bytes.Equal(line, pongFrame) {
				if err := c.ws.WriteMessage(websocket.TextMessage, pongFrame); err != nil {
					return err
				}
				continue
			}
			if bytes.HasPrefix(line, prefix) {
				if bytes.Contains(line, []byte(`"error":`)) {
					return fmt.Errorf("refused: %s", line)
				}
				return nil
			}
		}
	}
}

// readFrame reads one WebSocket message into the client's reused buffer.
func (c *client) readFrame() ([]byte, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	b := c.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	c.buf = b
	return b, nil
}

// ended records why the connection ended, with the close code when the
// server sent one.
func (c *client) ended(err error) {
	c.err = err
	c.run.closed.Add(1)
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		v, _ := c.run.closeCode.LoadOrStore(ce.Code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
}

// readLoop reads until the connection ends, answering pings and recording
// publications. One goroutine per connection.
func (c *client) readLoop() {
	if c.sse != nil {
		c.readSSE()
		return
	}
	if c.pb {
		c.readPB()
		return
	}
	defer close(c.done)
	for {
		data, err := c.readFrame()
		now := time.Now().UnixNano()
		if err != nil {
			c.ended(err)
			return
		}
		pubs := 0
		if c.cable {
			if c.handleCableFrame(data, now) {
				pubs++
			}
			data = nil
		}
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if c.handleLine(line, now) {
				pubs++
			}
		}
		if pubs > 0 {
			c.run.pubFrames.Add(1)
		}
	}
}

// handleLine handles one message of a frame; it reports whether it was a
// measured publication.
func (c *client) handleLine(line []byte, now int64) bool {
	if len(line) == 2 && line[0] == '{' && line[1] == '}' {
		c.run.pings.Add(1)
		// Only this goroutine writes after setup, so no lock is needed.
		_ = c.ws.WriteMessage(websocket.TextMessage, pongFrame)
		return false
	}
	t, seq, ok := parsePub(line)
	if !ok {
		c.run.other.Add(1)
		return false
	}
	return c.record(t, seq, now)
}

// record records a publication with send time t; it reports whether it was
// measured (not a warm-up one).
func (c *client) record(t, seq, now int64) bool {
	if seq < 0 {
		c.run.warm.Add(1)
		return false
	}
	r := &c.rec
	r.mu.Lock()
	if seq >= int64(c.run.m) || r.seen == nil {
		r.outOfRange++
	} else {
		w, bit := seq/64, uint64(1)<<(seq%64)
		if r.seen[w]&bit != 0 {
			r.dups++
		} else {
			r.seen[w] |= bit
			r.got++
			r.lat = append(r.lat, now-t)
		}
	}
	r.lastRecv = now
	r.mu.Unlock()
	c.run.delivered.Add(1)
	return true
}

// parsePub extracts t and seq from a publication push such as
// {"push":{"channel":"c","pub":{"data":{"t":123,"seq":4},"offset":5}}}.
// It only scans for the keys; the benchmark's channel names and data
// contain no other "t" or "seq" keys.
func parsePub(line []byte) (t, seq int64, ok bool) {
	p := bytes.Index(line, keyPub)
	if p < 0 {
		return 0, 0, false
	}
	return parseData(line[p+len(keyPub):])
}

func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	if i == 0 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// close sends a normal close frame and closes the socket.
func (c *client) close() {
	if c.sse != nil {
		_ = c.sse.nc.Close()
		return
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = c.ws.Close()
}

// closeCodes lists the close codes the server sent, as "code:count,...".
func (rs *runState) closeCodes() string {
	var parts []string
	rs.closeCode.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%d:%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
