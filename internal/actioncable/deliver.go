package actioncable

import (
	"encoding/json"
	"log/slog"

	"github.com/heraldhub/herald/internal/hub"
)

// formatJSON is this door's wire format. A data frame names the
// subscription's identifier, which differs per subscription, so each
// delivery is encoded once per distinct identifier (hub.Delivery.EncodedFor):
// the subscribers of a stream mostly share a handful of identifiers (every
// Turbo page of a room sends the same one), so a publication to thousands of
// them costs a few encodings, and no allocation per subscriber. Stream
// positions go to every client: Rails clients ignore the extra fields.
var formatJSON = hub.RegisterFormat("actioncable-json")

// Publication tags with a meaning for this door.
const (
	// tagExclude: the sid of the session that must not receive it
	// (AnyCable's exclude_socket, a whisper's sender).
	tagExclude = "actioncable.exclude_socket"
	// tagType: "presence" marks a presence event of the extended protocol.
	tagType = "actioncable.type"
)

// encodeDelivery builds the frame of a publication for one identifier.
func encodeDelivery(d *hub.Delivery, id string) []byte {
	p := d.Pub
	if p.Tags != nil && p.Tags[tagType] == "presence" {
		return presenceFrame(id, hub.JSONData(p))
	}
	return dataFrame(id, hub.JSONData(p), d.Channel, d.Epoch, p.Offset)
}

// Deliver implements hub.Client. It never blocks: it queues the frames.
func (s *session) Deliver(hs *hub.Subscription, d *hub.Delivery) {
	if d.Kind != hub.KindPublication {
		return
	}
	if t := d.Pub.Tags; t != nil {
		if x := t[tagExclude]; x != "" && x == s.sid {
			return
		}
		if t[tagType] == "presence" && !s.ext {
			return
		}
	}
	s.mu.Lock()
	st := s.streams[hs.Channel]
	if st == nil {
		s.mu.Unlock()
		return
	}
	if len(st.ids) == 1 {
		id := st.ids[0]
		s.mu.Unlock()
		s.q.EnqueueAt(d.EncodedFor(formatJSON, id, encodeDelivery), d.Accepted())
		return
	}
	ids := append([]string(nil), st.ids...)
	s.mu.Unlock()
	for _, id := range ids {
		s.q.EnqueueAt(d.EncodedFor(formatJSON, id, encodeDelivery), d.Accepted())
	}
}

// Control implements hub.Client: it applies an intent of the server.
func (s *session) Control(in hub.Intent) {
	switch in.Kind {
	case hub.IntentDisconnect:
		reason, reconnect := "remote", true
		switch in.Why {
		case hub.WhyShutdown:
			reason = "server_restart"
		case hub.WhyRevoked:
			reason, reconnect = "unauthorized", false
		case hub.WhyExpired:
			reason, reconnect = "token_expired", false
		case hub.WhySlow:
			reason = "too_slow"
		case hub.WhyServer:
			// Centrifugo's terminal ranges say: do not come back.
			reconnect = !((in.Code >= 3500 && in.Code < 4000) || (in.Code >= 4500 && in.Code < 5000))
		}
		go s.disconnect(reason, reconnect, nil, websocketNormal, "Remote Disconnect")
	case hub.IntentUnsubscribe:
		// The stream stops; Action Cable has no message for it, the
		// identifiers that followed it stay subscribed.
		s.mu.Lock()
		st := s.streams[in.Channel]
		var subs []*subscription
		if st != nil {
			for _, id := range st.ids {
				if sub := s.subs[id]; sub != nil {
					subs = append(subs, sub)
				}
			}
		}
		s.mu.Unlock()
		for _, sub := range subs {
			s.unfollow(sub, in.Channel)
		}
	case hub.IntentCheckRevoked:
		s.mu.Lock()
		user, jti, iat, connected := s.user, s.jti, s.issuedAt, s.connected
		s.mu.Unlock()
		if !connected {
			return
		}
		if r := s.h.engine.Verifier().RevokedIdentity(user, jti, iat); r != nil {
			r.Source = "live"
			s.refused("action cable connection closed: token revoked", r, "", "")
			go s.disconnect("unauthorized", false, r, websocketNormal, "Token Revoked")
		}
	default:
		// Server-side subscriptions, sends and refreshes have no Action
		// Cable form: there is no identifier to deliver them under.
		s.log().Debug("server intent ignored: Action Cable has no form for it", slog.Int("kind", int(in.Kind)))
	}
}

// cleanup runs once, in the reader goroutine, when the connection ends.
func (s *session) cleanup() {
	s.q.Close()
	s.save()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.pingTimer != nil {
		s.pingTimer.Stop()
	}
	connected := s.connected
	var subs []*subscription
	for _, sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	if !connected {
		return
	}
	for _, sub := range subs {
		s.leavePresence(sub)
	}
	// The hub ends every stream subscription.
	s.h.hub.RemoveClient(s)
	if s.h.rpc != nil {
		s.disconnectRPC(subs)
	}
	s.log().Debug("action cable client disconnected")
}

// remoteDisconnect is AnyCable's remote disconnect, sent to every node: the
// sessions whose identifiers are exactly these get a disconnect message.
type remoteDisconnect struct {
	Identifiers string `json:"identifiers"`
	Reconnect   bool   `json:"reconnect"`
}

// controlKind names this door's node-directed control messages.
const controlKind = "actioncable.disconnect"

// handleRemoteDisconnect applies a remote disconnect on this node.
func (h *Handler) handleRemoteDisconnect(_ string, payload json.RawMessage) {
	var m remoteDisconnect
	if json.Unmarshal(payload, &m) != nil || m.Identifiers == "" {
		return
	}
	var hit []*session
	h.sessions.Each(func(s *session) {
		s.mu.Lock()
		if s.connected && s.identifiers == m.Identifiers {
			hit = append(hit, s)
		}
		s.mu.Unlock()
	})
	for _, s := range hit {
		go s.disconnect("remote", m.Reconnect, nil, websocketNormal, "Remote Disconnect")
	}
}
