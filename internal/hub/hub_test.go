package hub

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/config"
)

type fakeClient struct {
	id  string
	got [][]byte
}

func (f *fakeClient) ID() string   { return f.id }
func (f *fakeClient) User() string { return "u" }
func (f *fakeClient) Deliver(d *Delivery) {
	f.got = append(f.got, d.Encoded(FormatCentrifugeJSON, func(d *Delivery) []byte {
		builds.Add(1)
		return append([]byte(nil), d.Pub.Data...)
	}))
}
func (f *fakeClient) ServerSubscribe(string, ServerSubscription) error { return nil }
func (f *fakeClient) ServerUnsubscribe(string, uint32, string)         {}
func (f *fakeClient) Disconnect(uint32, string)                        {}
func (f *fakeClient) ServerRefresh(ServerRefresh)                      {}
func (f *fakeClient) Send([]byte)                                      {}
func (f *fakeClient) CheckRevoked()                                    {}

var builds atomic.Int64

// TestEncodeOncePerFormat: a publication to many subscribers is encoded once,
// and every subscriber gets the same bytes.
func TestEncodeOncePerFormat(t *testing.T) {
	ns, _ := NewNamespaces(&config.Channel{MaxLength: 255})
	mem := broker.NewMemory()
	h, err := New(mem, mem, ns)
	if err != nil {
		t.Fatal(err)
	}
	var clients []*fakeClient
	for i := 0; i < 100; i++ {
		c := &fakeClient{id: string(rune('a' + i))}
		clients = append(clients, c)
		h.Subscribe("c", c)
	}
	builds.Store(0)
	nsc, _ := ns.Resolve("c")
	h.Publish("c", nsc, &broker.Publication{Data: []byte(`{"x":1}`)})
	if n := builds.Load(); n != 1 {
		t.Fatalf("encoded %d times for 100 subscribers, want 1", n)
	}
	for _, c := range clients {
		if len(c.got) != 1 || &c.got[0][0] != &clients[0].got[0][0] {
			t.Fatalf("subscriber %s did not get the shared encoding", c.id)
		}
	}
	if st := h.Stats(); st.NumSubs != 100 || st.NumChannels != 1 {
		t.Fatalf("stats %+v", st)
	}
	for _, c := range clients {
		h.Unsubscribe("c", c)
	}
	if st := h.Stats(); st.NumSubs != 0 || st.NumChannels != 0 {
		t.Fatalf("stats after unsubscribe %+v", st)
	}
}

func TestEncodedIsSafeForConcurrentSubscribers(t *testing.T) {
	d := &Delivery{Kind: KindPublication, Pub: &broker.Publication{Data: []byte(`1`)}}
	var n atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Encoded(FormatCentrifugeJSON, func(*Delivery) []byte { n.Add(1); return []byte("x") })
		}()
	}
	wg.Wait()
	if n.Load() != 1 {
		t.Fatalf("built %d times", n.Load())
	}
}
