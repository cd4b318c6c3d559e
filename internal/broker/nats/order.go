package nats

import (
	"sync"
	"time"

	"github.com/heraldhub/herald/internal/broker"
)

// With Redis, offsets and seqs are assigned in Redis, but two nodes'
// publications travel over NATS on different connections and may arrive in
// either order. sequencer puts them back in order before the hub sees them:
// a channel's publications in offset order, indexed publications (while
// this node receives every channel) in seq order. A missing number is
// waited for reorderWait; then it is given up, the rest is delivered, and
// the hub resyncs (the publication was lost on the way).
const reorderWait = 250 * time.Millisecond

type sequencer struct {
	b  *Broker
	mu sync.Mutex
	// lines are keyed by channel, and by "" for the index.
	lines map[string]*line
}

type line struct {
	epoch   string
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
	if l == nil || (k != "" && l.epoch != sp.Epoch) || n == 1 && l.next > 1 {
		if l != nil && l.timer != nil {
			l.timer.Stop()
		}
		l = &line{epoch: sp.Epoch, next: n, waiting: map[uint64]pending{}}
		s.lines[k] = l
	}
	switch {
	case n < l.next:
		// Too late: it was given up already (the hub resynced then).
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
	l.next = lowest
	s.drain(l)
	if len(l.waiting) > 0 {
		l.timer = time.AfterFunc(reorderWait, func() { s.giveUp(k, l) })
	}
	s.mu.Unlock()
	s.b.log.Warn("nats: a publication numbered in Redis did not arrive; resyncing")
	s.b.handler.HandleResync()
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
