package centrifuge

import (
	"encoding/binary"
	"testing"
	"unicode/utf8"

	"github.com/centrifugal/protocol"
)

// FuzzDecodeProtoFrame: no frame makes the decoder panic, and a frame it
// accepts is a sequence of records whose declared lengths fit the frame and
// the limit.
func FuzzDecodeProtoFrame(f *testing.F) {
	connect, _ := (&protocol.Command{Id: 1, Connect: &protocol.ConnectRequest{Token: "t", Subs: map[string]*protocol.SubscribeRequest{"c": {Recover: true}}}}).MarshalCF()
	sub, _ := (&protocol.Command{Id: 2, Subscribe: &protocol.SubscribeRequest{Channel: "c", Delta: "fossil", Data: []byte(`{}`)}}).MarshalCF()
	pub, _ := (&protocol.Command{Id: 3, Publish: &protocol.PublishRequest{Channel: "c", Data: []byte{0, 0xff}}}).MarshalCF()
	frame := func(msgs ...[]byte) []byte {
		var b []byte
		for _, m := range msgs {
			b = binary.AppendUvarint(b, uint64(len(m)))
			b = append(b, m...)
		}
		return b
	}
	f.Add(frame(connect, sub, pub))
	f.Add(frame(nil))
	f.Add([]byte{0x80})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x05, 0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 1024
		cmds, err := decodeProtoFrame(b, limit)
		if err != nil {
			return
		}
		n := 0
		for rest := b; len(rest) > 0; n++ {
			l, k := binary.Uvarint(rest)
			if k <= 0 || l > limit || l > uint64(len(rest)-k) {
				t.Fatalf("accepted a frame with a bad record at % x", rest)
			}
			rest = rest[k+int(l):]
		}
		if n != len(cmds) || n == 0 {
			t.Fatalf("%d commands from %d records", len(cmds), n)
		}
	})
}

// FuzzProtoReplyRoundTrip: a reply Herald encodes is one record that the
// schema decodes to the same publication data, whatever the bytes.
func FuzzProtoReplyRoundTrip(f *testing.F) {
	f.Add("chan", []byte(`{"a":1}`), uint64(3), true)
	f.Add("", []byte{0, 1, 0xff}, uint64(0), false)
	f.Fuzz(func(t *testing.T, channel string, data []byte, offset uint64, delta bool) {
		if !utf8.ValidString(channel) {
			return // channel names are ASCII (hub.Namespaces.Resolve)
		}
		b := encodeProtoReply(&Reply{Push: &Push{Channel: channel, Pub: &Publication{raw: data, Offset: offset, Delta: delta}}})
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) != l {
			t.Fatalf("not one record: % x", b)
		}
		var r protocol.Reply
		if err := r.UnmarshalCF(b[k:]); err != nil {
			t.Fatal(err)
		}
		p := r.Push.Pub
		if r.Push.Channel != channel || string(p.Data) != string(data) || p.Offset != offset || p.Delta != delta {
			t.Fatalf("round trip %+v", r.Push)
		}
	})
}
