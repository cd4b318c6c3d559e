package centrifuge

import (
	"log/slog"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/hub"
)

// formatJSON is this front door's wire format: each delivery is encoded
// once for every JSON client.
var formatJSON = hub.RegisterFormat("centrifuge-json")

// --- control (hub.Client) ---

// Door implements hub.DoorClient: the metrics count the session under it.
func (s *session) Door() (door, transport string) { return "centrifugo", s.tr.name }

// Control implements hub.Client: it applies an intent of the server.
func (s *session) Control(in hub.Intent) {
	switch in.Kind {
	case hub.IntentDisconnect:
		go s.closeWith(intentDisconnect(in))
	case hub.IntentUnsubscribe:
		s.mu.Lock()
		sub := s.subs[in.Channel]
		s.mu.Unlock()
		if sub == nil {
			return
		}
		if in.Why == hub.WhyInsufficientState {
			// The subscription missed publications. The SDK resubscribes a
			// client-side subscription at once and recovers from its
			// position (unsubscribe 2500); a server-side one, which the
			// client cannot resubscribe, by reconnecting (3010). The hub
			// calls this with the subscription locked: end it apart.
			go s.endSub(sub, UnsubscribeInsufficientState, in.Reason, DisconnectInsufficientState.With(in.Reason))
			return
		}
		s.removeSub(sub)
		s.push(&Push{Channel: in.Channel, Unsubscribe: &UnsubscribePush{Code: UnsubscribeServer, Reason: "server unsubscribe"}})
	case hub.IntentSubscribe:
		s.serverSubscribe(in.Channel, in.Subscribe)
	case hub.IntentRefresh:
		s.serverRefresh(in.Refresh)
	case hub.IntentSend:
		s.push(&Push{Message: &MessagePush{Data: in.Data}})
	case hub.IntentCheckRevoked:
		s.checkRevoked()
	}
}

// serverSubscribe subscribes the connection on behalf of the server API.
func (s *session) serverSubscribe(channel string, o *hub.ServerSubscription) {
	if o == nil {
		o = &hub.ServerSubscription{}
	}
	s.mu.Lock()
	connected := s.state == stateConnected
	s.mu.Unlock()
	if !connected {
		return
	}
	req := &hub.SubscribeRequest{Channel: channel, ServerSide: true, Recover: o.RecoverSince,
		Grant: &auth.ChannelGrant{Info: o.Info, Data: o.Data, ExpireAt: o.ExpireAt, History: true, Presence: true}}
	sub, res, e := s.subscribe(req)
	if e != nil {
		if e != ErrAlreadySubscribed {
			s.log().Info("server subscription failed", slog.String("channel", channel), slog.String("error", e.Message))
		}
		return
	}
	s.push(&Push{Channel: channel, Subscribe: res})
	s.activate(sub)
}

// checkRevoked closes the connection with 3500 if its token was revoked
// (terminal: the user must get a new token).
func (s *session) checkRevoked() {
	s.mu.Lock()
	user, jti, iat, connected := s.user, s.jti, s.issuedAt, s.state == stateConnected
	s.mu.Unlock()
	if !connected {
		return
	}
	if r := s.h.engine.Verifier().RevokedIdentity(user, jti, iat); r != nil {
		r.Source = "live"
		s.refused("connection closed: token revoked", r, "")
		go s.closeWith(*withReason(DisconnectInvalidToken, r, s.h.shown(r)))
	}
}

// serverRefresh applies a refresh of the server API.
func (s *session) serverRefresh(r *hub.ServerRefresh) {
	if r == nil {
		return
	}
	if r.Expired {
		go s.closeWith(DisconnectExpired.With("the server expired the connection"))
		return
	}
	s.mu.Lock()
	if !r.ExpireAt.IsZero() {
		s.expireAt = r.ExpireAt
		s.armExpiryLocked()
	}
	if r.Info != nil {
		s.info = r.Info
	}
	s.mu.Unlock()
	if s.tr.uni && !r.ExpireAt.IsZero() {
		// Unidirectional clients cannot refresh: they are told the new expiry.
		s.push(&Push{Refresh: &RefreshResult{Expires: true, TTL: ttlUntil(r.ExpireAt, time.Now())}})
	}
}

// --- teardown ---

// cleanup runs once, in the reader goroutine, when the connection ends.
func (s *session) cleanup() {
	s.q.Close()
	s.mu.Lock()
	s.closed = true
	s.stopTimersLocked()
	registered := s.registered
	s.registered = false
	s.subs = map[string]*subscription{}
	if s.x != nil {
		s.x.deltaSubs = nil
	}
	s.deltas.Store(0)
	s.mu.Unlock()
	if registered {
		// The hub ends every subscription: presence and leave included.
		s.h.hub.RemoveClient(s)
		s.log().Debug("client disconnected")
	}
}

func (s *session) stopTimersLocked() {
	for _, t := range []*time.Timer{s.staleTimer, s.pingTimer, s.pongTimer, s.expireTimer} {
		if t != nil {
			t.Stop()
		}
	}
	for _, sub := range s.subs {
		if sub.timer != nil {
			sub.timer.Stop()
		}
	}
}
