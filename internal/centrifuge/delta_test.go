package centrifuge_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/centrifugal/fdelta"
	"github.com/centrifugal/protocol"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

func deltaConfig() *config.Config {
	cfg := testutil.Config()
	ns := config.Namespace{Name: "delta"}
	ns.NamespaceOptions = cfg.Channel.WithoutNamespace
	ns.AllowedDeltaTypes = []string{"fossil"}
	cfg.Channel.Namespaces = append(cfg.Channel.Namespaces, ns)
	return cfg
}

// payload is a publication that changes a little each time: deltas are
// much smaller than the data.
func payload(n int) string {
	return fmt.Sprintf(`{"n":%d,"text":%q}`, n, strings.Repeat("the same long text in every publication ", 8))
}

// A JSON client that asks for fossil deltas gets the first publication
// whole and later ones as deltas, all as JSON strings, and reconstructs the
// data; a client that subscribes later starts with a whole publication.
func TestDeltaCompressionJSON(t *testing.T) {
	srv := testutil.Start(t, deltaConfig())
	a := srv.Dial(t, nil)
	a.Connect(testutil.UserToken(t, "a"))
	res := a.Call("subscribe", map[string]any{"channel": "delta:x", "delta": "fossil"})["subscribe"].(map[string]any)
	if res["delta"] != true {
		t.Fatalf("subscribe result %v, want delta:true", res)
	}
	plain := srv.Dial(t, nil)
	plain.Connect(testutil.UserToken(t, "p"))
	if r := plain.Call("subscribe", map[string]any{"channel": "delta:x"})["subscribe"].(map[string]any); r["delta"] != nil {
		t.Fatalf("a client that did not ask got %v", r)
	}

	var base []byte
	receive := func(c *testutil.Client, wantDelta bool, n int) {
		t.Helper()
		pub := c.WaitPush(5 * time.Second)["pub"].(map[string]any)
		data, ok := pub["data"].(string)
		if !ok {
			t.Fatalf("delta subscribers get data as a JSON string, got %v", pub["data"])
		}
		if (pub["delta"] == true) != wantDelta {
			t.Fatalf("publication %d: delta %v, want %v", n, pub["delta"], wantDelta)
		}
		if wantDelta {
			if len(data) >= len(payload(n)) {
				t.Fatalf("delta of %d bytes is no smaller than the data", len(data))
			}
			out, err := fdelta.Apply(base, []byte(data))
			if err != nil {
				t.Fatalf("apply delta %d: %v", n, err)
			}
			data = string(out)
		}
		if data != payload(n) {
			t.Fatalf("publication %d reconstructs to %q", n, data)
		}
		base = []byte(data)
	}
	for n := 1; n <= 3; n++ {
		if err := srv.HubPublish("delta:x", []byte(payload(n))); err != nil {
			t.Fatal(err)
		}
		receive(a, n > 1, n)
		p := plain.WaitPush(5 * time.Second)["pub"].(map[string]any)
		if _, isObject := p["data"].(map[string]any); !isObject || p["delta"] != nil {
			t.Fatalf("plain subscriber got %v", p)
		}
	}
	late := srv.Dial(t, nil)
	late.Connect(testutil.UserToken(t, "late"))
	late.Call("subscribe", map[string]any{"channel": "delta:x", "delta": "fossil"})
	if err := srv.HubPublish("delta:x", []byte(payload(4))); err != nil {
		t.Fatal(err)
	}
	receive(a, true, 4)
	saved := base
	receive(late, false, 4) // its first publication is whole
	if !bytes.Equal(saved, base) {
		t.Fatal("both subscribers must hold the same data")
	}

	// Recovery: the recovered publications come whole (as JSON strings),
	// and the next publication is a delta against the last of them.
	late.Call("unsubscribe", map[string]any{"channel": "delta:x"})
	if err := srv.HubPublish("delta:x", []byte(payload(5))); err != nil {
		t.Fatal(err)
	}
	receive(a, true, 5)
	r := late.Call("subscribe", map[string]any{"channel": "delta:x", "delta": "fossil", "recover": true, "offset": 4,
		"epoch": res["epoch"], "recoverable": true})["subscribe"].(map[string]any)
	pubs := r["publications"].([]any)
	if r["recovered"] != true || len(pubs) != 1 || pubs[0].(map[string]any)["data"] != payload(5) {
		t.Fatalf("recovery %v", r)
	}
	base = []byte(payload(5))
	if err := srv.HubPublish("delta:x", []byte(payload(6))); err != nil {
		t.Fatal(err)
	}
	receive(late, true, 6)

	// A namespace that does not allow deltas answers delta:false.
	if r := a.Call("subscribe", map[string]any{"channel": "nodelta", "delta": "fossil"})["subscribe"].(map[string]any); r["delta"] != nil {
		t.Fatalf("delta negotiated without allowed_delta_types: %v", r)
	}
}

func TestDeltaCompressionProtobuf(t *testing.T) {
	srv := testutil.Start(t, deltaConfig())
	c := dialProtobuf(t, srv, "")
	c.call(&protocol.Command{Connect: &protocol.ConnectRequest{Token: testutil.UserToken(t, "pb")}})
	if r := c.call(&protocol.Command{Subscribe: &protocol.SubscribeRequest{Channel: "delta:y", Delta: "fossil"}}); r.Subscribe == nil || !r.Subscribe.Delta {
		t.Fatalf("subscribe %+v", r)
	}
	var base []byte
	for n := 1; n <= 3; n++ {
		if err := srv.HubPublish("delta:y", []byte(payload(n))); err != nil {
			t.Fatal(err)
		}
		p := c.push().Pub
		data := p.Data
		if p.Delta != (n > 1) {
			t.Fatalf("publication %d: delta %v", n, p.Delta)
		}
		if p.Delta {
			var err error
			if data, err = fdelta.Apply(base, p.Data); err != nil {
				t.Fatal(err)
			}
		}
		if string(data) != payload(n) {
			t.Fatalf("publication %d reconstructs to %q", n, data)
		}
		base = data
	}
}
