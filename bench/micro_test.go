package bench

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// These micro-benchmarks measure, in isolation and without Herald's internal
// packages, costs that the connect and fan-out profiles point at (see
// README.md, "Where the time goes"). They are not run by go test without
// -bench.

var secret = []byte("bench-secret")

func token(tb testing.TB) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "user42", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkJWTParseMapClaims is the general-purpose path: golang-jwt with
// MapClaims and a key function.
func BenchmarkJWTParseMapClaims(b *testing.B) {
	tok := token(b)
	b.ReportAllocs()
	for b.Loop() {
		t, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
		if err != nil || !t.Valid {
			b.Fatal(err)
		}
	}
}

type claims struct {
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

// BenchmarkJWTParseStructClaims is golang-jwt decoding into a struct.
func BenchmarkJWTParseStructClaims(b *testing.B) {
	tok := token(b)
	type rc struct {
		jwt.RegisteredClaims
	}
	b.ReportAllocs()
	for b.Loop() {
		var c rc
		t, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
		if err != nil || !t.Valid {
			b.Fatal(err)
		}
	}
}

// verifyHS256 is a minimal HS256 verifier: signature first, over the raw
// signing input, then the claims into a struct. It shows the floor for the
// token part of a connect.
func verifyHS256(tok string, key []byte, now int64) (claims, error) {
	var c claims
	i := bytes.IndexByte([]byte(tok), '.')
	j := bytes.LastIndexByte([]byte(tok), '.')
	if i < 0 || j <= i {
		return c, errors.New("malformed")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	var buf [512]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(tok[:i]))
	if err != nil || json.Unmarshal(buf[:n], &hdr) != nil || hdr.Alg != "HS256" {
		return c, errors.New("bad header")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(tok[:j]))
	var sum [sha256.Size]byte
	var sig [sha256.Size + 2]byte
	m, err := base64.RawURLEncoding.Decode(sig[:], []byte(tok[j+1:]))
	if err != nil || subtle.ConstantTimeCompare(mac.Sum(sum[:0]), sig[:m]) != 1 {
		return c, errors.New("bad signature")
	}
	n, err = base64.RawURLEncoding.Decode(buf[:], []byte(tok[i+1:j]))
	if err != nil || json.Unmarshal(buf[:n], &c) != nil {
		return c, errors.New("bad claims")
	}
	if c.Exp != 0 && c.Exp <= now {
		return c, errors.New("expired")
	}
	return c, nil
}

func TestVerifyHS256(t *testing.T) {
	c, err := verifyHS256(token(t), secret, time.Now().Unix())
	if err != nil || c.Sub != "user42" {
		t.Fatalf("verifyHS256 = %+v, %v", c, err)
	}
	if _, err := verifyHS256(token(t), []byte("other"), time.Now().Unix()); err == nil {
		t.Fatal("wrong key accepted")
	}
}

func BenchmarkJWTMinimalHS256(b *testing.B) {
	tok := token(b)
	now := time.Now().Unix()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := verifyHS256(tok, secret, now); err != nil {
			b.Fatal(err)
		}
	}
}

// command mirrors the shape of a Centrifugo client command: one id and
// a dozen optional request objects, decoded with encoding/json.
type command struct {
	ID            uint32           `json:"id"`
	Connect       *json.RawMessage `json:"connect"`
	Subscribe     *json.RawMessage `json:"subscribe"`
	Unsubscribe   *json.RawMessage `json:"unsubscribe"`
	Publish       *json.RawMessage `json:"publish"`
	Presence      *json.RawMessage `json:"presence"`
	PresenceStats *json.RawMessage `json:"presence_stats"`
	History       *json.RawMessage `json:"history"`
	RPC           *json.RawMessage `json:"rpc"`
	Send          *json.RawMessage `json:"send"`
	Refresh       *json.RawMessage `json:"refresh"`
	SubRefresh    *json.RawMessage `json:"sub_refresh"`
	Ping          *json.RawMessage `json:"ping"`
}

type connectRequest struct {
	Token   string                     `json:"token"`
	Data    json.RawMessage            `json:"data"`
	Subs    map[string]json.RawMessage `json:"subs"`
	Name    string                     `json:"name"`
	Version string                     `json:"version"`
}

// BenchmarkDecodeConnectCommand decodes a connect command in two steps
// (envelope, then request), as a reflection-based decoder does.
func BenchmarkDecodeConnectCommand(b *testing.B) {
	frame := []byte(`{"id":1,"connect":{"token":"` + token(b) + `","name":"js","version":"5.0.0"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		var c command
		if err := json.Unmarshal(frame, &c); err != nil || c.Connect == nil {
			b.Fatal(err)
		}
		var r connectRequest
		if err := json.Unmarshal(*c.Connect, &r); err != nil || r.Token == "" {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodePubPush is the per-publication encoding (done once per
// publication, shared by every subscriber), with the WebSocket frame header
// in front: server frames are not masked, so the whole frame is identical
// for every subscriber and could be built once too.
func BenchmarkEncodePubPush(b *testing.B) {
	data := []byte(`{"t":1732380000123456789,"seq":4242}`)
	b.ReportAllocs()
	var frame []byte
	for b.Loop() {
		frame = frame[:0]
		frame = append(frame, 0x81, 0) // FIN+text, length patched below
		frame = append(frame, `{"push":{"channel":"bench","pub":{"data":`...)
		frame = append(frame, data...)
		frame = append(frame, `,"offset":`...)
		frame = strconv.AppendUint(frame, 5, 10)
		frame = append(frame, "}}}"...)
		frame[1] = byte(len(frame) - 2)
	}
	if frame[0] != 0x81 || int(frame[1]) != len(frame)-2 {
		b.Fatal("bad frame")
	}
}
