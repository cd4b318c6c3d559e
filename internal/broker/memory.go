package broker

import (
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"sync"
	"time"
)

const memoryShards = 64

// Memory is the single-node broker and presence manager. History lives in
// process memory; a restart starts every stream with a new epoch.
type Memory struct {
	handler Handler
	seed    maphash.Seed
	shards  [memoryShards]memoryShard
	now     func() time.Time
	index   memoryIndex

	pmu      sync.RWMutex
	presence map[string]map[string]*ClientInfo
}

type memoryShard struct {
	mu      sync.Mutex
	streams map[string]*stream
}

// stream is one channel's history. Its mutex also orders delivery, so every
// subscriber sees a channel's publications in offset order.
type stream struct {
	mu      sync.Mutex
	epoch   string
	top     uint64
	pubs    []*Publication // oldest first
	bytes   int            // sum of pubs' Size
	touched time.Time
}

// NewMemory returns an empty memory broker.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed(), now: time.Now, presence: map[string]map[string]*ClientInfo{}}
	for i := range m.shards {
		m.shards[i].streams = map[string]*stream{}
	}
	return m
}

// Run implements Broker.
func (m *Memory) Run(_ string, h Handler) error { m.handler = h; return nil }

// Close implements Broker.
func (m *Memory) Close() error { return nil }

// Subscribe implements Broker; a single node needs no interest tracking.
func (m *Memory) Subscribe(string) error { return nil }

// Unsubscribe implements Broker.
func (m *Memory) Unsubscribe(string) error { return nil }

// SubscribeAll implements Broker: the node's hub gets every publication anyway.
func (m *Memory) SubscribeAll() error { return nil }

// UnsubscribeAll implements Broker.
func (m *Memory) UnsubscribeAll() error { return nil }

// PublishControl implements Broker: there is only this node.
func (m *Memory) PublishControl(_ string, data []byte) error {
	if m.handler != nil {
		m.handler.HandleControl(data)
	}
	return nil
}

// NewEpoch returns a random stream epoch (8 hex digits).
func NewEpoch() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// stream returns the channel's stream, creating it (with a new epoch) when it
// does not exist or its metadata expired.
func (m *Memory) stream(channel string, create bool, metaTTL time.Duration) *stream {
	sh := &m.shards[maphash.String(m.seed, channel)%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.streams[channel]
	now := m.now()
	if s != nil && metaTTL > 0 {
		// Lock order: shard, then stream (never the reverse).
		s.mu.Lock()
		expired := now.Sub(s.touched) > metaTTL
		s.mu.Unlock()
		if expired {
			delete(sh.streams, channel)
			s = nil
		}
	}
	if s == nil && create {
		s = &stream{epoch: NewEpoch(), touched: now}
		sh.streams[channel] = s
	}
	return s
}

// trim drops publications beyond size or maxBytes, or older than ttl.
// Caller holds s.mu.
func (s *stream) trim(size, maxBytes int, ttl time.Duration, now time.Time) {
	drop, bytes := 0, s.bytes
	if size > 0 && len(s.pubs) > size {
		drop = len(s.pubs) - size
		for _, p := range s.pubs[:drop] {
			bytes -= p.Size()
		}
	}
	for drop < len(s.pubs) && ((maxBytes > 0 && bytes > maxBytes) || (ttl > 0 && now.Sub(s.pubs[drop].Time) > ttl)) {
		bytes -= s.pubs[drop].Size()
		drop++
	}
	if drop > 0 {
		// Copy so the dropped publications can be collected.
		s.pubs = append(s.pubs[:0:0], s.pubs[drop:]...)
		s.bytes = bytes
	}
}

// Publish implements Broker. Delivery to the hub happens under the
// stream's lock (and, for indexed publications, the index's), so the hub
// sees each channel's publications in offset order and indexed ones in Seq order.
func (m *Memory) Publish(pub *Publication, opts PublishOptions) (StreamPosition, error) {
	if pub.Time.IsZero() {
		pub.Time = m.now()
	}
	var sp StreamPosition
	if opts.HistorySize > 0 && opts.HistoryTTL > 0 {
		s := m.stream(pub.Channel, true, opts.HistoryMetaTTL)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.top++
		pub.Offset = s.top
		s.touched = pub.Time
		s.pubs = append(s.pubs, pub)
		s.bytes += pub.Size()
		s.trim(opts.HistorySize, opts.HistoryMaxBytes, opts.HistoryTTL, pub.Time)
		sp = StreamPosition{Offset: s.top, Epoch: s.epoch}
	}
	if opts.Index != nil {
		m.index.mu.Lock()
		defer m.index.mu.Unlock()
		m.index.add(pub, *opts.Index)
	}
	if m.handler != nil {
		m.handler.HandlePublication(pub, sp)
	}
	return sp, nil
}

// IndexAfter implements Broker.
func (m *Memory) IndexAfter(id string, opts IndexOptions) ([]*Publication, uint64, bool, error) {
	x := &m.index
	x.mu.Lock()
	defer x.mu.Unlock()
	x.expire(opts, m.now())
	if id == "" {
		return append([]*Publication(nil), x.items...), x.seq, true, nil
	}
	e, ok := x.ids[id]
	if !ok || len(x.items) == 0 {
		return nil, x.seq, false, nil
	}
	i := int(e.seq-x.items[0].Seq) + 1
	return append([]*Publication(nil), x.items[i:]...), x.seq, true, nil
}

// PublishJoin implements Broker.
func (m *Memory) PublishJoin(channel string, info *ClientInfo) error {
	if m.handler != nil {
		m.handler.HandleJoin(channel, info)
	}
	return nil
}

// PublishLeave implements Broker.
func (m *Memory) PublishLeave(channel string, info *ClientInfo) error {
	if m.handler != nil {
		m.handler.HandleLeave(channel, info)
	}
	return nil
}

// History implements Broker. With Since it returns the publications after
// Since.Offset (before it with Reverse); the caller decides whether the
// position was still in the stream by comparing epochs and offsets.
func (m *Memory) History(channel string, f HistoryFilter) ([]*Publication, StreamPosition, error) {
	s := m.stream(channel, true, f.MetaTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := StreamPosition{Offset: s.top, Epoch: s.epoch}
	if f.Limit == 0 {
		return nil, sp, nil
	}
	if f.TTL > 0 {
		// Publications expire by age independently of appends.
		s.trim(0, 0, f.TTL, m.now())
	}
	pubs := s.pubs
	var out []*Publication
	if !f.Reverse {
		start := 0
		if f.Since != nil {
			for start < len(pubs) && pubs[start].Offset <= f.Since.Offset {
				start++
			}
		}
		for i := start; i < len(pubs); i++ {
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
			out = append(out, pubs[i])
		}
	} else {
		end := len(pubs) - 1
		if f.Since != nil {
			for end >= 0 && pubs[end].Offset >= f.Since.Offset {
				end--
			}
		}
		for i := end; i >= 0; i-- {
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
			out = append(out, pubs[i])
		}
	}
	return out, sp, nil
}

// RemoveHistory implements Broker: publications go, the position stays.
func (m *Memory) RemoveHistory(channel string) error {
	s := m.stream(channel, false, 0)
	if s == nil {
		return nil
	}
	s.mu.Lock()
	s.pubs, s.bytes = nil, 0
	s.mu.Unlock()
	return nil
}

// AddPresence implements PresenceManager.
func (m *Memory) AddPresence(channel, clientID string, info *ClientInfo) error {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	c := m.presence[channel]
	if c == nil {
		c = map[string]*ClientInfo{}
		m.presence[channel] = c
	}
	c[clientID] = info
	return nil
}

// RemovePresence implements PresenceManager.
func (m *Memory) RemovePresence(channel, clientID string) error {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	if c := m.presence[channel]; c != nil {
		delete(c, clientID)
		if len(c) == 0 {
			delete(m.presence, channel)
		}
	}
	return nil
}

// Presence implements PresenceManager.
func (m *Memory) Presence(channel string) (map[string]*ClientInfo, error) {
	m.pmu.RLock()
	defer m.pmu.RUnlock()
	out := make(map[string]*ClientInfo, len(m.presence[channel]))
	for k, v := range m.presence[channel] {
		out[k] = v
	}
	return out, nil
}

// PresenceStats implements PresenceManager. The anonymous user "" counts as one user.
func (m *Memory) PresenceStats(channel string) (PresenceStats, error) {
	m.pmu.RLock()
	defer m.pmu.RUnlock()
	c := m.presence[channel]
	users := make(map[string]struct{}, len(c))
	for _, info := range c {
		users[info.User] = struct{}{}
	}
	return PresenceStats{NumClients: len(c), NumUsers: len(users)}, nil
}

// Forget drops the streams of the channels for which drop returns true (nil
// drops every stream), and the index when index is set. A forgotten
// stream's next publication or read starts a new epoch. A broker that keeps
// history per node (NATS without Redis) forgets what it may have missed, so
// that a client's position is then refused instead of recovered with a gap.
func (m *Memory) Forget(drop func(channel string) bool, index bool) {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for ch := range sh.streams {
			if drop == nil || drop(ch) {
				delete(sh.streams, ch)
			}
		}
		sh.mu.Unlock()
	}
	if index {
		m.index.mu.Lock()
		m.index.items, m.index.bytes, m.index.ids = nil, 0, nil
		m.index.mu.Unlock()
	}
}
