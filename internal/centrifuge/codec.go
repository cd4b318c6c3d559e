package centrifuge

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/centrifugal/fdelta"
	"github.com/centrifugal/protocol"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
)

// A session speaks JSON or Protobuf, and wraps its pushes in replies
// (bidirectional transports) or sends them bare (unidirectional ones).
// Deliveries are encoded once per wire format for all subscribers
// (hub.Delivery.Encoded); a unidirectional JSON push is the bidirectional
// one without its wrapper, so it shares that encoding.

// Wire formats of deliveries, besides formatJSON (control.go).
var (
	formatProtobuf = hub.RegisterFormat("centrifuge-protobuf")
	// JSON subscriptions with delta compression get every publication's
	// data as a JSON string of its JSON text (the text deltas apply to).
	formatJSONEscaped   = hub.RegisterFormat("centrifuge-json-escaped")
	formatJSONDelta     = hub.RegisterFormat("centrifuge-json-delta")
	formatProtobufDelta = hub.RegisterFormat("centrifuge-protobuf-delta")
)

// pushWrapper is what a bidirectional JSON push has around the bare push.
const pushWrapper = `{"push":`

// bare returns the bare push inside an encoded {"push":...} reply.
func bare(b []byte) []byte {
	if len(b) <= len(pushWrapper) || string(b[:len(pushWrapper)]) != pushWrapper {
		return b // an error reply in place of the push (encodeReply's fallback)
	}
	return b[len(pushWrapper) : len(b)-1]
}

// encode encodes a reply in the session's encoding.
func (s *session) encode(r *Reply) []byte {
	if s.proto {
		return encodeProtoReply(r)
	}
	return encodeReply(r)
}

func (s *session) reply(r *Reply) { s.enqueue(s.encode(r)) }

func (s *session) replyError(id uint32, e *Error) { s.reply(&Reply{ID: id, Error: e}) }

// encodePush encodes a push: in a reply, or bare on unidirectional transports.
func (s *session) encodePush(p *Push) []byte {
	b := s.encode(&Reply{Push: p})
	if s.tr.uni {
		return bare(b)
	}
	return b
}

func (s *session) push(p *Push) { s.enqueue(s.encodePush(p)) }

// pingMsg is the server ping: the empty reply, or the empty push.
func (s *session) pingMsg() []byte {
	if s.proto {
		return protoPing
	}
	return pingFrame
}

// decode splits a frame into commands in the session's encoding.
func (s *session) decode(frame []byte) ([]*Command, error) {
	if s.proto {
		return decodeProtoFrame(frame, s.h.cfg.Client.MessageSizeLimit)
	}
	return decodeFrame(frame)
}

// Deliver implements hub.Client. It never blocks: it queues the encoded
// push, with the publication's time for the latency metric.
func (s *session) Deliver(hs *hub.Subscription, d *hub.Delivery) {
	if s.plain && s.deltas.Load() == 0 {
		s.q.EnqueueAt(d.Encoded(formatJSON, encodeDelivery), d.Accepted()) // the common case
		return
	}
	var b []byte
	var st *deltaState
	if d.Kind == hub.KindPublication && s.deltas.Load() > 0 {
		st = s.deltaOf(hs)
	}
	switch {
	case st != nil:
		b = st.encoded(d, s.proto)
	case s.proto:
		b = d.Encoded(formatProtobuf, encodeProtoDelivery)
	case s.tr.uni:
		b = bare(d.Encoded(formatJSON, encodeDelivery))
	default:
		b = d.Encoded(formatJSON, encodeDelivery)
	}
	s.q.EnqueueAt(b, d.Accepted())
}

// encodeProtoDelivery encodes a delivery as a Protobuf push. Publication
// data goes as it was published, whatever its encoding.
func encodeProtoDelivery(d *hub.Delivery) []byte {
	push := &protocol.Push{Channel: d.Channel}
	switch d.Kind {
	case hub.KindPublication:
		push.Pub = protoPub(d.Pub, d.Pub.Data, false)
	case hub.KindJoin:
		push.Join = &protocol.Join{Info: toProtoInfo(d.Info)}
	case hub.KindLeave:
		push.Leave = &protocol.Leave{Info: toProtoInfo(d.Info)}
	default:
		return nil
	}
	return delimited(&protocol.Reply{Push: push})
}

func protoPub(p *broker.Publication, data []byte, delta bool) *protocol.Publication {
	return &protocol.Publication{Data: data, Info: toProtoInfo(p.Info), Offset: p.Offset, Tags: p.Tags, Delta: delta}
}

// --- delta compression ---

// deltaState is one subscription's delta compression: the publication
// whose data the client holds, against which the next delta applies.
type deltaState struct {
	last *broker.Publication
	// Before any delivery: the position of the last publication the
	// subscribe reply recovered (the client holds its data).
	offset uint64
	epoch  string
}

// follows reports whether the client holds the data of prev.
func (st *deltaState) follows(prev *broker.Publication, epoch string) bool {
	if st.last != nil {
		return st.last == prev
	}
	return st.offset != 0 && prev.Offset == st.offset && epoch == st.epoch
}

// encoded returns d for a delta subscription: a delta against the
// channel's previous publication when the client holds it, the full data
// otherwise (the first publication after subscribing). The hub serialises
// the deliveries of one subscription, so st needs no lock.
func (st *deltaState) encoded(d *hub.Delivery, proto bool) []byte {
	useDelta := d.Prev != nil && st.follows(d.Prev, d.Epoch)
	st.last = d.Pub
	switch {
	case proto && useDelta:
		return d.Encoded(formatProtobufDelta, encodeProtoDelta)
	case proto:
		return d.Encoded(formatProtobuf, encodeProtoDelivery)
	case useDelta:
		return d.Encoded(formatJSONDelta, encodeJSONDelta)
	}
	return d.Encoded(formatJSONEscaped, encodeJSONEscaped)
}

// escapedData is a publication's JSON text as a JSON string.
func escapedData(p *broker.Publication) json.RawMessage {
	b, _ := json.Marshal(string(hub.JSONData(p)))
	return b
}

func encodeJSONEscaped(d *hub.Delivery) []byte {
	return encodePubPush(d.Channel, d.Pub, escapedData(d.Pub), false)
}

// encodeJSONDelta encodes the fossil delta from the previous publication's
// JSON text to this one's, as a JSON string. It is computed once per
// publication and channel; when the delta would not be valid UTF-8 (it
// cut a character) or is no smaller, every delta subscriber gets the full
// data instead.
func encodeJSONDelta(d *hub.Delivery) []byte {
	prev, cur := hub.JSONData(d.Prev), hub.JSONData(d.Pub)
	delta := fdelta.Create(prev, cur)
	if len(delta) >= len(cur) || !utf8.Valid(delta) {
		return encodeJSONEscaped(d)
	}
	data, _ := json.Marshal(string(delta))
	return encodePubPush(d.Channel, d.Pub, data, true)
}

// encodeProtoDelta encodes the fossil delta between the raw data of the
// previous publication and this one's (the full data when no smaller).
func encodeProtoDelta(d *hub.Delivery) []byte {
	delta := fdelta.Create(d.Prev.Data, d.Pub.Data)
	if len(delta) >= len(d.Pub.Data) {
		return encodeProtoDelivery(d)
	}
	return delimited(&protocol.Reply{Push: &protocol.Push{Channel: d.Channel, Pub: protoPub(d.Pub, delta, true)}})
}

// deltaOf returns the delta state of a subscription, or nil.
func (s *session) deltaOf(hs *hub.Subscription) *deltaState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.x == nil {
		return nil
	}
	return s.x.deltaSubs[hs]
}

// startDelta turns delta compression on for a subscription whose reply
// carried pubs (the client holds the last one's data).
func (s *session) startDelta(hs *hub.Subscription, pubs []*broker.Publication, epoch string) {
	st := &deltaState{}
	if n := len(pubs); n > 0 {
		st.offset, st.epoch = pubs[n-1].Offset, epoch
	}
	s.mu.Lock()
	if s.x == nil {
		s.x = &sessionExt{} // a WebSocket session: x is read under mu only
	}
	if s.x.deltaSubs == nil {
		s.x.deltaSubs = map[*hub.Subscription]*deltaState{}
	}
	if _, ok := s.x.deltaSubs[hs]; !ok {
		s.deltas.Add(1)
	}
	s.x.deltaSubs[hs] = st
	s.mu.Unlock()
}

// stopDeltaLocked forgets a subscription's delta state. Called with s.mu held.
func (s *session) stopDeltaLocked(hs *hub.Subscription) {
	if s.x == nil {
		return
	}
	if _, ok := s.x.deltaSubs[hs]; ok {
		delete(s.x.deltaSubs, hs)
		s.deltas.Add(-1)
	}
}
