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
	a, b := c.Nodes[0], c.Nodes[1]
	cent, merc := followOn(t, b, "failover")
	before := publishThrough(t, a, "failover", 1, 5*time.Millisecond)
	waitAccepted(t, before, 20)
	before.Stop()
	accepted, _, unexpected := before.Results()
	if len(unexpected) > 0 || len(accepted) != before.Count() {
		t.Fatalf("publications before the failover: %d of %d accepted, %v", len(accepted), before.Count(), unexpected)
	}
	top := historyTop(t, a, "failover")

	// Redis replicates asynchronously: what the master acknowledged and had
	// not passed on dies with it (docs/scaling.md). Let it pass everything.
	s.WaitReplicated(t)
	s.Master.Stop()
	after := publishThrough(t, a, "failover", 1000, 10*time.Millisecond)
	testutil.Eventually(t, 20*time.Second, func() error {
		if port, err := s.MasterPort(); err != nil || port != s.Replica.Port {
			return fmt.Errorf("sentinel names port %d (%v), waiting for %d", port, err, s.Replica.Port)
		}
		return nil
	})
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
	h := apiResult(t, b, "history", map[string]any{"channel": "failover", "limit": -1})
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
