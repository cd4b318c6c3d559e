package redis

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/broker/brokertest"
)

var prefixes atomic.Int64

// nodes returns a NewNode whose nodes share addr under a prefix of their
// own, so that tests on one server do not see each other.
func nodes(addr string, tweak func(*Options)) func(t *testing.T) brokertest.NewNode {
	return func(t *testing.T) brokertest.NewNode {
		prefix := fmt.Sprintf("t%d", prefixes.Add(1))
		n := 0
		return func(t *testing.T, h broker.Handler) brokertest.Node {
			n++
			o := Options{Address: addr, Prefix: prefix, PresenceTTL: 2 * time.Second, Partitions: 4, IOTimeout: time.Second}
			if tweak != nil {
				tweak(&o)
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

func TestRedisConformance(t *testing.T) {
	srv := brokertest.StartRedis(t)
	t.Run("Single", func(t *testing.T) { brokertest.RunSingle(t, nodes(srv.Addr(), nil)) })
	t.Run("Delivery", func(t *testing.T) { brokertest.RunDelivery(t, nodes(srv.Addr(), nil)) })
	t.Run("SharedStore", func(t *testing.T) { brokertest.RunSharedStore(t, nodes(srv.Addr(), nil)) })
}

func TestRedisOutage(t *testing.T) {
	srv := brokertest.StartRedis(t)
	brokertest.RunOutage(t, brokertest.Outage{
		NewNode: nodes(srv.Addr(), nil)(t),
		Stop:    func(*testing.T) { srv.Stop() },
		Start:   func(t *testing.T) { srv.Restart(t) },
	})
}

// TestSentinelFailover: the master dies, the sentinel promotes the replica;
// publishing fails meanwhile with ErrUnavailable (or succeeds on the new
// master), every node resyncs, and publications flow again between nodes.
func TestSentinelFailover(t *testing.T) {
	s := brokertest.StartSentinel(t)
	newNode := nodes(s.Address(), nil)(t)
	a, recA := brokertest.Start(t, newNode)
	b, recB := brokertest.Start(t, newNode)
	for _, n := range []brokertest.Node{a, b} {
		if err := n.Subscribe("c"); err != nil {
			t.Fatal(err)
		}
	}
	opts := broker.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute, HistoryMetaTTL: time.Hour}
	if _, err := a.Publish(&broker.Publication{Channel: "c", Data: []byte("before")}, opts); err != nil {
		t.Fatal(err)
	}
	recB.WaitPubs(t, "c", 1)
	// Let the replica catch up, then kill the master.
	brokertest.Eventually(t, 10*time.Second, func() error {
		ks := newKeyspace("t"+fmt.Sprint(prefixes.Load()), 4)
		line, err := s.Replica.Do("EXISTS", ks.meta(ks.partition("c"), "c"))
		if err != nil || line != ":1" {
			return fmt.Errorf("replica has not got the stream yet: %q %v", line, err)
		}
		return nil
	})
	s.Master.Stop()
	brokertest.Eventually(t, 20*time.Second, func() error {
		port, err := s.MasterPort()
		if err != nil || port != s.Replica.Port {
			return fmt.Errorf("sentinel names port %d (%v), waiting for %d", port, err, s.Replica.Port)
		}
		return nil
	})
	brokertest.Eventually(t, 20*time.Second, func() error {
		if recA.Resyncs() == 0 || recB.Resyncs() == 0 {
			return fmt.Errorf("resyncs: a %d, b %d", recA.Resyncs(), recB.Resyncs())
		}
		return b.(*Broker).Health()
	})
	var sp broker.StreamPosition
	brokertest.Eventually(t, 20*time.Second, func() error {
		var err error
		sp, err = a.Publish(&broker.Publication{Channel: "c", Data: []byte("after")}, opts)
		return err
	})
	got := recB.WaitPubs(t, "c", 2)
	if string(got[len(got)-1].Pub.Data) != "after" || sp.Offset != 2 {
		t.Fatalf("after failover: last delivered %q at offset %d (want after at 2)", got[len(got)-1].Pub.Data, sp.Offset)
	}
	pubs, top, err := b.History("c", broker.HistoryFilter{Limit: -1})
	if err != nil || top != sp || len(pubs) != 2 {
		t.Fatalf("history on the new master: %d at %+v (%v)", len(pubs), top, err)
	}
}

// Records put by one node are read by another, each until its expiry;
// putting a record again keeps one, with the later expiry.
func TestSharedRecords(t *testing.T) {
	srv := brokertest.StartRedis(t)
	testSharedRecords(t, srv.Addr(), func(string) *brokertest.RedisServer { return srv }, srv.Stop)
}

// testSharedRecords runs the shared records' behaviour against the Redis at
// addr; serverOf returns the server that holds a key, stop stops Redis.
func testSharedRecords(t *testing.T, addr string, serverOf func(key string) *brokertest.RedisServer, stop func()) {
	newNode := nodes(addr, nil)(t)
	a := newNode(t, &brokertest.Recorder{}).(*Broker)
	b := newNode(t, &brokertest.Recorder{}).(*Broker)
	var _ broker.SharedRecords = a
	now := time.Now()
	if err := a.PutRecord("revocations", []byte("short"), now.Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := a.PutRecord("revocations", []byte("long"), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutRecord("revocations", []byte("long"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutRecord("other", []byte("elsewhere"), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := b.Records("revocations")
	if err != nil || len(got) != 2 {
		t.Fatalf("records %q %v, want short and long", got, err)
	}
	brokertest.Eventually(t, 5*time.Second, func() error {
		got, err := a.Records("revocations")
		if err != nil || len(got) != 1 || string(got[0]) != "long" {
			return fmt.Errorf("records %q %v, want only long once short expired", got, err)
		}
		return nil
	})
	// The later expiry was kept, and the key expires with it.
	key := a.keys.records("revocations")
	ttl, err := serverOf(key).Do("PTTL", key)
	if err != nil || len(ttl) < 2 {
		t.Fatalf("PTTL %q %v", ttl, err)
	}
	if ms, _ := strconv.Atoi(ttl[1:]); ms < int((59 * time.Minute).Milliseconds()) {
		t.Fatalf("the records key expires in %d ms, want about an hour", ms)
	}
	stop()
	if _, err := a.Records("revocations"); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("records with redis down: %v, want ErrUnavailable", err)
	}
	if err := a.PutRecord("revocations", []byte("x"), now.Add(time.Hour)); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("put with redis down: %v, want ErrUnavailable", err)
	}
}
