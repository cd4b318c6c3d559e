package nats

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/broker/brokertest"
	"github.com/heraldhub/herald/internal/broker/redis"
)

var prefixes atomic.Int64

// nodes returns a NewNode whose nodes share a NATS server (and a Redis
// store when redisAddr is set) under a prefix of their own.
func nodes(url, redisAddr string) func(t *testing.T) brokertest.NewNode {
	return func(t *testing.T) brokertest.NewNode {
		prefix := fmt.Sprintf("t%d", prefixes.Add(1))
		n := 0
		return func(t *testing.T, h broker.Handler) brokertest.Node {
			n++
			o := Options{URL: url, Prefix: prefix, FlushTimeout: time.Second}
			if redisAddr != "" {
				rb, err := redis.New(redis.Options{Address: redisAddr, Prefix: prefix, PresenceTTL: 2 * time.Second, IOTimeout: time.Second}, nil)
				if err != nil {
					t.Fatal(err)
				}
				o.Store = rb
			}
			b, err := New(o, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Run(brokertest.NodeID(n), h); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			brokertest.Eventually(t, 10*time.Second, b.Health)
			return b
		}
	}
}

func TestNATSConformance(t *testing.T) {
	ns := brokertest.StartNATS(t)
	t.Run("Single", func(t *testing.T) { brokertest.RunSingle(t, nodes(ns.URL(), "")) })
	t.Run("Delivery", func(t *testing.T) { brokertest.RunDelivery(t, nodes(ns.URL(), "")) })
}

func TestNATSWithRedisConformance(t *testing.T) {
	ns := brokertest.StartNATS(t)
	rs := brokertest.StartRedis(t)
	t.Run("Single", func(t *testing.T) { brokertest.RunSingle(t, nodes(ns.URL(), rs.Addr())) })
	t.Run("Delivery", func(t *testing.T) { brokertest.RunDelivery(t, nodes(ns.URL(), rs.Addr())) })
	t.Run("SharedStore", func(t *testing.T) { brokertest.RunSharedStore(t, nodes(ns.URL(), rs.Addr())) })
}

func TestNATSOutage(t *testing.T) {
	ns := brokertest.StartNATS(t)
	brokertest.RunOutage(t, brokertest.Outage{
		NewNode: nodes(ns.URL(), "")(t),
		Stop:    func(*testing.T) { ns.Stop() },
		Start:   func(t *testing.T) { ns.Restart(t) },
	})
}
