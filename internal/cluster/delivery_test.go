package cluster_test

import (
	"net/url"
	"testing"

	"github.com/heraldhub/herald/internal/testutil"
)

// A publication sent to any node, through any door, reaches the
// subscribers of every node, whatever protocol they speak, in one stream
// with the same positions everywhere.
func TestPublicationReachesEveryNodeAndDoor(t *testing.T) {
	eachBroker(t, func(t *testing.T, start startFunc) {
		c := start(t, 3, nil)
		a, b, cn := c.Nodes[0], c.Nodes[1], c.Nodes[2]
		onB := subscriber(t, b, "bob", "news")
		onC := subscriber(t, cn, "carol", "news")
		sseB := mercureSubscriber(t, b, "", "news")
		sseC := mercureSubscriber(t, cn, "", "news")

		// Server API of node A.
		r := apiPublish(t, a, "news", map[string]any{"n": 1})
		p1 := expectPub(t, onB, "news", msg(1))
		if p2 := expectPub(t, onC, "news", msg(1)); p2.Offset != p1.Offset || float64(p1.Offset) != r["offset"] {
			t.Fatalf("offsets differ between nodes: B %d, C %d, publish answered %v", p1.Offset, p2.Offset, r["offset"])
		}
		expectEvent(t, sseB, msg(1))
		expectEvent(t, sseC, msg(1))

		// Mercure POST to node A.
		a.Publish(t, url.Values{"topic": {"news"}, "data": {msg(2)}})
		expectPub(t, onB, "news", msg(2))
		expectPub(t, onC, "news", msg(2))
		expectEvent(t, sseB, msg(2))
		expectEvent(t, sseC, msg(2))

		// A client's publish on node A.
		onA := subscriber(t, a, "alice")
		if rep := onA.Call("publish", map[string]any{"channel": "news", "data": map[string]any{"n": 3}}); rep["error"] != nil {
			t.Fatalf("client publish: %v", rep)
		}
		p3 := expectPub(t, onB, "news", msg(3))
		expectPub(t, onC, "news", msg(3))
		expectEvent(t, sseB, msg(3))
		expectEvent(t, sseC, msg(3))
		if p3.Offset != p1.Offset+2 {
			t.Fatalf("offset %d after %d: one stream across doors and nodes", p3.Offset, p1.Offset)
		}

		// History read on any node is the same stream.
		for _, n := range c.Nodes {
			h := apiResult(t, n, "history", map[string]any{"channel": "news", "limit": -1})
			if pubs, _ := h["publications"].([]any); len(pubs) != 3 || h["offset"] != float64(p3.Offset) {
				t.Fatalf("history on %s: %v", n.Addr, h)
			}
		}
	})
}

// Join and leave of a client on one node reach subscribers on another.
func TestJoinLeaveAcrossNodes(t *testing.T) {
	eachBroker(t, func(t *testing.T, start startFunc) {
		c := start(t, 2, nil)
		a, b := c.Nodes[0], c.Nodes[1]
		watcher := a.Dial(t, nil)
		watcher.Connect(testutil.UserToken(t, "watcher"))
		if r := watcher.Call("subscribe", map[string]any{"channel": "room", "join_leave": true}); r["error"] != nil {
			t.Fatal(r)
		}
		if user := presenceUser(t, watcher, "join"); user != "watcher" {
			t.Fatalf("first join is %s's, want the watcher's own", user)
		}
		joiner := subscriber(t, b, "joiner", "room")
		if user := presenceUser(t, watcher, "join"); user != "joiner" {
			t.Fatalf("join of %s, want joiner's", user)
		}
		_ = joiner.Conn.Close()
		if user := presenceUser(t, watcher, "leave"); user != "joiner" {
			t.Fatalf("leave of %s, want joiner's", user)
		}
	})
}

// presenceUser waits for a join or leave push and returns its user.
func presenceUser(t *testing.T, c *testutil.Client, kind string) string {
	t.Helper()
	push := c.WaitPush(wait)
	m, _ := push[kind].(map[string]any)
	info, _ := m["info"].(map[string]any)
	if info == nil {
		t.Fatalf("push %v, want a %s", push, kind)
	}
	user, _ := info["user"].(string)
	return user
}
