package cluster_test

import (
	"fmt"
	"maps"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker/brokertest"
	"github.com/heraldhub/herald/internal/testutil"
)

// A Redis failover (Sentinel) through the front doors: publications made
// before the master dies and after the replica is promoted reach the
// subscribers on the other node, once each, with positions that go on
// from where they were; publishing meanwhile is refused, never lost.
func TestSentinelFailoverThroughTheDoors(t *testing.T) {
	s := brokertest.StartSentinel(t)
	c := testutil.StartClusterAt(t, s.Address(), 2, longHistory)
	failoverThroughTheDoors(t, c, "failover", s.WaitReplicated, s.Master.Stop, func() error {
		if port, err := s.MasterPort(); err != nil || port != s.Replica.Port {
			return fmt.Errorf("sentinel names port %d (%v), waiting for %d", port, err, s.Replica.Port)
		}
		return nil
	})
}

// The same on a Redis Cluster: the master that dies serves both the
// channel and the Mercure index, and the cluster promotes its replica.
func TestRedisClusterFailoverThroughTheDoors(t *testing.T) {
	rc := brokertest.StartRedisCluster(t, 3, 1)
	c := testutil.StartClusterAt(t, rc.Address(), 2, longHistory)
	// A channel whose keys live on the index's master.
	var victim *brokertest.RedisServer
	channel := ""
	for i := 0; channel == "" && i < 100; i++ {
		ch := fmt.Sprint("failover-", i)
		apiPublish(t, c.Nodes[0], ch, map[string]any{"probe": i})
		victim = holder(t, rc, "herald.index.stream.*")
		if holder(t, rc, "herald.stream.*."+ch) == victim {
			channel = ch
		}
	}
	if channel == "" {
		t.Fatal("no channel of 100 is on the master of the index")
	}
	var replica *brokertest.RedisServer
	for i, m := range rc.Masters {
		if m == victim {
			replica = rc.Replicas[i][0]
		}
	}
	failoverThroughTheDoors(t, c, channel, rc.WaitReplicated, victim.Stop, func() error {
		if info, err := replica.Info("replication"); err != nil || info["role"] != "master" {
			return fmt.Errorf("the replica %s is %s (%v), waiting for it to be promoted", replica.Addr(), info["role"], err)
		}
		return nil
	})
}

// holder returns the master of rc that holds a key matching pattern.
func holder(t *testing.T, rc *brokertest.RedisCluster, pattern string) *brokertest.RedisServer {
	t.Helper()
	for _, m := range rc.Masters {
		v, err := m.Call("SCAN", "0", "MATCH", pattern, "COUNT", "100000")
		if r, _ := v.([]any); err == nil && len(r) == 2 {
			if keys, _ := r[1].([]any); len(keys) > 0 {
				return m
			}
		}
	}
	t.Fatalf("no master holds %s", pattern)
	return nil
}

// failoverThroughTheDoors follows channel on the second node while the
// first publishes to it, kills Redis's master (kill) once everything is
// replicated (waitReplicated), waits for the replica's promotion
// (promoted), and checks that every publication accepted before and after
// reached the followers once, with offsets going on in one stream.
func failoverThroughTheDoors(t *testing.T, c *testutil.Cluster, channel string, waitReplicated func(testing.TB), kill func(), promoted func() error) {
	a, b := c.Nodes[0], c.Nodes[1]
	cent, merc := followOn(t, b, channel)
	before := publishThrough(t, a, channel, 1, 5*time.Millisecond)
	waitAccepted(t, before, 20)
	before.Stop()
	accepted, _, unexpected := before.Results()
	if len(unexpected) > 0 || len(accepted) != before.Count() {
		t.Fatalf("publications before the failover: %d of %d accepted, %v", len(accepted), before.Count(), unexpected)
	}
	top := historyTop(t, a, channel)

	// Redis replicates asynchronously: what the master acknowledged and had
	// not passed on dies with it (docs/scaling.md). Let it pass everything.
	waitReplicated(t)
	kill()
	after := publishThrough(t, a, channel, 1000, 10*time.Millisecond)
	testutil.Eventually(t, 20*time.Second, promoted)
	for _, n := range c.Nodes {
		n.WaitHealth(t, http.StatusOK, 20*time.Second)
	}
	waitAccepted(t, after, 30)
	after.Stop()
	later, refusedDuring, unexpected := after.Results()
	if len(unexpected) > 0 {
		t.Fatalf("publications during the failover neither accepted nor refused with a reason: %v", unexpected)
	}
	// The first publication accepted after the failover comes right after
	// the last one before: positions go on in the same stream.
	h := apiResult(t, b, "history", map[string]any{"channel": channel, "limit": -1})
	if h["offset"] != float64(top+uint64(len(later))) {
		t.Fatalf("stream top %v after the failover, want %d + %d", h["offset"], top, len(later))
	}
	want := maps.Clone(accepted)
	maps.Copy(want, later)
	for name, f := range map[string]*seen{"centrifugo": &cent.seen, "mercure": &merc.seen} {
		testutil.Eventually(t, 10*time.Second, func() error {
			if err := f.check(want, refusedDuring); err != nil {
				return fmt.Errorf("%s follower: %v", name, err)
			}
			return nil
		})
	}
	if cent.hasEvent("recovered false") || cent.hasEvent("closed") {
		t.Fatalf("the Centrifugo client must stay connected and recover: %v", cent.Events())
	}
	t.Logf("%d publications before, %d accepted during and after the failover; centrifugo %v; mercure %v",
		len(accepted), len(later), cent.Events(), merc.Events())
}

// historyTop returns the top offset of a channel's stream, read through n.
func historyTop(t *testing.T, n *testutil.Server, channel string) uint64 {
	t.Helper()
	h := apiResult(t, n, "history", map[string]any{"channel": channel, "limit": 0})
	off, _ := h["offset"].(float64)
	return uint64(off)
}

// A node restart: the clients of the node that stops reconnect to the
// other one (as behind a load balancer) and back, recover what was
// published meanwhile, and nothing is lost or delivered twice.
func TestNodeRestart(t *testing.T) {
	eachBroker(t, func(t *testing.T, start startFunc) {
		c := start(t, 2, longHistory)
		var turn atomic.Int64
		// Each connection goes to the next node; a node that is down refuses
		// it, and the next attempt goes to the other one.
		next := func() *testutil.Server { return c.Node(int(turn.Add(1) % 2)) }
		cent := followCentrifugo(t, next, "follower", "restart")
		merc := followMercure(t, next, "restart")
		pub := startPublisher(t, "restart", 1, 10*time.Millisecond,
			func(int) *testutil.Server { return c.Node(0) }, func(n int) bool { return n%2 == 0 })
		waitAccepted(t, pub, 20)
		c.Restart(t, 1)
		c.Restart(t, 0) // the publisher's node too: its requests are refused meanwhile
		waitAccepted(t, pub, len(acceptedSoFar(pub))+20)
		pub.Stop()
		accepted, refused, unexpected := pub.Results()
		if len(unexpected) > 0 {
			t.Fatalf("publications neither accepted nor refused: %v", unexpected)
		}
		for name, f := range map[string]*seen{"centrifugo": &cent.seen, "mercure": &merc.seen} {
			testutil.Eventually(t, 10*time.Second, func() error {
				if err := f.check(accepted, refused); err != nil {
					return fmt.Errorf("%s follower: %v", name, err)
				}
				return nil
			})
		}
		if cent.hasEvent("recovered false") {
			t.Fatalf("the Centrifugo client must recover after moving: %v", cent.Events())
		}
		t.Logf("%d accepted; centrifugo %v; mercure %v", len(accepted), cent.Events(), merc.Events())
	})
}

func acceptedSoFar(p *publisher) map[int]bool {
	acc, _, _ := p.Results()
	return acc
}
