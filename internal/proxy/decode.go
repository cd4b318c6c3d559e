package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/suggest"
)

// ftype is the expected type of a field of a backend's answer.
type ftype int

const (
	tString    ftype = iota // a string
	tBool                   // a boolean
	tInt                    // an integer
	tUnix                   // a non-negative integer, unix seconds
	tAny                    // any JSON value, kept raw
	tObject                 // a JSON object, kept raw
	tStrings                // a list of non-empty strings
	tStringMap              // an object of strings
	tSubs                   // connect result subs: {channel: {info, data, override}}
	tBinary                 // b64* fields of Centrifugo's binary encoding: refused
	tIgnored                // known to Centrifugo, not supported by Herald: logged, ignored
)

// spec is one known field of an object: its key, type and destination.
type spec struct {
	key  string
	typ  ftype
	dst  any // *string, *bool, *int64, *json.RawMessage, *[]string, *map[string]string, *map[string]SubscribeOptions
	hint string
}

// resultKeys are the result fields of each method, to recognise a result
// sent without its {"result": ...} wrapper.
var resultKeys = map[string][]string{
	"connect":     {"user", "expire_at", "info", "data", "channels", "subs", "meta", "b64info", "b64data"},
	"refresh":     {"expired", "expire_at", "info", "meta", "b64info"},
	"subscribe":   {"info", "data", "override", "expire_at", "b64info", "b64data"},
	"publish":     {"data", "skip_history", "tags", "b64data"},
	"sub_refresh": {"expired", "expire_at", "info", "b64info"},
	"rpc":         {"data", "b64data"},
}

var topKeys = []string{"result", "error", "disconnect"}

const genericHint = "fix the backend's answer; docs/proxy.md lists the fields of each answer and their types"

// decoder checks one answer of one method.
type decoder struct {
	p       *Proxy
	method  string
	secrets []string // forwarded values, never shown
}

func (p *Proxy) decoder(method string) *decoder { return &decoder{p: p, method: method} }

func (d *decoder) bad(hint, format string, args ...any) *auth.Reason {
	if hint == "" {
		hint = genericHint
	}
	return reason(auth.ProxyBadResponse, d.method+" proxy: "+fmt.Sprintf(format, args...), hint)
}

// field is one member of a JSON object, in order.
type field struct {
	key string
	val json.RawMessage
}

// fields returns the members of a valid JSON object and the first key that
// appears twice, if any.
func fields(raw []byte) ([]field, string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, ""
	}
	var out []field
	seen := map[string]bool{}
	dup := ""
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			break
		}
		if seen[k] && dup == "" {
			dup = k
		}
		seen[k] = true
		out = append(out, field{k, v})
	}
	return out, dup
}

// kindOf names the JSON kind of a valid value.
func kindOf(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func withArticle(kind string) string {
	switch kind {
	case "object", "array":
		return "an " + kind
	case "null", "nothing":
		return kind
	}
	return "a " + kind
}

// top checks the top level of a 2xx answer: JSON, an object, exactly one of
// result, error, disconnect (null counts as absent).
func (d *decoder) top(body []byte, ctype string, status int) (*outcome, *auth.Reason) {
	trimmed := bytes.TrimSpace(body)
	ct := "no Content-Type"
	if ctype != "" {
		ct = "Content-Type " + oneLine(ctype, 48)
	}
	badJSONHint := `make the endpoint answer JSON (Content-Type: application/json) such as {"result":{...}}; an HTML page usually means a wrong path, a login redirect or an error page of a proxy in front of the backend`
	if len(trimmed) == 0 {
		return nil, reason(auth.ProxyBadJSON,
			fmt.Sprintf("backend answered %d with %s and an empty body; expected JSON such as {\"result\":{...}}", status, ct), badJSONHint)
	}
	if err := json.Unmarshal(body, new(json.RawMessage)); err != nil {
		at := ""
		var se *json.SyntaxError
		if errors.As(err, &se) {
			at = fmt.Sprintf(" (syntax error at byte %d)", se.Offset)
		}
		return nil, reason(auth.ProxyBadJSON,
			fmt.Sprintf("backend answered %d with %s, not JSON%s: %s", status, ct, at, printable(body, snippetLen, d.secrets)), badJSONHint)
	}
	if at := auth.InvalidUTF8At(body); at >= 0 {
		return nil, reason(auth.ProxyBadJSON,
			fmt.Sprintf("backend answered %d with %s, JSON that is not valid UTF-8 (first invalid byte at offset %d)", status, ct, at),
			"encode the answer in UTF-8: Herald sends what it carries in WebSocket text frames, which clients fail on invalid UTF-8")
	}
	if k := kindOf(trimmed); k != "object" {
		return nil, d.bad(`answer an object: {"result":{...}}, {"error":{...}} or {"disconnect":{...}}`,
			"the response is %s; expected an object with exactly one of result, error, disconnect", withArticle(k))
	}
	fs, dup := fields(trimmed)
	if dup != "" {
		return nil, d.bad("send each key once", "the response has the key %q twice", oneLine(dup, 40))
	}
	var present []field
	var nulls, others []string
	for _, f := range fs {
		switch f.key {
		case "result", "error", "disconnect":
			if kindOf(f.val) == "null" {
				nulls = append(nulls, f.key)
			} else {
				present = append(present, f)
			}
		default:
			others = append(others, f.key)
		}
	}
	switch {
	case len(present) == 0:
		return nil, d.none(fs, nulls)
	case len(present) > 1:
		var names []string
		for _, f := range present {
			names = append(names, f.key)
		}
		winner := "result"
		for _, k := range []string{"disconnect", "error"} {
			if slices.Contains(names, k) {
				winner = k
				break
			}
		}
		return nil, d.bad(`answer only one: {"result":...} to accept, {"error":...} to refuse, {"disconnect":...} to close the connection`,
			"the response has %s; expected exactly one of result, error, disconnect (Centrifugo would silently use %s; Herald refuses to guess)",
			strings.Join(names, " and "), winner)
	}
	for _, k := range others {
		d.unknown("response", k, topKeys)
	}
	f := present[0]
	switch f.key {
	case "error":
		e, r := d.errorReply(f.val)
		if r != nil {
			return nil, r
		}
		return &outcome{err: e}, nil
	case "disconnect":
		dr, r := d.disconnectReply(f.val)
		if r != nil {
			return nil, r
		}
		return &outcome{disc: dr}, nil
	}
	if k := kindOf(f.val); k != "object" {
		return nil, d.bad(`answer {"result":{...}}; an empty result is {"result":{}}`, "result is %s; expected an object", withArticle(k))
	}
	return &outcome{result: f.val}, nil
}

// none explains an answer with none of result, error, disconnect.
func (d *decoder) none(fs []field, nulls []string) *auth.Reason {
	var keys []string
	for _, f := range fs {
		keys = append(keys, f.key)
	}
	detail := fmt.Sprintf("got keys %s; expected exactly one of result, error, disconnect", listKeys(keys))
	hint := `answer {"result":{...}}, {"error":{"code":...,"message":...}} or {"disconnect":{"code":...,"reason":...}} at the top level`
	note := ""
	if len(nulls) > 0 {
		verb := " is null"
		if len(nulls) > 1 {
			verb = " are null"
		}
		note = strings.Join(nulls, " and ") + verb
	}
	// One level down, as frameworks wrap answers: {"data":{"result":{...}}}.
	wrapped := false
	for _, f := range fs {
		if wrapped || kindOf(f.val) != "object" {
			continue
		}
		sub, _ := fields(f.val)
		for _, s := range sub {
			if slices.Contains(topKeys, s.key) && kindOf(s.val) != "null" {
				note = fmt.Sprintf("the %s is under %q: unwrap your framework's envelope", s.key, oneLine(f.key, 24))
				hint = fmt.Sprintf(`answer {"%s":{...}} itself at the top level, not wrapped in {"%s":...}`, s.key, oneLine(f.key, 24))
				wrapped = true
				break
			}
		}
	}
	if !wrapped && note == "" {
		var flat []string
		for _, k := range keys {
			if slices.Contains(resultKeys[d.method], k) {
				flat = append(flat, k)
			}
		}
		if len(flat) > 0 {
			note = fmt.Sprintf("%s look like result fields: wrap them in {\"result\":{...}}", listKeys(flat))
			hint = fmt.Sprintf(`answer {"result":{%q:...}}, not the bare result fields`, flat[0])
		} else {
			for _, k := range keys {
				if best := closest(k, topKeys); best != "" {
					note = fmt.Sprintf("%q is not a key of the protocol; did you mean %q? (keys are case-sensitive)", oneLine(k, 24), best)
					break
				}
			}
		}
	}
	if note != "" {
		detail += "; " + note
	}
	return d.bad(hint, "%s", detail)
}

// listKeys formats keys as [a b c], bounded.
func listKeys(keys []string) string {
	const maxKeys, maxLen = 6, 48
	var sb strings.Builder
	sb.WriteByte('[')
	for i, k := range keys {
		k = oneLine(k, 24)
		if i >= maxKeys || sb.Len()+len(k) > maxLen {
			fmt.Fprintf(&sb, " …+%d", len(keys)-i)
			break
		}
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(k)
	}
	sb.WriteByte(']')
	return sb.String()
}

// object checks a JSON object against specs and fills their destinations.
// path names it in details; generic names it for the once-per-key warnings
// (without channel names).
func (d *decoder) object(path string, raw json.RawMessage, specs []spec) *auth.Reason {
	return d.objectAt(path, path, raw, specs)
}

func (d *decoder) objectAt(path, generic string, raw json.RawMessage, specs []spec) *auth.Reason {
	if k := kindOf(raw); k != "object" {
		return d.bad("", "%s is %s; expected an object", path, withArticle(k))
	}
	fs, dup := fields(raw)
	if dup != "" {
		return d.bad("send each key once", "%s has the key %q twice", path, oneLine(dup, 40))
	}
	var known []string
	for _, s := range specs {
		if s.typ != tIgnored && s.typ != tBinary {
			known = append(known, s.key)
		}
	}
	for _, f := range fs {
		var s *spec
		for i := range specs {
			if specs[i].key == f.key {
				s = &specs[i]
				break
			}
		}
		if s == nil {
			d.unknown(generic, f.key, known)
			continue
		}
		kind := kindOf(f.val)
		if kind == "null" {
			continue // null is absent, as serializers write unset fields
		}
		if r := d.value(path+"."+f.key, generic+"."+f.key, kind, f.val, s); r != nil {
			return r
		}
	}
	return nil
}

// value checks one field and stores it.
func (d *decoder) value(path, generic, kind string, raw json.RawMessage, s *spec) *auth.Reason {
	if s.hint == "" {
		s.hint = typeHint(s)
	}
	wrong := func(expected string) *auth.Reason {
		return d.bad(s.hint, "%s is %s; expected %s", path, withArticle(kind), expected)
	}
	switch s.typ {
	case tString:
		if kind != "string" {
			return wrong("a string")
		}
		return unmarshal(raw, s.dst)
	case tBool:
		if kind != "boolean" {
			return wrong("a boolean")
		}
		return unmarshal(raw, s.dst)
	case tInt, tUnix:
		expected := "an integer"
		if s.typ == tUnix {
			expected = "an integer (unix seconds)"
		}
		if kind != "number" {
			return wrong(expected)
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return d.bad(s.hint, "%s is out of range; expected %s", path, expected)
			}
			return d.bad(s.hint, "%s is a number with a fraction or an exponent (%s); expected %s",
				path, oneLine(string(raw), 24), expected)
		}
		if s.typ == tUnix {
			if n < 0 {
				return d.bad(s.hint, "%s is negative (%d); expected %s", path, n, expected)
			}
			if n > 1e11 {
				return d.bad("send seconds since 1970, not milliseconds: Math.floor(Date.now()/1000) + ttl",
					"%s %d is after the year 5000: it looks like milliseconds; expected unix seconds", path, n)
			}
		}
		*(s.dst.(*int64)) = n
	case tAny:
		*(s.dst.(*json.RawMessage)) = raw
	case tObject:
		if kind != "object" {
			return wrong("an object")
		}
		*(s.dst.(*json.RawMessage)) = raw
	case tStrings:
		if kind != "array" {
			return wrong("a list of strings")
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return wrong("a list of strings")
		}
		out := make([]string, 0, len(items))
		for i, it := range items {
			if k := kindOf(it); k != "string" {
				return d.bad(s.hint, "%s[%d] is %s; expected a string", path, i, withArticle(k))
			}
			var v string
			_ = json.Unmarshal(it, &v)
			if v == "" {
				return d.bad(s.hint, "%s[%d] is an empty string; expected a channel name", path, i)
			}
			out = append(out, v)
		}
		*(s.dst.(*[]string)) = out
	case tStringMap:
		if kind != "object" {
			return wrong("an object of strings")
		}
		fs, dup := fields(raw)
		if dup != "" {
			return d.bad("send each key once", "%s has the key %q twice", path, oneLine(dup, 40))
		}
		out := make(map[string]string, len(fs))
		for _, f := range fs {
			if k := kindOf(f.val); k != "string" {
				return d.bad(s.hint, "%s[%q] is %s; expected a string", path, oneLine(f.key, 40), withArticle(k))
			}
			var v string
			_ = json.Unmarshal(f.val, &v)
			out[f.key] = v
		}
		*(s.dst.(*map[string]string)) = out
	case tSubs:
		if kind != "object" {
			return wrong(`an object {"<channel>":{"info":...,"data":...,"override":{...}}}`)
		}
		fs, dup := fields(raw)
		if dup != "" {
			return d.bad("send each channel once", "%s has the channel %q twice", path, oneLine(dup, 40))
		}
		out := make(map[string]SubscribeOptions, len(fs))
		for _, f := range fs {
			if f.key == "" {
				return d.bad("", "%s has an empty channel name", path)
			}
			var o SubscribeOptions
			if r := d.objectAt(fmt.Sprintf("%s[%q]", path, oneLine(f.key, 40)), generic+"[*]", f.val, []spec{
				{key: "info", typ: tAny, dst: &o.Info},
				{key: "data", typ: tAny, dst: &o.Data},
				{key: "override", typ: tObject, dst: &o.Override},
				{key: "b64info", typ: tBinary}, {key: "b64data", typ: tBinary},
			}); r != nil {
				return r
			}
			out[f.key] = o
		}
		*(s.dst.(*map[string]SubscribeOptions)) = out
	case tBinary:
		plain := strings.TrimPrefix(s.key, "b64")
		return d.bad(fmt.Sprintf("turn off binary encoding for this proxy in the backend and send %q as JSON: Herald's proxies speak JSON only", plain),
			"%s is Centrifugo's binary encoding, which Herald does not support; expected %q as JSON", path, plain)
	case tIgnored:
		d.warnOnce(d.method+" "+generic, fmt.Sprintf("%s proxy %s is not supported by Herald and is ignored", d.method, generic))
	}
	return nil
}

// typeHint tells how to send a field of the given spec.
func typeHint(s *spec) string {
	switch s.typ {
	case tString:
		return fmt.Sprintf("send %q as a JSON string", s.key)
	case tBool:
		return fmt.Sprintf("send %q as true or false", s.key)
	case tInt:
		return fmt.Sprintf("send %q as a JSON integer", s.key)
	case tUnix:
		return fmt.Sprintf(`send %q as whole unix seconds, e.g. "%s":1710000000 (int(time.time()) + ttl; Math.floor(Date.now()/1000) + ttl)`, s.key, s.key)
	case tObject:
		return fmt.Sprintf(`send %q as a JSON object {...}`, s.key)
	case tStrings:
		return fmt.Sprintf(`send %q as a list of channel names, e.g. ["news"]`, s.key)
	case tStringMap:
		return fmt.Sprintf(`send %q as an object of strings, e.g. {"key":"value"}`, s.key)
	case tSubs:
		return `send "subs" as {"<channel>":{"info":...,"data":...,"override":{...}}}`
	}
	return genericHint
}

func unmarshal(raw json.RawMessage, dst any) *auth.Reason {
	if err := json.Unmarshal(raw, dst); err != nil {
		// Unreachable: the kind was checked on valid JSON.
		return reason(auth.ProxyBadResponse, "cannot decode a value: "+errText(err), genericHint)
	}
	return nil
}

// errorReply checks an {"error":{...}} answer.
func (d *decoder) errorReply(raw json.RawMessage) (*ErrorReply, *auth.Reason) {
	code := int64(math.MinInt64) // absent
	e := &ErrorReply{}
	hint := `use 400-1999 for application errors (codes below 400 are the protocol's), or answer {"disconnect":{"code":4000-4999,"reason":"..."}} to close the connection`
	if r := d.object("error", raw, []spec{
		{key: "code", typ: tInt, dst: &code, hint: hint},
		{key: "message", typ: tString, dst: &e.Message},
		{key: "temporary", typ: tBool, dst: &e.Temporary},
	}); r != nil {
		return nil, r
	}
	if code == math.MinInt64 {
		return nil, d.bad(hint, "error.code is missing; expected an integer in 100-1999")
	}
	if code < 100 || code > 1999 {
		return nil, d.bad(hint, "error.code %d is outside 100-1999; expected an application code in 400-1999", code)
	}
	e.Code = uint32(code)
	return e, nil
}

// disconnectReply checks a {"disconnect":{...}} answer.
func (d *decoder) disconnectReply(raw json.RawMessage) (*DisconnectReply, *auth.Reason) {
	code := int64(math.MinInt64) // absent
	dr := &DisconnectReply{}
	hint := "use 4000-4499 to let the client reconnect, 4500-4999 to end it for good (3000-3999 belong to the protocol); or answer {\"error\":{...}} to refuse without closing"
	if r := d.object("disconnect", raw, []spec{
		{key: "code", typ: tInt, dst: &code, hint: hint},
		{key: "reason", typ: tString, dst: &dr.Reason},
	}); r != nil {
		return nil, r
	}
	if code == math.MinInt64 {
		return nil, d.bad(hint, "disconnect.code is missing; expected an integer in 4000-4999")
	}
	if code < 4000 || code > 4999 {
		return nil, d.bad(hint, "disconnect.code %d is outside 4000-4999", code)
	}
	dr.Code = uint32(code)
	return dr, nil
}

// unknown logs, once per key per Proxy, a key the protocol does not have,
// with the closest known key.
func (d *decoder) unknown(generic, key string, known []string) {
	k := oneLine(key, 40)
	msg := fmt.Sprintf("%s proxy %s has unknown key %q", d.method, generic, k)
	if best := closest(key, known); best != "" {
		msg += fmt.Sprintf("; did you mean %q?", best)
	} else if len(known) > 0 {
		msg += "; known keys: " + strings.Join(known, ", ")
	}
	d.warnOnce(d.method+" "+generic+" "+k, msg+" (ignored)")
}

// warnOnce logs msg at WARN the first time id is seen; the set is bounded.
func (d *decoder) warnOnce(id, msg string) {
	p := d.p
	p.warnMu.Lock()
	_, seen := p.warned[id]
	full := len(p.warned) >= maxWarnedKeys
	if !seen && !full {
		p.warned[id] = struct{}{}
	}
	p.warnMu.Unlock()
	if !seen && !full {
		p.log.Warn(msg)
	}
}

// closest returns the known key a misspelt key most likely meant, or "".
func closest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	nk := norm(key)
	best, bestD := "", 3
	for _, k := range known {
		if norm(k) == nk {
			return k
		}
		if dist := suggest.Distance(strings.ToLower(key), k); dist < bestD && dist < len(k) {
			best, bestD = k, dist
		}
	}
	return best
}
