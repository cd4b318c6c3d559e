package actioncable

import (
	"fmt"
	"testing"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
)

// The two ways to encode a delivery whose frames differ per subscription
// (the identifier): one encoding per distinct identifier, kept on the
// delivery (what Deliver does), or a per-subscription prefix spliced around
// a body shared by all. Run with
//
//	go test ./internal/actioncable -run '^$' -bench Encode -benchmem
//
// subscribers share 1 identifier (every Turbo page of a room), 2 (Rails and
// AnyCable spellings), or each has its own (the app's per-user channels).
func BenchmarkEncode(b *testing.B) {
	const subscribers = 1000
	data := []byte(`{"html":"<turbo-stream action=\"append\" target=\"messages\"><template><p>hello</p></template></turbo-stream>"}`)
	for _, distinct := range []int{1, 2, subscribers} {
		ids := make([]string, subscribers)
		for i := range ids {
			ids[i] = fmt.Sprintf(`{"channel":"Turbo::StreamsChannel","signed_stream_name":"IloybGtPaTh2WVhCd0wxSnZiMjB2TVE6bWVzc2FnZXMi--%064d"}`, i%distinct)
		}
		b.Run(fmt.Sprintf("keyed/%d-identifiers", distinct), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d := &hub.Delivery{Kind: hub.KindPublication, Channel: "room", Pub: &broker.Publication{Data: data, Offset: 7}, Epoch: "abcd"}
				for _, id := range ids {
					_ = d.EncodedFor(formatJSON, id, encodeDelivery)
				}
			}
		})
		prefixes := make([][]byte, subscribers)
		for i, id := range ids {
			prefixes[i] = append(appendString([]byte(`{"identifier":`), id), `,"message":`...)
		}
		b.Run(fmt.Sprintf("splice/%d-identifiers", distinct), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d := &hub.Delivery{Kind: hub.KindPublication, Channel: "room", Pub: &broker.Publication{Data: data, Offset: 7}, Epoch: "abcd"}
				body := d.Encoded(formatJSON, func(d *hub.Delivery) []byte {
					return dataFrame("", hub.JSONData(d.Pub), d.Channel, d.Epoch, d.Pub.Offset)[len(`{"identifier":"","message":`):]
				})
				for _, p := range prefixes {
					frame := make([]byte, 0, len(p)+len(body))
					frame = append(append(frame, p...), body...)
					_ = frame
				}
			}
		})
	}
}
