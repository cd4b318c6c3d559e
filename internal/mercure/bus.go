package mercure

import (
	"strings"
	"sync"
	"time"
)

// Earliest is the reserved last event id that asks for the whole history.
const Earliest = "earliest"

// Subscriber is one SSE stream: its topic selectors, what its token lets it
// read, and its bounded queue of pending updates.
type Subscriber struct {
	// ID is urn:uuid:<v4>, named in subscription events and the API.
	ID        string
	Selectors []string
	// Private is set when the subscriber presented a valid token; Subscribe
	// holds that token's mercure.subscribe selectors.
	Private   bool
	Subscribe []string
	// Payload is the token's mercure.payload (nil when absent).
	Payload []byte

	qmu     sync.Mutex
	pending []*Update // bounded by max; grows only while the writer is behind
	spare   []*Update // the slice handed out by Take last time, reused
	max     int
	ready   chan struct{} // signalled when pending becomes non-empty

	mark uint64 // the seq of the last update Publish considered for this subscriber

	goneOnce sync.Once
	gone     chan struct{}
	why      string
	// OnDrop, when set before Subscribe, runs once when the hub drops the
	// subscriber (under the bus lock: it must not block). The SSE handler
	// uses it to unblock a write stuck on a subscriber that does not read.
	OnDrop func()
}

// NewSubscriber returns a subscriber whose queue holds up to queueSize updates.
func NewSubscriber(selectors []string, private bool, subscribe []string, queueSize int) *Subscriber {
	return &Subscriber{Selectors: selectors, Private: private, Subscribe: subscribe,
		max: queueSize, ready: make(chan struct{}, 1), gone: make(chan struct{})}
}

// Ready is signalled when updates are waiting; Take them.
func (s *Subscriber) Ready() <-chan struct{} { return s.ready }

// Take returns every waiting update, oldest first. The slice is valid until
// the next call.
func (s *Subscriber) Take() []*Update {
	s.qmu.Lock()
	out := s.pending
	clear(s.spare[:cap(s.spare)]) // let delivered updates be collected
	s.pending = s.spare[:0]
	s.spare = out
	s.qmu.Unlock()
	return out
}

// push queues u; false when the queue is full.
func (s *Subscriber) push(u *Update) bool {
	s.qmu.Lock()
	if len(s.pending) >= s.max {
		s.qmu.Unlock()
		return false
	}
	s.pending = append(s.pending, u)
	s.qmu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return true
}

// Gone is closed when the hub drops the subscriber; Why says why.
func (s *Subscriber) Gone() <-chan struct{} { return s.gone }

// Why says why the subscriber was dropped (after Gone is closed).
func (s *Subscriber) Why() string { return s.why }

// Drop ends the subscriber's stream; the first reason wins.
func (s *Subscriber) Drop(why string) {
	s.goneOnce.Do(func() {
		s.why = why
		close(s.gone)
		if s.OnDrop != nil {
			s.OnDrop()
		}
	})
}

// wants applies the delivery rules: some selector of the subscriber matches
// some topic of the update and, for a private update, some selector of the
// token's mercure.subscribe matches some topic too (possibly another one).
// Anonymous subscribers never receive private updates.
func (s *Subscriber) wants(u *Update, m *Matcher) bool {
	if !m.MatchAny(s.Selectors, u.Topics) {
		return false
	}
	return !u.Private || (s.Private && m.MatchAny(s.Subscribe, u.Topics))
}

// Bus fans updates out to this node's subscribers and keeps the bounded
// history that reconnecting subscribers replay. One lock orders publishing,
// history and subscribing, so that replay and live delivery meet without a
// gap or a duplicate.
type Bus struct {
	matcher *Matcher
	now     func() time.Time

	mu   sync.Mutex
	seq  uint64
	subs map[*Subscriber]struct{}
	// exact indexes subscribers by their plain selectors (no "{", not "*");
	// wide holds those with a "*" or a template selector, checked on every update.
	exact map[string]map[*Subscriber]struct{}
	wide  map[*Subscriber]struct{}
	hist  history

	subscribersTotal, updatesTotal uint64 // since start, under mu
	lastEvent                      string // id of the last subscription event
}

// Stats are the bus's counters, named like the reference hub's metrics.
type Stats struct {
	SubscribersConnected int    `json:"mercure_subscribers_connected"`
	SubscribersTotal     uint64 `json:"mercure_subscribers_total"`
	UpdatesTotal         uint64 `json:"mercure_updates_total"`
	HistoryLen           int    `json:"mercure_history_len"`
}

// Stats returns the current counters.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{SubscribersConnected: len(b.subs), SubscribersTotal: b.subscribersTotal, UpdatesTotal: b.updatesTotal, HistoryLen: len(b.hist.items)}
}

// NewBus returns a bus keeping up to historySize updates for at most
// historyTTL (0: no age limit).
func NewBus(m *Matcher, historySize int, historyTTL time.Duration) *Bus {
	return &Bus{matcher: m, now: time.Now, subs: map[*Subscriber]struct{}{},
		exact: map[string]map[*Subscriber]struct{}{}, wide: map[*Subscriber]struct{}{},
		hist: history{size: historySize, ttl: historyTTL, index: map[string]*idEntry{}}}
}

// Publish records u in the history and queues it for every subscriber that
// may receive it. A subscriber whose queue is full is dropped.
func (b *Bus) Publish(u *Update) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	b.updatesTotal++
	u.seq = b.seq
	u.at = b.now()
	b.hist.add(u)
	if u.subscriptionEvent {
		b.lastEvent = u.ID
	}
	for _, t := range u.Topics {
		for s := range b.exact[t] {
			b.offer(s, u)
		}
	}
	for s := range b.wide {
		b.offer(s, u)
	}
}

// offer queues u for s once (a subscriber may be reached through several
// topics) if s may receive it.
func (b *Bus) offer(s *Subscriber, u *Update) {
	if s.mark == u.seq {
		return
	}
	s.mark = u.seq
	if s.wants(u, b.matcher) && !s.push(u) {
		s.Drop("queue_full")
	}
}

// plain reports whether a selector only ever matches itself.
func plain(selector string) bool {
	return selector != "*" && !strings.Contains(selector, "{")
}

// Subscribe registers s. When lastEventID is not empty it returns the
// updates to replay (filtered by the same rules as live delivery) and the
// value of the Last-Event-ID response header: the requested id when it is in
// the history, "earliest" when earliest was asked for or the id is unknown.
func (b *Bus) Subscribe(s *Subscriber, lastEventID string) (replay []*Update, header string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Under the lock that Publish takes: every update is either in the
	// history read below or queued live, never both, never neither.
	b.subs[s] = struct{}{}
	b.subscribersTotal++
	for _, sel := range s.Selectors {
		if !plain(sel) {
			b.wide[s] = struct{}{}
			continue
		}
		set := b.exact[sel]
		if set == nil {
			set = map[*Subscriber]struct{}{}
			b.exact[sel] = set
		}
		set[s] = struct{}{}
	}
	if lastEventID == "" {
		return nil, ""
	}
	b.hist.expire(b.now())
	var from []*Update
	header = Earliest
	if lastEventID == Earliest {
		from = b.hist.items
	} else if i, ok := b.hist.after(lastEventID); ok {
		from = b.hist.items[i:]
		header = lastEventID
	}
	for _, u := range from {
		if s.wants(u, b.matcher) {
			replay = append(replay, u)
		}
	}
	return replay, header
}

// Unsubscribe removes s.
func (b *Bus) Unsubscribe(s *Subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	delete(b.wide, s)
	for _, sel := range s.Selectors {
		if set := b.exact[sel]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(b.exact, sel)
			}
		}
	}
	b.mu.Unlock()
}

// Subscribers returns every registered subscriber.
func (b *Bus) Subscribers() []*Subscriber {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*Subscriber, 0, len(b.subs))
	for s := range b.subs {
		out = append(out, s)
	}
	return out
}

// history is a bounded, ordered list of updates with an index from id to
// the earliest retained update carrying it (ids may repeat).
type history struct {
	size  int
	ttl   time.Duration
	items []*Update // consecutive seqs, oldest first
	index map[string]*idEntry
}

// idEntry is the earliest retained update with an id and how many carry it.
type idEntry struct {
	seq uint64
	n   int
}

func (h *history) add(u *Update) {
	if h.size <= 0 {
		return
	}
	h.items = append(h.items, u)
	if e := h.index[u.ID]; e != nil {
		e.n++
	} else {
		h.index[u.ID] = &idEntry{seq: u.seq, n: 1}
	}
	for len(h.items) > h.size {
		h.evict()
	}
	h.expire(u.at)
}

func (h *history) evict() {
	old := h.items[0]
	h.items[0] = nil
	h.items = h.items[1:]
	e := h.index[old.ID]
	if e.n--; e.n == 0 {
		delete(h.index, old.ID)
		return
	}
	// A later duplicate of the id becomes its earliest occurrence (the
	// evicted update was the earliest: eviction goes oldest first).
	for _, u := range h.items {
		if u.ID == old.ID {
			e.seq = u.seq
			break
		}
	}
}

func (h *history) expire(now time.Time) {
	if h.ttl <= 0 {
		return
	}
	for len(h.items) > 0 && now.Sub(h.items[0].at) > h.ttl {
		h.evict()
	}
}

// after returns the position of the first update after the one with id.
func (h *history) after(id string) (int, bool) {
	e, ok := h.index[id]
	if !ok || len(h.items) == 0 {
		return 0, false
	}
	return int(e.seq-h.items[0].seq) + 1, true
}

// Snapshot returns the registered subscribers and the id of the last
// subscription event ("earliest" when none), read together: subscribing to
// subscription events from that id continues the list without a gap.
func (b *Bus) Snapshot() ([]*Subscriber, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*Subscriber, 0, len(b.subs))
	for s := range b.subs {
		out = append(out, s)
	}
	last := b.lastEvent
	if last == "" {
		last = Earliest
	}
	return out, last
}
