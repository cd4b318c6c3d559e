package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/glob"
	"github.com/heraldhub/herald/internal/metrics"
)

// Authorizer decides what a connection may do on a channel (the auth engine).
type Authorizer interface {
	AuthorizeChannel(ctx context.Context, req *auth.ChannelRequest) (*auth.ChannelGrant, *auth.Reason)
}

// Options build a Hub.
type Options struct {
	Broker     broker.Broker
	Presence   broker.PresenceManager
	Namespaces *Namespaces
	Auth       Authorizer
	Logger     *slog.Logger
	NodeID     string
	NodeName   string
	Version    string
	// RecoveryLimit caps the publications of one recovery (client.recovery_max_publication_limit).
	RecoveryLimit int
	// Index, when set, records every publication in the broker's index for
	// Mercure's Last-Event-ID, within these bounds.
	Index *broker.IndexOptions
	// MatchCacheSize bounds the cache of topic selector matches.
	MatchCacheSize int
	// OnRevocation applies a revocation made on any node to this node's
	// auth engine; live connections are then checked.
	OnRevocation func(Revocation)
	// Records, when the broker has a store every node shares, keeps the
	// revocations until they expire, for nodes that start later.
	Records broker.SharedRecords
	// NodeInfoInterval is how often the node announces itself to the others
	// (default 5s); a node not heard from for three intervals is gone.
	NodeInfoInterval time.Duration
	// Metrics, when set, counts connections and subscriptions by front
	// door, connects and disconnects, publications and deliveries.
	Metrics *metrics.Metrics
}

const hubShards = 64

type channelShard struct {
	mu   sync.RWMutex
	subs map[string]map[*Subscription]struct{}
	// prev holds the previous publication of channels that have delta
	// subscribers (Delivery.Prev); other channels have no entry.
	prev map[string]*prevSlot
}

// prevSlot is a channel's previous publication on this node, kept while
// the channel has subscribers that receive deltas.
type prevSlot struct {
	pub atomic.Pointer[broker.Publication]
	n   int // delta subscriptions; guarded by the shard's mu
}

// clientEntry is a registered connection and its subscriptions.
type clientEntry struct {
	c        Client
	mu       sync.Mutex
	subs     map[string]*Subscription // channel subscriptions
	selector *Subscription            // the topic-selector subscription, if any
	removed  bool
	m        *metrics.Door // the client's front door in the metrics
	code     string        // why the front door is closing it (Disconnecting)
}

// Hub owns the channels and subscriptions of one node, whatever protocol
// its clients speak: subscribe (permission, recovery, buffering, presence,
// join/leave), publish, fan-out encoded once per wire format, and control
// intents that reach the node holding a connection through the broker.
type Hub struct {
	o        Options
	broker   broker.Broker
	presence broker.PresenceManager
	ns       *Namespaces
	auth     Authorizer
	log      *slog.Logger
	seed     maphash.Seed
	shards   [hubShards]channelShard
	sel      selectorIndex
	matcher  *Matcher

	cmu     sync.RWMutex
	clients map[string]*clientEntry
	users   map[string]map[string]*clientEntry

	numSubs  atomic.Int64
	started  time.Time
	draining atomic.Bool

	controlMu sync.RWMutex // the node announcements run while front doors register their kinds
	controls  map[string]func(node string, payload json.RawMessage)
	nodes     nodeRegistry
	heardSelf atomic.Bool // this node received its own announcement
	stopNodes chan struct{}
	stopOnce  sync.Once

	revs    revocations
	revKick chan struct{}
}

// New returns a hub and starts delivery from the broker.
func New(o Options) (*Hub, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RecoveryLimit <= 0 {
		o.RecoveryLimit = 300
	}
	if o.NodeInfoInterval <= 0 {
		o.NodeInfoInterval = 5 * time.Second
	}
	h := &Hub{o: o, broker: o.Broker, presence: o.Presence, ns: o.Namespaces, auth: o.Auth, log: o.Logger,
		seed: maphash.MakeSeed(), started: time.Now(), matcher: NewMatcher(o.MatchCacheSize),
		clients: map[string]*clientEntry{}, users: map[string]map[string]*clientEntry{},
		stopNodes: make(chan struct{}), revKick: make(chan struct{}, 1)}
	for i := range h.shards {
		h.shards[i].subs = map[string]map[*Subscription]struct{}{}
		h.shards[i].prev = map[string]*prevSlot{}
	}
	h.sel.init()
	h.controls = map[string]func(string, json.RawMessage){}
	h.registerBuiltinControls()
	if err := o.Broker.Run(o.NodeID, h); err != nil {
		return nil, err
	}
	h.startNodeInfo()
	go h.keepRevocations()
	return h, nil
}

// NodeID returns this node's id.
func (h *Hub) NodeID() string { return h.o.NodeID }

// Namespaces returns the channel resolver.
func (h *Hub) Namespaces() *Namespaces { return h.ns }

// Matcher returns the topic selector matcher.
func (h *Hub) Matcher() *Matcher { return h.matcher }

// Close tells the other nodes that this one leaves, and stops its
// announcements and the broker.
func (h *Hub) Close() error {
	h.stopOnce.Do(func() {
		close(h.stopNodes)
		_ = h.SendControl("", "leave", struct{}{})
	})
	return h.broker.Close()
}

// Drain makes the hub refuse publications (ErrShuttingDown): once shutdown
// starts, a publication is either delivered to connected clients or refused,
// never acknowledged and dropped.
func (h *Hub) Drain() { h.draining.Store(true) }

func (h *Hub) shard(channel string) *channelShard {
	return &h.shards[maphash.String(h.seed, channel)%hubShards]
}

// AddClient registers a connected client. With limit > 0 it refuses a
// user's connection beyond limit connections on this node.
func (h *Hub) AddClient(c Client, limit int) *Error {
	h.cmu.Lock()
	defer h.cmu.Unlock()
	u := h.users[c.User()]
	if limit > 0 && c.User() != "" && len(u) >= limit {
		return &Error{Kind: ErrLimit, Msg: fmt.Sprintf("user has %d connections", len(u))}
	}
	e := &clientEntry{c: c, subs: map[string]*Subscription{}, m: h.o.Metrics.Door(DoorOf(c))}
	h.clients[c.ID()] = e
	if u == nil {
		u = map[string]*clientEntry{}
		h.users[c.User()] = u
	}
	u[c.ID()] = e
	e.m.Connected()
	return nil
}

// DoorClient is an optional interface of a Client: the front door and
// transport that carry it (centrifugo and websocket, mercure and sse), as
// the metrics and the admin view name them.
type DoorClient interface {
	Door() (door, transport string)
}

// DoorOf returns the front door and transport of c ("" when it does not say).
func DoorOf(c Client) (door, transport string) {
	if d, ok := c.(DoorClient); ok {
		return d.Door()
	}
	return "", ""
}

// Disconnecting records why a front door is closing a registered
// connection, in its own code (a Centrifugo disconnect code, a Mercure end
// reason): herald_disconnects_total counts the connection under it when it
// is removed. The first code wins; a connection removed without one was
// closed by its client (client_closed).
func (h *Hub) Disconnecting(c Client, code string) {
	e := h.entry(c)
	if e == nil {
		return
	}
	e.mu.Lock()
	if e.code == "" {
		e.code = code
	}
	e.mu.Unlock()
}

// RemoveClient ends every subscription of the client (presence and leave
// included) and unregisters it.
func (h *Hub) RemoveClient(c Client) {
	h.cmu.Lock()
	e := h.clients[c.ID()]
	if e == nil || e.c != c {
		h.cmu.Unlock()
		return
	}
	delete(h.clients, c.ID())
	if u := h.users[c.User()]; u != nil {
		delete(u, c.ID())
		if len(u) == 0 {
			delete(h.users, c.User())
		}
	}
	h.cmu.Unlock()
	e.mu.Lock()
	e.removed = true
	e.m.Disconnected(e.code)
	subs := make([]*Subscription, 0, len(e.subs)+1)
	for _, s := range e.subs {
		subs = append(subs, s)
	}
	if e.selector != nil {
		subs = append(subs, e.selector)
	}
	e.mu.Unlock()
	for _, s := range subs {
		h.Unsubscribe(s)
	}
}

func (h *Hub) entry(c Client) *clientEntry {
	h.cmu.RLock()
	defer h.cmu.RUnlock()
	if e := h.clients[c.ID()]; e != nil && e.c == c {
		return e
	}
	return nil
}

// localClients returns this node's connections of user (one of them when
// client is set).
func (h *Hub) localClients(user, client string) []Client {
	h.cmu.RLock()
	defer h.cmu.RUnlock()
	var out []Client
	if user == "" && client != "" {
		if e := h.clients[client]; e != nil {
			out = append(out, e.c)
		}
		return out
	}
	for id, e := range h.users[user] {
		if client == "" || id == client {
			out = append(out, e.c)
		}
	}
	return out
}

// Clients returns every connection of this node.
func (h *Hub) Clients() []Client {
	h.cmu.RLock()
	defer h.cmu.RUnlock()
	out := make([]Client, 0, len(h.clients))
	for _, e := range h.clients {
		out = append(out, e.c)
	}
	return out
}

// NumUserClients counts the user's connections on this node.
func (h *Hub) NumUserClients(user string) int {
	h.cmu.RLock()
	defer h.cmu.RUnlock()
	return len(h.users[user])
}

// Subscribed reports whether c has a subscription to channel.
func (h *Hub) Subscribed(c Client, channel string) bool {
	e := h.entry(c)
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.subs[channel] != nil
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

// Subscribers returns at most limit of this node's subscriptions to
// channel (for the admin page), and how many there are in all.
func (h *Hub) Subscribers(channel string, limit int) ([]*Subscription, int) {
	sh := h.shard(channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	m := sh.subs[channel]
	out := make([]*Subscription, 0, min(limit, len(m)))
	for s := range m {
		if len(out) == limit {
			break
		}
		out = append(out, s)
	}
	return out, len(m)
}

// Stats are node counters.
type Stats struct {
	NumClients   int
	NumUsers     int
	NumChannels  int
	NumSubs      int
	NumSelectors int // topic-selector (Mercure) subscriptions
	Uptime       time.Duration
}

// Stats returns this node's counters.
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
	s.NumSelectors = int(h.sel.count.Load())
	s.Uptime = time.Since(h.started)
	return s
}
