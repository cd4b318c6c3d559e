package hub

import (
	"context"
	"sync"
	"testing"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/config"
)

type recordingClient struct {
	id string
	mu sync.Mutex
	ds []*Delivery
}

func (c *recordingClient) ID() string     { return c.id }
func (c *recordingClient) User() string   { return "u" }
func (c *recordingClient) Control(Intent) {}
func (c *recordingClient) Deliver(_ *Subscription, d *Delivery) {
	c.mu.Lock()
	c.ds = append(c.ds, d)
	c.mu.Unlock()
}

func (c *recordingClient) deliveries() []*Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Delivery(nil), c.ds...)
}

func newTestHub(t *testing.T) *Hub {
	t.Helper()
	ns, err := NewNamespaces(&config.Channel{MaxLength: 255}, config.NamespaceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mem := broker.NewMemory()
	h, err := New(Options{Broker: mem, Presence: mem, Namespaces: ns, NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func subscribe(t *testing.T, h *Hub, c Client, channel string, delta bool) *Subscription {
	t.Helper()
	if err := h.AddClient(c, 0); err != nil {
		t.Fatal(err)
	}
	res, herr := h.Subscribe(context.Background(), &SubscribeRequest{Client: c, Channel: channel, ServerSide: true, Delta: delta})
	if herr != nil {
		t.Fatal(herr)
	}
	h.Activate(res.Sub)
	return res.Sub
}

// Deliveries of a channel with a delta subscriber carry the previous
// publication, the same for every subscriber; the first has none, and a
// channel whose last delta subscriber left starts over.
func TestDeliveryPrevIsTheChannelsPreviousPublication(t *testing.T) {
	h := newTestHub(t)
	plainOnly := &recordingClient{id: "plain"}
	subscribe(t, h, plainOnly, "other", false)
	deltaA, plainB := &recordingClient{id: "a"}, &recordingClient{id: "b"}
	sa := subscribe(t, h, deltaA, "chat", true)
	subscribe(t, h, plainB, "chat", false)

	publish := func(ch, data string) {
		if _, herr := h.Publish(context.Background(), &PublishRequest{Channel: ch, Data: []byte(data)}); herr != nil {
			t.Fatal(herr)
		}
	}
	publish("chat", `{"n":1}`)
	publish("chat", `{"n":2}`)
	publish("other", `{"n":3}`)

	da, db := deltaA.deliveries(), plainB.deliveries()
	if len(da) != 2 || len(db) != 2 {
		t.Fatalf("deliveries: %d and %d, want 2 each", len(da), len(db))
	}
	if da[0] != db[0] || da[1] != db[1] {
		t.Fatal("subscribers of one channel must share each delivery")
	}
	if da[0].Prev != nil {
		t.Fatalf("first delivery has Prev %q, want none", da[0].Prev.Data)
	}
	if da[1].Prev != da[0].Pub {
		t.Fatalf("second delivery's Prev is %v, want the first publication", da[1].Prev)
	}
	if d := plainOnly.deliveries(); len(d) != 1 || d[0].Prev != nil {
		t.Fatalf("a channel without delta subscribers must not track Prev: %+v", d)
	}

	h.Unsubscribe(sa)
	publish("chat", `{"n":4}`)
	deltaC := &recordingClient{id: "c"}
	subscribe(t, h, deltaC, "chat", true)
	publish("chat", `{"n":5}`)
	if d := deltaC.deliveries(); len(d) != 1 || d[0].Prev != nil {
		t.Fatalf("after the last delta subscriber left, the channel starts over: %+v", d)
	}
}
