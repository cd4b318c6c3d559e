package nats

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/heraldhub/herald/internal/broker"
)

// With Redis, offsets and seqs are assigned in Redis, but two nodes'
// publications travel over NATS on different connections and may arrive in
// either order. sequencer puts them back in order before the hub sees them:
// a channel's publications in offset order, indexed publications (while
// this node receives every channel) in seq order. A missing number is
// waited for reorderWait; then it is given up, the hub resyncs (the
// publication was lost on the way), and the rest is delivered.
const reorderWait = 250 * time.Millisecond

type sequencer struct {
	b  *Broker
	mu sync.Mutex
	// lines are keyed by channel, and by "" for the index.
	lines map[string]*line
}

type line struct {
	epoch   string // "" while a channel's line waits for its stream's first epoch
	next    uint64 // the number expected next; 0 before the first
	waiting map[uint64]pending
	timer   *time.Timer
}

type pending struct {
	pub *broker.Publication
	sp  broker.StreamPosition
}

func (s *sequencer) key(pub *broker.Publication) (string, uint64, bool) {
	if pub.Seq != 0 && s.b.all.Load() {
		return "", pub.Seq, true
	}
	if pub.Offset != 0 {
		return pub.Channel, pub.Offset, true
	}
	return "", 0, false
}

// deliver hands pub to the hub in order (or at once when it has no number).
func (s *sequencer) deliver(pub *broker.Publication, sp broker.StreamPosition) {
	k, n, ok := s.key(pub)
	if !ok {
		s.b.handler.HandlePublication(pub, sp)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines == nil {
		s.lines = map[string]*line{}
	}
	l := s.lines[k]
	if l != nil && k != "" && l.epoch == "" && l.next == 1 {
		// Started before the channel had a stream: its first epoch.
		l.epoch = sp.Epoch
	}
	if l == nil || (k != "" && l.epoch != sp.Epoch) || n == 1 && l.next > 1 {
		if l != nil && l.timer != nil {
			l.timer.Stop()
		}
		l = &line{epoch: sp.Epoch, next: n, waiting: map[uint64]pending{}}
		s.lines[k] = l
	}
	switch {
	case n < l.next:
		// Late: given up already (the hub resynced then), or stored before
		// this node started receiving the line. Delivered rather than lost:
		// positioned and topic subscriptions drop what they already have.
		s.b.handler.HandlePublication(pub, sp)
		return
	case n > l.next:
		l.waiting[n] = pending{pub, sp}
		if l.timer == nil {
			l.timer = time.AfterFunc(reorderWait, func() { s.giveUp(k, l) })
		}
		return
	}
	s.b.handler.HandlePublication(pub, sp)
	l.next++
	s.drain(l)
}

// drain delivers what waits in order from l.next. Caller holds s.mu.
func (s *sequencer) drain(l *line) {
	for {
		p, ok := l.waiting[l.next]
		if !ok {
			break
		}
		delete(l.waiting, l.next)
		s.b.handler.HandlePublication(p.pub, p.sp)
		l.next++
	}
	if len(l.waiting) == 0 && l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}

func (s *sequencer) giveUp(k string, l *line) {
	s.mu.Lock()
	if s.lines[k] != l || len(l.waiting) == 0 {
		s.mu.Unlock()
		return
	}
	l.timer = nil
	lowest := uint64(0)
	for n := range l.waiting {
		if lowest == 0 || n < lowest {
			lowest = n
		}
	}
	// The hub tells its subscribers first, so that none receives what
	// follows the gap and then replays from after it (a Mercure
	// subscriber's Last-Event-ID would skip the lost publication).
	s.b.log.Warn("nats: a publication numbered in Redis did not arrive; resyncing")
	s.b.handler.HandleResync()
	l.next = lowest
	s.drain(l)
	if len(l.waiting) > 0 {
		l.timer = time.AfterFunc(reorderWait, func() { s.giveUp(k, l) })
	}
	s.mu.Unlock()
}

// start begins the line k at next (the stream's top + 1, read once this
// node receives it), so that what arrives first from other nodes is not
// taken for the start of the line.
func (s *sequencer) start(k string, next uint64, epoch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines == nil {
		s.lines = map[string]*line{}
	}
	if old := s.lines[k]; old != nil {
		if old.timer != nil {
			old.timer.Stop()
		}
		// Deliver what already waits, in order, before the new start.
		for _, n := range slices.Sorted(maps.Keys(old.waiting)) {
			p := old.waiting[n]
			s.b.handler.HandlePublication(p.pub, p.sp)
		}
	}
	s.lines[k] = &line{epoch: epoch, next: next, waiting: map[uint64]pending{}}
}

// forgetAll drops every line when the node switches between receiving
// every channel (one line in seq order) and its channels (a line each in
// offset order): the lines of the other mode were not kept up meanwhile,
// and would take what arrives next for a gap.
func (s *sequencer) forgetAll() {
	s.mu.Lock()
	for k, l := range s.lines {
		if l.timer != nil {
			l.timer.Stop()
		}
		delete(s.lines, k)
	}
	s.mu.Unlock()
}

// forget drops the line of a channel this node stopped receiving.
func (s *sequencer) forget(k string) {
	s.mu.Lock()
	if l := s.lines[k]; l != nil {
		if l.timer != nil {
			l.timer.Stop()
		}
		delete(s.lines, k)
	}
	s.mu.Unlock()
}
