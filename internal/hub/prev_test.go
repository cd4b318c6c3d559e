package hub

import (
	"context"
	"sync"
	"testing"
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

func subscribeDelta(t *testing.T, h *Hub, c Client, channel string, delta bool) *Subscription {
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
	h := newTestHub(t, nil)
	plainOnly := &recordingClient{id: "plain"}
	subscribeDelta(t, h, plainOnly, "other", false)
	deltaA, plainB := &recordingClient{id: "a"}, &recordingClient{id: "b"}
	sa := subscribeDelta(t, h, deltaA, "chat", true)
	subscribeDelta(t, h, plainB, "chat", false)

	publish := func(ch, data string) { publish(t, h, ch, data) }
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
	subscribeDelta(t, h, deltaC, "chat", true)
	publish("chat", `{"n":5}`)
	if d := deltaC.deliveries(); len(d) != 1 || d[0].Prev != nil {
		t.Fatalf("after the last delta subscriber left, the channel starts over: %+v", d)
	}
}
