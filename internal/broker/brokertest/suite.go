// Package brokertest is the behaviour every broker shares, as tests that run
// against each one (memory, Redis, NATS with and without Redis), and the
// helpers that start real servers for them (redis-server, Sentinel).
package brokertest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker"
)

// Node is one node's broker: delivery, history and presence.
type Node interface {
	broker.Broker
	broker.PresenceManager
}

// NewNode returns a new node with its own handler, started (Run) and
// closed when the test ends. Nodes made by one NewNode share their backend;
// each call of the factory that makes a NewNode gives a fresh backend.
type NewNode func(t *testing.T, h broker.Handler) Node

// Start makes a node with a new Recorder.
func Start(t *testing.T, newNode NewNode) (Node, *Recorder) {
	t.Helper()
	rec := &Recorder{}
	return newNode(t, rec), rec
}

// RunSingle runs the behaviour one node shows on its own, identical for
// every broker. fresh returns a NewNode over a fresh backend.
func RunSingle(t *testing.T, fresh func(t *testing.T) NewNode) {
	tests := []struct {
		name string
		f    func(*testing.T, NewNode)
	}{
		{"HistorySizeAndPositions", testHistorySize},
		{"HistoryFilters", testHistoryFilters},
		{"HistoryTTL", testHistoryTTL},
		{"HistoryMetaTTLStartsNewEpoch", testMetaTTL},
		{"HistoryMaxBytes", testHistoryMaxBytes},
		{"NoHistoryNoPosition", testNoHistory},
		{"PublicationFieldsRoundTrip", testFields},
		{"IndexAfterDuplicatesAndBounds", testIndexAfter},
		{"IndexMaxBytesAndTTL", testIndexBounds},
		{"Presence", testPresence},
		{"JoinLeave", testJoinLeave},
		{"ControlToAllAndToSelf", testControlSelf},
		{"SubscribeAllDeliversOnce", testSubscribeAllOnce},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, fresh(t)) })
	}
}

func hist(size int) broker.PublishOptions {
	return broker.PublishOptions{HistorySize: size, HistoryTTL: time.Minute, HistoryMetaTTL: time.Hour}
}

func publish(t *testing.T, n Node, ch, data string, opts broker.PublishOptions) broker.StreamPosition {
	t.Helper()
	sp, err := n.Publish(&broker.Publication{Channel: ch, Data: []byte(data)}, opts)
	if err != nil {
		t.Fatalf("publish to %s: %v", ch, err)
	}
	return sp
}

func subscribe(t *testing.T, n Node, chs ...string) {
	t.Helper()
	for _, ch := range chs {
		if err := n.Subscribe(ch); err != nil {
			t.Fatalf("subscribe %s: %v", ch, err)
		}
	}
}

func offsets(pubs []*broker.Publication) []uint64 {
	out := []uint64{}
	for _, p := range pubs {
		out = append(out, p.Offset)
	}
	return out
}

func testHistorySize(t *testing.T, newNode NewNode) {
	n, rec := Start(t, newNode)
	subscribe(t, n, "c")
	var sp broker.StreamPosition
	for i := range 5 {
		sp = publish(t, n, "c", strconv.Itoa(i), hist(3))
		if sp.Offset != uint64(i+1) || sp.Epoch == "" {
			t.Fatalf("publication %d got position %+v", i, sp)
		}
	}
	got := rec.WaitPubs(t, "c", 5)
	for i, d := range got {
		if d.Pub.Offset != uint64(i+1) || d.SP.Offset != uint64(i+1) || d.SP.Epoch != sp.Epoch || string(d.Pub.Data) != strconv.Itoa(i) {
			t.Fatalf("delivery %d: offset %d, position %+v, data %q; want offsets in order with epoch %s", i, d.Pub.Offset, d.SP, d.Pub.Data, sp.Epoch)
		}
	}
	pubs, top, err := n.History("c", broker.HistoryFilter{Limit: -1, MetaTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if top != sp || !reflect.DeepEqual(offsets(pubs), []uint64{3, 4, 5}) || string(pubs[0].Data) != "2" {
		t.Fatalf("history %v top %+v: size 3 keeps offsets 3..5 at %+v", offsets(pubs), top, sp)
	}
}

func testHistoryFilters(t *testing.T, newNode NewNode) {
	n, _ := Start(t, newNode)
	for range 5 {
		publish(t, n, "c", "1", hist(10))
	}
	_, top, err := n.History("c", broker.HistoryFilter{})
	if err != nil || top.Offset != 5 {
		t.Fatalf("position only: %+v %v", top, err)
	}
	since := &broker.StreamPosition{Offset: 3, Epoch: top.Epoch}
	cases := []struct {
		f    broker.HistoryFilter
		want []uint64
	}{
		{broker.HistoryFilter{Limit: 0}, []uint64{}},
		{broker.HistoryFilter{Limit: -1}, []uint64{1, 2, 3, 4, 5}},
		{broker.HistoryFilter{Limit: 2}, []uint64{1, 2}},
		{broker.HistoryFilter{Limit: 2, Reverse: true}, []uint64{5, 4}},
		{broker.HistoryFilter{Limit: -1, Reverse: true}, []uint64{5, 4, 3, 2, 1}},
		{broker.HistoryFilter{Limit: -1, Since: since}, []uint64{4, 5}},
		{broker.HistoryFilter{Limit: 1, Since: since}, []uint64{4}},
		{broker.HistoryFilter{Limit: -1, Since: since, Reverse: true}, []uint64{2, 1}},
		{broker.HistoryFilter{Limit: -1, Since: &broker.StreamPosition{Offset: 5, Epoch: top.Epoch}}, []uint64{}},
		{broker.HistoryFilter{Limit: -1, Since: &broker.StreamPosition{Offset: 0, Epoch: top.Epoch}}, []uint64{1, 2, 3, 4, 5}},
	}
	for _, c := range cases {
		pubs, sp, err := n.History("c", c.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := offsets(pubs); !reflect.DeepEqual(got, c.want) || sp != top {
			t.Errorf("filter %+v: offsets %v at %+v, want %v at %+v", c.f, got, sp, c.want, top)
		}
	}
	if err := n.RemoveHistory("c"); err != nil {
		t.Fatal(err)
	}
	pubs, sp, err := n.History("c", broker.HistoryFilter{Limit: -1})
	if err != nil || len(pubs) != 0 || sp != top {
		t.Fatalf("after RemoveHistory: %v at %+v (%v); the position must stay %+v", offsets(pubs), sp, err, top)
	}
	if sp := publish(t, n, "c", "1", hist(10)); sp.Offset != 6 || sp.Epoch != top.Epoch {
		t.Fatalf("after RemoveHistory the next offset is 6 in the same epoch, got %+v", sp)
	}
	// Reading a stream that never had a publication creates its position.
	pubs, sp, err = n.History("never", broker.HistoryFilter{Limit: -1, MetaTTL: time.Hour})
	if err != nil || len(pubs) != 0 || sp.Offset != 0 || sp.Epoch == "" {
		t.Fatalf("empty stream: %v %+v %v", pubs, sp, err)
	}
	if sp2 := publish(t, n, "never", "1", hist(10)); sp2.Epoch != sp.Epoch || sp2.Offset != 1 {
		t.Fatalf("first publication keeps the epoch a read created: %+v then %+v", sp, sp2)
	}
}

func testHistoryTTL(t *testing.T, newNode NewNode) {
	n, _ := Start(t, newNode)
	opts := broker.PublishOptions{HistorySize: 10, HistoryTTL: time.Second, HistoryMetaTTL: time.Hour}
	sp := publish(t, n, "c", "old", opts)
	f := broker.HistoryFilter{Limit: -1, TTL: time.Second, MetaTTL: time.Hour}
	if pubs, _, _ := n.History("c", f); len(pubs) != 1 {
		t.Fatalf("a fresh publication is in the history, got %d", len(pubs))
	}
	Eventually(t, 5*time.Second, func() error {
		pubs, top, err := n.History("c", f)
		if err != nil {
			return err
		}
		if len(pubs) != 0 || top != sp {
			return fmt.Errorf("history %v at %+v, want empty at %+v", offsets(pubs), top, sp)
		}
		return nil
	})
	if sp2 := publish(t, n, "c", "new", opts); sp2.Offset != 2 || sp2.Epoch != sp.Epoch {
		t.Fatalf("expired publications keep the position: %+v then %+v", sp, sp2)
	}
}

func testMetaTTL(t *testing.T, newNode NewNode) {
	n, _ := Start(t, newNode)
	opts := broker.PublishOptions{HistorySize: 10, HistoryTTL: time.Second, HistoryMetaTTL: time.Second}
	sp := publish(t, n, "c", "1", opts)
	Eventually(t, 6*time.Second, func() error {
		_, top, err := n.History("c", broker.HistoryFilter{MetaTTL: time.Second})
		if err != nil {
			return err
		}
		if top.Epoch == sp.Epoch {
			return fmt.Errorf("position %+v still in epoch %s", top, sp.Epoch)
		}
		if top.Offset != 0 {
			return fmt.Errorf("a new stream starts at offset 0, got %+v", top)
		}
		return nil
	})
}

func testHistoryMaxBytes(t *testing.T, newNode NewNode) {
	n, _ := Start(t, newNode)
	big := string(bytes.Repeat([]byte{'a'}, 1000))
	opts := hist(100)
	opts.HistoryMaxBytes = 3500
	for range 10 {
		publish(t, n, "c", big, opts)
	}
	pubs, top, err := n.History("c", broker.HistoryFilter{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if top.Offset != 10 || !reflect.DeepEqual(offsets(pubs), []uint64{8, 9, 10}) {
		t.Fatalf("a 3500-byte bound with ~1.2 KB publications keeps the last 3; got %v at %+v", offsets(pubs), top)
	}
	// One publication larger than the bound is not kept at all.
	huge := string(bytes.Repeat([]byte{'b'}, 4000))
	publish(t, n, "c", huge, opts)
	if pubs, _, _ := n.History("c", broker.HistoryFilter{Limit: -1}); len(pubs) != 0 {
		t.Fatalf("a publication above the byte bound empties the history, got %v", offsets(pubs))
	}
}

func testNoHistory(t *testing.T, newNode NewNode) {
	n, rec := Start(t, newNode)
	subscribe(t, n, "nohist")
	sp := publish(t, n, "nohist", "1", broker.PublishOptions{})
	if sp != (broker.StreamPosition{}) {
		t.Fatalf("a publication without history has no position, got %+v", sp)
	}
	d := rec.WaitPubs(t, "nohist", 1)[0]
	if d.Pub.Offset != 0 || d.SP != (broker.StreamPosition{}) {
		t.Fatalf("delivered with offset %d at %+v", d.Pub.Offset, d.SP)
	}
}

func fullPub(ch string) *broker.Publication {
	return &broker.Publication{Channel: ch, ID: "urn:uuid:1", Data: []byte{0, 1, 2, 255, '\n'}, Encoding: broker.EncodingBinary,
		Info: &broker.ClientInfo{User: "u", Client: "c1", ConnInfo: []byte(`{"a":1}`), ChanInfo: []byte(`{"b":2}`)},
		Tags: map[string]string{"k": "v", "x": ""}, Time: time.Unix(1700000000, 123000000),
		Topics: []string{"https://example.com/a", "https://example.com/b"}, Private: true, Event: "ev", Retry: 1500}
}

func samePub(a, b *broker.Publication) error {
	a2, b2 := *a, *b
	a2.Offset, b2.Offset, a2.Seq, b2.Seq = 0, 0, 0, 0
	if !a2.Time.Equal(b2.Time) {
		return fmt.Errorf("time %v != %v", a2.Time, b2.Time)
	}
	a2.Time, b2.Time = time.Time{}, time.Time{}
	if !reflect.DeepEqual(a2, b2) {
		return fmt.Errorf("%+v\n!= %+v", a2, b2)
	}
	return nil
}

func testFields(t *testing.T, newNode NewNode) {
	n, rec := Start(t, newNode)
	subscribe(t, n, "f")
	want := fullPub("f")
	if _, err := n.Publish(fullPub("f"), hist(10)); err != nil {
		t.Fatal(err)
	}
	if err := samePub(rec.WaitPubs(t, "f", 1)[0].Pub, want); err != nil {
		t.Fatalf("delivered: %v", err)
	}
	pubs, _, err := n.History("f", broker.HistoryFilter{Limit: -1})
	if err != nil || len(pubs) != 1 {
		t.Fatalf("history: %d %v", len(pubs), err)
	}
	if err := samePub(pubs[0], want); err != nil {
		t.Fatalf("from history: %v", err)
	}
}

func index(t *testing.T, n Node, ch, id string, idx *broker.IndexOptions, data string) *broker.Publication {
	t.Helper()
	p := &broker.Publication{Channel: ch, ID: id, Data: []byte(data)}
	if _, err := n.Publish(p, broker.PublishOptions{Index: idx}); err != nil {
		t.Fatal(err)
	}
	return p
}

func ids(pubs []*broker.Publication) []string {
	out := []string{}
	for _, p := range pubs {
		out = append(out, p.ID+"@"+strconv.FormatUint(p.Seq, 10))
	}
	return out
}

func testIndexAfter(t *testing.T, newNode NewNode) {
	n, rec := Start(t, newNode)
	if err := n.SubscribeAll(); err != nil {
		t.Fatal(err)
	}
	idx := &broker.IndexOptions{Size: 3}
	_, top0, _, err := n.IndexAfter("", *idx)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "dup", "c", "dup"} {
		p := index(t, n, "ch"+id, id, idx, strconv.Itoa(i))
		if p.Seq != top0+uint64(i)+1 {
			t.Fatalf("publication %s has seq %d, want %d", id, p.Seq, top0+uint64(i)+1)
		}
	}
	s := func(k uint64) string { return strconv.FormatUint(top0+k, 10) }
	pubs, top, found, err := n.IndexAfter("dup", *idx)
	if err != nil || !found || top != top0+5 || !reflect.DeepEqual(ids(pubs), []string{"c@" + s(4), "dup@" + s(5)}) {
		t.Fatalf("after the earliest dup: found %v top %d %v (%v)", found, top, ids(pubs), err)
	}
	if _, _, found, _ := n.IndexAfter("a", *idx); found {
		t.Fatal("an evicted id is not found")
	}
	if _, _, found, _ := n.IndexAfter("never", *idx); found {
		t.Fatal("an unknown id is not found")
	}
	all, _, found, _ := n.IndexAfter("", *idx)
	if !found || !reflect.DeepEqual(ids(all), []string{"dup@" + s(3), "c@" + s(4), "dup@" + s(5)}) {
		t.Fatalf("all: %v", ids(all))
	}
	// Evicting the earliest dup makes the later one the earliest.
	index(t, n, "x", "d", idx, "5")
	pubs, _, found, _ = n.IndexAfter("dup", *idx)
	if !found || !reflect.DeepEqual(ids(pubs), []string{"d@" + s(6)}) {
		t.Fatalf("after the remaining dup: %v", ids(pubs))
	}
	// Indexed publications reach the hub in seq order.
	var seqs []uint64
	Eventually(t, 5*time.Second, func() error {
		seqs = seqs[:0]
		for _, d := range rec.Pubs() {
			seqs = append(seqs, d.Pub.Seq)
		}
		if len(seqs) < 6 {
			return fmt.Errorf("%d of 6 delivered", len(seqs))
		}
		return nil
	})
	for i, s := range seqs {
		if s != top0+uint64(i)+1 {
			t.Fatalf("deliveries in seq order: %v", seqs)
		}
	}
	// Size 0 keeps nothing but still numbers publications.
	p := index(t, n, "y", "e", &broker.IndexOptions{}, "6")
	if p.Seq != top0+7 {
		t.Fatalf("seq with a size-0 index: %d", p.Seq)
	}
}

func testIndexBounds(t *testing.T, newNode NewNode) {
	n, _ := Start(t, newNode)
	idx := &broker.IndexOptions{Size: 100, MaxBytes: 3500}
	big := string(bytes.Repeat([]byte{'a'}, 1000))
	for i := range 10 {
		index(t, n, "c", "id"+strconv.Itoa(i), idx, big)
	}
	all, _, _, err := n.IndexAfter("", *idx)
	if err != nil || len(all) != 3 || all[0].ID != "id7" {
		t.Fatalf("byte bound keeps the last 3: %v %v", ids(all), err)
	}
	// The newest entry stays even when it alone is above the bound.
	index(t, n, "c", "huge", idx, string(bytes.Repeat([]byte{'b'}, 5000)))
	if all, _, _, _ := n.IndexAfter("", *idx); len(all) != 1 || all[0].ID != "huge" {
		t.Fatalf("an entry above the bound alone is kept: %v", ids(all))
	}
	ttl := &broker.IndexOptions{Size: 100, TTL: time.Second}
	index(t, n, "c", "old", ttl, "1")
	Eventually(t, 5*time.Second, func() error {
		all, _, _, err := n.IndexAfter("", *ttl)
		if err != nil {
			return err
		}
		if len(all) != 0 {
			return fmt.Errorf("entries older than the TTL stay: %v", ids(all))
		}
		return nil
	})
}

func testPresence(t *testing.T, newNode NewNode) {
	n, _ := Start(t, newNode)
	for _, c := range []struct{ id, user string }{{"1", ""}, {"2", ""}, {"3", "u"}} {
		if err := n.AddPresence("c", c.id, &broker.ClientInfo{User: c.user, Client: c.id, ConnInfo: []byte(`{"n":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := n.PresenceStats("c")
	if err != nil || st != (broker.PresenceStats{NumClients: 3, NumUsers: 2}) {
		t.Fatalf("stats %+v %v: the anonymous user counts once", st, err)
	}
	p, err := n.Presence("c")
	if err != nil || len(p) != 3 || p["3"].User != "u" || string(p["3"].ConnInfo) != `{"n":1}` {
		t.Fatalf("presence %v %v", p, err)
	}
	for _, id := range []string{"1", "2", "3"} {
		if err := n.RemovePresence("c", id); err != nil {
			t.Fatal(err)
		}
	}
	if p, err := n.Presence("c"); err != nil || len(p) != 0 {
		t.Fatalf("presence after removal %v %v", p, err)
	}
}

func testJoinLeave(t *testing.T, newNode NewNode) {
	n, rec := Start(t, newNode)
	subscribe(t, n, "c")
	if err := n.PublishJoin("c", &broker.ClientInfo{User: "u1"}); err != nil {
		t.Fatal(err)
	}
	if err := n.PublishLeave("c", &broker.ClientInfo{User: "u1"}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 5*time.Second, func() error {
		if j, l := rec.Joins(), rec.Leaves(); len(j) != 1 || len(l) != 1 || j[0] != "c/u1" || l[0] != "c/u1" {
			return fmt.Errorf("joins %v leaves %v", j, l)
		}
		return nil
	})
}

func testControlSelf(t *testing.T, newNode NewNode) {
	n, rec := Start(t, newNode)
	if err := n.PublishControl("", []byte("to-all")); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 5*time.Second, func() error {
		if c := rec.Controls(); len(c) != 1 || c[0] != "to-all" {
			return fmt.Errorf("controls %q", c)
		}
		return nil
	})
}

func testSubscribeAllOnce(t *testing.T, newNode NewNode) {
	n, rec := Start(t, newNode)
	subscribe(t, n, "sub")
	publish(t, n, "sub", "before", hist(10))
	rec.WaitPubs(t, "sub", 1)
	if err := n.SubscribeAll(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		publish(t, n, "sub", strconv.Itoa(i), hist(10))
		publish(t, n, "other"+strconv.Itoa(i%3), strconv.Itoa(i), broker.PublishOptions{})
	}
	if err := n.UnsubscribeAll(); err != nil {
		t.Fatal(err)
	}
	publish(t, n, "sub", "after", hist(10))
	got := rec.WaitPubs(t, "sub", 22)
	others := 0
	for i := range 3 {
		others += len(rec.WaitPubs(t, "other"+strconv.Itoa(i), []int{7, 7, 6}[i]))
	}
	for i, d := range got {
		if d.Pub.Offset != uint64(i+1) {
			t.Fatalf("channel sub delivered offsets out of order or twice at %d: %d", i, d.Pub.Offset)
		}
	}
	// Nothing more arrives: a marker published last on each channel comes
	// after any stray copy.
	publish(t, n, "sub", "marker", hist(10))
	rec.WaitPubs(t, "sub", 23)
	if len(rec.PubsOf("sub")) != 23 || others != 20 {
		t.Fatalf("each publication once: sub %d (want 23), others %d (want 20)", len(rec.PubsOf("sub")), others)
	}
}

// RunDelivery runs the behaviour of nodes connected by a broker: what one
// publishes or sends reaches the others that want it, once and in order.
func RunDelivery(t *testing.T, fresh func(t *testing.T) NewNode) {
	tests := []struct {
		name string
		f    func(*testing.T, NewNode)
	}{
		{"DeliveryAcrossNodes", testAcross},
		{"ControlToAllAndToOneNode", testControlNodes},
		{"SubscribeAllAcrossNodes", testSubscribeAllAcross},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, fresh(t)) })
	}
}

// RunSharedStore runs the behaviour of nodes that share history, the index
// and presence: a position, an index entry or a presence entry made on one
// node is the same on every node.
func RunSharedStore(t *testing.T, fresh func(t *testing.T) NewNode) {
	tests := []struct {
		name string
		f    func(*testing.T, NewNode)
	}{
		{"PositionsSameOnEveryNode", testPositionsShared},
		{"IndexSharedAndInSeqOrder", testIndexShared},
		{"PresenceSharedAndExpires", testPresenceShared},
		{"ConcurrentIndexedPublishersInOrder", testIndexedConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, fresh(t)) })
	}
}

func testAcross(t *testing.T, newNode NewNode) {
	a, recA := Start(t, newNode)
	b, recB := Start(t, newNode)
	subscribe(t, a, "both")
	subscribe(t, b, "both", "onlyb")
	for i := range 50 {
		publish(t, a, "both", strconv.Itoa(i), hist(100))
		publish(t, b, "onlyb", strconv.Itoa(i), broker.PublishOptions{})
	}
	for _, rec := range []*Recorder{recA, recB} {
		got := rec.WaitPubs(t, "both", 50)
		for i, d := range got {
			if d.Pub.Offset != uint64(i+1) {
				t.Fatalf("offset order broken at %d: %d", i, d.Pub.Offset)
			}
		}
	}
	recB.WaitPubs(t, "onlyb", 50)
	if err := b.Unsubscribe("both"); err != nil {
		t.Fatal(err)
	}
	publish(t, a, "both", "after", hist(100))
	recA.WaitPubs(t, "both", 51)
	// A marker on a channel b still has proves b would have seen it by now.
	publish(t, a, "onlyb", "marker", broker.PublishOptions{})
	recB.WaitPubs(t, "onlyb", 51)
	if n := len(recA.PubsOf("onlyb")); n != 0 || len(recB.PubsOf("both")) != 50 {
		t.Fatalf("a node gets only channels it subscribed: a got %d of onlyb, b %d of both (want 50)", n, len(recB.PubsOf("both")))
	}
	if err := b.PublishJoin("both", &broker.ClientInfo{User: "j"}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 5*time.Second, func() error {
		if j := recA.Joins(); len(j) != 1 {
			return fmt.Errorf("joins on a: %v", j)
		}
		return nil
	})
}

func testPositionsShared(t *testing.T, newNode NewNode) {
	a, _ := Start(t, newNode)
	b, _ := Start(t, newNode)
	publish(t, a, "c", "1", hist(10))
	sp := publish(t, b, "c", "2", hist(10))
	pubs, top, err := a.History("c", broker.HistoryFilter{Limit: -1})
	if err != nil || top != sp || !reflect.DeepEqual(offsets(pubs), []uint64{1, 2}) {
		t.Fatalf("node a reads %v at %+v (%v); node b published at %+v", offsets(pubs), top, err, sp)
	}
}

func testIndexShared(t *testing.T, newNode NewNode) {
	a, _ := Start(t, newNode)
	b, recB := Start(t, newNode)
	if err := b.SubscribeAll(); err != nil {
		t.Fatal(err)
	}
	idx := &broker.IndexOptions{Size: 100}
	for i := range 20 {
		n := a
		if i%2 == 1 {
			n = b
		}
		index(t, n, "c"+strconv.Itoa(i%4), "id"+strconv.Itoa(i), idx, strconv.Itoa(i))
	}
	pubs, top, found, err := b.IndexAfter("id9", *idx)
	if err != nil || !found || len(pubs) != 10 || pubs[0].ID != "id10" || top != pubs[9].Seq {
		t.Fatalf("node b reads after id9: %v top %d (%v)", ids(pubs), top, err)
	}
	Eventually(t, 5*time.Second, func() error {
		if n := len(recB.Pubs()); n < 20 {
			return fmt.Errorf("%d of 20 delivered to b", n)
		}
		return nil
	})
	last := uint64(0)
	for _, d := range recB.Pubs() {
		if d.Pub.Seq <= last {
			t.Fatalf("b got seq %d after %d", d.Pub.Seq, last)
		}
		last = d.Pub.Seq
	}
}

// Publications with history and an index entry (every publication while
// Mercure is on), published at once on one channel by two nodes: a node
// that receives the channel gets them in offset order, a node that receives
// every channel in seq order, and the two orders agree, so that neither a
// Centrifugo subscriber sees a gap nor a Mercure subscriber an id out of
// order.
func testIndexedConcurrent(t *testing.T, newNode NewNode) {
	a, _ := Start(t, newNode)
	b, recB := Start(t, newNode)
	all, recAll := Start(t, newNode)
	subscribe(t, b, "c")
	if err := all.SubscribeAll(); err != nil {
		t.Fatal(err)
	}
	opts := hist(1000)
	opts.Index = &broker.IndexOptions{Size: 1000}
	const each = 100
	errs := make(chan error, 2)
	for _, n := range []Node{a, b} {
		go func() {
			for i := range each {
				if _, err := n.Publish(&broker.Publication{Channel: "c", ID: fmt.Sprint(i), Data: []byte("x")}, opts); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for name, rec := range map[string]*Recorder{"the channel's node": recB, "the node of every channel": recAll} {
		got := rec.WaitPubs(t, "c", 2*each)
		var lastSeq uint64
		for i, d := range got {
			if d.Pub.Offset != uint64(i+1) || d.Pub.Seq <= lastSeq {
				t.Fatalf("%s: delivery %d has offset %d and seq %d after seq %d; want offsets 1, 2, … with seqs rising",
					name, i, d.Pub.Offset, d.Pub.Seq, lastSeq)
			}
			lastSeq = d.Pub.Seq
		}
	}
	pubs, _, _, err := a.IndexAfter("", *opts.Index)
	if err != nil || len(pubs) != 2*each {
		t.Fatalf("index: %d entries (%v)", len(pubs), err)
	}
	for i, p := range pubs {
		if p.Offset != uint64(i+1) {
			t.Fatalf("index entry %d (seq %d) has offset %d: index and stream disagree", i, p.Seq, p.Offset)
		}
	}
}

// NodeID names test nodes; a factory gives each node the id returned for
// its index (first node "node-1", ...).
func NodeID(i int) string { return "node-" + strconv.Itoa(i) }

func testControlNodes(t *testing.T, newNode NewNode) {
	a, recA := Start(t, newNode)
	_, recB := Start(t, newNode)
	// Factories name nodes in order: the second node of this backend.
	if err := a.PublishControl("", []byte("all")); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishControl(NodeID(2), []byte("to-b")); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishControl(NodeID(1), []byte("to-a")); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 5*time.Second, func() error {
		ca, cb := recA.Controls(), recB.Controls()
		if !reflect.DeepEqual(ca, []string{"all", "to-a"}) || !reflect.DeepEqual(cb, []string{"all", "to-b"}) {
			return fmt.Errorf("a got %q, b got %q", ca, cb)
		}
		return nil
	})
}

func testPresenceShared(t *testing.T, newNode NewNode) {
	a, _ := Start(t, newNode)
	b, _ := Start(t, newNode)
	if err := a.AddPresence("c", "ca", &broker.ClientInfo{User: "ua", Client: "ca"}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPresence("c", "cb", &broker.ClientInfo{User: "ub", Client: "cb"}); err != nil {
		t.Fatal(err)
	}
	st, err := b.PresenceStats("c")
	if err != nil || st.NumClients != 2 || st.NumUsers != 2 {
		t.Fatalf("presence from both nodes: %+v %v", st, err)
	}
	// Node a dies: its entries go once their time to live (2 s in the
	// factories) passes without a refresh. Node b lives: its broker keeps
	// refreshing b's entry, which stays well past the time to live.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, func() error {
		p, err := b.Presence("c")
		if err != nil {
			return err
		}
		if len(p) != 1 || p["cb"] == nil {
			return fmt.Errorf("presence %v: a's client stays until its entry expires", p)
		}
		return nil
	})
	until := time.Now().Add(3 * time.Second)
	for time.Now().Before(until) {
		if p, err := b.Presence("c"); err != nil || p["cb"] == nil {
			t.Fatalf("a live node's entry expired: %v %v", p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testSubscribeAllAcross(t *testing.T, newNode NewNode) {
	a, _ := Start(t, newNode)
	b, recB := Start(t, newNode)
	subscribe(t, b, "c0")
	if err := b.SubscribeAll(); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		publish(t, a, "c"+strconv.Itoa(i%3), strconv.Itoa(i), hist(100))
	}
	for i := range 3 {
		got := recB.WaitPubs(t, "c"+strconv.Itoa(i), 10)
		publish(t, a, "c"+strconv.Itoa(i), "marker", hist(100))
		got = recB.WaitPubs(t, "c"+strconv.Itoa(i), 11)
		for j, d := range got {
			if d.Pub.Offset != uint64(j+1) {
				t.Fatalf("channel c%d: offsets %d at %d (each once, in order)", i, d.Pub.Offset, j)
			}
		}
		if len(got) != 11 {
			t.Fatalf("channel c%d delivered %d times, want 11", i, len(got))
		}
	}
}

// Outage stops and restarts the backend of the nodes made by NewNode.
type Outage struct {
	NewNode NewNode
	Stop    func(t *testing.T)
	Start   func(t *testing.T)
}

// RunOutage checks the behaviour while the backend is down and after it is
// back: publishing fails with broker.ErrUnavailable (never a false
// success), health says so, and once it is back subscriptions work again,
// the hub is told to resync, and nothing is delivered twice.
func RunOutage(t *testing.T, o Outage) {
	a, recA := Start(t, o.NewNode)
	b, recB := Start(t, o.NewNode)
	subscribe(t, a, "c")
	subscribe(t, b, "c")
	publish(t, a, "c", "before", hist(10))
	recB.WaitPubs(t, "c", 1)
	o.Stop(t)
	Eventually(t, 15*time.Second, func() error {
		_, err := a.Publish(&broker.Publication{Channel: "c", Data: []byte("during")}, hist(10))
		if err == nil {
			return errors.New("publish succeeded with the backend stopped")
		}
		if !errors.Is(err, broker.ErrUnavailable) {
			t.Fatalf("publish error %v does not wrap broker.ErrUnavailable", err)
		}
		if hc, ok := a.(broker.HealthChecker); ok && hc.Health() == nil {
			return errors.New("health is ok with the backend stopped")
		}
		return nil
	})
	o.Start(t)
	Eventually(t, 20*time.Second, func() error {
		if recA.Resyncs() == 0 || recB.Resyncs() == 0 {
			return fmt.Errorf("resyncs: a %d, b %d", recA.Resyncs(), recB.Resyncs())
		}
		for _, n := range []Node{a, b} {
			if hc, ok := n.(broker.HealthChecker); ok {
				if err := hc.Health(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	publish(t, a, "c", "after", hist(10))
	got := recB.WaitPubs(t, "c", 2)
	publish(t, a, "c", "marker", hist(10))
	got = recB.WaitPubs(t, "c", 3)
	if len(got) != 3 || string(got[1].Pub.Data) != "after" {
		var data []string
		for _, d := range got {
			data = append(data, string(d.Pub.Data))
		}
		t.Fatalf("after the outage b got %q, want before, after, marker once each", data)
	}
}
