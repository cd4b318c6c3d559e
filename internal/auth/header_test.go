package auth

import (
	"strings"
	"testing"
	"time"
)

// rawToken signs header and claims JSON texts as they are, with the unit secret.
func rawSigned(header, claims string) string { return signRaw([]byte(secret), header, claims) }

func TestHeaderAndClaimRules(t *testing.T) {
	now := time.Now()
	v := newVerifier(t, Policy{})
	cases := []struct {
		name   string
		token  string
		code   Code
		detail string
	}{
		{"nbf overflows", rawSigned(`{"alg":"HS256"}`, `{"sub":"u","nbf":1e300}`), ClaimInvalid, "claim nbf 1e300 is out of range"},
		{"exp overflows", rawSigned(`{"alg":"HS256"}`, `{"sub":"u","exp":-1e300}`), ClaimInvalid, "claim exp -1e300 is out of range"},
		{"iat overflows", rawSigned(`{"alg":"HS256"}`, `{"sub":"u","iat":9223372036854775808}`), ClaimInvalid, "claim iat 9223372036854775808 is out of range"},
		{"number beyond float64", rawSigned(`{"alg":"HS256"}`, `{"sub":"u","x":1e400}`), TokenMalformed, "number out of range"},
		{"crit", rawSigned(`{"alg":"HS256","crit":["b64"],"b64":false}`, `{"sub":"u"}`), CritNotUnderstood, `crit lists "b64"`},
		{"crit not a list", rawSigned(`{"alg":"HS256","crit":"b64"}`, `{"sub":"u"}`), TokenMalformed, "crit must be a non-empty array"},
		{"duplicate header member", rawSigned(`{"alg":"HS256","alg":"none"}`, `{"sub":"u"}`), TokenMalformed, `duplicate member "alg"`},
		{"duplicate escaped header member", rawSigned(`{"alg":"HS256","\u0061lg":"none"}`, `{"sub":"u"}`), TokenMalformed, `duplicate member "alg"`},
		{"duplicate claim", rawSigned(`{"alg":"HS256"}`, `{"sub":"admin","sub":"u"}`), TokenMalformed, `duplicate member "sub"`},
		{"claim not UTF-8", rawSigned(`{"alg":"HS256"}`, "{\"sub\":\"u\xff\"}"), ClaimInvalid, "claim sub is not valid UTF-8 (first invalid byte at offset 9)"},
		{"nested claim not UTF-8", rawSigned(`{"alg":"HS256"}`, "{\"sub\":\"u\",\"info\":{\"a\":[\"\xc3\x28\"]}}"), ClaimInvalid, "claim info is not valid UTF-8"},
		{"claim name not UTF-8", rawSigned(`{"alg":"HS256"}`, "{\"\xff\":1}"), TokenMalformed, "not valid UTF-8"},
		{"header not UTF-8", rawSigned("{\"alg\":\"HS256\",\"kid\":\"\xff\"}", `{"sub":"u"}`), TokenMalformed, "not valid UTF-8"},
		{"bare secret", secret, TokenMalformed, "it is the HMAC secret of key " + Fingerprint([]byte(secret)) + " itself"},
		{"bare key", "sk_live_0123456789", TokenMalformed, "looks like a key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, r := connect(v, tc.token)
			if r == nil || r.Code != tc.code || !strings.Contains(r.Detail, tc.detail) {
				t.Fatalf("got %v, want %s containing %q", r, tc.code, tc.detail)
			}
			if r.Hint == "" {
				t.Fatalf("%s has no hint", r.Code)
			}
			if strings.Contains(r.Detail, secret) || strings.Contains(r.Hint, secret) {
				t.Fatalf("the secret appears in the reason: %v", r)
			}
		})
	}
	// Within the range, far dates still work.
	if _, r := connect(v, rawSigned(`{"alg":"HS256"}`, `{"sub":"u","exp":253402300799}`)); r != nil {
		t.Fatalf("exp in year 9999: %v", r)
	}
	if _, r := connect(v, sign(t, secret, map[string]any{"sub": "u", "exp": now.Add(time.Hour).Unix()})); r != nil {
		t.Fatal(r)
	}
}

func TestTypRule(t *testing.T) {
	k, _ := NewHMACKey(secret)
	v := NewVerifier(NewKeySet(k).WithTypes("at+jwt"), Policy{})
	for _, tc := range []struct {
		header string
		want   string // "" = accepted
	}{
		{`{"alg":"HS256","typ":"at+jwt"}`, ""},
		{`{"alg":"HS256","typ":"application/AT+JWT"}`, ""},
		{`{"alg":"HS256","typ":"JWT"}`, `typ "JWT" is not accepted; accepted: at+jwt`},
		{`{"alg":"HS256"}`, "no typ header"},
		{`{"alg":"HS256","typ":1}`, "not a string"},
	} {
		_, r := connect(v, rawSigned(tc.header, `{"sub":"u"}`))
		switch {
		case tc.want == "" && r != nil:
			t.Errorf("%s: refused: %v", tc.header, r)
		case tc.want != "" && (r == nil || r.Code != TypNotAllowed || !strings.Contains(r.Detail, tc.want)):
			t.Errorf("%s: got %v, want typ_not_allowed %q", tc.header, r, tc.want)
		}
	}
	// Without a typ rule, typ is not looked at.
	if _, r := connect(newVerifier(t, Policy{}), rawSigned(`{"alg":"HS256","typ":1}`, `{"sub":"u"}`)); r != nil {
		t.Fatal(r)
	}
}

func TestExpRules(t *testing.T) {
	now := time.Now()
	t.Run("require_exp", func(t *testing.T) {
		v := newVerifier(t, Policy{Rules: Rules{RequireExp: true}})
		_, r := connect(v, sign(t, secret, map[string]any{"sub": "u"}))
		if r == nil || r.Code != ExpRequired || !strings.Contains(r.Detail, "client.token.require_exp") {
			t.Fatalf("got %v", r)
		}
		if _, r := connect(v, sign(t, secret, map[string]any{"sub": "u", "exp": now.Add(time.Minute).Unix()})); r != nil {
			t.Fatal(r)
		}
	})
	t.Run("max_lifetime_without_exp", func(t *testing.T) {
		v := newVerifier(t, Policy{Rules: Rules{MaxLifetimeWithoutExp: time.Hour}})
		id, r := connect(v, sign(t, secret, map[string]any{"sub": "u", "iat": now.Add(-10 * time.Minute).Unix()}))
		if r != nil {
			t.Fatal(r)
		}
		if want := now.Add(50 * time.Minute); id.ExpireAt.Sub(want).Abs() > 2*time.Second {
			t.Fatalf("a token without exp expires at %s, want iat + 1h = %s", id.ExpireAt, want)
		}
		_, r = connect(v, sign(t, secret, map[string]any{"sub": "u", "iat": now.Add(-2 * time.Hour).Unix()}))
		if r == nil || r.Code != TokenExpired || !strings.Contains(r.Detail, "no exp and was issued 2h") {
			t.Fatalf("got %v", r)
		}
		_, r = connect(v, sign(t, secret, map[string]any{"sub": "u"}))
		if r == nil || r.Code != ExpRequired || !strings.Contains(r.Detail, "neither exp nor iat") {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("mercure", func(t *testing.T) {
		v := newVerifier(t, Policy{})
		_, r := v.VerifyMercure(sign(t, secret, map[string]any{"mercure": map[string]any{}}), SourceHeader, v.Keys(), "publisher", &Rules{RequireExp: true})
		if r == nil || r.Code != ExpRequired || !strings.Contains(r.Detail, "mercure.publisher.require_exp") {
			t.Fatalf("got %v", r)
		}
		g, r := v.VerifyMercure(sign(t, secret, map[string]any{"iat": now.Unix(), "mercure": map[string]any{}}), SourceHeader, v.Keys(), "subscriber", &Rules{MaxLifetimeWithoutExp: time.Minute})
		if r != nil || g.Expiry.Sub(now.Add(time.Minute)).Abs() > 2*time.Second {
			t.Fatalf("grant %+v, %v", g, r)
		}
	})
}
