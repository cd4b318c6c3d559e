package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Messages shared by every source, so that a bad value reads the same whether
// it came from a file, the environment or the command line.
const (
	notBool     = "is not a boolean (true or false)"
	notInt      = "is not an integer"
	notDuration = "is not a duration (use forms like 25s, 1m30s or 500ms)"
	notList     = `is not a list of strings (use a JSON array like ["a","b"] or a comma-separated list)`
)

// expected names what a key of kind k holds, for "expected ..., got ..."
// messages.
func (k kind) expected() string {
	switch k {
	case kindString:
		return "a string"
	case kindBool:
		return "a boolean (true or false)"
	case kindInt:
		return "an integer"
	case kindDuration:
		return "a duration (like 25s, 1m30s or 500ms)"
	case kindStrings:
		return "a list of strings"
	case kindStructList:
		return "a list of maps"
	case kindStruct:
		return "a map of keys"
	}
	return "a supported value"
}

// show quotes a value for a problem message, shortening long values. The
// value of a secret is never shown.
func show(s string, secret bool) string {
	if secret {
		return redacted
	}
	const maxRunes = 64
	if utf8.RuneCountInString(s) > maxRunes {
		r := []rune(s)
		return strconv.Quote(string(r[:maxRunes-4])) + "…"
	}
	return strconv.Quote(s)
}

// valueMsg builds `value "x" <what>`.
func valueMsg(s string, secret bool, what string) string {
	return "value " + show(s, secret) + " " + what
}

// parseText parses s, as written in an environment variable or a flag, into a
// new value of f's type. On failure it returns a message naming the value
// (redacted for secrets) and the expected type. Lists of structs are not
// handled here.
func parseText(f field, s string) (reflect.Value, string) {
	v := reflect.New(f.typ).Elem()
	switch f.kind {
	case kindString:
		v.SetString(s)
	case kindBool:
		b, ok := parseBool(s)
		if !ok {
			return v, valueMsg(s, f.secret, notBool)
		}
		v.SetBool(b)
	case kindInt:
		n, what := parseInt(s, f.typ.Bits())
		if what != "" {
			return v, valueMsg(s, f.secret, what)
		}
		v.SetInt(n)
	case kindDuration:
		d, what := parseDuration(s)
		if what != "" {
			return v, valueMsg(s, f.secret, what)
		}
		v.SetInt(int64(d))
	case kindStrings:
		list, ok := parseList(s)
		if !ok {
			return v, valueMsg(s, f.secret, notList)
		}
		v.Set(reflect.ValueOf(list).Convert(f.typ))
	default:
		return v, fmt.Sprintf("cannot be set from text (type %s)", f.typ)
	}
	return v, ""
}

// parseBool accepts true or false in any letter case.
func parseBool(s string) (bool, bool) {
	switch t := strings.TrimSpace(s); {
	case strings.EqualFold(t, "true"):
		return true, true
	case strings.EqualFold(t, "false"):
		return false, true
	}
	return false, false
}

// parseInt reads a decimal integer that fits in bits. Integral numbers in
// float notation (1e6) are accepted; fractions are not. On failure it returns
// what is wrong with the value.
func parseInt(s string, bits int) (int64, string) {
	t := strings.TrimSpace(s)
	n, err := strconv.ParseInt(t, 10, bits)
	if err == nil {
		return n, ""
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, "is out of range for an integer"
	}
	if !isNumber(t) && !strings.ContainsAny(t, "eE") {
		return 0, notInt
	}
	f, ferr := strconv.ParseFloat(t, 64)
	if errors.Is(ferr, strconv.ErrRange) {
		return 0, "is out of range for an integer"
	}
	if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, notInt
	}
	if f != math.Trunc(f) {
		return 0, notInt + " (fractions are not allowed)"
	}
	limit := math.Ldexp(1, bits-1) // 2^(bits-1)
	if f < -limit || f >= limit {
		return 0, "is out of range for an integer"
	}
	return int64(f), ""
}

// maxDurationSeconds is the largest number of seconds a Duration holds.
var maxDurationSeconds = float64(math.MaxInt64) / float64(time.Second)

// parseDuration wraps ParseDuration with messages for problems and a range
// check on plain numbers of seconds.
func parseDuration(s string) (Duration, string) {
	t := strings.TrimSpace(s)
	if isNumber(t) {
		if secs, err := strconv.ParseFloat(t, 64); err == nil && math.Abs(secs) >= maxDurationSeconds {
			return 0, "is out of range for a duration"
		}
	}
	d, err := ParseDuration(t)
	if err == nil {
		return d, ""
	}
	if rest, neg := strings.CutPrefix(t, "-"); neg {
		if _, err := ParseDuration(rest); err == nil {
			return 0, "is negative (durations must be 0 or more)"
		}
	}
	return 0, notDuration
}

// parseList reads a JSON array of strings or a comma-separated list; items of
// a comma-separated list are trimmed. An empty value is an empty list.
func parseList(s string) ([]string, bool) {
	t := strings.TrimSpace(s)
	if t == "" {
		return nil, true
	}
	if strings.HasPrefix(t, "[") {
		var list []string
		if err := json.Unmarshal([]byte(t), &list); err != nil {
			return nil, false
		}
		if len(list) == 0 {
			return nil, true
		}
		return list, true
	}
	parts := strings.Split(t, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts, true
}
