package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
)

// Subscription is one connection's subscription to a channel (or, for
// Mercure subscribers, to topic selectors). The hub owns it: it buffers
// deliveries until the front door has answered, checks stream continuity,
// and keeps presence and join/leave.
type Subscription struct {
	// Channel is the subscribed channel ("" for a topic-selector subscription).
	Channel    string
	ServerSide bool

	client        Client
	entry         *clientEntry
	ns            *Namespace
	presence      bool
	joinLeave     bool // the namespace publishes join/leave for this channel
	pushJoinLeave bool // this client receives join/leave pushes
	positioned    bool
	recoverable   bool
	delta         bool // deliveries carry Prev
	sel           *selectorSub

	mu       sync.Mutex
	info     *broker.ClientInfo // presence, join/leave and publication info
	live     bool               // the front door answered; deliver directly
	active   bool               // Activate announced the join (a leave is due)
	ended    bool
	buffer   []*Delivery // deliveries that arrived before the answer
	epoch    string
	offset   uint64 // last offset delivered, for positioned subscriptions
	skipSeq  uint64 // deliveries with Seq <= skipSeq were replayed from the index
	attached any    // the front door's state for this subscription
	// missed says why the subscription may have missed publications
	// before the front door answered; Activate tells the front door then.
	missed string
}

// Namespace returns the channel's namespace (nil for topic selectors).
func (s *Subscription) Namespace() *Namespace { return s.ns }

// Client returns the subscribed connection.
func (s *Subscription) Client() Client { return s.client }

// Positioned reports whether the subscription follows a stream position.
func (s *Subscription) Positioned() bool { return s.positioned }

// Presence reports whether the subscription is in the channel's presence.
func (s *Subscription) Presence() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.presence }

// Info returns the client info of the subscription (user, client,
// connection info and channel info).
func (s *Subscription) Info() *broker.ClientInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// SetChanInfo replaces the subscription's channel info (a refreshed
// subscription token or proxy answer).
func (s *Subscription) SetChanInfo(info json.RawMessage) {
	s.mu.Lock()
	ci := *s.info
	ci.ChanInfo = info
	s.info = &ci
	s.mu.Unlock()
}

// Attach stores the front door's state for this subscription; Attached
// returns it.
func (s *Subscription) Attach(v any) { s.mu.Lock(); s.attached = v; s.mu.Unlock() }

// Attached returns what Attach stored.
func (s *Subscription) Attached() any { s.mu.Lock(); defer s.mu.Unlock(); return s.attached }

// SubscribeRequest is a subscription a front door asks for.
type SubscribeRequest struct {
	Client Client
	// Conn is the connection as the auth engine sees it.
	Conn *auth.Conn
	// ConnInfo is the connection's info (from its token or the connect proxy).
	ConnInfo json.RawMessage
	Channel  string
	// Token is a subscription token; Data is the subscribe data (for the proxy).
	Token string
	Data  json.RawMessage
	// ServerSide subscriptions are made by the server (token channels, the
	// connect proxy, the server API): no permission check, no channel_regex.
	// Grant carries their info, data and override.
	ServerSide bool
	Grant      *auth.ChannelGrant
	// What the client asks for; each is honoured per namespace options and grants.
	Positioned  bool
	Recoverable bool
	JoinLeave   bool
	// Recover asks to recover publications after this position.
	Recover           *broker.StreamPosition
	RejectUnrecovered bool
	// ChannelLimit bounds the connection's subscriptions (0: none).
	ChannelLimit int
	// OptionalNamespace resolves Channel leniently (see Namespaces.ResolveOptional).
	OptionalNamespace bool
	// Delta asks for Delivery.Prev on the channel's publications, for a
	// front door that sends deltas against the previous publication.
	Delta bool
}

// SubscribeResult is what the front door needs to answer.
type SubscribeResult struct {
	Sub       *Subscription
	Namespace *Namespace
	Grant     *auth.ChannelGrant
	// Positioned, Recoverable and Position (epoch, and the offset the
	// client is at after Publications) describe the stream.
	Positioned    bool
	Recoverable   bool
	Position      broker.StreamPosition
	WasRecovering bool
	Recovered     bool
	Publications  []*broker.Publication
}

// Subscribe checks permission, registers the subscription (buffering what
// arrives meanwhile) and positions or recovers it. The front door answers
// the client and then calls Activate; on error nothing stays registered.
func (h *Hub) Subscribe(ctx context.Context, req *SubscribeRequest) (*SubscribeResult, *Error) {
	ns, err := h.ns.resolve(req.Channel, req.OptionalNamespace)
	if err == nil && !req.ServerSide {
		err = ns.CheckRegex(req.Channel)
	}
	if err != nil {
		return nil, channelError(err)
	}
	e := h.entry(req.Client)
	if e == nil {
		return nil, &Error{Kind: ErrClosing, Msg: "connection is closing"}
	}
	e.mu.Lock()
	_, already := e.subs[req.Channel]
	count := len(e.subs)
	e.mu.Unlock()
	if already {
		return nil, &Error{Kind: ErrAlreadySubscribed, Msg: "already subscribed"}
	}
	if req.ChannelLimit > 0 && count >= req.ChannelLimit {
		return nil, &Error{Kind: ErrLimit, Msg: fmt.Sprintf("channel_limit is %d", req.ChannelLimit)}
	}
	grant := req.Grant
	if !req.ServerSide {
		var reason *auth.Reason
		grant, reason = h.auth.AuthorizeChannel(ctx, &auth.ChannelRequest{Op: auth.OpSubscribe, Channel: req.Channel,
			Namespace: &ns.NamespaceOptions, NamespaceLabel: ns.Label(), Conn: req.Conn, Token: req.Token, Data: req.Data})
		if reason != nil {
			return nil, denied(reason)
		}
		if !grant.ExpireAt.IsZero() && !grant.ExpireAt.After(time.Now()) {
			return nil, &Error{Kind: ErrExpired, Msg: "subscription expire_at is in the past"}
		}
	} else if grant == nil {
		grant = &auth.ChannelGrant{History: true, Presence: true}
	}
	sub := h.newSubscription(req, ns, grant, e)
	if herr := h.register(sub); herr != nil {
		return nil, herr
	}
	res := &SubscribeResult{Sub: sub, Namespace: ns, Grant: grant, Positioned: sub.positioned, Recoverable: sub.recoverable}
	if sub.positioned {
		if herr := h.position(sub, req, res); herr != nil {
			h.drop(sub)
			return nil, herr
		}
	}
	// Presence is in place before the client hears that it is subscribed:
	// a presence call made on any node once the answer arrives counts it.
	if sub.Presence() {
		h.addPresence(sub)
	}
	return res, nil
}

// addPresence puts s's connection in its channel's presence; a failure is
// logged (the subscription stands, as presence is refreshed while it lives).
func (h *Hub) addPresence(s *Subscription) {
	if err := h.presence.AddPresence(s.Channel, s.client.ID(), s.Info()); err != nil {
		h.log.Warn("presence add failed", slog.String("channel", s.Channel), slog.String("error", err.Error()))
	}
	// If the subscription ended meanwhile (a server subscription racing
	// with a disconnect), its removal may have run first: undo the add.
	if !h.current(s) {
		_ = h.presence.RemovePresence(s.Channel, s.client.ID())
	}
}

// newSubscription decides the subscription's options from the namespace,
// the grant's override and what the client asked for.
func (h *Hub) newSubscription(req *SubscribeRequest, ns *Namespace, g *auth.ChannelGrant, e *clientEntry) *Subscription {
	var ov auth.Override
	if g.Override != nil {
		ov = *g.Override
	}
	s := &Subscription{Channel: req.Channel, ServerSide: req.ServerSide, client: req.Client, entry: e, ns: ns, delta: req.Delta,
		presence:  boolOr(ov.Presence, ns.Presence),
		joinLeave: boolOr(ov.JoinLeave, ns.JoinLeave),
		info:      &broker.ClientInfo{User: req.Client.User(), Client: req.Client.ID(), ConnInfo: req.ConnInfo, ChanInfo: g.Info},
	}
	history, presence := g.History || g.ByToken, g.Presence || g.ByToken
	if req.Positioned && ns.AllowPositioning {
		history = true
	}
	s.pushJoinLeave = s.joinLeave && (boolOr(ov.ForcePushJoinLeave, ns.ForcePushJoinLeave) || (req.JoinLeave && (presence || req.ServerSide)))
	if ns.HistoryEnabled() {
		s.recoverable = boolOr(ov.ForceRecovery, ns.ForceRecovery) || (req.Recoverable && (history || ns.AllowRecovery)) ||
			(req.ServerSide && req.Recover != nil)
		s.positioned = s.recoverable || boolOr(ov.ForcePositioning, ns.ForcePositioning) || (req.Positioned && (history || ns.AllowPositioning))
	}
	return s
}

func boolOr(p *bool, def bool) bool {
	if p != nil {
		return *p
	}
	return def
}

// register adds a buffering subscription to its connection and channel.
func (h *Hub) register(s *Subscription) *Error {
	e := s.entry
	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		return &Error{Kind: ErrClosing, Msg: "connection is closing"}
	}
	if _, ok := e.subs[s.Channel]; ok {
		e.mu.Unlock()
		return &Error{Kind: ErrAlreadySubscribed, Msg: "already subscribed"}
	}
	e.subs[s.Channel] = s
	e.mu.Unlock()
	sh := h.shard(s.Channel)
	sh.mu.Lock()
	m := sh.subs[s.Channel]
	first := m == nil
	if first {
		m = map[*Subscription]struct{}{}
		sh.subs[s.Channel] = m
	}
	m[s] = struct{}{}
	if s.delta {
		slot := sh.prev[s.Channel]
		if slot == nil {
			slot = &prevSlot{}
			sh.prev[s.Channel] = slot
		}
		slot.n++
	}
	sh.mu.Unlock()
	h.numSubs.Add(1)
	e.m.Subscribed(1)
	if first {
		if err := h.broker.Subscribe(s.Channel); err != nil {
			h.drop(s)
			return brokerError(err)
		}
	}
	return nil
}

// Activate delivers what arrived while the subscription was being set up
// (skipping what the answer already carried) and switches it to live
// delivery, then announces the join. Call it after the
// answer to the client is queued.
func (h *Hub) Activate(s *Subscription) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	buf := s.buffer
	s.buffer = nil
	s.live = true
	for _, d := range buf {
		s.deliverLocked(d)
	}
	if s.missed != "" && !s.ended {
		s.insufficientLocked(s.missed)
	}
	info := s.info
	s.active = s.sel == nil
	s.mu.Unlock()
	if s.sel != nil {
		return
	}
	if s.joinLeave && h.current(s) {
		if err := h.broker.PublishJoin(s.Channel, info); err != nil {
			h.log.Debug("join not published", slog.String("channel", s.Channel), slog.String("error", err.Error()))
		}
	}
}

// current reports whether s is still registered.
func (h *Hub) current(s *Subscription) bool {
	s.entry.mu.Lock()
	defer s.entry.mu.Unlock()
	if s.sel != nil {
		return !s.entry.removed && s.entry.selector == s
	}
	return !s.entry.removed && s.entry.subs[s.Channel] == s
}

// Unsubscribe ends a subscription: presence and leave included. It does not
// tell the client; the front door does, in its protocol.
func (h *Hub) Unsubscribe(s *Subscription) {
	s.mu.Lock()
	active, presence := s.active, s.presence
	s.active = false
	info := s.info
	s.mu.Unlock()
	if !h.drop(s) {
		return
	}
	if presence && s.sel == nil {
		_ = h.presence.RemovePresence(s.Channel, s.client.ID())
	}
	if active && s.joinLeave {
		_ = h.broker.PublishLeave(s.Channel, info)
	}
}

// Lookup returns c's subscription to channel, or nil.
func (h *Hub) Lookup(c Client, channel string) *Subscription {
	e := h.entry(c)
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.subs[channel]
}

// drop removes a subscription from its connection and channel; it reports
// whether it was registered.
func (h *Hub) drop(s *Subscription) bool {
	s.mu.Lock()
	s.ended = true
	s.buffer = nil
	s.mu.Unlock()
	if s.sel != nil {
		return h.dropSelector(s)
	}
	e := s.entry
	e.mu.Lock()
	registered := e.subs[s.Channel] == s
	if registered {
		delete(e.subs, s.Channel)
	}
	e.mu.Unlock()
	if !registered {
		return false
	}
	sh := h.shard(s.Channel)
	sh.mu.Lock()
	m := sh.subs[s.Channel]
	last := false
	if m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(sh.subs, s.Channel)
			last = true
		}
	}
	if slot := sh.prev[s.Channel]; s.delta && slot != nil {
		if slot.n--; slot.n <= 0 {
			delete(sh.prev, s.Channel)
		}
	}
	sh.mu.Unlock()
	h.numSubs.Add(-1)
	e.m.Subscribed(-1)
	if last {
		if err := h.broker.Unsubscribe(s.Channel); err != nil {
			h.log.Debug("broker unsubscribe failed", slog.String("channel", s.Channel), slog.String("error", err.Error()))
		}
	}
	return true
}

// deliver hands d to the subscription, buffering it until Activate.
func (s *Subscription) deliver(d *Delivery) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	if !s.live {
		s.buffer = append(s.buffer, d)
		s.mu.Unlock()
		return
	}
	s.deliverLocked(d)
	s.mu.Unlock()
}

// deliverLocked applies the subscription's filters and checks the stream's
// continuity. Called with s.mu held.
func (s *Subscription) deliverLocked(d *Delivery) {
	switch d.Kind {
	case KindJoin, KindLeave:
		if !s.pushJoinLeave {
			return
		}
	case KindPublication:
		if s.sel != nil {
			if d.Pub.Seq != 0 && d.Pub.Seq <= s.skipSeq {
				return // replayed from the index already
			}
		} else if s.positioned && d.Pub.Offset > 0 {
			if d.Epoch != s.epoch {
				s.insufficientLocked("stream epoch changed")
				return
			}
			if d.Pub.Offset <= s.offset {
				return // already delivered (recovered or sent before)
			}
			if d.Pub.Offset != s.offset+1 {
				s.insufficientLocked(fmt.Sprintf("gap in %s: expected offset %d, got %d", s.Channel, s.offset+1, d.Pub.Offset))
				return
			}
			s.offset = d.Pub.Offset
		}
	}
	s.client.Deliver(s, d)
}

// insufficientLocked stops delivery and tells the front door that the
// subscription missed publications. Before the front door has answered
// the client (a resync during the subscribe), the front door is told once
// it has, in Activate: it could not act on it earlier. Called with s.mu
// held.
func (s *Subscription) insufficientLocked(detail string) {
	if !s.live {
		if s.missed == "" {
			s.missed = detail
		}
		return
	}
	s.ended = true
	s.buffer = nil
	s.client.Control(Intent{Kind: IntentUnsubscribe, Why: WhyInsufficientState, Channel: s.Channel, Reason: detail})
}
