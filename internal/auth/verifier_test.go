package auth

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const secret = "unit-test-secret"

func newVerifier(t *testing.T, p Policy) *Verifier {
	t.Helper()
	k, err := NewHMACKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return NewVerifier(NewKeySet(k), p)
}

func sign(t *testing.T, s string, claims map[string]any) string {
	t.Helper()
	tok, err := SignHS256(s, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func connect(v *Verifier, tok string) (*Identity, *Reason) {
	return v.Connect(&Request{Tokens: []Candidate{{Source: SourceConnectCommand, Token: tok}}})
}

func TestConnectReasons(t *testing.T) {
	now := time.Now()
	v := newVerifier(t, Policy{})
	cases := []struct {
		name   string
		token  string
		code   Code
		detail string
	}{
		{"missing", "", TokenMissing, "no token in connect.token"},
		{"too large", strings.Repeat("a", MaxTokenSize+1), TokenTooLarge, "limit is"},
		{"malformed", "a.b", TokenMalformed, "not a valid JWT"},
		{"bad base64", "!!!.???.###", TokenMalformed, "not a valid JWT"},
		{"alg none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.", AlgNotAllowed, "alg none"},
		{"RS256 with only HMAC keys", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln", AlgNotAllowed, "accepted: HS256/HS384/HS512"},
		{"wrong secret", sign(t, "other", map[string]any{"sub": "u"}), SignatureInvalid, "signature does not match key " + Fingerprint([]byte(secret))},
		{"expired", sign(t, secret, map[string]any{"sub": "u", "exp": now.Add(-time.Hour).Unix()}), TokenExpired, "expired 1h0m0s ago"},
		{"not yet valid", sign(t, secret, map[string]any{"sub": "u", "nbf": now.Add(time.Hour).Unix()}), TokenNotYetValid, "not valid for another"},
		{"sub number", sign(t, secret, map[string]any{"sub": 5}), ClaimInvalid, "sub must be a string, got number"},
		{"exp string", sign(t, secret, map[string]any{"sub": "u", "exp": "tomorrow"}), ClaimInvalid, "exp must be a number"},
		{"channel claim", sign(t, secret, map[string]any{"sub": "u", "channel": "x"}), ClaimInvalid, "subscription token"},
		{"channels not strings", sign(t, secret, map[string]any{"sub": "u", "channels": []int{1}}), ClaimInvalid, "array of strings"},
		{"b64info not JSON", sign(t, secret, map[string]any{"sub": "u", "b64info": "AAEC"}), ClaimInvalid, "must hold JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, r := connect(v, tc.token)
			if r == nil {
				t.Fatalf("accepted: %+v", id)
			}
			if r.Code != tc.code || !strings.Contains(r.Detail, tc.detail) {
				t.Fatalf("reason %s %q, want %s containing %q", r.Code, r.Detail, tc.code, tc.detail)
			}
			if tc.token != "" && r.Source != SourceConnectCommand {
				t.Errorf("source %q, want %q", r.Source, SourceConnectCommand)
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	if id, r := connect(newVerifier(t, Policy{AllowAnonymous: true}), ""); r != nil || id.User != "" {
		t.Fatalf("anonymous allowed: %v %v", id, r)
	}
	v := newVerifier(t, Policy{AllowAnonymous: true, DisallowAnonymousTokens: true})
	if _, r := connect(v, sign(t, secret, map[string]any{})); r == nil || r.Code != AnonymousTokenRefused {
		t.Fatalf("anonymous token: %v", r)
	}
	// A bad token is refused even when anonymous access is on: never downgraded.
	if _, r := connect(v, sign(t, "other", map[string]any{"sub": "u"})); r == nil || r.Code != SignatureInvalid {
		t.Fatalf("bad token with anonymous on: %v", r)
	}
	empty := NewVerifier(NewKeySet(), Policy{})
	if _, r := connect(empty, sign(t, secret, map[string]any{"sub": "u"})); r == nil || r.Code != KeysNotConfigured {
		t.Fatalf("no keys: %v", r)
	}
	lenient := newVerifier(t, Policy{Rules: Rules{Leeway: time.Minute}})
	if _, r := connect(lenient, sign(t, secret, map[string]any{"sub": "u", "exp": time.Now().Add(-30 * time.Second).Unix()})); r != nil {
		t.Fatalf("leeway not applied: %v", r)
	}
}

func TestIdentityClaims(t *testing.T) {
	v := newVerifier(t, Policy{})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	id, r := connect(v, sign(t, secret, map[string]any{
		"sub": "42", "exp": exp.Unix(), "info": map[string]any{"name": "A"}, "meta": map[string]any{"tenant": "t"},
		"channels": []string{"news"}, "subs": map[string]any{"alerts": map[string]any{"data": map[string]any{"x": 1}, "override": map[string]any{"presence": map[string]any{"value": false}}}},
	}))
	if r != nil {
		t.Fatal(r)
	}
	if id.User != "42" || !id.ExpireAt.Equal(exp) || string(id.Info) != `{"name":"A"}` || string(id.Meta) != `{"tenant":"t"}` {
		t.Fatalf("identity %+v", id)
	}
	if len(id.Channels) != 2 || id.Subs["alerts"].Override == nil || *id.Subs["alerts"].Override.Presence {
		t.Fatalf("channels %v subs %+v", id.Channels, id.Subs)
	}
	// expire_at decouples the connection's expiry from exp; 0 means never.
	id, _ = connect(v, sign(t, secret, map[string]any{"sub": "1", "exp": exp.Unix(), "expire_at": 0}))
	if !id.ExpireAt.IsZero() {
		t.Fatalf("expire_at 0 must mean never, got %v", id.ExpireAt)
	}
	// Expiry is capped at a year.
	id, _ = connect(v, sign(t, secret, map[string]any{"sub": "1", "exp": time.Now().Add(5 * 365 * 24 * time.Hour).Unix()}))
	if time.Until(id.ExpireAt) > 366*24*time.Hour {
		t.Fatalf("expiry not capped: %v", id.ExpireAt)
	}
}

func TestSubscriptionTokens(t *testing.T) {
	v := newVerifier(t, Policy{})
	req := SubscriptionRequest{Channel: "$c", User: "u", Client: "c1"}
	cases := []struct {
		claims map[string]any
		code   Code
		detail string
	}{
		{map[string]any{"sub": "u", "channel": "$c"}, "", ""},
		{map[string]any{"sub": "u", "channel": "$c", "client": "c1"}, "", ""},
		{map[string]any{"sub": "u"}, ClaimInvalid, "no channel claim"},
		{map[string]any{"sub": "u", "channel": "$d"}, SubscriptionTokenMismatch, `channel "$d" != channel "$c"`},
		{map[string]any{"sub": "x", "channel": "$c"}, SubscriptionTokenMismatch, `user "x" != connection user "u"`},
		{map[string]any{"sub": "u", "channel": "$c", "client": "c2"}, SubscriptionTokenMismatch, `client "c2" != client "c1"`},
		{map[string]any{"sub": "u", "channel": "$c", "exp": time.Now().Add(-time.Minute).Unix()}, TokenExpired, "expired"},
	}
	for _, tc := range cases {
		req.Token = sign(t, secret, tc.claims)
		_, r := v.Subscription(req)
		switch {
		case tc.code == "" && r != nil:
			t.Errorf("%v refused: %v", tc.claims, r)
		case tc.code != "" && (r == nil || r.Code != tc.code || !strings.Contains(r.Detail, tc.detail)):
			t.Errorf("%v = %v, want %s with %q", tc.claims, r, tc.code, tc.detail)
		}
	}
}

func TestRefreshUserMismatch(t *testing.T) {
	v := newVerifier(t, Policy{})
	_, r := v.Refresh(sign(t, secret, map[string]any{"sub": "b"}), "a")
	if r == nil || r.Code != TokenUserMismatch {
		t.Fatalf("refresh for another user: %v", r)
	}
	if _, r := v.Refresh("", "a"); r == nil || r.Code != TokenMissing {
		t.Fatalf("empty refresh token: %v", r)
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s := strings.Repeat("é", 100) // 200 bytes
	got := Truncate(s, 123)
	if len(got) > 123 || !utf8.ValidString(got) {
		t.Fatalf("Truncate gave %d bytes, valid=%v", len(got), utf8.ValidString(got))
	}
	r := &Reason{Code: SignatureInvalid, Detail: s}
	if len(r.Short(123)) > 123 {
		t.Fatal("Short exceeds the limit")
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.x")
	f.Add("a.b.c")
	f.Add("")
	k, _ := NewHMACKey(secret)
	v := NewVerifier(NewKeySet(k), Policy{})
	f.Fuzz(func(t *testing.T, tok string) {
		id, r := connect(v, tok)
		if (id == nil) == (r == nil) {
			t.Fatalf("exactly one of identity and reason must be set: %v %v", id, r)
		}
	})
}
