package broker

import (
	"sync"
	"time"
)

// memoryIndex is the node's index of publications for Mercure's
// Last-Event-ID: a bounded list in Seq order, with an index from id to the
// earliest retained publication carrying it (ids may repeat). It holds the
// same *Publication as the channel's stream, so data is kept once.
type memoryIndex struct {
	mu    sync.Mutex
	seq   uint64
	items []*Publication // consecutive Seqs, oldest first
	bytes int
	ids   map[string]*indexEntry
}

// indexEntry is the earliest retained publication with an id and how many carry it.
type indexEntry struct {
	seq uint64
	n   int
}

// add appends pub and applies the bounds. Caller holds x.mu.
func (x *memoryIndex) add(pub *Publication, o IndexOptions) {
	x.seq++
	pub.Seq = x.seq
	if o.Size <= 0 {
		return
	}
	if x.ids == nil {
		x.ids = map[string]*indexEntry{}
	}
	x.items = append(x.items, pub)
	x.bytes += pub.Size()
	if e := x.ids[pub.ID]; e != nil {
		e.n++
	} else {
		x.ids[pub.ID] = &indexEntry{seq: pub.Seq, n: 1}
	}
	for len(x.items) > o.Size || (o.MaxBytes > 0 && x.bytes > o.MaxBytes && len(x.items) > 1) {
		x.evict()
	}
	x.expire(o, pub.Time)
}

func (x *memoryIndex) evict() {
	old := x.items[0]
	x.items[0] = nil
	x.items = x.items[1:]
	x.bytes -= old.Size()
	e := x.ids[old.ID]
	if e.n--; e.n == 0 {
		delete(x.ids, old.ID)
		return
	}
	// A later duplicate of the id becomes its earliest occurrence (the
	// evicted publication was the earliest: eviction goes oldest first).
	for _, p := range x.items {
		if p.ID == old.ID {
			e.seq = p.Seq
			break
		}
	}
}

// expire drops entries older than the TTL. Caller holds x.mu.
func (x *memoryIndex) expire(o IndexOptions, now time.Time) {
	if o.TTL <= 0 {
		return
	}
	for len(x.items) > 0 && now.Sub(x.items[0].Time) > o.TTL {
		x.evict()
	}
}
