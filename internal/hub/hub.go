// Package hub owns channels, subscriptions, fan-out, history and presence on one
// node, independent of any wire protocol. Front doors register their clients
// and subscriptions here; the broker delivers publications, which the hub fans
// out to local subscribers, encoding each one once per wire format.
package hub

import (
	"encoding/json"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/glob"
)

// Format identifies a wire encoding of a delivery, so each publication is
// encoded once per format, not once per subscriber.
type Format int

// Wire formats.
const (
	FormatCentrifugeJSON Format = iota
	numFormats                  = 4
)

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
	enc     [numFormats]encoded
}

type encoded struct {
	once sync.Once
	b    []byte
}

// Encoded returns the delivery in format f, building it with build the first
// time any subscriber asks.
func (d *Delivery) Encoded(f Format, build func(*Delivery) []byte) []byte {
	e := &d.enc[f]
	e.once.Do(func() { e.b = build(d) })
	return e.b
}

// Client is a connection as the hub sees it. Front doors implement it.
type Client interface {
	ID() string
	User() string
	// Deliver hands an event to the client; it must not block.
	Deliver(d *Delivery)
	// ServerSubscribe subscribes the client on behalf of the server API.
	ServerSubscribe(channel string, opts ServerSubscription) error
	// ServerUnsubscribe removes a subscription and tells the client.
	ServerUnsubscribe(channel string, code uint32, reason string)
	// Disconnect closes the connection with a protocol code.
	Disconnect(code uint32, reason string)
	// ServerRefresh changes the connection's expiry and info.
	ServerRefresh(r ServerRefresh)
	// Send delivers an asynchronous message (not in any channel) to the client.
	Send(data []byte)
	// CheckRevoked closes the connection if its token has been revoked.
	CheckRevoked()
}

// ServerSubscription is a subscription made by the server API.
type ServerSubscription struct {
	Info         json.RawMessage
	Data         json.RawMessage
	ExpireAt     time.Time
	RecoverSince *broker.StreamPosition
}

// ServerRefresh is a refresh made by the server API.
type ServerRefresh struct {
	Expired  bool
	ExpireAt time.Time // zero: unchanged unless Expired
	Info     json.RawMessage
}

const hubShards = 64

type channelShard struct {
	mu   sync.RWMutex
	subs map[string]map[Client]struct{}
}

// Hub is one node's registry of clients and subscriptions.
type Hub struct {
	broker   broker.Broker
	presence broker.PresenceManager
	ns       *Namespaces
	seed     maphash.Seed
	shards   [hubShards]channelShard

	cmu     sync.RWMutex
	clients map[string]Client
	users   map[string]map[string]Client

	numSubs  atomic.Int64
	started  time.Time
	NodeID   string
	NodeName string
	Version  string
}

// New returns a hub over a broker and presence manager and starts delivery.
func New(b broker.Broker, pm broker.PresenceManager, ns *Namespaces) (*Hub, error) {
	h := &Hub{broker: b, presence: pm, ns: ns, seed: maphash.MakeSeed(), started: time.Now(),
		clients: map[string]Client{}, users: map[string]map[string]Client{}}
	for i := range h.shards {
		h.shards[i].subs = map[string]map[Client]struct{}{}
	}
	if err := b.Run("", h); err != nil {
		return nil, err
	}
	return h, nil
}

// Namespaces returns the channel resolver.
func (h *Hub) Namespaces() *Namespaces { return h.ns }

// Broker returns the broker.
func (h *Hub) Broker() broker.Broker { return h.broker }

// Presence returns the presence manager.
func (h *Hub) Presence() broker.PresenceManager { return h.presence }

func (h *Hub) shard(channel string) *channelShard {
	return &h.shards[maphash.String(h.seed, channel)%hubShards]
}

// AddClient registers a connected client.
func (h *Hub) AddClient(c Client) {
	h.cmu.Lock()
	defer h.cmu.Unlock()
	h.clients[c.ID()] = c
	u := h.users[c.User()]
	if u == nil {
		u = map[string]Client{}
		h.users[c.User()] = u
	}
	u[c.ID()] = c
}

// RemoveClient unregisters a client.
func (h *Hub) RemoveClient(c Client) {
	h.cmu.Lock()
	defer h.cmu.Unlock()
	delete(h.clients, c.ID())
	if u := h.users[c.User()]; u != nil {
		delete(u, c.ID())
		if len(u) == 0 {
			delete(h.users, c.User())
		}
	}
}

// UserClients returns the user's clients, or only the one with clientID when it is set.
func (h *Hub) UserClients(user, clientID string) []Client {
	h.cmu.RLock()
	defer h.cmu.RUnlock()
	var out []Client
	for id, c := range h.users[user] {
		if clientID == "" || id == clientID {
			out = append(out, c)
		}
	}
	return out
}

// Clients returns every client (for shutdown).
func (h *Hub) Clients() []Client {
	h.cmu.RLock()
	defer h.cmu.RUnlock()
	out := make([]Client, 0, len(h.clients))
	for _, c := range h.clients {
		out = append(out, c)
	}
	return out
}

// Subscribe adds c to the channel's local subscribers.
func (h *Hub) Subscribe(channel string, c Client) error {
	sh := h.shard(channel)
	sh.mu.Lock()
	m := sh.subs[channel]
	first := m == nil
	if first {
		m = map[Client]struct{}{}
		sh.subs[channel] = m
	}
	if _, ok := m[c]; !ok {
		m[c] = struct{}{}
		h.numSubs.Add(1)
	}
	sh.mu.Unlock()
	if first {
		return h.broker.Subscribe(channel)
	}
	return nil
}

// Unsubscribe removes c from the channel's local subscribers.
func (h *Hub) Unsubscribe(channel string, c Client) error {
	sh := h.shard(channel)
	sh.mu.Lock()
	m := sh.subs[channel]
	last := false
	if m != nil {
		if _, ok := m[c]; ok {
			delete(m, c)
			h.numSubs.Add(-1)
		}
		if len(m) == 0 {
			delete(sh.subs, channel)
			last = true
		}
	}
	sh.mu.Unlock()
	if last {
		return h.broker.Unsubscribe(channel)
	}
	return nil
}

func (h *Hub) fanout(d *Delivery) {
	sh := h.shard(d.Channel)
	sh.mu.RLock()
	for c := range sh.subs[d.Channel] {
		c.Deliver(d)
	}
	sh.mu.RUnlock()
}

// HandlePublication implements broker.Handler.
func (h *Hub) HandlePublication(pub *broker.Publication, sp broker.StreamPosition) {
	h.fanout(&Delivery{Kind: KindPublication, Channel: pub.Channel, Pub: pub, Epoch: sp.Epoch})
}

// HandleControl implements broker.Handler.
func (h *Hub) HandleControl([]byte) {}

// HandleResync implements broker.Handler.
func (h *Hub) HandleResync() {}

// HandleJoin implements broker.Handler.
func (h *Hub) HandleJoin(channel string, info *broker.ClientInfo) {
	h.fanout(&Delivery{Kind: KindJoin, Channel: channel, Info: info})
}

// HandleLeave implements broker.Handler.
func (h *Hub) HandleLeave(channel string, info *broker.ClientInfo) {
	h.fanout(&Delivery{Kind: KindLeave, Channel: channel, Info: info})
}

// PublishOptions returns the broker options for a namespace.
func PublishOptions(ns *Namespace) broker.PublishOptions {
	return broker.PublishOptions{HistorySize: ns.HistorySize, HistoryTTL: ns.HistoryTTL.D(), HistoryMetaTTL: metaTTL(ns)}
}

func metaTTL(ns *Namespace) time.Duration {
	if ns.HistoryMetaTTL > 0 {
		return ns.HistoryMetaTTL.D()
	}
	return 720 * time.Hour
}

// Publish publishes to a channel of namespace ns and returns its stream position
// (zero when the namespace keeps no history).
func (h *Hub) Publish(channel string, ns *Namespace, pub *broker.Publication) (broker.StreamPosition, error) {
	pub.Channel = channel
	return h.broker.Publish(pub, PublishOptions(ns))
}

// History reads a channel's history with the namespace's TTL applied.
func (h *Hub) History(channel string, ns *Namespace, f broker.HistoryFilter) ([]*broker.Publication, broker.StreamPosition, error) {
	f.MetaTTL = metaTTL(ns)
	f.TTL = ns.HistoryTTL.D()
	return h.broker.History(channel, f)
}

// ChannelInfo is a channel in a listing.
type ChannelInfo struct {
	NumClients int `json:"num_clients"`
}

// Channels lists channels with local subscribers whose names match pattern
// ("" matches all).
func (h *Hub) Channels(pattern string) map[string]ChannelInfo {
	out := map[string]ChannelInfo{}
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for ch, m := range sh.subs {
			if pattern == "" || glob.Match(pattern, ch) {
				out[ch] = ChannelInfo{NumClients: len(m)}
			}
		}
		sh.mu.RUnlock()
	}
	return out
}

// Stats are node counters for the API info method.
type Stats struct {
	NumClients  int
	NumUsers    int
	NumChannels int
	NumSubs     int
	Uptime      time.Duration
}

// Stats returns node counters.
func (h *Hub) Stats() Stats {
	h.cmu.RLock()
	s := Stats{NumClients: len(h.clients), NumUsers: len(h.users)}
	h.cmu.RUnlock()
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		s.NumChannels += len(sh.subs)
		sh.mu.RUnlock()
	}
	s.NumSubs = int(h.numSubs.Load())
	s.Uptime = time.Since(h.started)
	return s
}
