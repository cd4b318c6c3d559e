package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/testutil"
)

// Followers are clients that behave as the SDKs do when Herald tells them
// they may have missed publications, and count what they receive, so that
// a test can check that nothing was lost or delivered twice across broker
// failures: a Centrifugo client resubscribes with recovery on unsubscribe
// 2500 and reconnects on a close; a Mercure subscriber reconnects with
// Last-Event-ID when its stream ends. Each runs in its own goroutine.

// seen counts the publications (by their "n") a follower received.
type seen struct {
	mu     sync.Mutex
	counts map[int]int
	events []string // what Herald told the client, in order
}

func (s *seen) add(n int) {
	s.mu.Lock()
	if s.counts == nil {
		s.counts = map[int]int{}
	}
	s.counts[n]++
	s.mu.Unlock()
}

func (s *seen) note(format string, args ...any) {
	s.mu.Lock()
	s.events = append(s.events, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// Events returns what Herald told the client.
func (s *seen) Events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

// hasEvent reports whether an event starting with prefix was noted.
func (s *seen) hasEvent(prefix string) bool {
	for _, e := range s.Events() {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// check returns an error unless every n in want arrived exactly once and
// nothing else arrived but ns in maybe (publications whose publish failed
// in a way that may have stored them).
func (s *seen) check(want, maybe map[int]bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var missing, dup, extra []int
	for n := range want {
		if s.counts[n] == 0 {
			missing = append(missing, n)
		}
	}
	for n, c := range s.counts {
		if c > 1 {
			dup = append(dup, n)
		}
		if !want[n] && !maybe[n] {
			extra = append(extra, n)
		}
	}
	sort.Ints(missing)
	sort.Ints(dup)
	if len(missing)+len(dup)+len(extra) > 0 {
		return fmt.Errorf("%d missing %v, %d duplicated %v, %d never accepted %v (events %v)",
			len(missing), head(missing), len(dup), head(dup), len(extra), head(extra), s.events)
	}
	return nil
}

func head(ns []int) []int { return ns[:min(len(ns), 10)] }

// centFollower is a Centrifugo client following one channel on a node.
type centFollower struct {
	seen
	t       *testing.T
	node    func() *testutil.Server // where to (re)connect
	user    string
	channel string
	stop    chan struct{}
	done    chan struct{}
}

func followCentrifugo(t *testing.T, node func() *testutil.Server, user, channel string) *centFollower {
	f := &centFollower{t: t, node: node, user: user, channel: channel, stop: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go f.run(ready)
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

// Stop ends the follower.
func (f *centFollower) Stop() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

func (f *centFollower) stopped() bool {
	select {
	case <-f.stop:
		return true
	default:
		return false
	}
}

// run owns the connection: it connects, subscribes, and then reads,
// resubscribing or reconnecting as the SDK would.
func (f *centFollower) run(ready chan<- error) {
	defer close(f.done)
	var offset uint64
	var epoch string
	first := true
	for !f.stopped() {
		c, err := f.dial()
		if err != nil {
			if first {
				ready <- err
				return
			}
			f.note("dial failed: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		sub := func(recover bool) {
			p := map[string]any{"channel": f.channel, "recoverable": true}
			if recover {
				p["recover"], p["offset"], p["epoch"] = true, offset, epoch
			}
			b, _ := json.Marshal(map[string]any{"id": 2, "subscribe": p})
			_ = c.WriteMessage(string(b))
		}
		sub(!first)
		if first {
			first = false
			ready <- nil
		}
		closed := f.read(c, sub, &offset, &epoch)
		_ = c.Close()
		if closed != "" {
			f.note("closed %s", closed)
		}
	}
}

// read handles one connection until it closes or the follower stops; it
// returns the close code and reason.
func (f *centFollower) read(c *rawWS, sub func(recover bool), offset *uint64, epoch *string) string {
	for !f.stopped() {
		lines, err := c.ReadLines(100 * time.Millisecond)
		if err != nil {
			var ce *testutil.ErrClosed
			if errors.As(err, &ce) {
				return fmt.Sprintf("%d %s", ce.Code, ce.Reason)
			}
			if isTimeout(err) {
				continue
			}
			return err.Error()
		}
		for _, l := range lines {
			var m struct {
				ID        int `json:"id"`
				Error     *struct{ Code int }
				Subscribe *subscribeResult `json:"subscribe"`
				Push      *struct {
					Channel     string
					Pub         *wirePub
					Unsubscribe *struct {
						Code   int
						Reason string
					}
				}
			}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				f.note("undecodable %q", l)
				continue
			}
			switch {
			case m.ID == 2 && m.Error != nil:
				// Temporary (the broker is away): retry as the SDK does.
				f.note("subscribe error %d", m.Error.Code)
				time.Sleep(100 * time.Millisecond)
				sub(*epoch != "")
			case m.ID == 2 && m.Subscribe != nil:
				r := m.Subscribe
				if r.WasRecovering {
					f.note("recovered %v", r.Recovered)
				}
				for _, p := range r.Publications {
					f.add(p.n())
				}
				*epoch = r.Epoch
				*offset = r.Offset
				if n := len(r.Publications); n > 0 {
					*offset = r.Publications[n-1].Offset
				}
			case m.Push != nil && m.Push.Pub != nil:
				f.add(m.Push.Pub.n())
				*offset = m.Push.Pub.Offset
			case m.Push != nil && m.Push.Unsubscribe != nil:
				f.note("unsubscribe %d", m.Push.Unsubscribe.Code)
				if m.Push.Unsubscribe.Code >= 2500 {
					sub(true)
				}
			}
		}
	}
	return ""
}

func (f *centFollower) dial() (*rawWS, error) {
	n := f.node()
	c, err := dialWS(n.WSURL())
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]any{"token": testutil.UserToken(f.t, f.user)}})
	_ = c.WriteMessage(string(b))
	lines, err := c.ReadLines(wait)
	if err != nil || len(lines) == 0 || !strings.Contains(lines[0], `"connect"`) {
		_ = c.Close()
		return nil, fmt.Errorf("connect on %s: %v %v", n.Addr, lines, err)
	}
	return c, nil
}

type subscribeResult struct {
	Recovered     bool      `json:"recovered"`
	WasRecovering bool      `json:"was_recovering"`
	Epoch         string    `json:"epoch"`
	Offset        uint64    `json:"offset"`
	Publications  []wirePub `json:"publications"`
}

type wirePub struct {
	Data   struct{ N int } `json:"data"`
	Offset uint64          `json:"offset"`
}

func (p wirePub) n() int { return p.Data.N }

// mercureFollower is a Mercure subscriber following one topic on a node.
type mercureFollower struct {
	seen
	node   func() *testutil.Server
	token  string
	topic  string
	stop   context.CancelFunc
	ctx    context.Context
	done   chan struct{}
	mu     sync.Mutex
	lastID string
}

func followMercure(t *testing.T, node func() *testutil.Server, topic string) *mercureFollower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &mercureFollower{node: node, token: testutil.SubscriberToken(t, topic), topic: topic, stop: cancel, ctx: ctx,
		done: make(chan struct{})}
	ready := make(chan struct{})
	go f.run(ready)
	select {
	case <-ready:
	case <-time.After(wait):
		t.Fatal("the Mercure follower did not open its stream")
	}
	t.Cleanup(f.Stop)
	return f
}

// Stop ends the follower.
func (f *mercureFollower) Stop() {
	f.stop()
	<-f.done
}

func (f *mercureFollower) run(ready chan struct{}) {
	defer close(f.done)
	once := sync.OnceFunc(func() { close(ready) })
	for f.ctx.Err() == nil {
		f.stream(once)
		select {
		case <-f.ctx.Done():
		case <-time.After(50 * time.Millisecond): // EventSource waits a little too
		}
	}
}

// stream reads one stream until it ends, as EventSource does.
func (f *mercureFollower) stream(opened func()) {
	n := f.node()
	req, _ := http.NewRequestWithContext(f.ctx, http.MethodGet, n.MercureURL()+"?"+url.Values{"topic": {f.topic}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	f.mu.Lock()
	last := f.lastID
	f.mu.Unlock()
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if f.ctx.Err() == nil {
			f.note("subscribe failed: %v", err)
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.note("subscribe status %d", resp.StatusCode)
		return
	}
	if last != "" {
		f.note("reconnected, Last-Event-ID %s", resp.Header.Get("Last-Event-ID"))
	}
	opened()
	sc := bufio.NewScanner(resp.Body)
	var id, data string
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "id: "):
			id = l[4:]
		case strings.HasPrefix(l, "data: "):
			data = l[6:]
		case l == "" && data != "":
			var d struct{ N int }
			if json.Unmarshal([]byte(data), &d) == nil {
				f.add(d.N)
			}
			f.mu.Lock()
			f.lastID = id
			f.mu.Unlock()
			id, data = "", ""
		}
	}
	if f.ctx.Err() == nil {
		f.note("stream ended")
	}
}

// rawWS is a WebSocket whose frames a goroutine reads into a channel, so
// that a follower can wait for them with a timeout.
type rawWS struct {
	conn  *websocket.Conn
	wmu   sync.Mutex
	lines chan []string
	err   error // set before lines closes
}

var errReadTimeout = errors.New("read timeout")

func isTimeout(err error) bool { return errors.Is(err, errReadTimeout) }

func dialWS(u string) (*rawWS, error) {
	d := websocket.Dialer{HandshakeTimeout: wait}
	conn, _, err := d.Dial(u, nil)
	if err != nil {
		return nil, err
	}
	c := &rawWS{conn: conn, lines: make(chan []string, 1024)}
	go func() {
		defer close(c.lines)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					err = &testutil.ErrClosed{Code: ce.Code, Reason: ce.Text}
				}
				c.err = err
				return
			}
			ls := strings.Split(string(data), "\n")
			if len(ls) == 1 && ls[0] == "{}" {
				_ = c.WriteMessage("{}") // the protocol's ping
				continue
			}
			c.lines <- ls
		}
	}()
	return c, nil
}

// ReadLines returns the messages of the next frame.
func (c *rawWS) ReadLines(timeout time.Duration) ([]string, error) {
	select {
	case ls, ok := <-c.lines:
		if !ok {
			return nil, c.err
		}
		return ls, nil
	case <-time.After(timeout):
		return nil, errReadTimeout
	}
}

func (c *rawWS) WriteMessage(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(wait))
	return c.conn.WriteMessage(websocket.TextMessage, []byte(s))
}

func (c *rawWS) Close() error { return c.conn.Close() }

// publisher publishes {"n":1}, {"n":2}, ... to a channel until stopped,
// through the server API or Mercure of a node, and records which were
// accepted, which refused (503 with a reason, or no node to take them),
// and anything else.
type publisher struct {
	node    func(n int) *testutil.Server
	mercure func(n int) bool // publish n through Mercure rather than the API
	channel string
	every   time.Duration
	token   string
	stop    chan struct{}
	done    chan struct{}

	mu         sync.Mutex
	first      int
	next       int
	accepted   map[int]bool
	refused    map[int]bool
	unexpected []string
}

// followOn starts a Centrifugo follower and a Mercure follower of channel
// on node n.
func followOn(t *testing.T, n *testutil.Server, channel string) (*centFollower, *mercureFollower) {
	on := func() *testutil.Server { return n }
	return followCentrifugo(t, on, "follower", channel), followMercure(t, on, channel)
}

// publishThrough starts publishing to channel through node n, every other
// publication through Mercure, the others through the server API.
func publishThrough(t *testing.T, n *testutil.Server, channel string, from int, every time.Duration) *publisher {
	return startPublisher(t, channel, from, every, func(int) *testutil.Server { return n }, func(k int) bool { return k%2 == 0 })
}

// startPublisher starts publishing n = from, from+1, ...
func startPublisher(t *testing.T, channel string, from int, every time.Duration, node func(n int) *testutil.Server, mercure func(n int) bool) *publisher {
	p := &publisher{node: node, mercure: mercure, channel: channel, every: every, token: testutil.PublisherToken(t, "*"),
		stop: make(chan struct{}), done: make(chan struct{}), first: from, next: from, accepted: map[int]bool{}, refused: map[int]bool{}}
	go p.run()
	t.Cleanup(p.Stop)
	return p
}

// Stop stops publishing and waits for the last request.
func (p *publisher) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// Last returns the last n tried so far.
func (p *publisher) Last() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next - 1
}

// Count returns how many publications were tried so far.
func (p *publisher) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next - p.first
}

// Results returns the accepted and refused publications, and anything
// unexpected (a status other than 200 and 503, a 503 without a reason).
func (p *publisher) Results() (accepted, refused map[int]bool, unexpected []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.accepted), maps.Clone(p.refused), append([]string(nil), p.unexpected...)
}

func (p *publisher) run() {
	defer close(p.done)
	client := &http.Client{Timeout: 10 * time.Second}
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(p.every):
		}
		p.mu.Lock()
		n := p.next
		p.next++
		p.mu.Unlock()
		status, body := p.publish(client, n)
		p.mu.Lock()
		switch {
		case status == http.StatusOK && (strings.Contains(body, `"result"`) || strings.HasPrefix(body, "urn:uuid:")):
			p.accepted[n] = true
		case status == http.StatusServiceUnavailable && strings.TrimSpace(body) != "", status == 0:
			// Refused for now, with the reason; or the node is not there
			// (a restart): the publisher would try another.
			p.refused[n] = true
		default:
			p.unexpected = append(p.unexpected, fmt.Sprintf("publication %d: %d %s", n, status, body))
		}
		p.mu.Unlock()
	}
}

func (p *publisher) publish(client *http.Client, n int) (int, string) {
	node := p.node(n)
	data := fmt.Sprintf(`{"n":%d}`, n)
	var req *http.Request
	if p.mercure != nil && p.mercure(n) {
		form := url.Values{"topic": {p.channel}, "data": {data}}
		req, _ = http.NewRequest(http.MethodPost, node.MercureURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+p.token)
	} else {
		body := fmt.Sprintf(`{"channel":%q,"data":%s}`, p.channel, data)
		req, _ = http.NewRequest(http.MethodPost, "http://"+node.Addr+"/api/publish", strings.NewReader(body))
		req.Header.Set("X-API-Key", testutil.APIKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
