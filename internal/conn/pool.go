package conn

import (
	"sync"
	"time"

	"github.com/heraldhub/herald/internal/metrics"
)

// Pool holds the queues that have messages to write, in FIFO order, and the
// writer goroutines that write them. Every front door's connections share one.
//
// Writers join in only as they are needed. One writer works while the
// queues it takes have waited less than lag; when it falls behind, another
// wakes, and a writer goes back to sleep once the line is served quickly
// again. Fewer writers mean that a queue waits a little longer and then
// gets everything that arrived meanwhile in one write: the cost of a write is
// mostly per write, so under load this cuts the CPU per delivery several
// times, at a latency bounded by about lag.
type Pool struct {
	mu       sync.Mutex
	cond     sync.Cond
	ring     []poolEntry
	head, n  int
	sleeping int // writers waiting in cond.Wait and not yet signalled
	active   int // writers not waiting
	lag      time.Duration
	stopped  bool
	metrics  *metrics.Metrics // set by Instrument before any queue's Init
}

type poolEntry struct {
	q  *Queue
	at time.Duration // when it joined the line, since poolEpoch
}

var poolEpoch = time.Now()

// NewPool starts writers goroutines that join in when the line waits longer than lag.
func NewPool(writers int, lag time.Duration) *Pool {
	p := &Pool{ring: make([]poolEntry, 256), lag: lag}
	p.cond.L = &p.mu
	for range writers {
		go p.run()
	}
	return p
}

// Instrument makes the queues initialised from now on count their writes,
// bytes, drops and latency in m. Call it before the first Queue.Init.
func (p *Pool) Instrument(m *metrics.Metrics) { p.metrics = m }

// push appends a queue to the line.
func (p *Pool) push(q *Queue) {
	now := time.Since(poolEpoch)
	p.mu.Lock()
	if p.n == len(p.ring) {
		ring := make([]poolEntry, 2*len(p.ring))
		k := copy(ring, p.ring[p.head:])
		copy(ring[k:], p.ring[:p.head])
		p.ring, p.head = ring, 0
	}
	p.ring[(p.head+p.n)%len(p.ring)] = poolEntry{q, now}
	p.n++
	wake := p.sleeping > 0 && (p.active == 0 || now-p.ring[p.head].at > p.lag)
	if wake {
		p.sleeping--
	}
	p.mu.Unlock()
	if wake {
		p.cond.Signal()
	}
}

// Stop ends the writers once the line is empty.
func (p *Pool) Stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

// wait puts the calling writer to sleep until push or another writer wakes it.
func (p *Pool) wait() {
	p.active--
	p.sleeping++
	p.cond.Wait()
	p.active++
}

func (p *Pool) run() {
	w := newWrite()
	replaced := false
	// When this writer has to wait for a slow client, another starts in its
	// place and this one ends after its write; it no longer counts as active.
	w.onWait = func() {
		p.mu.Lock()
		p.active--
		p.mu.Unlock()
		replaced = true
		go p.run()
	}
	p.mu.Lock()
	p.active++
	for {
		for p.n == 0 && !p.stopped {
			if w.stats.Pending() {
				// Counts reach the metrics before the writer sleeps.
				p.mu.Unlock()
				w.stats.Flush()
				p.mu.Lock()
				continue
			}
			p.wait()
		}
		if p.n == 0 {
			p.active--
			p.mu.Unlock()
			w.stats.Flush()
			return
		}
		e := p.ring[p.head]
		p.ring[p.head] = poolEntry{}
		p.head = (p.head + 1) % len(p.ring)
		p.n--
		waited := time.Since(poolEpoch) - e.at
		rest := false
		if waited > p.lag && p.sleeping > 0 {
			p.sleeping-- // behind: another writer joins
			p.cond.Signal()
		} else if waited < p.lag/4 && p.active > 1 {
			rest = true // ahead: one writer fewer after this write
		}
		p.mu.Unlock()
		p.flush(w, e.q)
		if replaced || rest {
			w.stats.Flush()
		}
		p.mu.Lock()
		if replaced {
			p.mu.Unlock()
			return
		}
		if rest && p.active > 1 && !p.stopped {
			p.wait()
		}
	}
}

// flush writes everything the queue holds as one write.
func (p *Pool) flush(w *write, q *Queue) {
	q.mu.Lock()
	if q.closing || len(q.queue) == 0 {
		q.writing = false
		q.mu.Unlock()
		return
	}
	// Swap the queue with the spare slice, so a busy connection does not
	// allocate a new queue for every write.
	msgs, oldest := q.queue, q.oldest
	q.queue, q.bytes, q.oldest = q.spare[:0], 0, 0
	q.spare = nil
	q.mu.Unlock()

	w.buf = q.framer(w.buf[:0], msgs)
	clear(msgs) // drop references to the encoded messages
	w.timeout = q.timeout
	err := w.write(&q.fc)
	if err == nil {
		// Once per write, not per message, and added to the shared
		// counters once per batch of writes.
		w.stats.Wrote(q.m, len(msgs), len(w.buf), oldest)
	}
	if cap(w.buf) > 64<<10 {
		w.buf = nil // keep no large buffer for the next, likely small, write
	}

	q.mu.Lock()
	if q.spare == nil && cap(msgs) <= 1024 {
		q.spare = msgs[:0]
	}
	more := err == nil && !q.closing && len(q.queue) > 0
	if !more {
		q.writing = false
	}
	dropped := 0
	if err != nil {
		dropped = len(msgs) + len(q.queue)
		q.closing = true
		q.queue, q.bytes, q.oldest = nil, 0, 0
	}
	q.mu.Unlock()
	if err != nil {
		q.m.WriteFailed(isTimeout(err))
		q.m.Dropped(dropped)
		q.owner.WriteFailed(err)
		return
	}
	if more {
		p.push(q)
	}
}
