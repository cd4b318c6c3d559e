package actioncable

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/heraldhub/herald/internal/auth"
)

// The wire: one JSON object per WebSocket text frame, both ways.
// Client messages carry "command" (or "type" for a pong); server messages
// carry "type", except data frames, which carry "identifier" and "message".

// Subprotocols.
const (
	protoJSON = "actioncable-v1-json"
	protoExt  = "actioncable-v1-ext-json"
)

// command is a client message.
type command struct {
	Command    string          `json:"command"`
	Type       string          `json:"type"`
	Identifier string          `json:"identifier"`
	Data       json.RawMessage `json:"data"`
	History    *historyRequest `json:"history"`
	Presence   *presenceArgs   `json:"presence"`
}

// historyRequest asks for the publications of a subscription's streams
// after known positions, or since a time (extended protocol).
type historyRequest struct {
	Since   int64                     `json:"since"`
	Streams map[string]streamPosition `json:"streams"`
}

type streamPosition struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// presenceArgs are the arguments of join and leave.
type presenceArgs struct {
	ID   string          `json:"id"`
	Info json.RawMessage `json:"info"`
}

var errNotObject = errors.New("a message is one JSON object")

// decodeCommand reads one client message.
func decodeCommand(data []byte) (*command, error) {
	var c command
	if err := json.Unmarshal(data, &c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return nil, errNotObject
			}
			return nil, fmt.Errorf("field %s must not be %s", te.Field, te.Value)
		}
		return nil, fmt.Errorf("not JSON: %s", auth.Truncate(err.Error(), 80))
	}
	return &c, nil
}

// params are a subscription identifier's parsed content. The raw string is
// what the client looks its subscription up by, and is echoed byte for byte.
type params map[string]json.RawMessage

// parseIdentifier parses a subscription identifier: a JSON object with a
// string "channel".
func parseIdentifier(id string) (params, string, error) {
	var p params
	if err := json.Unmarshal([]byte(id), &p); err != nil || p == nil {
		return nil, "", errors.New("identifier is not a JSON object")
	}
	var ch string
	if err := json.Unmarshal(p["channel"], &ch); err != nil || ch == "" {
		return nil, "", errors.New(`identifier has no "channel" string`)
	}
	return p, ch, nil
}

// str returns a string parameter, and whether it is one.
func (p params) str(name string) (string, bool) {
	raw, ok := p[name]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// appendString appends s as a JSON string. Unlike encoding/json it leaves
// <, > and & alone (Turbo Stream HTML stays readable); invalid UTF-8 becomes
// U+FFFD, so a text frame is always valid UTF-8.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func typed(typ, identifier string) []byte {
	b := make([]byte, 0, 48+len(identifier))
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","identifier":`...)
	b = appendString(b, identifier)
	return append(b, '}')
}

func confirmFrame(id string) []byte        { return typed("confirm_subscription", id) }
func rejectFrame(id string) []byte         { return typed("reject_subscription", id) }
func confirmHistoryFrame(id string) []byte { return typed("confirm_history", id) }
func rejectHistoryFrame(id string) []byte  { return typed("reject_history", id) }

func pingFrame(unix int64) []byte {
	return append(strconv.AppendInt([]byte(`{"type":"ping","message":`), unix, 10), '}')
}

// welcomeFrame is the welcome; restored lists the identifiers a restored
// session already holds.
func welcomeFrame(sid string, restored []string, isRestore bool) []byte {
	b := []byte(`{"type":"welcome","sid":`)
	b = appendString(b, sid)
	if isRestore {
		b = append(b, `,"restored":true,"restored_ids":[`...)
		for i, id := range restored {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// disconnectFrame is the disconnect message. With r, in development mode
// (client.reason_detail full), Herald's reason goes in a field the clients
// ignore.
func disconnectFrame(reason string, reconnect bool, r *auth.Reason) []byte {
	b := []byte(`{"type":"disconnect","reason":`)
	b = appendString(b, reason)
	b = append(b, `,"reconnect":`...)
	b = strconv.AppendBool(b, reconnect)
	if r != nil {
		b = append(b, `,"herald":{"code":`...)
		b = appendString(b, string(r.Code))
		b = append(b, `,"detail":`...)
		b = appendString(b, r.Detail)
		if r.Hint != "" {
			b = append(b, `,"hint":`...)
			b = appendString(b, r.Hint)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// dataFrame is a message of a subscription; on the extended protocol with
// a stream that keeps history it carries the stream position.
func dataFrame(id string, message []byte, stream, epoch string, offset uint64) []byte {
	b := make([]byte, 0, 40+len(id)+len(message)+len(stream)+len(epoch))
	b = append(b, `{"identifier":`...)
	b = appendString(b, id)
	b = append(b, `,"message":`...)
	b = append(b, message...)
	if offset > 0 {
		b = append(b, `,"stream_id":`...)
		b = appendString(b, stream)
		b = append(b, `,"epoch":`...)
		b = appendString(b, epoch)
		b = append(b, `,"offset":`...)
		b = strconv.AppendUint(b, offset, 10)
	}
	return append(b, '}')
}

// presenceFrame is a presence event or answer (extended protocol).
func presenceFrame(id string, message []byte) []byte {
	b := make([]byte, 0, 48+len(id)+len(message))
	b = append(b, `{"type":"presence","identifier":`...)
	b = appendString(b, id)
	b = append(b, `,"message":`...)
	b = append(b, message...)
	return append(b, '}')
}
