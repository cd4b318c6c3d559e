package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// This file parses compact JWTs by hand. golang-jwt's parser decodes the
// header into a map and the claims through a json.Decoder, which alone costs
// about 6 µs per token, twice the whole budget of an HS256 connect (3 µs).
// Herald keeps golang-jwt for the signature algorithms (RSA, PSS, ECDSA,
// EdDSA) and does the splitting, base64 and JSON object scanning here, plus
// HMAC with pooled hashes. A differential fuzz test (FuzzVerifyMatchesJWT)
// holds this parser to never accept what golang-jwt refuses, and to refuse
// what golang-jwt accepts only on purpose: a duplicate member name (RFC 7515
// §4 and RFC 8725 §3.2 leave "last wins" to parsers, which lets two readers
// of one token see different claims), a crit header (RFC 7515 §4.1.11:
// Herald understands no extension), a string that is not UTF-8 (RFC 8259
// §8.1), a number beyond a float64 and nesting deeper than maxJSONDepth.

// maxJSONDepth bounds nesting in a token's header and claims.
const maxJSONDepth = 32

// rawToken is a split and decoded token, not yet verified.
type rawToken struct {
	claims       claimSet
	alg, kid     string
	typRaw       []byte   // the typ header's raw JSON; nil when absent (decoded by typ(), only when needed)
	ignored      []string // jku, x5u, jwk: present, never consulted
	signingInput string   // base64url(header) "." base64url(claims)
	sig          []byte
}

var errSegments = errors.New("token must have three dot-separated segments")

// critError is a header whose crit names extensions Herald does not
// understand; RFC 7515 §4.1.11 requires refusing such a token.
type critError struct{ names []string }

func (e *critError) Error() string {
	return "header crit lists " + strings.Join(e.names, ", ") + ", which Herald does not understand"
}

// parseJWT splits and decodes a compact JWT.
func parseJWT(token string) (*rawToken, error) {
	d1 := strings.IndexByte(token, '.')
	if d1 < 0 {
		return nil, errSegments
	}
	d2 := strings.IndexByte(token[d1+1:], '.')
	if d2 < 0 {
		return nil, errSegments
	}
	d2 += d1 + 1
	if strings.IndexByte(token[d2+1:], '.') >= 0 {
		return nil, errSegments
	}
	enc := base64.RawURLEncoding
	// One buffer for the three decoded segments.
	buf := make([]byte, enc.DecodedLen(d1)+enc.DecodedLen(d2-d1-1)+enc.DecodedLen(len(token)-d2-1))
	n, err := enc.Decode(buf, []byte(token[:d1]))
	if err != nil {
		return nil, fmt.Errorf("header is not base64url: %v", err)
	}
	hb, rest := buf[:n], buf[n:]
	t := &rawToken{signingInput: token[:d2]}
	var algSeen bool
	var crit *critError
	var seen [8][]byte // header names so far; a header rarely has more than 3
	names := seen[:0]
	err = scanMembers(hb, func(k, v []byte) error {
		name, err := memberName(k)
		if err != nil {
			return err
		}
		for _, n := range names {
			if bytes.Equal(n, name) {
				return fmt.Errorf("duplicate member %q", Truncate(string(name), 40))
			}
		}
		names = append(names, name)
		switch string(name) {
		case "alg":
			a, err := unquote(v)
			if err != nil {
				return errors.New("alg must be a string")
			}
			t.alg, algSeen = a, true
		case "kid":
			kid, err := unquote(v)
			if err != nil {
				return errors.New("kid must be a string")
			}
			t.kid = kid
		case "typ":
			t.typRaw = v
		case "jku", "x5u", "jwk":
			t.ignored = append(t.ignored, string(name))
		case "crit":
			var list []string
			if json.Unmarshal(v, &list) != nil || len(list) == 0 {
				return errors.New("crit must be a non-empty array of header names")
			}
			for i, c := range list {
				list[i] = strconv.Quote(Truncate(c, 40))
			}
			crit = &critError{names: list}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if !algSeen {
		return nil, errors.New("header has no alg")
	}
	if crit != nil {
		return nil, crit
	}
	if n, err = enc.Decode(rest, []byte(token[d1+1:d2])); err != nil {
		return nil, fmt.Errorf("claims are not base64url: %v", err)
	}
	cb, rest := rest[:n], rest[n:]
	if t.claims, err = scanObject(cb); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	if n, err = enc.Decode(rest, []byte(token[d2+1:])); err != nil {
		return nil, fmt.Errorf("signature is not base64url: %v", err)
	}
	t.sig = rest[:n]
	return t, nil
}

// scanObject reads a JSON object into its top-level members, validating the
// whole document without decoding nested values.
func scanObject(data []byte) (claimSet, error) {
	out := claimSet{}
	err := scanMembers(data, func(rawKey, rawVal []byte) error {
		key, err := unquote(rawKey)
		if err != nil {
			return err
		}
		if _, dup := out[key]; dup {
			return fmt.Errorf("duplicate member %q", Truncate(key, 40))
		}
		out[key] = json.RawMessage(rawVal)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanMembers validates a JSON object and calls fn with each member's raw
// (still quoted) key and raw value.
func scanMembers(data []byte, fn func(rawKey, rawVal []byte) error) error {
	s := scanner{data: data}
	s.ws()
	if s.i >= len(s.data) || s.data[s.i] != '{' {
		return errors.New("not a JSON object")
	}
	if err := s.object(0, fn); err != nil {
		return err
	}
	return s.end()
}

// object scans an object at s.i, calling fn (when set) for each member.
func (s *scanner) object(depth int, fn func(rawKey, rawVal []byte) error) error {
	s.i++ // '{'
	s.ws()
	if s.eat('}') {
		return nil
	}
	for {
		s.ws()
		kstart := s.i
		if err := s.str(); err != nil {
			return err
		}
		kend := s.i
		s.ws()
		if !s.eat(':') {
			return s.errf("expected ':'")
		}
		s.ws()
		vstart := s.i
		if err := s.value(depth + 1); err != nil {
			var ue *utf8Error
			if fn != nil && errors.As(err, &ue) && ue.member == "" {
				// Name the top-level member (the claim) that holds it.
				ue.member, _ = unquote(s.data[kstart:kend])
			}
			return err
		}
		if fn != nil {
			if err := fn(s.data[kstart:kend], s.data[vstart:s.i]); err != nil {
				return err
			}
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return nil
		}
		return s.errf("expected ',' or '}'")
	}
}

// utf8Error is a JSON string that is not UTF-8 (RFC 8259 §8.1): text that
// would make a client fail the connection that carries it (RFC 6455).
type utf8Error struct {
	at     int    // byte offset in the document
	member string // the top-level member whose value holds it; "" in a key
}

func (e *utf8Error) Error() string {
	if e.member != "" {
		return fmt.Sprintf("%s is not valid UTF-8 (first invalid byte at offset %d)", Truncate(e.member, 40), e.at)
	}
	return fmt.Sprintf("invalid JSON at byte %d: string is not valid UTF-8", e.at)
}

type scanner struct {
	data []byte
	i    int
}

func (s *scanner) errf(msg string) error { return fmt.Errorf("invalid JSON at byte %d: %s", s.i, msg) }

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.data) {
		return s.errf("data after the object")
	}
	return nil
}

func (s *scanner) value(depth int) error {
	if depth > maxJSONDepth {
		return s.errf("nested too deeply")
	}
	if s.i >= len(s.data) {
		return s.errf("unexpected end")
	}
	switch c := s.data[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		return s.object(depth, nil)
	case c == '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return nil
		}
		for {
			s.ws()
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat(']') {
				return nil
			}
			return s.errf("expected ',' or ']'")
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		return s.errf("unexpected character")
	}
}

func (s *scanner) lit(word string) error {
	if len(s.data)-s.i < len(word) || string(s.data[s.i:s.i+len(word)]) != word {
		return s.errf("invalid literal")
	}
	s.i += len(word)
	return nil
}

// number follows the JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// and refuses a number beyond the range of a float64 (1e400), which most
// JSON readers (golang-jwt's, a browser's) cannot represent.
func (s *scanner) number() error {
	start := s.i
	if err := s.numberSyntax(); err != nil {
		return err
	}
	if n := s.data[start:s.i]; len(n) > 15 || bytes.ContainsAny(n, "eE") {
		if _, err := strconv.ParseFloat(string(n), 64); err != nil {
			return s.errf("number out of range")
		}
	}
	return nil
}

func (s *scanner) numberSyntax() error {
	d := s.data
	s.eat('-')
	switch {
	case s.i < len(d) && d[s.i] == '0':
		s.i++
	case s.i < len(d) && d[s.i] >= '1' && d[s.i] <= '9':
		for s.i < len(d) && d[s.i] >= '0' && d[s.i] <= '9' {
			s.i++
		}
	default:
		return s.errf("invalid number")
	}
	if s.eat('.') {
		n := s.i
		for s.i < len(d) && d[s.i] >= '0' && d[s.i] <= '9' {
			s.i++
		}
		if s.i == n {
			return s.errf("invalid number")
		}
	}
	if s.i < len(d) && (d[s.i] == 'e' || d[s.i] == 'E') {
		s.i++
		if s.i < len(d) && (d[s.i] == '+' || d[s.i] == '-') {
			s.i++
		}
		n := s.i
		for s.i < len(d) && d[s.i] >= '0' && d[s.i] <= '9' {
			s.i++
		}
		if s.i == n {
			return s.errf("invalid number")
		}
	}
	return nil
}

func (s *scanner) str() error {
	d := s.data
	if !s.eat('"') {
		return s.errf("expected a string")
	}
	for s.i < len(d) {
		c := d[s.i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			s.i++
			if s.i >= len(d) {
				return s.errf("unterminated escape")
			}
			switch d[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if len(d)-s.i < 5 {
					return s.errf("short \\u escape")
				}
				for _, h := range d[s.i+1 : s.i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return s.errf("invalid \\u escape")
					}
				}
				s.i += 5
			default:
				return s.errf("invalid escape")
			}
		case c < 0x20:
			return s.errf("control character in string")
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d[s.i:])
			if r == utf8.RuneError && size <= 1 {
				return &utf8Error{at: s.i}
			}
			s.i += size
		default:
			s.i++
		}
	}
	return s.errf("unterminated string")
}

// typ returns the typ header: "" when absent, ok false when it is not a string.
func (t *rawToken) typ() (typ string, ok bool) {
	if t.typRaw == nil {
		return "", true
	}
	typ, err := unquote(t.typRaw)
	return typ, err == nil
}

// memberName returns the name of a scanned member key: the bytes between
// the quotes when there is no escape (no allocation), else the decoded name.
func memberName(raw []byte) ([]byte, error) {
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], nil
	}
	s, err := unquote(raw)
	return []byte(s), err
}

// unquote decodes a scanned JSON string; the common case (no escapes, valid
// UTF-8) costs one allocation.
func unquote(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", errors.New("not a JSON string")
	}
	inner := raw[1 : len(raw)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

// maxNumericDate is the latest NumericDate Herald reads, 9999-12-31T23:59:59Z
// (and -maxNumericDate the earliest). Beyond it a value such as 1e300 would
// wrap when converted to int64 or added to a time.Time, and a token with
// nbf: 1e300 would pass as valid.
const maxNumericDate = 253402300799

var errNotNumber = errors.New("not a number")

// numericDate reads a scanned JSON number as unix seconds, refusing values
// out of range instead of wrapping them.
func numericDate(raw []byte) (int64, error) {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, errNotNumber
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f > maxNumericDate || f < -maxNumericDate {
		return 0, fmt.Errorf("%s is out of range: unix seconds up to %d (year 9999)", Truncate(string(raw), 24), maxNumericDate)
	}
	return int64(f), nil
}

type macPoolKey struct {
	key *Key
	alg string
}

func hmacHash(alg string) func() hash.Hash {
	switch alg {
	case "HS256":
		return sha256.New
	case "HS384":
		return sha512.New384
	case "HS512":
		return sha512.New
	}
	return nil
}

// verifyHMAC checks an HS256/384/512 signature in constant time. HMAC
// states are pooled per key and algorithm (v.macs, cleared with the keys).
func (v *Verifier) verifyHMAC(k *Key, alg, signingInput string, sig []byte) bool {
	secret, ok := k.Material.([]byte)
	h := hmacHash(alg)
	if !ok || h == nil {
		return false
	}
	pk := macPoolKey{k, alg}
	p, ok := v.macs.Load(pk)
	if !ok {
		p, _ = v.macs.LoadOrStore(pk, &sync.Pool{New: func() any { return hmac.New(h, secret) }})
	}
	pool := p.(*sync.Pool)
	mac := pool.Get().(hash.Hash)
	mac.Reset()
	_, _ = mac.Write([]byte(signingInput))
	var buf [64]byte
	sum := mac.Sum(buf[:0])
	pool.Put(mac)
	return hmac.Equal(sum, sig)
}
