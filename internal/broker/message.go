package broker

import (
	"bytes"
	"fmt"
	"strconv"
)

// Messages between nodes start with a kind byte:
//
//	p<offset>:<epoch>:<seq>:<publication>   a publication and its places
//	j<channel><client info>                 a join
//	l<channel><client info>                 a leave
//
// The publication header is text so that a Redis script, which assigns the
// offset and seq, can write it; the rest is the binary codec.
const (
	MsgPublication = 'p'
	MsgJoin        = 'j'
	MsgLeave       = 'l'
)

// Message is a decoded message between nodes.
type Message struct {
	Kind    byte
	Pub     *Publication // MsgPublication, with Offset and Seq set
	Epoch   string       // MsgPublication: the stream's epoch ("" without history)
	Channel string
	Info    *ClientInfo // MsgJoin, MsgLeave
}

// AppendPubHeader appends the header of a publication message.
func AppendPubHeader(b []byte, offset uint64, epoch string, seq uint64) []byte {
	b = append(b, MsgPublication)
	b = strconv.AppendUint(b, offset, 10)
	b = append(b, ':')
	b = append(b, epoch...)
	b = append(b, ':')
	b = strconv.AppendUint(b, seq, 10)
	return append(b, ':')
}

// AppendPubMessage appends a whole publication message.
func AppendPubMessage(b []byte, pub *Publication, epoch string) []byte {
	b = AppendPubHeader(b, pub.Offset, epoch, pub.Seq)
	return AppendPublication(b, pub)
}

// AppendPresenceMessage appends a join (MsgJoin) or leave (MsgLeave) message.
func AppendPresenceMessage(b []byte, kind byte, channel string, info *ClientInfo) []byte {
	b = append(b, kind)
	b = appendString(b, channel)
	return appendInfo(b, info)
}

// DecodeMessage reads a message written by the functions above.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) == 0 {
		return Message{}, fmt.Errorf("%w: empty message", ErrBadMessage)
	}
	m := Message{Kind: b[0]}
	switch m.Kind {
	case MsgPublication:
		rest := b[1:]
		var fields [3][]byte
		for i := range fields {
			j := bytes.IndexByte(rest, ':')
			if j < 0 {
				return Message{}, fmt.Errorf("%w: publication header", ErrBadMessage)
			}
			fields[i], rest = rest[:j], rest[j+1:]
		}
		offset, err1 := strconv.ParseUint(string(fields[0]), 10, 64)
		seq, err2 := strconv.ParseUint(string(fields[2]), 10, 64)
		if err1 != nil || err2 != nil {
			return Message{}, fmt.Errorf("%w: publication header numbers", ErrBadMessage)
		}
		pub, err := DecodePublication(rest)
		if err != nil {
			return Message{}, err
		}
		pub.Offset, pub.Seq = offset, seq
		m.Pub, m.Epoch, m.Channel = pub, string(fields[1]), pub.Channel
		return m, nil
	case MsgJoin, MsgLeave:
		d := decoder{b: b[1:]}
		m.Channel = d.string()
		m.Info = d.info()
		if d.err == nil && len(d.b) != 0 {
			d.err = fmt.Errorf("%w: %d bytes after a join or leave", ErrBadMessage, len(d.b))
		}
		if d.err != nil {
			return Message{}, d.err
		}
		return m, nil
	}
	return Message{}, fmt.Errorf("%w: unknown kind %q", ErrBadMessage, m.Kind)
}

// PeekChannel returns the channel of a message without decoding the rest,
// so that a node can drop messages of channels it does not want cheaply.
func PeekChannel(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", false
	}
	rest := b[1:]
	switch b[0] {
	case MsgPublication:
		for range 3 {
			j := bytes.IndexByte(rest, ':')
			if j < 0 {
				return "", false
			}
			rest = rest[j+1:]
		}
		if len(rest) == 0 || rest[0] != codecVersion {
			return "", false
		}
		rest = rest[1:]
	case MsgJoin, MsgLeave:
	default:
		return "", false
	}
	d := decoder{b: rest}
	raw := d.raw()
	if d.err != nil {
		return "", false
	}
	return string(raw), true
}
