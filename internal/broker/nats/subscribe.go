package nats

import (
	"sync"
	"time"

	"github.com/heraldhub/herald/internal/broker"
)

// Subscribe implements broker.Broker. It returns once NATS confirmed the
// subscription: a publication made after it returns reaches this node.
func (b *Broker) Subscribe(channel string) error {
	b.smu.Lock()
	defer b.smu.Unlock()
	b.local.Store(channel, struct{}{})
	if _, ok := b.subs[channel]; ok {
		return nil
	}
	if b.all.Load() {
		b.subs[channel] = nil // the all-channel subscription covers it
		return nil
	}
	s, err := b.nc.ChanSubscribe(b.subj.channel(channel), b.msgs)
	if err != nil {
		return b.unavailable("subscribe", err)
	}
	b.subs[channel] = s
	if err := b.nc.FlushTimeout(b.opts.FlushTimeout); err != nil {
		// Kept: the client subscribes again when it reconnects, and the
		// hub is told to resync then.
		return b.unavailable("subscribe", err)
	}
	if b.redis != nil {
		// Now that this node receives the channel, what follows the
		// stream's top comes in offset order from here. Without a stream
		// yet, every publication stored from now on reaches this node,
		// so the line starts at offset 1, in the epoch that the first one
		// brings: two nodes publishing the first ones at once must not
		// have the second arrive first and start the line. Without Redis
		// now, the line starts with what arrives first.
		if sp, err := b.redis.Top(channel); err == nil {
			b.seq.start(channel, sp.Offset+1, sp.Epoch)
		}
	}
	return nil
}

// Unsubscribe implements broker.Broker.
func (b *Broker) Unsubscribe(channel string) error {
	b.smu.Lock()
	defer b.smu.Unlock()
	b.local.Delete(channel)
	s, ok := b.subs[channel]
	if !ok {
		return nil
	}
	delete(b.subs, channel)
	b.seq.forget(channel)
	if !b.all.Load() && b.mem != nil {
		// This node stops receiving the channel: its stream here would
		// have a gap, so the next subscriber starts a new epoch.
		b.mem.Forget(func(ch string) bool { return ch == channel }, false)
	}
	if s != nil {
		if err := s.Unsubscribe(); err != nil {
			return b.unavailable("unsubscribe", err)
		}
	}
	return nil
}

// SubscribeAll implements broker.Broker. The node moves from per-channel
// subscriptions to one subscription of every channel; while both exist a
// publication may arrive twice, and the second copy is dropped.
func (b *Broker) SubscribeAll() error {
	b.smu.Lock()
	defer b.smu.Unlock()
	if b.all.Load() {
		return nil
	}
	b.dedupe.begin()
	defer b.dedupe.end()
	wild, err := b.nc.ChanSubscribe(b.subj.allChannels(), b.msgs)
	if err != nil {
		return b.unavailable("subscribe", err)
	}
	if err := b.nc.FlushTimeout(b.opts.FlushTimeout); err != nil {
		_ = wild.Unsubscribe()
		return b.unavailable("subscribe", err)
	}
	b.wild = wild
	b.seq.forgetAll()
	if b.redis != nil {
		if top, err := b.redis.IndexTop(); err == nil {
			b.seq.start("", top+1, "")
		}
	}
	b.all.Store(true)
	if b.mem != nil {
		// The index held only what this node received: start it anew.
		b.mem.Forget(func(string) bool { return false }, true)
	}
	for ch, s := range b.subs {
		if s != nil {
			_ = s.Unsubscribe()
		}
		b.subs[ch] = nil
	}
	return nil
}

// UnsubscribeAll implements broker.Broker.
func (b *Broker) UnsubscribeAll() error {
	b.smu.Lock()
	defer b.smu.Unlock()
	if !b.all.Load() {
		return nil
	}
	b.dedupe.begin()
	defer b.dedupe.end()
	for ch := range b.subs {
		s, err := b.nc.ChanSubscribe(b.subj.channel(ch), b.msgs)
		if err != nil {
			return b.unavailable("subscribe", err)
		}
		b.subs[ch] = s
	}
	if err := b.nc.FlushTimeout(b.opts.FlushTimeout); err != nil {
		return b.unavailable("subscribe", err)
	}
	b.all.Store(false)
	b.seq.forgetAll()
	if b.mem != nil {
		b.mem.Forget(func(ch string) bool { _, ok := b.subs[ch]; return !ok }, false)
	}
	if err := b.wild.Unsubscribe(); err != nil {
		return b.unavailable("unsubscribe", err)
	}
	b.wild = nil
	return nil
}

// overlap drops the second copy of a message while a node switches
// between per-channel and all-channel subscriptions (and a short while
// after, for copies still on their way).
type overlap struct {
	mu     sync.Mutex
	active int
	until  time.Time
	seen   map[string]struct{}
	order  []string
}

const (
	overlapGrace = 5 * time.Second
	overlapMax   = 1 << 17 // nonces remembered at most
)

func (o *overlap) begin() {
	o.mu.Lock()
	o.active++
	if o.seen == nil {
		o.seen = map[string]struct{}{}
	}
	o.mu.Unlock()
}

func (o *overlap) end() {
	o.mu.Lock()
	o.active--
	o.until = time.Now().Add(overlapGrace)
	o.mu.Unlock()
}

// first reports whether nonce is seen for the first time.
func (o *overlap) first(nonce string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		return true
	}
	if o.active == 0 && time.Now().After(o.until) {
		o.seen, o.order = nil, nil
		return true
	}
	if _, ok := o.seen[nonce]; ok {
		return false
	}
	o.seen[nonce] = struct{}{}
	o.order = append(o.order, nonce)
	if len(o.order) > overlapMax {
		delete(o.seen, o.order[0])
		o.order = o.order[1:]
	}
	return true
}

// History implements broker.Broker.
func (b *Broker) History(channel string, f broker.HistoryFilter) ([]*broker.Publication, broker.StreamPosition, error) {
	if b.redis != nil {
		return b.redis.History(channel, f)
	}
	return b.mem.History(channel, f)
}

// RemoveHistory implements broker.Broker.
func (b *Broker) RemoveHistory(channel string) error {
	if b.redis != nil {
		return b.redis.RemoveHistory(channel)
	}
	return b.mem.RemoveHistory(channel)
}

// IndexAfter implements broker.Broker.
func (b *Broker) IndexAfter(id string, opts broker.IndexOptions) ([]*broker.Publication, uint64, bool, error) {
	if b.redis != nil {
		return b.redis.IndexAfter(id, opts)
	}
	return b.mem.IndexAfter(id, opts)
}

// AddPresence implements broker.PresenceManager.
func (b *Broker) AddPresence(channel, clientID string, info *broker.ClientInfo) error {
	if b.redis != nil {
		return b.redis.AddPresence(channel, clientID, info)
	}
	return b.mem.AddPresence(channel, clientID, info)
}

// RemovePresence implements broker.PresenceManager.
func (b *Broker) RemovePresence(channel, clientID string) error {
	if b.redis != nil {
		return b.redis.RemovePresence(channel, clientID)
	}
	return b.mem.RemovePresence(channel, clientID)
}

// Presence implements broker.PresenceManager.
func (b *Broker) Presence(channel string) (map[string]*broker.ClientInfo, error) {
	if b.redis != nil {
		return b.redis.Presence(channel)
	}
	return b.mem.Presence(channel)
}

// PresenceStats implements broker.PresenceManager.
func (b *Broker) PresenceStats(channel string) (broker.PresenceStats, error) {
	if b.redis != nil {
		return b.redis.PresenceStats(channel)
	}
	return b.mem.PresenceStats(channel)
}
