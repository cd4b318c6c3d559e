package centrifuge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker/brokertest"
	"github.com/heraldhub/herald/internal/testutil"
)

// Two nodes share a real Redis: an /emulation request that reaches the
// node not holding the session is forwarded to the session's node through
// the broker, and its replies come down the session's stream there.
func TestEmulationAcrossNodes(t *testing.T) {
	redis := brokertest.StartRedis(t)
	node := func() *testutil.Server {
		cfg := transportsConfig()
		cfg.Broker.Type = "redis"
		cfg.Broker.Redis.Address = redis.Addr()
		return testutil.Start(t, cfg)
	}
	a, b := node(), node()
	st := openStream(t, b, http.MethodPost, "/connection/http_stream", "application/json", connectFrame(t, "roamer"))
	res := st.nextWith("connect")["connect"].(map[string]any)
	session, onB := res["session"].(string), res["node"].(string)
	if onB != b.Hub().NodeID() {
		t.Fatalf("connect result node %q, want node B %q", onB, b.Hub().NodeID())
	}
	// Node A learns of node B from its announcements.
	brokertest.Eventually(t, 10*time.Second, func() error {
		for _, n := range a.Hub().Nodes() {
			if n.ID == onB {
				return nil
			}
		}
		return fmt.Errorf("node A does not know node B yet")
	})
	send := func(srv *testutil.Server, frame string) {
		body, _ := json.Marshal(map[string]string{"session": session, "node": onB, "data": frame})
		if status, b := emulate(t, srv, "application/json", body); status != http.StatusNoContent {
			t.Fatalf("/emulation on %s: %d %s", srv.Addr, status, b)
		}
	}
	send(a, `{"id":2,"subscribe":{"channel":"roam"}}`)
	if r := st.nextWith("id"); r["id"].(float64) != 2 || r["subscribe"] == nil {
		t.Fatalf("subscribe reply %v", r)
	}
	send(a, `{"id":3,"publish":{"channel":"roam","data":{"via":"node A"}}}`)
	for got := 0; got < 2; {
		m := st.next(5 * time.Second)
		if m == nil {
			t.Fatal("the stream ended")
		}
		if m["id"] != nil && m["id"].(float64) == 3 {
			got++
		}
		if p, ok := m["push"].(map[string]any); ok && p["pub"] != nil {
			got++
		}
	}
	// A request naming a node that is not in the cluster is 404.
	body, _ := json.Marshal(map[string]string{"session": session, "node": "no-such-node", "data": "{}"})
	if status, _ := emulate(t, a, "application/json", body); status != http.StatusNotFound {
		t.Fatalf("unknown node: %d", status)
	}
}
