package conn

import (
	"encoding/binary"
	"strconv"
)

// WebSocket opcodes of server frames.
const (
	OpText   = 1
	OpBinary = 2
	OpClose  = 8
	OpPing   = 9
	OpPong   = 10
)

// AppendFrameHeader appends the header of an unmasked, final server frame.
func AppendFrameHeader(dst []byte, opcode byte, n int) []byte {
	dst = append(dst, 0x80|opcode)
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(n))
	}
}

// TextFrameLines is the Framer of protocols that join messages into one
// text frame, separated by newlines (Centrifugo JSON).
func TextFrameLines(dst []byte, msgs [][]byte) []byte {
	n := len(msgs) - 1
	for _, m := range msgs {
		n += len(m)
	}
	dst = AppendFrameHeader(dst, OpText, n)
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, m...)
	}
	return dst
}

// TextFrames is the Framer of protocols that send one text frame per
// message (Action Cable).
func TextFrames(dst []byte, msgs [][]byte) []byte {
	for _, m := range msgs {
		dst = AppendFrameHeader(dst, OpText, len(m))
		dst = append(dst, m...)
	}
	return dst
}

// BinaryFrame is the Framer of protocols whose messages are self-delimited
// and concatenated into one binary frame (Centrifugo Protobuf).
func BinaryFrame(dst []byte, msgs [][]byte) []byte {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	dst = AppendFrameHeader(dst, OpBinary, n)
	for _, m := range msgs {
		dst = append(dst, m...)
	}
	return dst
}

// ControlFrame returns a whole control frame (close, ping, pong); the
// payload is cut to the 125 bytes a control frame may carry.
func ControlFrame(opcode byte, payload []byte) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	return append(AppendFrameHeader(make([]byte, 0, 2+len(payload)), opcode, len(payload)), payload...)
}

// Chunked is the Framer of HTTP/1.1 streams: the messages, concatenated, as
// one chunk of the chunked transfer encoding.
func Chunked(dst []byte, msgs [][]byte) []byte {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	if n == 0 {
		return dst
	}
	dst = strconv.AppendInt(dst, int64(n), 16)
	dst = append(dst, "\r\n"...)
	for _, m := range msgs {
		dst = append(dst, m...)
	}
	return append(dst, "\r\n"...)
}

// Raw is the Framer of streams whose body ends when the connection closes
// (HTTP/1.0 clients): the messages, concatenated.
func Raw(dst []byte, msgs [][]byte) []byte {
	for _, m := range msgs {
		dst = append(dst, m...)
	}
	return dst
}

// ChunkedEach returns the Framer of HTTP/1.1 streams whose messages are
// each written between prefix and suffix (a line of JSON, an SSE event),
// together as one chunk.
func ChunkedEach(prefix, suffix string) Framer {
	return func(dst []byte, msgs [][]byte) []byte {
		n := len(msgs) * (len(prefix) + len(suffix))
		for _, m := range msgs {
			n += len(m)
		}
		if n == 0 {
			return dst
		}
		dst = strconv.AppendInt(dst, int64(n), 16)
		dst = append(dst, "\r\n"...)
		dst = appendEach(dst, msgs, prefix, suffix)
		return append(dst, "\r\n"...)
	}
}

// RawEach is ChunkedEach for streams that end when the connection closes.
func RawEach(prefix, suffix string) Framer {
	return func(dst []byte, msgs [][]byte) []byte { return appendEach(dst, msgs, prefix, suffix) }
}

func appendEach(dst []byte, msgs [][]byte, prefix, suffix string) []byte {
	for _, m := range msgs {
		dst = append(dst, prefix...)
		dst = append(dst, m...)
		dst = append(dst, suffix...)
	}
	return dst
}

// LastChunk ends a chunked HTTP/1.1 body.
const LastChunk = "0\r\n\r\n"
