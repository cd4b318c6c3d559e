package brokertest

import (
	"context"
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// RedisCluster is a private Redis Cluster: masters that split the 16384
// hash slots evenly between them, each with its replicas, every node a
// redis-server on free loopback ports (client and cluster bus), without
// persistence. It is stopped when the test ends.
type RedisCluster struct {
	Masters  []*RedisServer
	Replicas [][]*RedisServer // Replicas[i] replicate Masters[i]
	ids      map[*RedisServer]string
}

// clusterNodeTimeout is how long a node may be silent before the cluster
// takes it for failed and promotes one of its replicas: short, so that a
// failover test takes seconds, and long enough that a busy test machine
// does not fail masters over by itself.
const clusterNodeTimeout = 1500 * time.Millisecond

// StartRedisCluster starts a cluster of masters (at least 3, as Redis
// requires a majority of masters to agree that one failed) with replicas
// replicas each, every node with extra configuration lines, and waits until
// every node says cluster_state:ok and every replica is in sync.
func StartRedisCluster(t testing.TB, masters, replicas int, extra ...string) *RedisCluster {
	t.Helper()
	return startRedisCluster(t, nil, masters, replicas, extra...)
}

// StartRedisClusterTLS is StartRedisCluster with every node serving TLS
// only, to clients, on the cluster bus and between master and replica, with
// certificates of one private CA.
func StartRedisClusterTLS(t testing.TB, masters, replicas int, extra ...string) (*RedisCluster, *TLSFiles) {
	t.Helper()
	tf := NewTLSFiles(t)
	return startRedisCluster(t, tf, masters, replicas, append([]string{"tls-cluster yes", "tls-replication yes"}, extra...)...), tf
}

func startRedisCluster(t testing.TB, tf *TLSFiles, masters, replicas int, extra ...string) *RedisCluster {
	t.Helper()
	c := &RedisCluster{ids: map[*RedisServer]string{}}
	start := func() *RedisServer {
		return startRedis(t, tf, append([]string{"cluster-enabled yes", "cluster-config-file nodes.conf",
			"cluster-port " + strconv.Itoa(freePort(t)),
			"cluster-node-timeout " + strconv.Itoa(int(clusterNodeTimeout.Milliseconds())),
			"cluster-replica-validity-factor 0", "repl-diskless-sync-delay 0"}, extra...)...)
	}
	var all []*RedisServer
	for range masters {
		m := start()
		c.Masters = append(c.Masters, m)
		all = append(all, m)
	}
	for range masters {
		var rs []*RedisServer
		for range replicas {
			r := start()
			rs = append(rs, r)
			all = append(all, r)
		}
		c.Replicas = append(c.Replicas, rs)
	}
	for _, n := range all {
		id, err := n.Call("CLUSTER", "MYID")
		if err != nil {
			t.Fatalf("CLUSTER MYID on %s: %v", n.Addr(), err)
		}
		c.ids[n] = id.(string)
	}
	for i, m := range c.Masters {
		lo, hi := i*clusterSlots/masters, (i+1)*clusterSlots/masters-1
		if _, err := m.Call("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE on %s: %v", m.Addr(), err)
		}
	}
	for _, n := range all[1:] {
		if _, err := all[0].Call("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(n.Port), strconv.Itoa(busPort(n))); err != nil {
			t.Fatalf("CLUSTER MEET %s: %v", n.Addr(), err)
		}
	}
	// Every node must know every other before a replica can name its master.
	Eventually(t, 20*time.Second, func() error {
		for _, n := range all {
			v, err := n.Call("CLUSTER", "NODES")
			if err != nil {
				return err
			}
			s, _ := v.(string)
			if got := strings.Count(strings.TrimSpace(s), "\n") + 1; got != len(all) || strings.Contains(s, "handshake") {
				return fmt.Errorf("%s knows %d of %d nodes:\n%s", n.Addr(), got, len(all), s)
			}
		}
		return nil
	})
	for i, rs := range c.Replicas {
		for _, r := range rs {
			if _, err := r.Call("CLUSTER", "REPLICATE", c.ids[c.Masters[i]]); err != nil {
				t.Fatalf("CLUSTER REPLICATE on %s: %v", r.Addr(), err)
			}
		}
	}
	c.WaitOK(t)
	return c
}

const clusterSlots = 16384

// busPort is the cluster bus port a node was started with.
func busPort(n *RedisServer) int {
	for i, a := range n.args {
		if a == "--cluster-port" {
			p, _ := strconv.Atoi(n.args[i+1])
			return p
		}
	}
	return n.Port + 10000
}

// Nodes returns every node, masters first.
func (c *RedisCluster) Nodes() []*RedisServer {
	out := append([]*RedisServer{}, c.Masters...)
	for _, rs := range c.Replicas {
		out = append(out, rs...)
	}
	return out
}

// Address is the redis+cluster:// address of the cluster (rediss+cluster://
// with TLS), naming every master as a seed.
func (c *RedisCluster) Address() string {
	var b strings.Builder
	scheme := "redis+cluster://"
	if c.Masters[0].tls != nil {
		scheme = "rediss+cluster://"
	}
	b.WriteString(scheme + c.Masters[0].Addr())
	for i, m := range c.Masters[1:] {
		if i == 0 {
			b.WriteString("?")
		} else {
			b.WriteString("&")
		}
		b.WriteString("addr=" + m.Addr())
	}
	return b.String()
}

// WaitOK waits until every running node says cluster_state:ok, sees every
// slot served, and every running replica is in sync with its master.
func (c *RedisCluster) WaitOK(t testing.TB) {
	t.Helper()
	Eventually(t, 30*time.Second, func() error {
		for _, n := range c.Nodes() {
			if !n.Running() {
				continue
			}
			v, err := n.Call("CLUSTER", "INFO")
			if err != nil {
				return err
			}
			s, _ := v.(string)
			if !strings.Contains(s, "cluster_state:ok") || !strings.Contains(s, "cluster_slots_ok:16384") {
				return fmt.Errorf("%s: %s", n.Addr(), s)
			}
			info, err := n.Info("replication")
			if err != nil {
				return err
			}
			if info["role"] == "slave" && info["master_link_status"] != "up" {
				return fmt.Errorf("replica %s: link to its master %s", n.Addr(), info["master_link_status"])
			}
		}
		return nil
	})
}

// WaitReplicated waits until every running replica has everything its
// master wrote, so that killing a master loses nothing.
func (c *RedisCluster) WaitReplicated(t testing.TB) {
	t.Helper()
	for i, rs := range c.Replicas {
		for _, r := range rs {
			if c.Masters[i].Running() && r.Running() {
				waitReplicated(t, c.Masters[i], r)
			}
		}
	}
}

// MasterOf returns the node that serves slot now, as the first running
// node sees it.
func (c *RedisCluster) MasterOf(slot int) (*RedisServer, error) {
	for _, n := range c.Nodes() {
		if !n.Running() {
			continue
		}
		v, err := n.Call("CLUSTER", "SHARDS")
		if err != nil {
			return nil, fmt.Errorf("CLUSTER SHARDS on %s: %v", n.Addr(), err)
		}
		port, err := masterPortOf(v, slot)
		if err != nil {
			return nil, fmt.Errorf("CLUSTER SHARDS on %s: %v", n.Addr(), err)
		}
		for _, m := range c.Nodes() {
			if m.Port == port {
				return m, nil
			}
		}
		return nil, fmt.Errorf("slot %d is served by port %d, not a node of this cluster", slot, port)
	}
	return nil, fmt.Errorf("no node of the cluster is running")
}

// masterPortOf reads a CLUSTER SHARDS reply: the port of the master of the
// shard whose slot ranges hold slot.
func masterPortOf(v any, slot int) (int, error) {
	shards, _ := v.([]any)
	for _, sh := range shards {
		f := fields(sh)
		ranges, _ := f["slots"].([]any)
		in := false
		for i := 0; i+1 < len(ranges); i += 2 {
			lo, _ := ranges[i].(int64)
			hi, _ := ranges[i+1].(int64)
			if int64(slot) >= lo && int64(slot) <= hi {
				in = true
			}
		}
		if !in {
			continue
		}
		nodes, _ := f["nodes"].([]any)
		for _, n := range nodes {
			nf := fields(n)
			if nf["role"] == "master" && nf["health"] == "online" {
				p, _ := nf["port"].(int64)
				return int(p), nil
			}
		}
		return 0, fmt.Errorf("slot %d has no online master", slot)
	}
	return 0, fmt.Errorf("slot %d is in no shard", slot)
}

// fields turns a reply that is a list of name, value pairs (or a map) into
// a map.
func fields(v any) map[string]any {
	out := map[string]any{}
	switch v := v.(type) {
	case map[string]any:
		return v
	case []any:
		for i := 0; i+1 < len(v); i += 2 {
			if k, ok := v[i].(string); ok {
				out[k] = v[i+1]
			}
		}
	}
	return out
}

// Stop kills every node, as a power cut would.
func (c *RedisCluster) Stop() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes() {
		wg.Add(1)
		go func() { defer wg.Done(); n.Stop() }()
	}
	wg.Wait()
}

// Restart starts every stopped node again on its ports, empty but with its
// cluster configuration (node id, slots, role), and waits until the
// cluster is ok.
func (c *RedisCluster) Restart(t testing.TB) {
	t.Helper()
	for _, n := range c.Nodes() {
		if !n.Running() {
			n.Restart(t)
		}
	}
	c.WaitOK(t)
}

// call sends one command to the server at addr and returns its reply as Go
// values: string, int64, []any, map[string]any or nil; a Redis error is
// returned as the error.
func call(addr string, tc *tls.Config, args ...string) (any, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true,
		DisableCache: true, DisableRetry: true, Dialer: dialer, TLSConfig: tc})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	v, err := c.Do(ctx, c.B().Arbitrary(args...).Build()).ToAny()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	return v, err
}
