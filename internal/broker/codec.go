package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The codec below is how publications and client infos travel between nodes
// (Redis PUB/SUB and streams, NATS subjects). It is written by hand rather
// than with Protobuf or JSON: it runs once per publication per node on the
// hot path, needs no generated code, and the fields are Herald's own. Every
// field is length-prefixed; the decoder checks every length against the
// input and never panics on bad bytes (a corrupt or foreign message is an
// error, logged and dropped by the receiver).

// codecVersion is the first byte of an encoded publication. A node that sees
// another version refuses the message instead of misreading it.
const codecVersion = 1

// ErrBadMessage marks bytes that are not a publication or client info of
// this codec.
var ErrBadMessage = errors.New("malformed broker message")

// AppendPublication appends the encoding of pub to b. Offset, Seq and the
// stream epoch are not included: they are assigned where the publication is
// stored and travel in the message header (see AppendPubMessage).
func AppendPublication(b []byte, pub *Publication) []byte {
	b = append(b, codecVersion)
	b = appendString(b, pub.Channel)
	b = appendString(b, pub.ID)
	b = appendBytes(b, pub.Data)
	b = append(b, byte(pub.Encoding))
	var t int64
	if !pub.Time.IsZero() {
		t = pub.Time.UnixNano()
	}
	b = binary.AppendVarint(b, t)
	b = appendInfo(b, pub.Info)
	b = binary.AppendUvarint(b, uint64(len(pub.Tags)))
	for k, v := range pub.Tags {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(pub.Topics)))
	for _, t := range pub.Topics {
		b = appendString(b, t)
	}
	var flags byte
	if pub.Private {
		flags |= 1
	}
	b = append(b, flags)
	b = appendString(b, pub.Event)
	b = binary.AppendUvarint(b, pub.Retry)
	return b
}

// DecodePublication reads a publication written by AppendPublication. The
// returned publication owns its memory (nothing refers to b).
func DecodePublication(b []byte) (*Publication, error) {
	d := decoder{b: b}
	if v := d.byte(); v != codecVersion {
		if d.err != nil {
			return nil, d.err
		}
		return nil, fmt.Errorf("%w: codec version %d (this node reads %d)", ErrBadMessage, v, codecVersion)
	}
	p := &Publication{}
	p.Channel = d.string()
	p.ID = d.string()
	p.Data = d.bytes()
	p.Encoding = Encoding(d.byte())
	if t := d.varint(); t != 0 {
		p.Time = time.Unix(0, t)
	}
	p.Info = d.info()
	if n := d.count(2); n > 0 {
		p.Tags = make(map[string]string, n)
		for range n {
			k := d.string()
			p.Tags[k] = d.string()
		}
	}
	if n := d.count(1); n > 0 {
		p.Topics = make([]string, n)
		for i := range p.Topics {
			p.Topics[i] = d.string()
		}
	}
	p.Private = d.byte()&1 != 0
	p.Event = d.string()
	p.Retry = d.uvarint()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d bytes after the publication", ErrBadMessage, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	if p.Encoding > EncodingBinary {
		return nil, fmt.Errorf("%w: unknown encoding %d", ErrBadMessage, p.Encoding)
	}
	return p, nil
}

// AppendClientInfo appends the encoding of info (nil allowed) to b.
func AppendClientInfo(b []byte, info *ClientInfo) []byte {
	return appendInfo(b, info)
}

// DecodeClientInfo reads a client info written by AppendClientInfo.
func DecodeClientInfo(b []byte) (*ClientInfo, error) {
	d := decoder{b: b}
	info := d.info()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d bytes after the client info", ErrBadMessage, len(d.b))
	}
	return info, d.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendInfo(b []byte, info *ClientInfo) []byte {
	if info == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = appendString(b, info.User)
	b = appendString(b, info.Client)
	b = appendBytes(b, info.ConnInfo)
	b = appendBytes(b, info.ChanInfo)
	return b
}

// decoder reads fields until the first error, after which every read
// returns a zero value and err stays set.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", ErrBadMessage, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// raw returns the next length-prefixed field, still pointing into d.b.
func (d *decoder) raw() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("field")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.raw()) }

// bytes returns a copy of the next field (nil when empty).
func (d *decoder) bytes() []byte {
	v := d.raw()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// count reads an element count, refusing counts that the remaining bytes
// cannot hold (each element takes at least min bytes), so a corrupt count
// never makes a huge allocation.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.fail("list")
		return 0
	}
	return int(n)
}

func (d *decoder) info() *ClientInfo {
	switch d.byte() {
	case 0:
		return nil
	case 1:
	default:
		if d.err == nil {
			d.err = fmt.Errorf("%w: bad client info marker", ErrBadMessage)
			d.b = nil
		}
		return nil
	}
	info := &ClientInfo{User: d.string(), Client: d.string()}
	if v := d.bytes(); v != nil {
		info.ConnInfo = v
	}
	if v := d.bytes(); v != nil {
		info.ChanInfo = v
	}
	if d.err != nil {
		return nil
	}
	return info
}
