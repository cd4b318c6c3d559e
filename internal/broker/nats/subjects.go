package nats

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhub/herald/internal/broker"
)

// Subjects (prefix p):
//
//	p.ch.<escaped channel>   publications, joins and leaves of a channel
//	p.control                control messages for every node
//	p.node.<escaped node id> control messages for one node
//	p.resync                 a node's connection was down: everyone resyncs
//
// escape makes any channel name one subject token: letters, digits and "-"
// stay, every other byte (".", "*", ">", spaces, "_" itself, UTF-8) becomes
// "_" and two hex digits. Distinct names give distinct tokens.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	if b.Len() == 0 {
		return "_" // the empty name
	}
	return b.String()
}

type subjects struct{ prefix string }

func (s subjects) channel(ch string) string { return s.prefix + ".ch." + escape(ch) }
func (s subjects) allChannels() string      { return s.prefix + ".ch.*" }
func (s subjects) control() string          { return s.prefix + ".control" }
func (s subjects) node(id string) string    { return s.prefix + ".node." + escape(id) }
func (s subjects) resync() string           { return s.prefix + ".resync" }

// A message on a channel subject is an envelope around a broker message:
//
//	version byte, nonce, history options, index options, message
//
// The options travel with the publication because, without Redis, every
// node keeps the channel's history itself and needs its bounds. The nonce
// (node id and a counter) lets a node drop the second copy of a publication
// while it switches between per-channel and all-channel subscriptions.
const envelopeVersion = 1

func appendEnvelope(b []byte, nonce string, opts broker.PublishOptions, msg []byte) []byte {
	b = append(b, envelopeVersion)
	b = binary.AppendUvarint(b, uint64(len(nonce)))
	b = append(b, nonce...)
	b = binary.AppendUvarint(b, uint64(max(opts.HistorySize, 0)))
	b = binary.AppendUvarint(b, uint64(max(opts.HistoryTTL, 0)))
	b = binary.AppendUvarint(b, uint64(max(opts.HistoryMetaTTL, 0)))
	b = binary.AppendUvarint(b, uint64(max(opts.HistoryMaxBytes, 0)))
	if opts.Index == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(max(opts.Index.Size, 0)))
		b = binary.AppendUvarint(b, uint64(max(opts.Index.TTL, 0)))
		b = binary.AppendUvarint(b, uint64(max(opts.Index.MaxBytes, 0)))
	}
	return append(b, msg...)
}

type envelope struct {
	nonce string
	opts  broker.PublishOptions
	msg   broker.Message
}

func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	bad := fmt.Errorf("%w: NATS envelope", broker.ErrBadMessage)
	if len(b) == 0 || b[0] != envelopeVersion {
		return e, bad
	}
	b = b[1:]
	num := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	nl := num()
	if b == nil || nl > uint64(len(b)) {
		return e, bad
	}
	e.nonce, b = string(b[:nl]), b[nl:]
	e.opts.HistorySize = int(num())
	e.opts.HistoryTTL = time.Duration(num())
	e.opts.HistoryMetaTTL = time.Duration(num())
	e.opts.HistoryMaxBytes = int(num())
	if len(b) == 0 {
		return e, bad
	}
	hasIndex := b[0] == 1
	b = b[1:]
	if hasIndex {
		e.opts.Index = &broker.IndexOptions{Size: int(num()), TTL: time.Duration(num()), MaxBytes: int(num())}
	}
	if b == nil {
		return e, bad
	}
	m, err := broker.DecodeMessage(b)
	if err != nil {
		return e, err
	}
	e.msg = m
	return e, nil
}
