package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

func TestScanObject(t *testing.T) {
	good := []string{`{}`, ` { "a" : 1 } `, `{"a":"x\"y","b":[1,{"c":null}],"d":-0.5e+3,"e":true,"f":false}`, `{"\u0061":"\u00e9"}`}
	for _, g := range good {
		got, err := scanObject([]byte(g))
		if err != nil {
			t.Errorf("%s: %v", g, err)
			continue
		}
		var want map[string]json.RawMessage
		json.Unmarshal([]byte(g), &want)
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", g, got, want)
		}
	}
	bad := []string{``, `[]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":01}`, `{"a":1.}`, `{"a":"\x"}`, `{"a":tru}`, `{} x`,
		`{"a":"` + "\x01" + `"}`, `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, `{"a":-}`, `{"a":1e}`, `{"a":"\u12"}`}
	for _, b := range bad {
		if _, err := scanObject([]byte(b)); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}

// FuzzScanObjectMatchesEncodingJSON: the hand-written scanner accepts exactly
// the JSON objects encoding/json accepts and finds the same members, except
// what it refuses on purpose: nesting beyond the depth limit, a duplicate
// member name (encoding/json keeps the last) and a string that is not UTF-8
// (encoding/json replaces the bytes).
func FuzzScanObjectMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":[1,"b",{"c":null}]}`, `{"a":"\u00e9\n"}`, `{"a":1e5,"b":-0.1}`, `{"a":1}x`, `{"a":01}`,
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, "{\"a\":\"\xff\"}", `{"a":{"b":1,"b":2}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := scanObject(data)
		var want map[string]json.RawMessage
		werr := json.Unmarshal(data, &want)
		if err == nil && werr != nil {
			t.Fatalf("scanner accepted %q, encoding/json refuses it: %v", data, werr)
		}
		if err != nil && werr == nil && want != nil && !deliberateRefusal(t, data, err) {
			t.Fatalf("scanner refused %q (%v), encoding/json accepts it", data, err)
		}
		if err == nil {
			if len(got) != len(want) {
				t.Fatalf("%q: %d members, encoding/json %d", data, len(got), len(want))
			}
			for k, v := range want {
				if !reflect.DeepEqual([]byte(got[k]), []byte(v)) {
					t.Fatalf("%q: member %q = %s, encoding/json %s", data, k, got[k], v)
				}
			}
		}
	})
}

// deliberateRefusal reports whether the scanner's refusal of data, which
// encoding/json accepts, is one Herald makes on purpose, and checks that its
// cause is really there.
func deliberateRefusal(t *testing.T, data []byte, err error) bool {
	t.Helper()
	msg := err.Error()
	switch {
	case strings.Contains(msg, "nested too deeply"):
		return true
	case strings.Contains(msg, "not valid UTF-8"):
		if utf8.Valid(data) {
			t.Fatalf("scanner says %q is not UTF-8, but it is", data)
		}
		return true
	case strings.Contains(msg, "number out of range"):
		if !hasHugeNumber(json.NewDecoder(bytes.NewReader(data))) {
			t.Fatalf("scanner says %q has a number out of range, encoding/json reads every number", data)
		}
		return true
	case strings.Contains(msg, "duplicate member"):
		if !hasDuplicateMember(json.NewDecoder(bytes.NewReader(data))) {
			t.Fatalf("scanner says %q has a duplicate member, encoding/json finds none", data)
		}
		return true
	}
	return false
}

// hasHugeNumber reports whether a JSON text holds a number a float64 cannot represent.
func hasHugeNumber(d *json.Decoder) bool {
	d.UseNumber()
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if n, ok := tok.(json.Number); ok {
			if _, err := n.Float64(); err != nil {
				return true
			}
		}
	}
}

// hasDuplicateMember walks one JSON value and reports whether an object in
// it (at any depth) names a member twice.
func hasDuplicateMember(d *json.Decoder) bool {
	tok, err := d.Token()
	if err != nil {
		return false
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		dup := false
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return dup
			}
			name, _ := k.(string)
			if seen[name] {
				dup = true
			}
			seen[name] = true
			if hasDuplicateMember(d) {
				dup = true
			}
		}
		_, _ = d.Token()
		return dup
	case json.Delim('['):
		dup := false
		for d.More() {
			if hasDuplicateMember(d) {
				dup = true
			}
		}
		_, _ = d.Token()
		return dup
	}
	return false
}

// FuzzVerifyMatchesJWT: whatever Herald's parser and HMAC check accept,
// golang-jwt accepts too, with the same key; and what golang-jwt accepts,
// Herald accepts too unless it refuses it on purpose: a crit header, a
// duplicate member, a string that is not UTF-8, deep nesting, a kid that is
// not a string, claims that are not an object, or a token over the size limit.
func FuzzVerifyMatchesJWT(f *testing.F) {
	secret := []byte("fuzz-secret-fuzz-secret-fuzz-secret")
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	f.Add(good)
	f.Add(good + "x")
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.")
	for _, h := range []map[string]any{{"alg": "HS256", "crit": []string{"exp"}}, {"alg": "HS256", "kid": 5}} {
		tk := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u"})
		tk.Header = h
		s, _ := tk.SignedString(secret)
		f.Add(s)
	}
	f.Add(signRaw(secret, `{"alg":"HS256","alg":"HS256"}`, `{"sub":"u"}`))
	f.Add(signRaw(secret, `{"alg":"HS256"}`, `{"sub":"a","sub":"b"}`))
	f.Add(signRaw(secret, `{"alg":"HS256"}`, "{\"sub\":\"\xff\"}"))
	f.Add(signRaw(secret, `{"alg":"HS256"}`, `{"nbf":1e300}`))
	k, _ := NewHMACKey(string(secret))
	v := NewVerifier(NewKeySet(k), Policy{})
	f.Fuzz(func(t *testing.T, tok string) {
		claims, _, r := v.verify(tok, SourceConnectCommand, v.Keys())
		parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"}), jwt.WithoutClaimsValidation())
		jwtOK := err == nil && parsed.Valid
		if r == nil && !jwtOK {
			t.Fatalf("Herald accepted %q, golang-jwt refuses it: %v", tok, err)
		}
		if r != nil && jwtOK && !deliberateTokenRefusal(r) {
			t.Fatalf("Herald refused %q (%s), golang-jwt accepts it", tok, r.Error())
		}
		if r == nil {
			if _, ok := claims["sub"]; ok != (parsed.Claims.(jwt.MapClaims)["sub"] != nil) {
				t.Fatalf("claims differ for %q", tok)
			}
		}
	})
}

// deliberateTokenRefusal reports whether r is a refusal Herald makes on
// purpose of a token golang-jwt accepts.
func deliberateTokenRefusal(r *Reason) bool {
	switch r.Code {
	case CritNotUnderstood, TokenTooLarge:
		return true
	case ClaimInvalid:
		return strings.Contains(r.Detail, "is not valid UTF-8")
	case TokenMalformed:
		for _, why := range []string{"duplicate member", "not valid UTF-8", "nested too deeply", "number out of range", "kid must be a string", "claims: not a JSON object"} {
			if strings.Contains(r.Detail, why) {
				return true
			}
		}
	}
	return false
}

// signRaw signs a token whose header and claims are the given JSON texts.
func signRaw(secret []byte, header, claims string) string {
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// FuzzSignedTokenMatchesJWT signs whatever header and claims the fuzzer
// makes up, so that every input has a valid signature and the comparison
// with golang-jwt is about parsing: both accept, or Herald refuses on
// purpose (deliberateTokenRefusal), and never does Herald accept what
// golang-jwt refuses. Accepted tokens must give the same members.
func FuzzSignedTokenMatchesJWT(f *testing.F) {
	secret := []byte("fuzz-secret-fuzz-secret-fuzz-secret")
	for _, c := range [][2]string{
		{`{"alg":"HS256","typ":"JWT"}`, `{"sub":"u","exp":1}`},
		{`{"alg":"HS256","alg":"HS256"}`, `{"sub":"u"}`},
		{`{"alg":"HS256","\u0061lg":"none"}`, `{}`},
		{`{"alg":"HS256","crit":["b64"],"b64":false}`, `{"sub":"u"}`},
		{`{"alg":"HS256","kid":["x"]}`, `{"sub":"u"}`},
		{`{"alg":"HS512"}`, `{"sub":"a","sub":"b"}`},
		{`{"alg":"HS256"}`, "{\"sub\":\"\xff\"}"},
		{`{"alg":"HS256"}`, `{"nbf":1e300,"a":[[[{"b":null}]]]}`},
		{`{"alg":"HS256"}`, `null`},
	} {
		f.Add(c[0], c[1])
	}
	k, _ := NewHMACKey(string(secret))
	v := NewVerifier(NewKeySet(k), Policy{})
	f.Fuzz(func(t *testing.T, header, claims string) {
		tok := signRaw(secret, header, claims)
		got, _, r := v.verify(tok, SourceConnectCommand, v.Keys())
		mc := jwt.MapClaims{}
		parsed, err := jwt.ParseWithClaims(tok, &mc, func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"}), jwt.WithoutClaimsValidation())
		jwtOK := err == nil && parsed.Valid
		switch {
		case r == nil && !jwtOK:
			t.Fatalf("Herald accepted header %q claims %q, golang-jwt refuses: %v", header, claims, err)
		case r != nil && jwtOK && !deliberateTokenRefusal(r):
			t.Fatalf("Herald refused header %q claims %q (%s), golang-jwt accepts", header, claims, r.Error())
		case r == nil && len(got) != len(mc):
			t.Fatalf("header %q claims %q: Herald sees %d claims, golang-jwt %d", header, claims, len(got), len(mc))
		}
	})
}
