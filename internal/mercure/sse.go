package mercure

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
)

// formatSSE is this front door's wire format: each publication is encoded
// once as an SSE event for every subscriber.
var formatSSE = hub.RegisterFormat("mercure-sse")

func encodeDelivery(d *hub.Delivery) []byte { return EncodeEvent(d.Pub) }

// eventData is a publication's data as event text: JSON and text as they
// are, binary data (from a Protobuf client) base64-encoded.
func eventData(p *broker.Publication) string {
	if p.Encoding == broker.EncodingBinary {
		return base64.StdEncoding.EncodeToString(p.Data)
	}
	return string(p.Data)
}

// EncodeEvent writes a publication as one SSE event: event only with a type,
// retry only when non-zero, id always, one data line per line of the data
// (split on \r\n, \r and \n, empty lines kept; empty data gives one "data: "
// line so that browsers dispatch the event), then an empty line.
func EncodeEvent(p *broker.Publication) []byte {
	var b strings.Builder
	d := eventData(p)
	b.Grow(len(d) + len(p.ID) + len(p.Event) + 32)
	if p.Event != "" {
		b.WriteString("event: ")
		b.WriteString(p.Event)
		b.WriteByte('\n')
	}
	if p.Retry != 0 {
		b.WriteString("retry: ")
		b.WriteString(strconv.FormatUint(p.Retry, 10))
		b.WriteByte('\n')
	}
	b.WriteString("id: ")
	b.WriteString(p.ID)
	b.WriteByte('\n')
	for {
		i := strings.IndexAny(d, "\r\n")
		b.WriteString("data: ")
		if i < 0 {
			b.WriteString(d)
			b.WriteByte('\n')
			break
		}
		b.WriteString(d[:i])
		b.WriteByte('\n')
		if d[i] == '\r' && i+1 < len(d) && d[i+1] == '\n' {
			i++
		}
		d = d[i+1:]
	}
	b.WriteByte('\n')
	return []byte(b.String())
}
