package broker

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestMessageRoundTripAndPeek(t *testing.T) {
	pub := &Publication{Channel: "news:a.b", Offset: 7, Seq: 9, ID: "id", Data: []byte(`{"x":1}`), Encoding: EncodingJSON,
		Info: &ClientInfo{User: "u", Client: "c"}, Tags: map[string]string{"k": "v"}, Time: time.Unix(0, 12345),
		Topics: []string{"t1"}, Private: true, Event: "e", Retry: 3}
	b := AppendPubMessage(nil, pub, "ep")
	if ch, ok := PeekChannel(b); !ok || ch != "news:a.b" {
		t.Fatalf("peek: %q %v", ch, ok)
	}
	m, err := DecodeMessage(b)
	if err != nil || m.Epoch != "ep" || !reflect.DeepEqual(m.Pub, pub) {
		t.Fatalf("round trip: %+v %v", m.Pub, err)
	}
	j := AppendPresenceMessage(nil, MsgJoin, "c", &ClientInfo{User: "u"})
	if ch, ok := PeekChannel(j); !ok || ch != "c" {
		t.Fatalf("peek join: %q %v", ch, ok)
	}
	// Every truncation of a valid message is refused, never a panic.
	for i := range len(b) {
		if _, err := DecodeMessage(b[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		} else if !errors.Is(err, ErrBadMessage) {
			t.Fatalf("truncated at %d: %v is not ErrBadMessage", i, err)
		}
		PeekChannel(b[:i])
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(AppendPubMessage(nil, &Publication{Channel: "c", Data: []byte("x")}, "e"))
	f.Add(AppendPresenceMessage(nil, MsgLeave, "c", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeMessage(b)
		_, _ = PeekChannel(b)
	})
}
