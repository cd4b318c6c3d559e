package hub

import (
	"fmt"

	"github.com/heraldhub/herald/internal/broker"
)

// Explicit presence: protocols whose clients join a channel's presence by
// a command of their own (Action Cable's join and leave) instead of by
// subscribing. The entry is the connection's, keyed by its client id, and
// lives until LeavePresence, Unsubscribe or RemoveClient.

// JoinPresence puts the subscription's connection in its channel's
// presence with info (replacing its entry when it has one). The channel's
// namespace must keep presence.
func (h *Hub) JoinPresence(s *Subscription, info *broker.ClientInfo) *Error {
	if s.ns == nil || !s.ns.Presence {
		label := "topic-selector subscriptions"
		if s.ns != nil {
			label = s.ns.Label()
		}
		return &Error{Kind: ErrNotAvailable, Msg: fmt.Sprintf("presence is off in %s", label)}
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return &Error{Kind: ErrClosing, Msg: "subscription ended"}
	}
	s.presence = true
	s.mu.Unlock()
	if err := h.presence.AddPresence(s.Channel, s.client.ID(), info); err != nil {
		return brokerError(err)
	}
	// The subscription may have ended meanwhile: undo the add.
	if !h.current(s) {
		_ = h.presence.RemovePresence(s.Channel, s.client.ID())
		return &Error{Kind: ErrClosing, Msg: "subscription ended"}
	}
	return nil
}

// LeavePresence takes the subscription's connection out of its channel's
// presence.
func (h *Hub) LeavePresence(s *Subscription) *Error {
	s.mu.Lock()
	was := s.presence
	s.presence = false
	s.mu.Unlock()
	if !was {
		return nil
	}
	if err := h.presence.RemovePresence(s.Channel, s.client.ID()); err != nil {
		return brokerError(err)
	}
	return nil
}
