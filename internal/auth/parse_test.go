package auth

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

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
// the JSON objects encoding/json accepts (within the depth limit) and finds
// the same members.
func FuzzScanObjectMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":[1,"b",{"c":null}]}`, `{"a":"\u00e9\n"}`, `{"a":1e5,"b":-0.1}`, `{"a":1}x`, `{"a":01}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := scanObject(data)
		var want map[string]json.RawMessage
		werr := json.Unmarshal(data, &want)
		if err == nil && werr != nil {
			t.Fatalf("scanner accepted %q, encoding/json refuses it: %v", data, werr)
		}
		if err != nil && werr == nil && want != nil && !strings.Contains(err.Error(), "nested too deeply") {
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

// FuzzVerifyMatchesJWT: whatever Herald's parser and HMAC check accept,
// golang-jwt accepts too, with the same key.
func FuzzVerifyMatchesJWT(f *testing.F) {
	secret := []byte("fuzz-secret-fuzz-secret-fuzz-secret")
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	f.Add(good)
	f.Add(good + "x")
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.")
	k, _ := NewHMACKey(string(secret))
	v := NewVerifier(NewKeySet(k), Policy{})
	f.Fuzz(func(t *testing.T, tok string) {
		claims, _, r := v.verify(tok, SourceConnectCommand, v.Keys())
		if r != nil {
			return
		}
		parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"}), jwt.WithoutClaimsValidation())
		if err != nil || !parsed.Valid {
			t.Fatalf("Herald accepted %q, golang-jwt refuses it: %v", tok, err)
		}
		if _, ok := claims["sub"]; ok != (parsed.Claims.(jwt.MapClaims)["sub"] != nil) {
			t.Fatalf("claims differ for %q", tok)
		}
	})
}
