package redis

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/broker/brokertest"
)

// The conformance suite against a Redis Cluster of three masters with a
// replica each, through its redis+cluster:// address.
func TestClusterConformance(t *testing.T) {
	rc := brokertest.StartRedisCluster(t, 3, 1)
	addr := rc.Address()
	t.Run("Mode", func(t *testing.T) {
		b := nodes(addr, nil)(t)(t, &brokertest.Recorder{}).(*Broker)
		if !b.sharded || b.mode() != "cluster (sharded PUB/SUB)" {
			t.Fatalf("the broker runs as %s, want a cluster with sharded PUB/SUB", b.mode())
		}
	})
	t.Run("Single", func(t *testing.T) { brokertest.RunSingle(t, nodes(addr, nil)) })
	t.Run("Delivery", func(t *testing.T) { brokertest.RunDelivery(t, nodes(addr, nil)) })
	t.Run("SharedStore", func(t *testing.T) { brokertest.RunSharedStore(t, nodes(addr, nil)) })
	t.Run("ChannelsSpreadOverMasters", func(t *testing.T) { testSpread(t, rc) })
	t.Run("IndexStepGivesUpOnAMissingPredecessor", func(t *testing.T) { testIndexGivesUp(t, rc) })
}

// A Redis Cluster run as a managed service runs it: TLS only, between its
// nodes too (tls-cluster, tls-replication), and Herald logged in as the ACL
// user that docs/scaling.md gives, set on every node, replicas included.
// The conformance suite and the shared records run through its
// rediss+cluster:// address.
func TestClusterTLSAndACL(t *testing.T) {
	t.Parallel()
	rc, tf := brokertest.StartRedisClusterTLS(t, 3, 1)
	setACL(t, documentedACL(t), rc.Nodes()...)
	addr := rc.Address()
	withCA := func(o *Options) { o.TLSCAFile = tf.CAFile }
	t.Run("Mode", func(t *testing.T) {
		b := nodes(addr, func(o *Options) { asACLUser(o); withCA(o) })(t)(t, &brokertest.Recorder{}).(*Broker)
		if !b.sharded || b.copt.TLSConfig == nil || b.copt.Username != "herald" {
			t.Fatalf("the broker runs as %s, TLS %v, user %q; want a cluster with sharded PUB/SUB, TLS, user herald",
				b.mode(), b.copt.TLSConfig != nil, b.copt.Username)
		}
	})
	runAsACLUser(t, addr, withCA)
}

// Channels, their keys and their sharded subscriptions spread over every
// master; the Mercure index and the node-wide names live in one slot.
func testSpread(t *testing.T, rc *brokertest.RedisCluster) {
	// The default number of partitions.
	newNode := nodes(rc.Address(), func(o *Options) { o.Partitions = 0 })(t)
	a := newNode(t, &brokertest.Recorder{}).(*Broker)
	prefix := a.opts.Prefix
	const channels = 300
	hist := broker.PublishOptions{HistorySize: 10, HistoryTTL: time.Minute, HistoryMetaTTL: time.Hour}
	for i := range channels {
		ch := fmt.Sprint("spread-", i)
		if err := a.Subscribe(ch); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Publish(&broker.Publication{Channel: ch, Data: []byte("x")}, hist); err != nil {
			t.Fatal(err)
		}
	}
	indexed := hist
	indexed.Index = &broker.IndexOptions{Size: 100}
	for i := range 20 {
		if _, err := a.Publish(&broker.Publication{Channel: fmt.Sprint("spread-", i), ID: fmt.Sprint(i), Data: []byte("x")}, indexed); err != nil {
			t.Fatal(err)
		}
	}
	indexMaster, err := rc.MasterOf(slotOf(a.keys.indexKeys()[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rc.Masters {
		streams := len(scanKeys(t, m, prefix+".stream.*"))
		v, err := m.Call("PUBSUB", "SHARDCHANNELS", prefix+".ch.*")
		subs, _ := v.([]any)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("master %s: %d channels' streams, %d channels' subscriptions", m.Addr(), streams, len(subs))
		if streams < channels/5 || len(subs) < channels/5 {
			t.Errorf("master %s holds %d of %d streams and %d of %d subscriptions: channels do not spread over the masters",
				m.Addr(), streams, channels, len(subs), channels)
		}
		idx := scanKeys(t, m, prefix+".index.*")
		if m == indexMaster {
			// The index's stream, meta and ids, and the channels' lines.
			if len(idx) != 3+20 {
				t.Errorf("the index's master %s holds %v", m.Addr(), idx)
			}
		} else if len(idx) != 0 {
			t.Errorf("master %s, not the index's, holds %v", m.Addr(), idx)
		}
	}
	pubs, _, _, err := a.IndexAfter("", *indexed.Index)
	if err != nil || len(pubs) != 20 {
		t.Fatalf("index: %d entries (%v)", len(pubs), err)
	}
}

// scanKeys returns the keys of a node that match pattern.
func scanKeys(t *testing.T, n *brokertest.RedisServer, pattern string) []string {
	t.Helper()
	var keys []string
	cursor := "0"
	for {
		v, err := n.Call("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
		r, _ := v.([]any)
		if err != nil || len(r) != 2 {
			t.Fatalf("SCAN on %s: %v %v", n.Addr(), v, err)
		}
		for _, k := range r[1].([]any) {
			keys = append(keys, k.(string))
		}
		if cursor = r[0].(string); cursor == "0" {
			return keys
		}
	}
}

// The whole cluster goes away and comes back empty (no persistence), as
// after a power cut: the outage behaviour of one server. The shared
// records (revocations) first, which end with the cluster stopped.
func TestClusterOutage(t *testing.T) {
	rc := brokertest.StartRedisCluster(t, 3, 0)
	t.Run("SharedRecords", func(t *testing.T) {
		testSharedRecords(t, rc.Address(), func(key string) *brokertest.RedisServer {
			m, err := rc.MasterOf(slotOf(key))
			if err != nil {
				t.Fatal(err)
			}
			return m
		}, rc.Stop)
	})
	rc.Restart(t)
	t.Run("Outage", func(t *testing.T) {
		brokertest.RunOutage(t, brokertest.Outage{
			NewNode: nodes(rc.Address(), nil)(t),
			Stop:    func(*testing.T) { rc.Stop() },
			Start:   func(t *testing.T) { rc.Restart(t) },
		})
	})
}

// slotOf is the hash slot of a key or PUB/SUB channel.
func slotOf(name string) int {
	if i := strings.IndexByte(name, '{'); i >= 0 {
		if j := strings.IndexByte(name[i+1:], '}'); j > 0 {
			name = name[i+1 : i+1+j]
		}
	}
	return int(crc16(name) % clusterSlots)
}

// A master dies and the cluster promotes its replica: the master that
// serves both a channel's partition and the node-wide names (control, the
// Mercure index). Publishing fails meanwhile with ErrUnavailable (or
// succeeds on the new master), every node resyncs, and then publications,
// the index and control messages flow again, with the stream's offsets
// going on.
func TestClusterFailover(t *testing.T) {
	rc := brokertest.StartRedisCluster(t, 3, 1)
	newNode := nodes(rc.Address(), nil)(t)
	a, recA := brokertest.Start(t, newNode)
	b, recB := brokertest.Start(t, newNode)
	ks := a.(*Broker).keys
	masterOf := func(name string) *brokertest.RedisServer {
		m, err := rc.MasterOf(slotOf(name))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	victim := masterOf(ks.control())
	ch := ""
	for i := 0; ch == ""; i++ {
		c := fmt.Sprint("c", i)
		if masterOf(ks.pubsub(ks.partition(c), c)) == victim {
			ch = c
		}
	}
	if err := b.Subscribe(ch); err != nil {
		t.Fatal(err)
	}
	opts := broker.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute, HistoryMetaTTL: time.Hour,
		Index: &broker.IndexOptions{Size: 100}}
	if _, err := a.Publish(&broker.Publication{Channel: ch, ID: "before", Data: []byte("before")}, opts); err != nil {
		t.Fatal(err)
	}
	recB.WaitPubs(t, ch, 1)
	rc.WaitReplicated(t)
	victim.Stop()
	brokertest.Eventually(t, 30*time.Second, func() error {
		if m, err := rc.MasterOf(slotOf(ks.control())); err != nil || m == victim {
			return fmt.Errorf("waiting for a new master of the control slot: %v", err)
		}
		if recA.Resyncs() == 0 || recB.Resyncs() == 0 {
			return fmt.Errorf("resyncs: a %d, b %d", recA.Resyncs(), recB.Resyncs())
		}
		if err := a.(*Broker).Health(); err != nil {
			return err
		}
		return b.(*Broker).Health()
	})
	var sp broker.StreamPosition
	brokertest.Eventually(t, 20*time.Second, func() error {
		var err error
		sp, err = a.Publish(&broker.Publication{Channel: ch, ID: "after", Data: []byte("after")}, opts)
		return err
	})
	got := recB.WaitPubs(t, ch, 2)
	if d := got[len(got)-1]; string(d.Pub.Data) != "after" || sp.Offset != 2 || d.Pub.Seq != 2 {
		t.Fatalf("after the failover: last delivered %q at offset %d seq %d (want after at offset 2, seq 2)", d.Pub.Data, sp.Offset, d.Pub.Seq)
	}
	pubs, top, err := b.History(ch, broker.HistoryFilter{Limit: -1})
	if err != nil || top != sp || len(pubs) != 2 {
		t.Fatalf("history on the new master: %d at %+v (%v)", len(pubs), top, err)
	}
	idx, _, found, err := b.IndexAfter("before", *opts.Index)
	if err != nil || !found || len(idx) != 1 || idx[0].ID != "after" {
		t.Fatalf("index after the failover: %d entries, found %v (%v)", len(idx), found, err)
	}
	if err := b.PublishControl(brokertest.NodeID(1), []byte("to-a")); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, 5*time.Second, func() error {
		if c := recA.Controls(); len(c) != 1 || c[0] != "to-a" {
			return fmt.Errorf("controls on a: %q", c)
		}
		return nil
	})
}

// A manual failover (CLUSTER FAILOVER on the replica, as an operator does
// before maintenance) moves the slots of a live master to its replica: the
// node's PUB/SUB connections bound to the old master, with channels or
// without, follow the slots, and control messages, publications and the
// index reach the nodes again.
func TestClusterManualFailover(t *testing.T) {
	rc := brokertest.StartRedisCluster(t, 3, 1)
	// Sixteen partitions: several on each master.
	newNode := nodes(rc.Address(), func(o *Options) { o.Partitions = 16 })(t)
	a, recA := brokertest.Start(t, newNode)
	b, recB := brokertest.Start(t, newNode)
	all, recAll := brokertest.Start(t, newNode)
	if err := all.SubscribeAll(); err != nil {
		t.Fatal(err)
	}
	ks := a.(*Broker).keys
	masterOf := func(name string) *brokertest.RedisServer {
		m, err := rc.MasterOf(slotOf(name))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	old := masterOf(ks.control())
	// Two channels of partitions the old master serves: one subscribed
	// before the failover, one after.
	var chans []string
	for i := 0; len(chans) < 2 && i < 1000; i++ {
		c := fmt.Sprint("c", i)
		if masterOf(ks.pubsub(ks.partition(c), c)) == old && (len(chans) == 0 || ks.partition(c) != ks.partition(chans[0])) {
			chans = append(chans, c)
		}
	}
	if len(chans) < 2 {
		t.Fatalf("no two partitions on the master of the control slot, %s", old.Addr())
	}
	if err := b.Subscribe(chans[0]); err != nil {
		t.Fatal(err)
	}
	var replica *brokertest.RedisServer
	for i, m := range rc.Masters {
		if m == old {
			replica = rc.Replicas[i][0]
		}
	}
	if _, err := replica.Call("CLUSTER", "FAILOVER"); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, 30*time.Second, func() error {
		if m, err := rc.MasterOf(slotOf(ks.control())); err != nil || m != replica {
			return fmt.Errorf("waiting for the replica to serve the control slot: %v", err)
		}
		for _, n := range []brokertest.Node{a, b, all} {
			if err := n.(*Broker).Health(); err != nil {
				return err
			}
		}
		return nil
	})
	if err := b.Subscribe(chans[1]); err != nil {
		t.Fatal(err)
	}
	opts := broker.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute, HistoryMetaTTL: time.Hour}
	for _, c := range chans {
		brokertest.Eventually(t, 10*time.Second, func() error {
			_, err := a.Publish(&broker.Publication{Channel: c, Data: []byte("after")}, opts)
			return err
		})
		recB.WaitPubs(t, c, 1)
		recAll.WaitPubs(t, c, 1)
	}
	if err := b.PublishControl("", []byte("to-all")); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, 5*time.Second, func() error {
		if c := recA.Controls(); len(c) != 1 || c[0] != "to-all" {
			return fmt.Errorf("controls on a: %q", c)
		}
		return nil
	})
}

// logBuffer collects a broker's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A publication stored in its channel's stream whose index step never
// comes (its publisher died in between) holds the channel's next indexed
// publication back for indexWait only: that one is then indexed, delivered
// after the gap (the nodes' subscribers recover the missing one from the
// history), and the channel's publications flow without waiting again.
func testIndexGivesUp(t *testing.T, rc *brokertest.RedisCluster) {
	var log logBuffer
	b, err := New(Options{Address: rc.Address(), Partitions: 4}, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rec := &brokertest.Recorder{}
	if err := b.Run("n1", rec); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, 10*time.Second, b.Health)
	if err := b.Subscribe("c"); err != nil {
		t.Fatal(err)
	}
	opts := broker.PublishOptions{HistorySize: 10, HistoryTTL: time.Minute, HistoryMetaTTL: time.Hour,
		Index: &broker.IndexOptions{Size: 10}}
	publish := func(data string) *broker.Publication {
		t.Helper()
		p := &broker.Publication{Channel: "c", ID: data, Data: []byte(data)}
		if _, err := b.Publish(p, opts); err != nil {
			t.Fatal(err)
		}
		return p
	}
	publish("1")
	// The first step of publication 2, as its publisher would have run it.
	c, _ := b.conn()
	p := b.keys.partition("c")
	body := string(broker.AppendPublication(nil, &broker.Publication{Channel: "c", ID: "2", Data: []byte("2")}))
	if _, err := b.runPublish(c, []string{b.keys.stream(p, "c"), b.keys.meta(p, "c")}, publishArgs{body: body, id: "2",
		now: time.Now().UnixMilli(), size: 1, newEpoch: "x", hist: &opts, quiet: true, record: true}, p, "c"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if p3 := publish("3"); p3.Offset != 3 || time.Since(start) < indexWait {
		t.Fatalf("publication 3 at offset %d after %s; want offset 3 after waiting %s for 2", p3.Offset, time.Since(start), indexWait)
	}
	publish("4")
	got := rec.WaitPubs(t, "c", 3)
	var offs []uint64
	for _, d := range got {
		offs = append(offs, d.Pub.Offset)
	}
	if fmt.Sprint(offs) != "[1 3 4]" {
		t.Fatalf("delivered offsets %v, want [1 3 4]", offs)
	}
	if n := strings.Count(log.String(), "indexing a publication before the channel's previous one"); n != 1 {
		t.Fatalf("%d warnings about the missing publication, want 1 (for 3 only):\n%s", n, log.String())
	}
	pubs, _, err := b.History("c", broker.HistoryFilter{Limit: -1})
	if err != nil || len(pubs) != 4 {
		t.Fatalf("history has %d publications (%v), want 4 (2 was stored)", len(pubs), err)
	}
}
