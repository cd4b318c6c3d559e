package actioncable

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/hub"
)

// Subscriptions. An Action Cable subscription (an identifier) follows
// streams; each stream is a hub channel of the same name (resolved with an
// optional namespace, so Rails names such as chat:Z2lk… work). The session
// holds one hub subscription per stream, shared by its identifiers that
// follow it, and delivers each publication once per identifier.
//
// Who decides: Herald itself for the $pubsub channel (signed stream names,
// and unsigned ones when public or allowed by the namespace) and for
// Turbo::StreamsChannel when it has Turbo's key; the app over RPC for every
// other channel (its channel class says which streams).

// TurboChannel is Turbo Streams' channel.
const TurboChannel = "Turbo::StreamsChannel"

var no = false

// noAuto keeps the hub from adding presence, announcing joins or checking
// stream continuity for Action Cable subscriptions: presence is explicit
// (join/leave), and clients de-duplicate by offset themselves.
var noAuto = &auth.Override{Presence: &no, JoinLeave: &no, ForceRecovery: &no, ForcePositioning: &no}

func (s *session) handleSubscribe(cmd *command) {
	id := cmd.Identifier
	s.mu.Lock()
	_, already := s.subs[id]
	n := len(s.subs)
	s.mu.Unlock()
	if already {
		// The Rails client re-sends subscribe every 500 ms until it sees an
		// answer; a subscription is confirmed once.
		return
	}
	p, channel, err := parseIdentifier(id)
	if err != nil {
		s.log().Info("subscription rejected: invalid identifier", slog.String("identifier", auth.Truncate(id, 200)), slog.String("error", err.Error()))
		s.enqueue(rejectFrame(id))
		return
	}
	if limit := s.h.cfg.Client.ChannelLimit; n >= limit {
		s.log().Info("subscription rejected: client.channel_limit", slog.String("identifier", auth.Truncate(id, 200)), slog.Int("channel_limit", limit))
		s.enqueue(rejectFrame(id))
		return
	}
	ok := false
	switch {
	case channel == s.h.ac.Streams.PubSubChannel:
		ok = s.subscribePubSub(id, p)
	case channel == TurboChannel && len(s.h.turboKey) > 0:
		ok = s.subscribeTurbo(id, p)
	case s.h.rpc != nil:
		ok = s.subscribeRPC(id, channel)
	default:
		r := &auth.Reason{Code: auth.ChannelNotPermitted,
			Detail: fmt.Sprintf("channel %q has no app to run it: Herald serves %s and %s itself", auth.Truncate(channel, 64), s.h.ac.Streams.PubSubChannel, TurboChannel),
			Hint:   "set actioncable.rpc.endpoint to the app's AnyCable HTTP RPC (its channel classes decide), or use signed streams; for Turbo::StreamsChannel set actioncable.turbo.verifier_key or secret_key_base"}
		s.refused("subscription rejected", r, id, "")
		s.enqueue(rejectFrame(id))
	}
	if ok && s.ext && cmd.History != nil {
		s.history(id, cmd.History)
	}
}

// subscribeStream subscribes the identifier to one stream that Herald
// decided on, confirms it and activates it.
func (s *session) subscribeStream(id, channel, name string, whisper, presence bool) bool {
	sub := &subscription{id: id, channel: channel}
	if whisper {
		sub.whisper = name
	}
	if presence {
		sub.presence = name
	}
	hs, herr := s.follow(sub, name)
	if herr != nil {
		s.hubRefused(id, name, herr)
		return false
	}
	s.mu.Lock()
	if s.closed || s.subs[id] != nil {
		s.mu.Unlock()
		s.unfollow(sub, name)
		return false
	}
	s.subs[id] = sub
	s.mu.Unlock()
	s.enqueue(confirmFrame(id))
	if hs != nil {
		s.h.hub.Activate(hs)
	}
	s.log().Debug("subscribed", slog.String("identifier", auth.Truncate(id, 200)), slog.String("stream", name))
	return true
}

// hubRefused rejects a subscription the hub refused.
func (s *session) hubRefused(id, stream string, herr *hub.Error) {
	if herr.Reason != nil {
		s.refused("subscription rejected", herr.Reason, id, stream)
	} else {
		s.log().Info("subscription rejected", slog.String("identifier", auth.Truncate(id, 200)), slog.String("stream", stream), slog.String("error", herr.Error()))
	}
	s.enqueue(rejectFrame(id))
}

// follow makes sub follow stream. A stream the session follows already gains
// the identifier and returns nil; a new one is subscribed in the hub (which
// buffers deliveries until Activate) and returned.
func (s *session) follow(sub *subscription, name string) (*hub.Subscription, *hub.Error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, &hub.Error{Kind: hub.ErrClosing, Msg: "connection is closing"}
	}
	if st := s.streams[name]; st != nil {
		if !slices.Contains(st.ids, sub.id) {
			st.ids = append(st.ids, sub.id)
		}
		if !slices.Contains(sub.streams, name) {
			sub.streams = append(sub.streams, name)
		}
		s.mu.Unlock()
		return nil, nil
	}
	limit := s.h.cfg.Client.ChannelLimit
	if len(s.streams) >= limit {
		s.mu.Unlock()
		return nil, &hub.Error{Kind: hub.ErrLimit, Msg: fmt.Sprintf("the connection follows %d streams (client.channel_limit)", limit)}
	}
	authConn := s.authConn
	s.mu.Unlock()
	res, herr := s.h.hub.Subscribe(context.Background(), &hub.SubscribeRequest{Client: s, Conn: authConn, Channel: name,
		ServerSide: true, Grant: &auth.ChannelGrant{History: true, Presence: true, Override: noAuto}, OptionalNamespace: true})
	if herr != nil {
		return nil, herr
	}
	s.mu.Lock()
	if s.closed || s.streams[name] != nil {
		s.mu.Unlock()
		s.h.hub.Unsubscribe(res.Sub)
		return nil, &hub.Error{Kind: hub.ErrClosing, Msg: "connection is closing"}
	}
	s.streams[name] = &stream{hs: res.Sub, ids: []string{sub.id}}
	if !slices.Contains(sub.streams, name) {
		sub.streams = append(sub.streams, name)
	}
	s.mu.Unlock()
	return res.Sub, nil
}

// unfollow stops sub following stream; the last identifier to stop ends the
// hub subscription.
func (s *session) unfollow(sub *subscription, name string) {
	s.mu.Lock()
	sub.streams = slices.DeleteFunc(sub.streams, func(x string) bool { return x == name })
	st := s.streams[name]
	var end *hub.Subscription
	if st != nil {
		st.ids = slices.DeleteFunc(st.ids, func(x string) bool { return x == sub.id })
		if len(st.ids) == 0 {
			delete(s.streams, name)
			end = st.hs
		}
	}
	s.mu.Unlock()
	if end != nil {
		s.h.hub.Unsubscribe(end)
	}
}

// drop ends a subscription: its presence, its streams.
func (s *session) drop(sub *subscription) {
	s.leavePresence(sub)
	s.mu.Lock()
	if s.subs[sub.id] == sub {
		delete(s.subs, sub.id)
	}
	streams := append([]string(nil), sub.streams...)
	s.mu.Unlock()
	for _, name := range streams {
		s.unfollow(sub, name)
	}
}

// handleUnsubscribe ends a subscription. Action Cable sends no answer.
func (s *session) handleUnsubscribe(id string) {
	s.mu.Lock()
	sub := s.subs[id]
	s.mu.Unlock()
	if sub == nil {
		return
	}
	if sub.rpc {
		s.unsubscribeRPC(sub)
		return
	}
	s.drop(sub)
}

// handlePerform runs a channel action: the app's, over RPC. Herald's own
// channels have no actions.
func (s *session) handlePerform(cmd *command) {
	s.mu.Lock()
	sub := s.subs[cmd.Identifier]
	s.mu.Unlock()
	if sub == nil {
		s.log().Info("message ignored: not subscribed", slog.String("identifier", auth.Truncate(cmd.Identifier, 200)))
		return
	}
	var data string
	if len(cmd.Data) > 0 && (cmd.Data[0] != '"' || !unmarshalString(cmd.Data, &data)) {
		s.log().Info("message ignored: data must be a JSON string (the Rails client's perform sends one)")
		return
	}
	if !sub.rpc {
		s.log().Debug("message ignored: the channel has no actions without an app", slog.String("channel", sub.channel))
		return
	}
	s.performRPC(sub, data)
}
