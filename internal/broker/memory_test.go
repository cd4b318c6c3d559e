package broker

import (
	"testing"
	"time"
)

type recorder struct{ pubs []uint64 }

func (r *recorder) HandlePublication(p *Publication, _ StreamPosition) {
	r.pubs = append(r.pubs, p.Offset)
}
func (r *recorder) HandleJoin(string, *ClientInfo)  {}
func (r *recorder) HandleLeave(string, *ClientInfo) {}
func (r *recorder) HandleControl([]byte)            {}
func (r *recorder) HandleResync()                   {}

func TestHistorySizeTTLAndEpoch(t *testing.T) {
	m := NewMemory()
	rec := &recorder{}
	m.Run("node", rec)
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	opts := PublishOptions{HistorySize: 3, HistoryTTL: time.Minute, HistoryMetaTTL: time.Hour}
	var sp StreamPosition
	for i := 0; i < 5; i++ {
		sp, _ = m.Publish(&Publication{Channel: "c", Data: []byte(`1`)}, opts)
	}
	if sp.Offset != 5 || sp.Epoch == "" || len(rec.pubs) != 5 {
		t.Fatalf("position %+v, delivered %v", sp, rec.pubs)
	}
	pubs, top, _ := m.History("c", HistoryFilter{Limit: -1, MetaTTL: time.Hour})
	if top != sp || len(pubs) != 3 || pubs[0].Offset != 3 {
		t.Fatalf("history %v top %+v: size 3 keeps offsets 3..5", pubs, top)
	}
	// Publications older than the TTL go; the position stays.
	now = now.Add(2 * time.Minute)
	pubs, top, _ = m.History("c", HistoryFilter{Limit: -1, TTL: time.Minute, MetaTTL: time.Hour})
	if len(pubs) != 0 || top.Offset != 5 {
		t.Fatalf("after TTL: %v %+v", pubs, top)
	}
	// A stream unused for longer than its meta TTL starts over with a new epoch.
	now = now.Add(2 * time.Hour)
	sp2, _ := m.Publish(&Publication{Channel: "c", Data: []byte(`1`)}, opts)
	if sp2.Offset != 1 || sp2.Epoch == sp.Epoch {
		t.Fatalf("after meta TTL: %+v, want offset 1 and a new epoch", sp2)
	}
	// Without history nothing is stored and no offset is assigned.
	sp3, _ := m.Publish(&Publication{Channel: "nohist", Data: []byte(`1`)}, PublishOptions{})
	if sp3.Offset != 0 || sp3.Epoch != "" {
		t.Fatalf("no-history publish gave a position: %+v", sp3)
	}
}

func TestHistoryFilters(t *testing.T) {
	m := NewMemory()
	opts := PublishOptions{HistorySize: 10, HistoryTTL: time.Minute}
	for i := 0; i < 5; i++ {
		m.Publish(&Publication{Channel: "c", Data: []byte(`1`)}, opts)
	}
	offsets := func(f HistoryFilter) []uint64 {
		pubs, _, _ := m.History("c", f)
		var out []uint64
		for _, p := range pubs {
			out = append(out, p.Offset)
		}
		return out
	}
	_, top, _ := m.History("c", HistoryFilter{})
	cases := []struct {
		f    HistoryFilter
		want []uint64
	}{
		{HistoryFilter{Limit: 0}, nil},
		{HistoryFilter{Limit: 2}, []uint64{1, 2}},
		{HistoryFilter{Limit: 2, Reverse: true}, []uint64{5, 4}},
		{HistoryFilter{Limit: -1, Since: &StreamPosition{Offset: 3, Epoch: top.Epoch}}, []uint64{4, 5}},
		{HistoryFilter{Limit: -1, Since: &StreamPosition{Offset: 3, Epoch: top.Epoch}, Reverse: true}, []uint64{2, 1}},
	}
	for _, c := range cases {
		if got := offsets(c.f); len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) {
			t.Errorf("%+v: %v, want %v", c.f, got, c.want)
		}
	}
	m.RemoveHistory("c")
	if pubs, top2, _ := m.History("c", HistoryFilter{Limit: -1}); len(pubs) != 0 || top2 != top {
		t.Fatalf("remove history: %v %+v", pubs, top2)
	}
}

func TestPresenceCountsAnonymousAsOneUser(t *testing.T) {
	m := NewMemory()
	m.AddPresence("c", "1", &ClientInfo{Client: "1"})
	m.AddPresence("c", "2", &ClientInfo{Client: "2"})
	m.AddPresence("c", "3", &ClientInfo{User: "u", Client: "3"})
	if st, _ := m.PresenceStats("c"); st.NumClients != 3 || st.NumUsers != 2 {
		t.Fatalf("stats %+v", st)
	}
	m.RemovePresence("c", "1")
	m.RemovePresence("c", "2")
	m.RemovePresence("c", "3")
	if p, _ := m.Presence("c"); len(p) != 0 {
		t.Fatalf("presence %v", p)
	}
}

func TestHistoryMaxBytes(t *testing.T) {
	m := NewMemory()
	m.Run("node", &recorder{})
	big := make([]byte, 1000)
	for i := range big {
		big[i] = 'a'
	}
	opts := PublishOptions{HistorySize: 100, HistoryTTL: time.Hour, HistoryMaxBytes: 3500}
	for range 10 {
		m.Publish(&Publication{Channel: "c", Data: big}, opts)
	}
	pubs, top, _ := m.History("c", HistoryFilter{Limit: -1})
	if top.Offset != 10 || len(pubs) != 3 || pubs[0].Offset != 8 {
		t.Fatalf("byte bound 3500 with ~1.2 KB publications keeps the last 3; got %d from %d", len(pubs), pubs[0].Offset)
	}
}

func TestIndexAfter(t *testing.T) {
	m := NewMemory()
	rec := &recorder{}
	m.Run("node", rec)
	idx := &IndexOptions{Size: 3}
	for i, id := range []string{"a", "b", "dup", "c", "dup"} {
		m.Publish(&Publication{Channel: "ch" + id, ID: id, Data: []byte{'0' + byte(i)}}, PublishOptions{Index: idx})
	}
	// Kept: dup(3) c(4) dup(5); "a" and "b" were evicted.
	pubs, top, found, _ := m.IndexAfter("dup", *idx)
	if !found || top != 5 || len(pubs) != 2 || pubs[0].ID != "c" || pubs[1].Seq != 5 {
		t.Fatalf("after the earliest dup: found %v top %d %v", found, top, pubs)
	}
	if _, _, found, _ := m.IndexAfter("a", *idx); found {
		t.Fatal("an evicted id is not found")
	}
	all, _, _, _ := m.IndexAfter("", *idx)
	if len(all) != 3 || all[0].Seq != 3 {
		t.Fatalf("all: %v", all)
	}
	// Evicting the earliest dup makes the later one the earliest.
	m.Publish(&Publication{Channel: "x", ID: "d"}, PublishOptions{Index: idx})
	pubs, _, found, _ = m.IndexAfter("dup", *idx)
	if !found || len(pubs) != 1 || pubs[0].ID != "d" {
		t.Fatalf("after the remaining dup: %v", pubs)
	}
}

// The index keeps at most MaxBytes of publications (one copy of each, the
// same as the channel's stream holds), whatever Size allows.
func TestIndexMaxBytes(t *testing.T) {
	m := NewMemory()
	m.Run("node", &recorder{})
	idx := &IndexOptions{Size: 1000, MaxBytes: 4 << 20}
	for i := range 100 {
		p := &Publication{Channel: "c", ID: string(rune('a' + i%26)), Data: make([]byte, 1<<20)}
		m.Publish(p, PublishOptions{Index: idx, HistorySize: 5, HistoryTTL: time.Hour})
	}
	all, _, _, _ := m.IndexAfter("", *idx)
	if len(all) != 3 {
		t.Fatalf("a 4 MiB index of 1 MiB publications keeps 3, kept %d", len(all))
	}
	hist, _, _ := m.History("c", HistoryFilter{Limit: -1})
	if &hist[len(hist)-1].Data[0] != &all[len(all)-1].Data[0] {
		t.Fatal("the index and the stream hold two copies of a publication")
	}
}
