package hub

import (
	"context"
	"fmt"
	"testing"

	"github.com/heraldhub/herald/internal/broker"
)

func subscribeSelectors(t *testing.T, h *Hub, c *fakeClient, req SelectorRequest) *SelectorResult {
	t.Helper()
	req.Client = c
	res, err := h.SubscribeSelectors(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	h.Activate(res.Sub)
	return res
}

func update(t *testing.T, h *Hub, id string, private bool, topics ...string) {
	t.Helper()
	if _, err := h.Publish(context.Background(), &PublishRequest{Channel: topics[0], Topics: topics, Topic: true, ID: id,
		Data: []byte(id), Encoding: broker.EncodingText, Private: private}); err != nil {
		t.Fatal(err)
	}
}

var testIndex = &broker.IndexOptions{Size: 10}

// A subscriber reached through several exact and template selectors gets
// each update once; removal empties the index.
func TestSelectorsDeliverOnceThroughEveryPath(t *testing.T) {
	h := newTestHub(t, testIndex)
	s := client(t, h, "s")
	other := client(t, h, "o")
	subscribeSelectors(t, h, s, SelectorRequest{Selectors: []string{"a", "b", "x/{id}"}})
	subscribeSelectors(t, h, other, SelectorRequest{Selectors: []string{"c"}})
	update(t, h, "1", false, "a", "b", "x/1")
	update(t, h, "2", false, "c")
	update(t, h, "3", false, "x/2")
	if s.received() != "1,3" || other.received() != "2" {
		t.Fatalf("s got %q, other %q", s.received(), other.received())
	}
	h.RemoveClient(s)
	h.RemoveClient(other)
	if len(h.sel.exact) != 0 || len(h.sel.wide) != 0 || h.sel.count.Load() != 0 {
		t.Fatalf("index not empty: %v %v", h.sel.exact, h.sel.wide)
	}
}

// Private updates, and publications made through another door, reach only
// authenticated subscribers whose allowed selectors match one of their topics.
func TestSelectorsPrivateRule(t *testing.T) {
	h := newTestHub(t, testIndex)
	anon := client(t, h, "anon")
	allowed := client(t, h, "allowed")
	denied := client(t, h, "denied")
	subscribeSelectors(t, h, anon, SelectorRequest{Selectors: []string{"*"}})
	subscribeSelectors(t, h, allowed, SelectorRequest{Selectors: []string{"*"}, Authenticated: true, Allowed: []string{"books/{id}"}})
	subscribeSelectors(t, h, denied, SelectorRequest{Selectors: []string{"*"}, Authenticated: true, Allowed: []string{"authors/{id}"}})
	update(t, h, "public", false, "books/1")
	update(t, h, "private", true, "books/1")
	publish(t, h, "books/2", `"api"`) // another door: private to Mercure subscribers
	if anon.received() != "public" || allowed.received() != `public,private,"api"` || denied.received() != "public" {
		t.Fatalf("anon %q allowed %q denied %q", anon.received(), allowed.received(), denied.received())
	}
}

// Replay after a last event id: the updates after it, filtered like live
// delivery, and what arrives during the read is not delivered twice.
func TestSelectorsReplay(t *testing.T) {
	h := newTestHub(t, testIndex)
	for i := range 5 {
		update(t, h, fmt.Sprint(i), false, fmt.Sprint("t", i%2))
	}
	c := client(t, h, "c")
	res, err := h.SubscribeSelectors(context.Background(), &SelectorRequest{Client: c, Selectors: []string{"t0"}, Replay: true, LastEventID: "0"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range res.Replay {
		ids = append(ids, p.ID)
	}
	if !res.Found || fmt.Sprint(ids) != "[2 4]" {
		t.Fatalf("found %v, replay %v", res.Found, ids)
	}
	update(t, h, "5", false, "t0") // arrives before Activate: buffered
	h.Activate(res.Sub)
	update(t, h, "6", false, "t0")
	if c.received() != "5,6" {
		t.Fatalf("live after replay: %q", c.received())
	}
	res2, _ := h.SubscribeSelectors(context.Background(), &SelectorRequest{Client: client(t, h, "d"), Selectors: []string{"t0"}, Replay: true, LastEventID: "unknown"})
	if res2.Found || len(res2.Replay) != 0 {
		t.Fatalf("unknown id: found %v, replay %d", res2.Found, len(res2.Replay))
	}
}

// BenchmarkSelectorPublish measures one publication reaching 100 of 10 000
// exact-selector subscribers plus 10 template subscribers.
func BenchmarkSelectorPublish(b *testing.B) {
	h := newTestHub(&testing.T{}, nil)
	for i := range 10000 {
		c := &fakeClient{id: fmt.Sprint(i)}
		_ = h.AddClient(c, 0)
		res, _ := h.SubscribeSelectors(context.Background(), &SelectorRequest{Client: c, Selectors: []string{fmt.Sprintf("https://example.com/rooms/%d", i%100)}})
		h.Activate(res.Sub)
	}
	for i := range 10 {
		c := &fakeClient{id: fmt.Sprint("t", i)}
		_ = h.AddClient(c, 0)
		res, _ := h.SubscribeSelectors(context.Background(), &SelectorRequest{Client: c, Selectors: []string{"https://example.com/rooms/{id}"}})
		h.Activate(res.Sub)
	}
	pub := &broker.Publication{ID: "id", Channel: "https://example.com/rooms/7", Topics: []string{"https://example.com/rooms/7"}, Data: []byte("hello")}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.HandlePublication(pub, broker.StreamPosition{})
	}
}
