package actioncable

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/heraldhub/herald/internal/auth"
)

// Decoding the app's answers. anycable-rails answers with the protocol's
// snake_case names, integer statuses and default values left out (so an
// ERROR answer has no status at all); other servers send explicit nulls.
// Both are accepted, and so are lowerCamel names and status names. Anything
// else of the wrong kind is refused with the field's path.

func kindOf(raw json.RawMessage) string {
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '"':
		return "a string"
	case raw[0] == '{':
		return "an object"
	case raw[0] == '[':
		return "an array"
	case raw[0] == 't' || raw[0] == 'f':
		return "a boolean"
	case raw[0] == 'n':
		return "null"
	}
	return "a number"
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// decoder reads one answer, naming the first wrong field.
type decoder struct {
	method string
	bad    *auth.Reason
}

func (d *decoder) fail(path, format string, args ...any) {
	if d.bad == nil {
		d.bad = rpcReason(auth.RPCBadResponse, fmt.Sprintf("the app's %s answer: %s %s", d.method, path, fmt.Sprintf(format, args...)),
			"answer as anycable-rails does: snake_case fields, status as 0 (ERROR), 1 (SUCCESS) or 2 (FAILURE), transmissions as an array of JSON strings")
	}
}

func (d *decoder) str(path string, raw json.RawMessage, dst *string) {
	if isNull(raw) {
		return
	}
	if json.Unmarshal(raw, dst) != nil || raw[0] != '"' {
		d.fail(path, "must be a string, got %s", kindOf(raw))
	}
}

func (d *decoder) boolean(path string, raw json.RawMessage, dst *bool) {
	if isNull(raw) {
		return
	}
	if json.Unmarshal(raw, dst) != nil {
		d.fail(path, "must be a boolean, got %s", kindOf(raw))
	}
}

func (d *decoder) strings(path string, raw json.RawMessage, dst *[]string) {
	if isNull(raw) {
		return
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		d.fail(path, "must be an array of strings, got %s", kindOf(raw))
		return
	}
	for i, it := range items {
		var s string
		d.str(fmt.Sprintf("%s[%d]", path, i), it, &s)
		*dst = append(*dst, s)
	}
}

func (d *decoder) stringMap(path string, raw json.RawMessage) map[string]string {
	if isNull(raw) {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		d.fail(path, "must be an object of strings, got %s", kindOf(raw))
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		d.str(path+"."+k, v, &s)
		out[k] = s
	}
	return out
}

func (d *decoder) status(raw json.RawMessage) int {
	if isNull(raw) {
		return statusError // the default value, left out by protobuf JSON
	}
	var n int
	if json.Unmarshal(raw, &n) == nil && n >= 0 && n <= 2 {
		return n
	}
	var name string
	if json.Unmarshal(raw, &name) == nil {
		switch strings.ToUpper(name) {
		case "ERROR":
			return statusError
		case "SUCCESS":
			return statusSuccess
		case "FAILURE":
			return statusFailure
		}
	}
	d.fail("status", "must be 0 (ERROR), 1 (SUCCESS) or 2 (FAILURE), got %s", auth.Truncate(string(raw), 40))
	return statusError
}

// field returns the raw value of name or its lowerCamel alias.
func field(m map[string]json.RawMessage, name string, seen map[string]bool) json.RawMessage {
	seen[name] = true
	if v, ok := m[name]; ok {
		return v
	}
	parts := strings.Split(name, "_")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	camel := strings.Join(parts, "")
	seen[camel] = true
	return m[camel]
}

// decode checks an answer of method.
func (c *rpcClient) decode(method string, data []byte) (*rpcReply, *auth.Reason) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		snip := strings.TrimSpace(string(data))
		if !utf8.ValidString(snip) {
			snip = "(binary)"
		}
		if json.Valid(data) {
			return nil, rpcReason(auth.RPCBadResponse, fmt.Sprintf("the app's %s answer is %s, not an object", method, kindOf(data)), "answer a JSON object")
		}
		return nil, rpcReason(auth.RPCBadJSON, fmt.Sprintf("the app's %s answer is not JSON: %q", method, auth.Truncate(snip, 60)),
			"the endpoint answers something else (an HTML error page?): check actioncable.rpc.endpoint and the app's log")
	}
	d := &decoder{method: method}
	seen := map[string]bool{}
	rep := &rpcReply{Status: d.status(field(m, "status", seen))}
	d.str("identifiers", field(m, "identifiers", seen), &rep.Identifiers)
	d.str("error_msg", field(m, "error_msg", seen), &rep.ErrorMsg)
	d.boolean("disconnect", field(m, "disconnect", seen), &rep.Disconnect)
	d.boolean("stop_streams", field(m, "stop_streams", seen), &rep.StopStreams)
	d.strings("streams", field(m, "streams", seen), &rep.Streams)
	d.strings("stopped_streams", field(m, "stopped_streams", seen), &rep.StoppedStreams)
	var ts []string
	d.strings("transmissions", field(m, "transmissions", seen), &ts)
	for i, t := range ts {
		if !json.Valid([]byte(t)) || !strings.HasPrefix(strings.TrimSpace(t), "{") {
			d.fail(fmt.Sprintf("transmissions[%d]", i), "must be a JSON object text (a whole client frame), got %q", auth.Truncate(t, 40))
			break
		}
		rep.Transmissions = append(rep.Transmissions, []byte(t))
	}
	if env := field(m, "env", seen); !isNull(env) {
		var em map[string]json.RawMessage
		if json.Unmarshal(env, &em) != nil {
			d.fail("env", "must be an object, got %s", kindOf(env))
		} else {
			es := map[string]bool{}
			rep.Cstate = d.stringMap("env.cstate", field(em, "cstate", es))
			rep.Istate = d.stringMap("env.istate", field(em, "istate", es))
		}
	}
	if p := field(m, "presence", seen); !isNull(p) {
		var pm map[string]json.RawMessage
		if json.Unmarshal(p, &pm) != nil {
			d.fail("presence", "must be an object, got %s", kindOf(p))
		} else {
			ps := map[string]bool{}
			rp := &rpcPresence{}
			d.str("presence.type", field(pm, "type", ps), &rp.Type)
			d.str("presence.id", field(pm, "id", ps), &rp.ID)
			d.str("presence.info", field(pm, "info", ps), &rp.Info)
			if rp.Type != "" && rp.Type != "join" && rp.Type != "leave" {
				d.fail("presence.type", "must be join or leave, got %q", auth.Truncate(rp.Type, 20))
			}
			if rp.Type != "" {
				rep.Presence = rp
			}
		}
	}
	if d.bad != nil {
		return nil, d.bad
	}
	if len(rep.Identifiers) > auth.MaxIdentifiers {
		return nil, rpcReason(auth.RPCBadResponse, fmt.Sprintf("the app's %s answer: identifiers is %d bytes, limit %d", method, len(rep.Identifiers), auth.MaxIdentifiers), "")
	}
	for k := range m {
		if !seen[k] {
			if _, dup := c.warned.LoadOrStore(method+"."+k, true); !dup {
				c.log.Info("the app's RPC answer has a field Herald does not know; it is ignored (logged once)",
					slog.String("method", method), slog.String("field", auth.Truncate(k, 40)))
			}
		}
	}
	return rep, nil
}
