package testutil

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker/brokertest"
	"github.com/heraldhub/herald/internal/config"
)

// Cluster is several Herald nodes sharing one broker (Redis, or NATS with
// history and presence in Redis), each a real server on its own loopback
// port, as behind a load balancer.
type Cluster struct {
	// Redis is the private redis-server of StartCluster and
	// StartNATSCluster (nil for StartClusterAt).
	Redis *brokertest.RedisServer
	// NATS is the private NATS server of StartNATSCluster.
	NATS *brokertest.NATSServer
	// RedisCluster is the private Redis Cluster of StartClusterOnRedisCluster.
	RedisCluster *brokertest.RedisCluster
	// Address is the broker.redis.address every node uses.
	Address string
	// Nodes are the running nodes; use Node(i) from other goroutines while
	// a test restarts nodes.
	Nodes []*Server

	mu        sync.Mutex
	t         testing.TB
	configure func(i int, cfg *config.Config)
}

// StartCluster starts a private redis-server and n nodes that use it as
// their broker; configure (may be nil) adjusts node i's configuration
// (Config() with broker.type redis). Each node is ready (/health 200) when
// it returns. Everything stops at test end.
func StartCluster(t testing.TB, n int, configure func(i int, cfg *config.Config)) *Cluster {
	t.Helper()
	r := brokertest.StartRedis(t)
	c := StartClusterAt(t, r.Addr(), n, configure)
	c.Redis = r
	return c
}

// StartClusterAt starts n nodes whose broker is the Redis at address (any
// form broker.redis.address accepts, Sentinel included).
func StartClusterAt(t testing.TB, address string, n int, configure func(i int, cfg *config.Config)) *Cluster {
	t.Helper()
	c := &Cluster{Address: address, t: t, configure: configure}
	for range n {
		c.AddNode(t)
	}
	return c
}

// StartClusterOnRedisCluster starts a private Redis Cluster (three
// masters) and n nodes whose broker it is, through its redis+cluster://
// address.
func StartClusterOnRedisCluster(t testing.TB, n int, configure func(i int, cfg *config.Config)) *Cluster {
	t.Helper()
	rc := brokertest.StartRedisCluster(t, 3, 0)
	c := StartClusterAt(t, rc.Address(), n, configure)
	c.RedisCluster = rc
	return c
}

// StartNATSCluster starts a private NATS server and redis-server and n
// nodes whose broker is NATS with history and presence in Redis
// (broker.nats.store: redis).
func StartNATSCluster(t testing.TB, n int, configure func(i int, cfg *config.Config)) *Cluster {
	t.Helper()
	r := brokertest.StartRedis(t)
	c := &Cluster{Redis: r, NATS: brokertest.StartNATS(t), Address: r.Addr(), t: t, configure: configure}
	for range n {
		c.AddNode(t)
	}
	return c
}

// NodeConfig returns the configuration of node i: Config() with the
// cluster's broker and node id "node-<i+1>".
func (c *Cluster) NodeConfig(i int) *config.Config {
	cfg := Config()
	cfg.NodeID = fmt.Sprintf("node-%d", i+1)
	cfg.NodeName = cfg.NodeID
	cfg.Broker.Type = "redis"
	cfg.Broker.Redis.Address = c.Address
	if c.NATS != nil {
		cfg.Broker.Type = "nats"
		cfg.Broker.NATS.URL = c.NATS.URL()
		cfg.Broker.NATS.Store = "redis"
	}
	if c.configure != nil {
		c.configure(i, cfg)
	}
	return cfg
}

// AddNode starts one more node (a node that joins later) and waits until
// it is ready.
func (c *Cluster) AddNode(t testing.TB) *Server {
	t.Helper()
	s := Start(t, c.NodeConfig(len(c.Nodes)))
	s.WaitHealth(t, http.StatusOK, 10*time.Second)
	c.mu.Lock()
	c.Nodes = append(c.Nodes, s)
	c.mu.Unlock()
	return s
}

// Node returns node i, safely from any goroutine.
func (c *Cluster) Node(i int) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Nodes[i]
}

// Restart stops node i (its clients are told to reconnect, as on SIGTERM)
// and starts it again with the same configuration and node id, on a new
// port.
func (c *Cluster) Restart(t testing.TB, i int) *Server {
	t.Helper()
	c.Node(i).Stop()
	s := Start(t, c.NodeConfig(i))
	s.WaitHealth(t, http.StatusOK, 10*time.Second)
	c.mu.Lock()
	c.Nodes[i] = s
	c.mu.Unlock()
	return s
}

// Health returns the status and body of GET /health.
func (s *Server) Health() (int, string, error) {
	resp, err := http.Get("http://" + s.Addr + "/health")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// WaitHealth waits until /health answers status and returns the body.
func (s *Server) WaitHealth(t testing.TB, status int, timeout time.Duration) string {
	t.Helper()
	var body string
	Eventually(t, timeout, func() error {
		st, b, err := s.Health()
		if err != nil {
			return err
		}
		body = b
		if st != status {
			return fmt.Errorf("%s: /health answers %d %s, want %d", s.Addr, st, b, status)
		}
		return nil
	})
	return body
}

// Eventually calls f every 20 ms until it returns nil, and fails the test
// with f's last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	brokertest.EventuallyEvery(t, timeout, 20*time.Millisecond, f)
}
