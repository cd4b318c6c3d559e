package hub

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/config"
)

// fakeClient records what the hub hands it. It stands for a front door's
// connection; the hub is real, with the memory broker.
type fakeClient struct {
	id, user string
	mu       sync.Mutex
	got      []string // publication data, join/leave as "+user"/"-user"
	intents  []Intent
}

func (f *fakeClient) ID() string   { return f.id }
func (f *fakeClient) User() string { return f.user }
func (f *fakeClient) Deliver(_ *Subscription, d *Delivery) {
	b := d.Encoded(testFormat, func(d *Delivery) []byte {
		builds.Add(1)
		switch d.Kind {
		case KindJoin:
			return []byte("+" + d.Info.User)
		case KindLeave:
			return []byte("-" + d.Info.User)
		}
		return d.Pub.Data
	})
	f.mu.Lock()
	f.got = append(f.got, string(b))
	f.mu.Unlock()
}
func (f *fakeClient) Control(in Intent) {
	f.mu.Lock()
	f.intents = append(f.intents, in)
	f.mu.Unlock()
}
func (f *fakeClient) received() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.got, ",")
}

var (
	testFormat = RegisterFormat("test")
	builds     atomic.Int64
)

type allowAll struct{}

func (allowAll) AuthorizeChannel(context.Context, *auth.ChannelRequest) (*auth.ChannelGrant, *auth.Reason) {
	return &auth.ChannelGrant{History: true, Presence: true}, nil
}

func newTestHub(t *testing.T, index *broker.IndexOptions) *Hub {
	t.Helper()
	ns, err := NewNamespaces(&config.Channel{MaxLength: 255, WithoutNamespace: config.NamespaceOptions{
		HistorySize: 100, HistoryTTL: config.Duration(time.Minute), Presence: true, JoinLeave: true}}, config.NamespaceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mem := broker.NewMemory()
	h, err := New(Options{Broker: mem, Presence: mem, Namespaces: ns, Auth: allowAll{}, NodeID: "n1", Index: index})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func client(t *testing.T, h *Hub, id string) *fakeClient {
	c := &fakeClient{id: id, user: "u-" + id}
	if err := h.AddClient(c, 0); err != nil {
		t.Fatal(err)
	}
	return c
}

func publish(t *testing.T, h *Hub, channel, data string) broker.StreamPosition {
	t.Helper()
	sp, err := h.Publish(context.Background(), &PublishRequest{Channel: channel, Data: []byte(data)})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func subscribe(t *testing.T, h *Hub, c *fakeClient, req SubscribeRequest) *SubscribeResult {
	t.Helper()
	req.Client, req.Conn = c, &auth.Conn{Client: c.id, User: c.user}
	res, err := h.Subscribe(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	h.Activate(res.Sub)
	return res
}

// A publication to many subscribers is encoded once, and every subscriber
// gets the same bytes.
func TestEncodeOncePerFormat(t *testing.T) {
	h := newTestHub(t, nil)
	var cs []*fakeClient
	for i := range 100 {
		c := client(t, h, fmt.Sprint(i))
		subscribe(t, h, c, SubscribeRequest{Channel: "c"})
		cs = append(cs, c)
	}
	builds.Store(0)
	publish(t, h, "c", `1`)
	if n := builds.Load(); n != 1 {
		t.Fatalf("encoded %d times for 100 subscribers", n)
	}
	for _, c := range cs {
		if !strings.HasSuffix(c.received(), "1") {
			t.Fatalf("client %s got %q", c.id, c.received())
		}
	}
}

// Recovery returns the missed publications, and what arrives while the
// subscription is being set up is delivered after the answer, once.
func TestRecoverThenLiveWithoutGapOrDuplicate(t *testing.T) {
	h := newTestHub(t, nil)
	var sp broker.StreamPosition
	for i := range 3 {
		sp = publish(t, h, "c", fmt.Sprint(i))
	}
	c := client(t, h, "a")
	res, err := h.Subscribe(context.Background(), &SubscribeRequest{Client: c, Conn: &auth.Conn{}, Channel: "c", Recoverable: true,
		Recover: &broker.StreamPosition{Offset: 1, Epoch: sp.Epoch}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Recovered || len(res.Publications) != 2 || res.Position.Offset != 1 {
		t.Fatalf("recovered %v, %d publications, offset %d", res.Recovered, len(res.Publications), res.Position.Offset)
	}
	// Published between the answer being built and Activate: buffered.
	publish(t, h, "c", "3")
	if got := c.received(); got != "" {
		t.Fatalf("delivered %q before the answer", got)
	}
	h.Activate(res.Sub)
	publish(t, h, "c", "4")
	if got := c.received(); got != "3,4" {
		t.Fatalf("after the answer got %q, want 3,4", got)
	}
}

// A gap in a positioned subscription's stream tells the client it missed
// publications, and delivery stops.
func TestGapIsInsufficientState(t *testing.T) {
	h := newTestHub(t, nil)
	c := client(t, h, "a")
	res := subscribe(t, h, c, SubscribeRequest{Channel: "c", Positioned: true})
	publish(t, h, "c", "w")
	s := res.Sub
	s.mu.Lock()
	s.offset-- // as if that publication had been lost
	s.mu.Unlock()
	publish(t, h, "c", "x")
	publish(t, h, "c", "y")
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.intents) != 1 || c.intents[0].Why != WhyInsufficientState || len(c.got) != 1 {
		t.Fatalf("intents %+v, got %v", c.intents, c.got)
	}
}

// A resync while a subscription is being set up (before the front door
// answered the client) reaches the front door once it has answered, in
// Activate: it could not act on the subscription earlier, and a
// subscription ended silently would receive nothing more.
func TestResyncDuringSubscribeIsToldAfterTheAnswer(t *testing.T) {
	h := newTestHub(t, nil)
	c := client(t, h, "a")
	req := SubscribeRequest{Channel: "c", Positioned: true, Client: c, Conn: &auth.Conn{Client: "a", User: "u-a"}}
	res, err := h.Subscribe(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	h.HandleResync()
	c.mu.Lock()
	early := len(c.intents)
	c.mu.Unlock()
	if early != 0 {
		t.Fatalf("the front door was told before it answered: %+v", c.intents)
	}
	h.Activate(res.Sub)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.intents) != 1 || c.intents[0].Kind != IntentUnsubscribe || c.intents[0].Why != WhyInsufficientState {
		t.Fatalf("intents after the answer: %+v, want one insufficient state", c.intents)
	}
}

// Presence and join/leave follow the subscription; removing the client
// ends them.
func TestPresenceAndJoinLeave(t *testing.T) {
	h := newTestHub(t, nil)
	a, b := client(t, h, "a"), client(t, h, "b")
	subscribe(t, h, a, SubscribeRequest{Channel: "room", JoinLeave: true})
	subscribe(t, h, b, SubscribeRequest{Channel: "room"})
	st, _ := h.PresenceStats(context.Background(), &ReadRequest{Channel: "room"})
	if st.NumClients != 2 {
		t.Fatalf("presence %+v", st)
	}
	h.RemoveClient(b)
	st, _ = h.PresenceStats(context.Background(), &ReadRequest{Channel: "room"})
	if st.NumClients != 1 || a.received() != "+u-a,+u-b,-u-b" {
		t.Fatalf("presence %+v, a got %q", st, a.received())
	}
	if h.Stats().NumSubs != 1 {
		t.Fatalf("subs %d", h.Stats().NumSubs)
	}
}

// A subscription is in presence when Subscribe returns, before the front
// door answers the client: a presence call made on any node once the client
// has its answer counts it. A subscription dropped before its answer (the
// front door could not answer) leaves presence without a leave.
func TestPresenceBeforeTheAnswer(t *testing.T) {
	h := newTestHub(t, nil)
	a, b := client(t, h, "a"), client(t, h, "b")
	subscribe(t, h, a, SubscribeRequest{Channel: "room", JoinLeave: true})
	req := SubscribeRequest{Channel: "room", Client: b, Conn: &auth.Conn{Client: b.id, User: b.user}}
	res, err := h.Subscribe(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := h.PresenceStats(context.Background(), &ReadRequest{Channel: "room"}); st.NumClients != 2 {
		t.Fatalf("presence before Activate: %+v, want both clients", st)
	}
	if got := a.received(); got != "+u-a" {
		t.Fatalf("a got %q before b's answer; the join comes with Activate", got)
	}
	h.Unsubscribe(res.Sub)
	if st, _ := h.PresenceStats(context.Background(), &ReadRequest{Channel: "room"}); st.NumClients != 1 {
		t.Fatalf("presence after a subscription dropped before its answer: %+v", st)
	}
	if got := a.received(); got != "+u-a" {
		t.Fatalf("a got %q: no leave for a subscription that never joined", got)
	}
}

// Intents reach the user's connections, except the listed ones.
func TestControlReachesTheUser(t *testing.T) {
	h := newTestHub(t, nil)
	a := &fakeClient{id: "a", user: "u"}
	b := &fakeClient{id: "b", user: "u"}
	other := &fakeClient{id: "c", user: "v"}
	for _, c := range []*fakeClient{a, b, other} {
		_ = h.AddClient(c, 0)
	}
	if err := h.Control("u", "", []string{"b"}, Intent{Kind: IntentDisconnect, Why: WhyServer, Code: 4000}); err != nil {
		t.Fatal(err)
	}
	if len(a.intents) != 1 || a.intents[0].Code != 4000 || len(b.intents) != 0 || len(other.intents) != 0 {
		t.Fatalf("a %v b %v other %v", a.intents, b.intents, other.intents)
	}
	if err := h.AddClient(&fakeClient{id: "d", user: "u"}, 2); err == nil || err.Kind != ErrLimit {
		t.Fatalf("third connection with limit 2: %v", err)
	}
}

func TestDrainRefusesPublications(t *testing.T) {
	h := newTestHub(t, nil)
	h.Drain()
	if _, err := h.Publish(context.Background(), &PublishRequest{Channel: "c", Data: []byte("1")}); err == nil || !err.Temporary() {
		t.Fatalf("publish while draining: %v", err)
	}
}

func TestInvalidUTF8IsRefused(t *testing.T) {
	h := newTestHub(t, nil)
	_, err := h.Publish(context.Background(), &PublishRequest{Channel: "c", Data: []byte("\"ok\xffno\""), Encoding: broker.EncodingText})
	if err == nil || err.Kind != ErrBadRequest || !strings.Contains(err.Msg, "offset 3") {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	if _, err := h.Publish(context.Background(), &PublishRequest{Channel: "c", Data: []byte{0xff, 0}, Encoding: broker.EncodingBinary}); err != nil {
		t.Fatalf("binary data is bytes: %v", err)
	}
}
