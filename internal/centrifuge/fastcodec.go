package centrifuge

import (
	"math"
	"strconv"
)

// fastDecode decodes the commands every connection sends (connect,
// subscribe, and the empty pong) without encoding/json's reflection: about a
// quarter of the heap objects of a connect were the two commands' decoding
// (heraldbench conns, mallocs_per_connect). It accepts only a narrow, exact
// form: plain lowercase keys it knows, each once; strings of printable ASCII
// without escapes; integers as plain digits; true and false. Anything else
// (other keys and commands, escapes, non-ASCII text, null, numbers with a
// sign, fraction or exponent, duplicates) returns ok == false, and the caller
// decodes the line with encoding/json, so both give the same result on every
// input this accepts (FuzzFastDecodeMatchesEncodingJSON).
func fastDecode(b []byte) (cmd *Command, ok bool) {
	d := fastDecoder{b: b}
	cmd = &Command{}
	if !d.byte('{') {
		return nil, false
	}
	if d.byte('}') {
		return cmd, d.end()
	}
	var seen uint8
	for {
		key, ok := d.key()
		if !ok {
			return nil, false
		}
		switch string(key) {
		case "id":
			n, ok := d.uint(math.MaxUint32)
			if !ok || seen&1 != 0 {
				return nil, false
			}
			seen |= 1
			cmd.ID = uint32(n)
		case "connect":
			if seen&2 != 0 {
				return nil, false
			}
			seen |= 2
			cmd.Connect = &ConnectRequest{}
			if !d.object(cmd) {
				return nil, false
			}
		case "subscribe":
			if seen&2 != 0 {
				return nil, false
			}
			seen |= 2
			cmd.Subscribe = &SubscribeRequest{}
			if !d.object(cmd) {
				return nil, false
			}
		default:
			return nil, false
		}
		if d.byte(',') {
			continue
		}
		if d.byte('}') {
			return cmd, d.end()
		}
		return nil, false
	}
}

type fastDecoder struct {
	b    []byte
	i    int
	seen uint16 // fields seen in the object being decoded
}

func (d *fastDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// byte consumes c (after whitespace) if it comes next.
func (d *fastDecoder) byte(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (d *fastDecoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

// raw reads a string of printable ASCII without escapes, returning its bytes.
func (d *fastDecoder) raw() ([]byte, bool) {
	if !d.byte('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
		d.i++
	}
	return nil, false
}

func (d *fastDecoder) str() (string, bool) {
	b, ok := d.raw()
	return string(b), ok
}

// key reads an object key and its colon.
func (d *fastDecoder) key() ([]byte, bool) {
	k, ok := d.raw()
	if !ok || !d.byte(':') {
		return nil, false
	}
	return k, true
}

// uint reads plain digits (no sign, no leading zero, no fraction or exponent) up to max.
func (d *fastDecoder) uint(max uint64) (uint64, bool) {
	d.ws()
	start := d.i
	var n uint64
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		digit := uint64(d.b[d.i] - '0')
		if n > (max-digit)/10 {
			return 0, false
		}
		n = n*10 + digit
		d.i++
	}
	if d.i == start || (d.b[start] == '0' && d.i-start > 1) {
		return 0, false
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}

func (d *fastDecoder) bool() (bool, bool) {
	d.ws()
	switch {
	case len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true":
		d.i += 4
		return true, true
	case len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false":
		d.i += 5
		return false, true
	}
	return false, false
}

// object reads the request object of cmd's command (connect or subscribe).
func (d *fastDecoder) object(cmd *Command) bool {
	if !d.byte('{') {
		return false
	}
	d.seen = 0
	if d.byte('}') {
		return true
	}
	for {
		k, ok := d.key()
		if !ok {
			return false
		}
		if cmd.Connect != nil {
			ok = d.connectField(cmd.Connect, k)
		} else {
			ok = d.subscribeField(cmd.Subscribe, k)
		}
		if !ok {
			return false
		}
		if d.byte(',') {
			continue
		}
		return d.byte('}')
	}
}

// once marks field bit as seen; false when it was already.
func (d *fastDecoder) once(bit uint16) bool {
	if d.seen&bit != 0 {
		return false
	}
	d.seen |= bit
	return true
}

func (d *fastDecoder) connectField(c *ConnectRequest, k []byte) bool {
	var ok bool
	switch string(k) {
	case "token":
		c.Token, ok = d.str()
		return ok && d.once(1)
	case "name":
		c.Name, ok = d.str()
		return ok && d.once(2)
	case "version":
		c.Version, ok = d.str()
		return ok && d.once(4)
	}
	return false
}

func (d *fastDecoder) subscribeField(s *SubscribeRequest, k []byte) bool {
	var ok bool
	switch string(k) {
	case "channel":
		s.Channel, ok = d.str()
		return ok && d.once(1)
	case "token":
		s.Token, ok = d.str()
		return ok && d.once(2)
	case "epoch":
		s.Epoch, ok = d.str()
		return ok && d.once(4)
	case "recover":
		s.Recover, ok = d.bool()
		return ok && d.once(8)
	case "positioned":
		s.Positioned, ok = d.bool()
		return ok && d.once(16)
	case "recoverable":
		s.Recoverable, ok = d.bool()
		return ok && d.once(32)
	case "join_leave":
		s.JoinLeave, ok = d.bool()
		return ok && d.once(64)
	case "offset":
		s.Offset, ok = d.uint(math.MaxUint64)
		return ok && d.once(128)
	case "flag":
		var n uint64
		n, ok = d.uint(math.MaxInt64)
		s.Flag = int64(n)
		return ok && d.once(256)
	}
	return false
}

// fastEncodeReply encodes the replies every connection gets (connect and
// subscribe results without data, server-side subscriptions or
// publications) without reflection, byte for byte as encoding/json does
// (FuzzFastEncodeMatchesEncodingJSON); ok == false leaves the reply to
// encoding/json.
func fastEncodeReply(r *Reply) (b []byte, ok bool) {
	if r.Error != nil || r.Unsubscribe != nil || r.Publish != nil || r.Presence != nil || r.PresenceStats != nil ||
		r.History != nil || r.RPC != nil || r.Refresh != nil || r.SubRefresh != nil || r.Push != nil {
		return nil, false
	}
	b = make([]byte, 0, 128)
	b = append(b, '{')
	if r.ID != 0 {
		b = strconv.AppendUint(append(b, `"id":`...), uint64(r.ID), 10)
	}
	sep := func() {
		if len(b) > 1 {
			b = append(b, ',')
		}
	}
	switch {
	case r.Connect != nil && r.Subscribe == nil:
		c := r.Connect
		if c.Data != nil || c.Subs != nil || c.Session != "" || c.Node != "" || !plainString(c.Client) || !plainString(c.Version) {
			return nil, false
		}
		sep()
		b = append(append(append(b, `"connect":{"client":"`...), c.Client...), '"')
		if c.Version != "" {
			b = append(append(append(b, `,"version":"`...), c.Version...), '"')
		}
		if c.Expires {
			b = append(b, `,"expires":true`...)
		}
		if c.TTL != 0 {
			b = strconv.AppendUint(append(b, `,"ttl":`...), uint64(c.TTL), 10)
		}
		if c.Ping != 0 {
			b = strconv.AppendUint(append(b, `,"ping":`...), uint64(c.Ping), 10)
		}
		if c.Pong {
			b = append(b, `,"pong":true`...)
		}
		b = append(b, '}')
	case r.Subscribe != nil && r.Connect == nil:
		s := r.Subscribe
		if s.Publications != nil || s.Data != nil || s.Delta || !plainString(s.Epoch) {
			return nil, false
		}
		sep()
		b = append(b, `"subscribe":{`...)
		start := len(b)
		field := func(f string) {
			if len(b) > start {
				b = append(b, ',')
			}
			b = append(b, f...)
		}
		if s.Expires {
			field(`"expires":true`)
		}
		if s.TTL != 0 {
			field(`"ttl":`)
			b = strconv.AppendUint(b, uint64(s.TTL), 10)
		}
		if s.Recoverable {
			field(`"recoverable":true`)
		}
		if s.Epoch != "" {
			field(`"epoch":"`)
			b = append(append(b, s.Epoch...), '"')
		}
		if s.Recovered {
			field(`"recovered":true`)
		}
		if s.Offset != 0 {
			field(`"offset":`)
			b = strconv.AppendUint(b, s.Offset, 10)
		}
		if s.Positioned {
			field(`"positioned":true`)
		}
		if s.WasRecovering {
			field(`"was_recovering":true`)
		}
		b = append(b, '}')
	default:
		return nil, false
	}
	return append(b, '}'), true
}

// plainString reports whether encoding/json writes s between quotes unchanged.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
