package cluster_test

import (
	"fmt"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/testutil"
)

// A bounded soak: three nodes, publishers on every node through the server
// API and Mercure, Centrifugo and Mercure subscribers of every channel on
// every node, and halfway through the broker drops every node's
// connection (Redis: CLIENT KILL TYPE pubsub, on every master of a Redis
// Cluster; NATS: a restart). Every
// accepted publication reaches every subscriber exactly once.
// HERALD_SOAK=60s runs each broker's soak longer (6 s by default).
func TestSoak(t *testing.T) {
	t.Run("Redis", func(t *testing.T) {
		c := testutil.StartCluster(t, 3, longHistory)
		soak(t, c, func() {
			if _, err := c.Redis.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
				t.Fatalf("CLIENT KILL: %v", err)
			}
		})
	})
	t.Run("RedisCluster", func(t *testing.T) {
		c := testutil.StartClusterOnRedisCluster(t, 3, longHistory)
		soak(t, c, func() {
			for _, m := range c.RedisCluster.Masters {
				if _, err := m.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
					t.Fatalf("CLIENT KILL on %s: %v", m.Addr(), err)
				}
			}
		})
	})
	t.Run("NATS", func(t *testing.T) {
		c := testutil.StartNATSCluster(t, 3, longHistory)
		soak(t, c, func() { c.NATS.Restart(t) })
	})
}

func soak(t *testing.T, c *testutil.Cluster, disturb func()) {
	d := 6 * time.Second
	if v := os.Getenv("HERALD_SOAK"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d > 10*time.Minute {
			t.Fatalf("HERALD_SOAK=%q: want a duration up to 10m", v)
		}
	}
	const channels = 3
	type follower struct {
		name    string
		channel int
		f       *seen
	}
	var followers []follower
	for i, n := range c.Nodes {
		node := func() *testutil.Server { return n }
		for ch := range channels {
			name := fmt.Sprintf("soak-%d", ch)
			cf := followCentrifugo(t, node, fmt.Sprintf("user-%d-%d", i, ch), name)
			followers = append(followers, follower{fmt.Sprintf("centrifugo on node %d, %s", i+1, name), ch, &cf.seen})
		}
		ch := i % channels
		mf := followMercure(t, node, fmt.Sprintf("soak-%d", ch))
		followers = append(followers, follower{fmt.Sprintf("mercure on node %d, soak-%d", i+1, ch), ch, &mf.seen})
	}
	var pubs []*publisher
	for ch := range channels {
		n := c.Nodes[ch%len(c.Nodes)]
		pubs = append(pubs, startPublisher(t, fmt.Sprintf("soak-%d", ch), (ch+1)*1_000_000, 2*time.Millisecond,
			func(int) *testutil.Server { return n }, func(k int) bool { return k%4 == 0 }))
	}
	time.Sleep(d / 2) // the soak itself: publications flow meanwhile
	disturb()
	time.Sleep(d / 2)
	total := 0
	want := make([]map[int]bool, channels)
	refused := make([]map[int]bool, channels)
	for ch, p := range pubs {
		p.Stop()
		acc, ref, unexpected := p.Results()
		if len(unexpected) > 0 {
			t.Fatalf("soak-%d: publications neither accepted nor refused: %v", ch, unexpected[:min(5, len(unexpected))])
		}
		want[ch], refused[ch] = maps.Clone(acc), ref
		total += len(acc)
	}
	for _, f := range followers {
		// Each was told, when Redis dropped the connections, that it may
		// have missed publications.
		if !f.f.hasEvent("unsubscribe 2500") && !f.f.hasEvent("stream ended") {
			t.Errorf("%s was not told about the lost connections: %v", f.name, f.f.Events())
		}
		testutil.Eventually(t, 20*time.Second, func() error {
			if err := f.f.check(want[f.channel], refused[f.channel]); err != nil {
				return fmt.Errorf("%s: %v", f.name, err)
			}
			return nil
		})
	}
	t.Logf("%s soak: %d publications accepted, %d deliveries checked, no loss, no duplicate", d, total, total*len(followers)/channels)
}
