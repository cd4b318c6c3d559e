package cluster_test

import (
	"fmt"
	"testing"

	"github.com/heraldhub/herald/internal/testutil"
)

// presenceClients returns the users of a channel's presence, read through
// n's server API, by client id.
func presenceClients(t *testing.T, n *testutil.Server, channel string) map[string]string {
	t.Helper()
	r := apiResult(t, n, "presence", map[string]any{"channel": channel})
	out := map[string]string{}
	p, _ := r["presence"].(map[string]any)
	for id, v := range p {
		info, _ := v.(map[string]any)
		out[id], _ = info["user"].(string)
	}
	return out
}

func presenceStats(t *testing.T, n *testutil.Server, channel string) (clients, users int) {
	t.Helper()
	r := apiResult(t, n, "presence_stats", map[string]any{"channel": channel})
	c, _ := r["num_clients"].(float64)
	u, _ := r["num_users"].(float64)
	return int(c), int(u)
}

// Presence counts everyone, whichever node they are on, read through any
// node and any door; a client that leaves, and the clients of a node that
// stops, are gone from it on every node.
func TestPresenceAcrossNodes(t *testing.T) {
	eachBroker(t, func(t *testing.T, start startFunc) {
		c := start(t, 3, nil)
		a, b, cn := c.Nodes[0], c.Nodes[1], c.Nodes[2]
		subscriber(t, a, "alice", "room")
		bob1 := subscriber(t, b, "bob", "room")
		subscriber(t, b, "bob", "room")
		subscriber(t, cn, "carol", "room")

		for _, n := range c.Nodes {
			users := presenceClients(t, n, "room")
			count := map[string]int{}
			for _, u := range users {
				count[u]++
			}
			if len(users) != 4 || count["alice"] != 1 || count["bob"] != 2 || count["carol"] != 1 {
				t.Fatalf("presence read on %s: %v", n.Addr, users)
			}
			if cl, us := presenceStats(t, n, "room"); cl != 4 || us != 3 {
				t.Fatalf("presence_stats on %s: %d clients, %d users; want 4 and 3", n.Addr, cl, us)
			}
		}
		// A client's own presence call on node C sees the others.
		watcher := subscriber(t, cn, "dave", "room")
		r := watcher.Call("presence_stats", map[string]any{"channel": "room"})
		st, _ := r["presence_stats"].(map[string]any)
		if st["num_clients"] != float64(5) || st["num_users"] != float64(4) {
			t.Fatalf("client presence_stats on C: %v", r)
		}

		// bob's first connection leaves; then node A stops: alice goes with it.
		_ = bob1.Conn.Close()
		waitPresence(t, cn, "room", 4)
		c.Nodes[0].Stop()
		waitPresence(t, b, "room", 3)
		for _, u := range presenceClients(t, b, "room") {
			if u == "alice" {
				t.Fatal("alice is still present after her node stopped")
			}
		}
	})
}

func waitPresence(t *testing.T, n *testutil.Server, channel string, clients int) {
	t.Helper()
	testutil.Eventually(t, wait, func() error {
		if got, _ := presenceStats(t, n, channel); got != clients {
			return fmt.Errorf("%d clients in %s's presence on %s, want %d", got, channel, n.Addr, clients)
		}
		return nil
	})
}
