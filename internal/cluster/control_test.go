package cluster_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// Control through the server API of one node acts on connections held by
// another: unsubscribe, server-side subscribe, send, refresh, disconnect.
func TestControlThroughAnotherNode(t *testing.T) {
	eachBroker(t, func(t *testing.T, start startFunc) {
		c := start(t, 2, nil)
		a, b := c.Nodes[0], c.Nodes[1]
		onA := subscriber(t, a, "alice", "news")

		apiResult(t, b, "unsubscribe", map[string]any{"user": "alice", "channel": "news"})
		push := onA.WaitPush(wait)
		if u, _ := push["unsubscribe"].(map[string]any); push["channel"] != "news" || u["code"] != float64(2000) {
			t.Fatalf("push %v, want unsubscribe 2000 from node B's API", push)
		}

		apiResult(t, b, "subscribe", map[string]any{"user": "alice", "channel": "alerts"})
		push = onA.WaitPush(wait)
		if push["channel"] != "alerts" || push["subscribe"] == nil {
			t.Fatalf("push %v, want a server-side subscribe to alerts", push)
		}
		apiPublish(t, b, "alerts", map[string]any{"n": 1})
		expectPub(t, onA, "alerts", msg(1))

		apiResult(t, b, "send", map[string]any{"user": "alice", "data": map[string]any{"hello": "from B"}})
		push = onA.WaitPush(wait)
		if m, _ := push["message"].(map[string]any); fmt.Sprint(m["data"]) != fmt.Sprint(map[string]any{"hello": "from B"}) {
			t.Fatalf("push %v, want the message sent through node B", push)
		}

		apiResult(t, b, "refresh", map[string]any{"user": "alice", "expired": true})
		if code, _ := onA.ExpectClose(wait); code != 3005 {
			t.Fatalf("close %d after refresh expired, want 3005", code)
		}

		stay := a.Dial(t, nil)
		id, _ := stay.Connect(testutil.UserToken(t, "alice2"))["client"].(string)
		gone := subscriber(t, a, "alice2")
		apiResult(t, b, "disconnect", map[string]any{"user": "alice2", "whitelist": []string{id},
			"disconnect": map[string]any{"code": 4001, "reason": "moved"}})
		if code, reason := gone.ExpectClose(wait); code != 4001 || reason != "moved" {
			t.Fatalf("close %d %q, want 4001 moved from node B's API", code, reason)
		}
		if r := stay.Call("presence_stats", map[string]any{"channel": "news"}); r["error"] != nil {
			t.Fatalf("the whitelisted connection must stay: %v", r)
		}
	})
}

// A revocation through node A's API closes the revoked connections on node
// B at once, and a node that starts later refuses the revoked tokens too
// (the list with its expiry is kept in Redis).
func TestRevocationReachesEveryNodeAndLaterOnes(t *testing.T) {
	eachBroker(t, func(t *testing.T, start startFunc) {
		c := start(t, 2, nil)
		a, b := c.Nodes[0], c.Nodes[1]
		tok := testutil.Token(t, map[string]any{"sub": "victim", "jti": "jti-1", "exp": time.Now().Add(time.Hour).Unix()})
		other := testutil.Token(t, map[string]any{"sub": "victim", "jti": "jti-2", "exp": time.Now().Add(time.Hour).Unix()})
		onB := b.Dial(t, nil)
		onB.Connect(tok)
		keep := b.Dial(t, nil)
		keep.Connect(other)

		apiResult(t, a, "revoke_token", map[string]any{"uid": "jti-1"})
		if code, reason := onB.ExpectClose(wait); code != 3500 || !strings.Contains(reason, "token_revoked") {
			t.Fatalf("revoked connection on B closed with %d %q, want 3500 token_revoked", code, reason)
		}
		if r := keep.Call("presence_stats", map[string]any{"channel": "x"}); r["error"] != nil {
			t.Fatalf("another token of the user must stay: %v", r)
		}
		apiResult(t, b, "invalidate_user_tokens", map[string]any{"user": "bulk", "issued_before": time.Now().Unix() + 1})
		bulk := testutil.Token(t, map[string]any{"sub": "bulk", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})

		later := c.AddNode(t)
		expectRevoked(t, later, tok)  // the revoked token
		expectRevoked(t, later, bulk) // a token of the user whose tokens were invalidated
	})
}

// Without a store every node shares (NATS, each node its own history), a
// node that joins asks the live nodes for their revocations.
func TestRevocationsFromPeersWithoutASharedStore(t *testing.T) {
	c := testutil.StartNATSCluster(t, 1, func(_ int, cfg *config.Config) { cfg.Broker.NATS.Store = "node" })
	tok := testutil.Token(t, map[string]any{"sub": "victim", "jti": "jti-peer", "exp": time.Now().Add(time.Hour).Unix()})
	apiResult(t, c.Nodes[0], "revoke_token", map[string]any{"uid": "jti-peer"})
	later := c.AddNode(t)
	expectRevoked(t, later, tok)
}

// A Redis that lost the revocations (restarted empty) gets them back from
// the nodes after the resync, for the nodes that start later.
func TestRevocationsWrittenBackAfterRedisLostThem(t *testing.T) {
	c := testutil.StartCluster(t, 1, nil)
	tok := testutil.Token(t, map[string]any{"sub": "victim", "jti": "jti-back", "exp": time.Now().Add(time.Hour).Unix()})
	apiResult(t, c.Nodes[0], "revoke_token", map[string]any{"uid": "jti-back"})
	c.Redis.Restart(t) // empty: no persistence
	c.Nodes[0].WaitHealth(t, http.StatusOK, 10*time.Second)
	testutil.Eventually(t, wait, func() error {
		if n, err := c.Redis.Do("ZCARD", "herald.records.{0m}.revocations"); err != nil || n != ":1" {
			return fmt.Errorf("revocations in Redis: %q %v", n, err)
		}
		return nil
	})
	later := c.AddNode(t)
	expectRevoked(t, later, tok)
}

// expectRevoked waits until n refuses tok as revoked.
func expectRevoked(t *testing.T, n *testutil.Server, tok string) {
	t.Helper()
	testutil.Eventually(t, wait, func() error {
		cl := n.Dial(t, nil)
		defer cl.Conn.Close()
		cl.Send(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, tok))
		if code, reason := cl.ExpectClose(wait); code != 3500 || !strings.Contains(reason, "token_revoked") {
			return fmt.Errorf("close %d %q on %s, want 3500 token_revoked", code, reason, n.Addr)
		}
		return nil
	})
}

// The API's info method of any node lists every live node with its
// connection and subscription counts; a node that stops leaves the list.
func TestInfoListsEveryNode(t *testing.T) {
	eachBroker(t, func(t *testing.T, start startFunc) {
		c := start(t, 3, nil)
		subscriber(t, c.Nodes[1], "u1", "a", "b")
		subscriber(t, c.Nodes[2], "u2", "a")
		subscriber(t, c.Nodes[2], "u3", "c")
		want := map[string][2]int{"node-1": {0, 0}, "node-2": {1, 2}, "node-3": {2, 2}}
		check := func(n *testutil.Server, want map[string][2]int) error {
			r := apiResult(t, n, "info", map[string]any{})
			nodes, _ := r["nodes"].([]any)
			got := map[string][2]int{}
			for _, x := range nodes {
				m := x.(map[string]any)
				id, _ := m["uid"].(string)
				cl, _ := m["num_clients"].(float64)
				subs, _ := m["num_subs"].(float64)
				got[id] = [2]int{int(cl), int(subs)}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("info on %s lists %v, want %v (id: clients, subscriptions)", n.Addr, got, want)
			}
			return nil
		}
		// Counts travel with the announcements (every 5 s); membership at once.
		for _, n := range c.Nodes {
			testutil.Eventually(t, 12*time.Second, func() error { return check(n, want) })
		}
		c.Nodes[2].Stop()
		delete(want, "node-3")
		for _, n := range c.Nodes[:2] {
			testutil.Eventually(t, wait, func() error { return check(n, want) })
		}
	})
}
