package hub

import (
	"sync"
	"time"

	"github.com/heraldhub/herald/internal/broker"
)

// Format identifies a wire encoding of a delivery, so each delivery is
// encoded once per format, not once per subscriber. Front doors register
// theirs with RegisterFormat.
type Format uint8

// MaxFormats bounds the formats a process may register.
const MaxFormats = 8

var (
	formatMu    sync.Mutex
	formatNames []string
)

// RegisterFormat returns the Format named name, registering it the first
// time. Front doors call it once, at package initialisation.
func RegisterFormat(name string) Format {
	formatMu.Lock()
	defer formatMu.Unlock()
	for i, n := range formatNames {
		if n == name {
			return Format(i)
		}
	}
	if len(formatNames) == MaxFormats {
		panic("hub: too many wire formats")
	}
	formatNames = append(formatNames, name)
	return Format(len(formatNames) - 1)
}

// Kind is what a delivery carries.
type Kind uint8

// Delivery kinds.
const (
	KindPublication Kind = iota + 1
	KindJoin
	KindLeave
)

// Delivery is one event for the subscribers of a channel. It is shared by all
// of them and must not be modified.
type Delivery struct {
	Kind    Kind
	Channel string
	Pub     *broker.Publication // KindPublication
	Info    *broker.ClientInfo  // KindJoin, KindLeave
	Epoch   string              // stream epoch of Pub, when the channel keeps history
	// Prev is the channel's publication delivered on this node before Pub,
	// set only while the channel has subscriptions that asked for it
	// (SubscribeRequest.Delta), and nil for the first one: front doors that
	// send deltas compute them against Prev, once per delivery.
	Prev *broker.Publication
	enc  [MaxFormats]encoded

	// Encodings that vary per subscription as well as per format (see EncodedFor).
	kmu    sync.Mutex
	k0     keyed
	keyed  map[keyed][]byte
	k0data []byte
}

// keyed names an encoding of EncodedFor.
type keyed struct {
	f   Format
	key string
}

// maxKeyed bounds the keyed encodings kept per delivery: past it, each
// further key is built for its subscriber alone.
const maxKeyed = 64

type encoded struct {
	once sync.Once
	b    []byte
}

// Accepted returns when the delivery's publication was accepted (zero for
// join and leave): front doors queue it with conn.Queue.EnqueueAt, so the
// write that carries it measures the publication's latency.
func (d *Delivery) Accepted() time.Time {
	if d.Pub == nil {
		return time.Time{}
	}
	return d.Pub.Time
}

// Encoded returns the delivery in format f, building it with build the first
// time any subscriber asks.
func (d *Delivery) Encoded(f Format, build func(*Delivery) []byte) []byte {
	e := &d.enc[f]
	e.once.Do(func() { e.b = build(d) })
	return e.b
}

// EncodedFor returns the delivery in format f for key, building it with
// build the first time a subscriber with that key asks: for wire formats
// whose messages carry something of the subscription besides the delivery
// (an Action Cable identifier), so subscribers that share it share one
// encoding. Subscribers of one channel usually share a handful of keys.
func (d *Delivery) EncodedFor(f Format, key string, build func(*Delivery, string) []byte) []byte {
	k := keyed{f, key}
	d.kmu.Lock()
	defer d.kmu.Unlock()
	if d.k0data != nil && d.k0 == k {
		return d.k0data
	}
	if b, ok := d.keyed[k]; ok {
		return b
	}
	b := build(d, key)
	switch {
	case d.k0data == nil:
		d.k0, d.k0data = k, b
	case len(d.keyed) < maxKeyed:
		if d.keyed == nil {
			d.keyed = make(map[keyed][]byte, 4)
		}
		d.keyed[k] = b
	}
	return b
}

func (h *Hub) fanout(d *Delivery) {
	sh := h.shard(d.Channel)
	sh.mu.RLock()
	if d.Kind == KindPublication && len(sh.prev) > 0 {
		if slot := sh.prev[d.Channel]; slot != nil {
			d.Prev = slot.pub.Swap(d.Pub)
		}
	}
	subs := sh.subs[d.Channel]
	for s := range subs {
		s.deliver(d)
	}
	n := len(subs)
	sh.mu.RUnlock()
	if d.Kind == KindPublication {
		h.o.Metrics.Delivered(n) // once per publication, not per subscriber
	}
}

// HandlePublication implements broker.Handler.
func (h *Hub) HandlePublication(pub *broker.Publication, sp broker.StreamPosition) {
	d := &Delivery{Kind: KindPublication, Channel: pub.Channel, Pub: pub, Epoch: sp.Epoch}
	h.fanout(d)
	if h.sel.count.Load() > 0 {
		h.matchSelectors(d)
	}
}

// HandleJoin implements broker.Handler.
func (h *Hub) HandleJoin(channel string, info *broker.ClientInfo) {
	h.fanout(&Delivery{Kind: KindJoin, Channel: channel, Info: info})
}

// HandleLeave implements broker.Handler.
func (h *Hub) HandleLeave(channel string, info *broker.ClientInfo) {
	h.fanout(&Delivery{Kind: KindLeave, Channel: channel, Info: info})
}

// HandleResync implements broker.Handler: the broker may have lost
// publications while its connection was down. Positioned subscriptions are
// told they missed publications (their clients recover), and topic
// selector subscriptions end (their clients reconnect with Last-Event-ID).
func (h *Hub) HandleResync() {
	h.o.Metrics.Resync()
	var hit []*Subscription
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for _, m := range sh.subs {
			for s := range m {
				if s.positioned {
					hit = append(hit, s)
				}
			}
		}
		sh.mu.RUnlock()
	}
	hit = append(hit, h.sel.all()...)
	// Revocations sent while the connection was down were missed too.
	h.kickRevocations()
	for _, s := range hit {
		s.mu.Lock()
		if !s.ended {
			s.insufficientLocked("the broker reconnected; publications may have been missed")
		}
		s.mu.Unlock()
	}
}
