package actioncable

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/hub"
)

// Streams without the app: the $pubsub channel and Turbo Streams.
//
//	{"channel":"$pubsub","signed_stream_name":"<signed>"}   a stream signed with actioncable.streams.secret
//	{"channel":"$pubsub","stream_name":"chat/1"}            public streams
//	{"channel":"Turbo::StreamsChannel","signed_stream_name":"<signed>"}   signed with Turbo's key
//
// A signature is checked by the auth engine (VerifySignedStream): the
// format, the digest in constant time, the payload's base64 and JSON, each
// refusal with its own reason. An unsigned name is allowed when
// actioncable.streams.public is on, and otherwise decided by the engine as a
// subscription to that channel would be (the namespace's allow_subscribe_*
// options; everything is allowed with --dev).

func unmarshalString(raw json.RawMessage, dst *string) bool { return json.Unmarshal(raw, dst) == nil }

func (s *session) subscribePubSub(id string, p params) bool {
	h := s.h
	if signed, ok := p.str("signed_stream_name"); ok {
		name, r := auth.VerifySignedStream(signed, h.streamKey, "actioncable.streams.secret")
		if r != nil {
			s.refused("subscription rejected: signed stream name", r, id, "")
			s.enqueue(rejectFrame(id))
			return false
		}
		return s.subscribeStream(id, h.ac.Streams.PubSubChannel, name, h.ac.Streams.Whisper, h.ac.Streams.Presence)
	}
	name, ok := p.str("stream_name")
	if !ok || name == "" {
		r := &auth.Reason{Code: auth.ChannelNotPermitted, Detail: h.ac.Streams.PubSubChannel + " needs a signed_stream_name or a stream_name string",
			Hint: `subscribe with {"channel":"$pubsub","signed_stream_name":"…"} (cable.streamFromSigned) or {"channel":"$pubsub","stream_name":"…"} (cable.streamFrom)`}
		s.refused("subscription rejected", r, id, "")
		s.enqueue(rejectFrame(id))
		return false
	}
	if !h.ac.Streams.Public {
		if r := s.authorizeStream(name); r != nil {
			s.refused("subscription rejected: public stream", r, id, name)
			s.enqueue(rejectFrame(id))
			return false
		}
	}
	return s.subscribeStream(id, h.ac.Streams.PubSubChannel, name, true, true)
}

// authorizeStream asks the auth engine whether the connection may subscribe
// to an unsigned stream, as a client subscription to that channel.
func (s *session) authorizeStream(name string) *auth.Reason {
	ns, err := s.h.hub.Namespaces().ResolveOptional(name)
	if err == nil {
		err = ns.CheckRegex(name)
	}
	if err != nil {
		return &auth.Reason{Code: auth.ChannelNotPermitted, Detail: fmt.Sprintf("stream %q cannot be a channel: %s", auth.Truncate(name, 64), err),
			Hint: "channel names are printable ASCII within channel.max_length"}
	}
	s.mu.Lock()
	c := s.authConn
	s.mu.Unlock()
	_, r := s.h.engine.AuthorizeChannel(context.Background(), &auth.ChannelRequest{Op: auth.OpSubscribe, Channel: name,
		Namespace: &ns.NamespaceOptions, NamespaceLabel: ns.Label(), Conn: c})
	if r != nil && r.Code == auth.ChannelNotPermitted {
		r.Hint = "sign the stream name (signed_stream_name), or set actioncable.streams.public, or the namespace's allow_subscribe_for_client"
	}
	return r
}

func (s *session) subscribeTurbo(id string, p params) bool {
	h := s.h
	signed, ok := p.str("signed_stream_name")
	if !ok {
		r := &auth.Reason{Code: auth.SignedStreamMalformed, Detail: "Turbo::StreamsChannel needs a signed_stream_name string",
			Hint: "render the stream source with turbo_stream_from, which signs the name"}
		s.refused("subscription rejected", r, id, "")
		s.enqueue(rejectFrame(id))
		return false
	}
	name, r := auth.VerifySignedStream(signed, h.turboKey, h.turboFrom)
	if r != nil {
		s.refused("subscription rejected: Turbo signed stream name", r, id, "")
		s.enqueue(rejectFrame(id))
		return false
	}
	return s.subscribeStream(id, TurboChannel, name, false, false)
}

// streamOf returns the hub subscription of a stream the session follows.
func (s *session) streamOf(name string) *hub.Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[name]; st != nil {
		return st.hs
	}
	return nil
}
