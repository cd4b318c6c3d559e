package mercure

import (
	"strconv"
	"strings"
	"time"
)

// Update is one publication. It is immutable once published: every
// subscriber shares it and its encoded bytes.
type Update struct {
	ID      string
	Topics  []string // canonical first, then alternates
	Data    string
	Type    string
	Retry   uint64
	Private bool

	subscriptionEvent bool // published by the hub about a subscription

	seq     uint64    // position in this node's stream
	at      time.Time // when it was accepted
	encoded []byte    // the SSE event, built once
}

// NewUpdate builds an update and encodes its SSE event once.
func NewUpdate(id string, topics []string, data, typ string, retry uint64, private bool) *Update {
	u := &Update{ID: id, Topics: topics, Data: data, Type: typ, Retry: retry, Private: private}
	u.encoded = EncodeEvent(u)
	return u
}

// Encoded returns the SSE event of u, shared by every subscriber.
func (u *Update) Encoded() []byte { return u.encoded }

// EncodeEvent writes an update as one SSE event: event only with a type,
// retry only when non-zero, id always, one data line per line of the data
// (split on \r\n, \r and \n, empty lines kept; empty data gives one "data: "
// line so that browsers dispatch the event), then an empty line.
func EncodeEvent(u *Update) []byte {
	var b strings.Builder
	b.Grow(len(u.Data) + len(u.ID) + len(u.Type) + 32)
	if u.Type != "" {
		b.WriteString("event: ")
		b.WriteString(u.Type)
		b.WriteByte('\n')
	}
	if u.Retry != 0 {
		b.WriteString("retry: ")
		b.WriteString(strconv.FormatUint(u.Retry, 10))
		b.WriteByte('\n')
	}
	b.WriteString("id: ")
	b.WriteString(u.ID)
	b.WriteByte('\n')
	d := u.Data
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
