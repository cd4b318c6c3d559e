package server_test

// End-to-end tests of claim rules (docs/auth.md, "Claims") and of what a
// refused client sees versus what the log gets ("What the client sees, what
// the log gets").

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// presenceEntry subscribes c to channel and returns its own presence entry.
func presenceEntry(t *testing.T, c *wsConn, channel string) map[string]any {
	t.Helper()
	if o := c.call("subscribe", map[string]any{"channel": channel}); o.Reply == nil || o.Reply["subscribe"] == nil {
		t.Fatalf("subscribe %s: %v", channel, o)
	}
	o := c.call("presence", map[string]any{"channel": channel})
	p, _ := o.Reply["presence"].(map[string]any)
	entries, _ := p["presence"].(map[string]any)
	if len(entries) != 1 {
		t.Fatalf("presence of %s: %v, want one entry", channel, o)
	}
	for _, e := range entries {
		return e.(map[string]any)
	}
	return nil
}

func TestAuthClaimsAudienceIssuer(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.Client.Token.Audience = []string{"herald-app"}
	cfg.Client.Token.Issuer = []string{"https://issuer.example"}
	srv := testutil.Start(t, cfg)
	tok := func(user string, aud any, iss string) string {
		c := claimsFor(user)
		if aud != nil {
			c["aud"] = aud
		}
		if iss != "" {
			c["iss"] = iss
		}
		return testutil.Token(t, c)
	}
	const iss = "https://issuer.example"
	for name, tc := range map[string]struct {
		token string
		want  string // "" = accepted
		parts []string
	}{
		"match":                {tok("aud-ok", "herald-app", iss), "", nil},
		"aud array":            {tok("aud-arr", []string{"other", "herald-app"}, iss), "", nil},
		"aud mismatch":         {tok("aud-bad", "other-app", iss), "audience_mismatch", []string{"other-app", "herald-app"}},
		"aud array mismatch":   {tok("aud-arr-bad", []string{"x", "y"}, iss), "audience_mismatch", []string{"x,y"}},
		"aud missing":          {tok("aud-none", nil, iss), "audience_mismatch", nil},
		"iss mismatch":         {tok("iss-bad", "herald-app", "https://evil.example"), "issuer_mismatch", []string{"https://evil.example", iss}},
		"iss missing":          {tok("iss-none", "herald-app", ""), "issuer_mismatch", nil},
		"iss differs by case":  {tok("iss-case", "herald-app", "https://Issuer.example"), "issuer_mismatch", nil},
		"aud prefix only":      {tok("aud-prefix", "herald", iss), "audience_mismatch", nil},
		"aud array of objects": {tok("aud-obj", []any{map[string]any{"a": 1}}, iss), "claim_invalid", []string{"aud"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := connectWith(t, srv, tc.token, nil)
			if tc.want == "" {
				if !o.connected() {
					t.Fatalf("refused: %v", o)
				}
				return
			}
			expectClosed(t, o, 3500, append([]string{"invalid token", tc.want}, tc.parts...)...)
		})
	}
}

func TestAuthClaimsUserClaim(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		claim  string
		claims map[string]any
		user   string
	}{
		{"user.id", map[string]any{"user": map[string]any{"id": "nested-42", "name": "N"}}, "nested-42"},
		{"user.id", map[string]any{"user.id": "flat-wins", "user": map[string]any{"id": "nested"}}, "flat-wins"},
		{"https://example.com/uid", map[string]any{"https://example.com/uid": "url-7"}, "url-7"},
	} {
		t.Run(tc.claim+" "+tc.user, func(t *testing.T) {
			t.Parallel()
			cfg := testutil.Config()
			cfg.Client.Token.UserClaim = tc.claim
			srv := testutil.Start(t, cfg)
			claims := tc.claims
			claims["exp"] = time.Now().Add(time.Hour).Unix()
			claims["sub"] = "not-the-user"
			c := mustConnect(t, srv, testutil.Token(t, claims))
			if e := presenceEntry(t, c, "room"); e["user"] != tc.user {
				t.Fatalf("presence user %v, want %q (user_claim %s)", e["user"], tc.user, tc.claim)
			}
			// The configured claim must be present.
			o := connectWith(t, srv, testutil.Token(t, claimsFor("has-only-sub")), nil)
			expectClosed(t, o, 3500, "invalid token", "user_claim_missing", tc.claim)
		})
	}
}

func TestAuthClaimsMaxLifetime(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.Client.Token.MaxLifetime = config.Duration(time.Minute)
	srv := testutil.Start(t, cfg)
	now := time.Now()
	old := claimsFor("old")
	old["iat"] = now.Add(-2 * time.Minute).Unix()
	expectClosed(t, connectWith(t, srv, testutil.Token(t, old), nil), 3500, "invalid token", "token_too_old")
	expectClosed(t, connectWith(t, srv, testutil.Token(t, claimsFor("no-iat")), nil), 3500, "token_too_old", "iat")
	fresh := claimsFor("fresh")
	fresh["iat"] = now.Add(-30 * time.Second).Unix()
	if o := connectWith(t, srv, testutil.Token(t, fresh), nil); !o.connected() {
		t.Fatalf("iat 30s ago with max_lifetime 1m: %v", o)
	}
}

func TestAuthClaimsNotYetValid(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	future := claimsFor("iat-future")
	future["iat"] = time.Now().Add(time.Minute).Unix()
	c := dialWS(t, srv, "", nil)
	expectError(t, c.connect(testutil.Token(t, future)), 109, "token_not_yet_valid")

	nbf := claimsFor("nbf-future")
	nbf["nbf"] = time.Now().Add(time.Minute).Unix()
	expectError(t, dialWS(t, srv, "", nil).connect(testutil.Token(t, nbf)), 109, "token_not_yet_valid")

	// Within the leeway (5 s by default) a clock ahead by 2 s is fine.
	skew := claimsFor("iat-skew")
	skew["iat"] = time.Now().Add(2 * time.Second).Unix()
	skew["nbf"] = time.Now().Add(2 * time.Second).Unix()
	if o := connectWith(t, srv, testutil.Token(t, skew), nil); !o.connected() {
		t.Fatalf("iat and nbf 2s ahead, within the 5s leeway: %v", o)
	}
}

func TestAuthClaimsLeeway(t *testing.T) {
	t.Parallel()
	justExpired := func(user string) string {
		return testutil.Token(t, map[string]any{"sub": user, "exp": time.Now().Add(-3 * time.Second).Unix()})
	}
	t.Run("default leeway 5s", func(t *testing.T) {
		t.Parallel()
		srv := testutil.Start(t, nil)
		if o := connectWith(t, srv, justExpired("leeway-5"), nil); !o.connected() {
			t.Fatalf("exp 3s ago with the default leeway of 5s must be accepted: %v", o)
		}
		long := testutil.Token(t, map[string]any{"sub": "leeway-long", "exp": time.Now().Add(-time.Minute).Unix()})
		expectError(t, dialWS(t, srv, "", nil).connect(long), 109, "token_expired")
	})
	t.Run("leeway 0", func(t *testing.T) {
		t.Parallel()
		cfg := testutil.Config()
		cfg.Client.Token.Leeway = 0
		srv := testutil.Start(t, cfg)
		expectError(t, dialWS(t, srv, "", nil).connect(justExpired("leeway-0")), 109, "token_expired")
	})
}

func TestAuthClaimsInfoClaim(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.Client.Token.InfoClaim = "profile"
	srv := testutil.Start(t, cfg)
	claims := claimsFor("info-user")
	claims["profile"] = map[string]any{"name": "Ann", "tier": 2}
	claims["info"] = map[string]any{"name": "not this one"}
	c := mustConnect(t, srv, testutil.Token(t, claims))
	got, _ := json.Marshal(presenceEntry(t, c, "room")["conn_info"])
	if string(got) != `{"name":"Ann","tier":2}` {
		t.Fatalf("conn_info %s, want the profile claim", got)
	}

	t.Run("dotted path", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Client.Token.InfoClaim = "ext.info"
		srv := testutil.Start(t, cfg)
		claims := claimsFor("info-path")
		claims["ext"] = map[string]any{"info": map[string]any{"team": "blue"}}
		c := mustConnect(t, srv, testutil.Token(t, claims))
		got, _ := json.Marshal(presenceEntry(t, c, "room")["conn_info"])
		if string(got) != `{"team":"blue"}` {
			t.Fatalf("conn_info %s, want the ext.info claim", got)
		}
	})
}

// --- what the client sees, what the log gets ---

func TestAuthReasonDetail(t *testing.T) {
	t.Parallel()
	fp := secretFingerprint(testutil.Secret)
	for _, tc := range []struct {
		name   string
		dev    bool
		detail string
		full   bool
	}{
		{"code", false, "code", false},
		{"production default", false, "", false},
		{"full", false, "full", true},
		{"dev default", true, "", true},
		{"dev with code", true, "code", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testutil.Config()
			cfg.Dev = tc.dev
			cfg.Client.ReasonDetail = tc.detail
			srv := testutil.Start(t, cfg)
			tok := hs(t, "a-different-secret-0123456789abcdef", claimsFor("rd-"+strings.ReplaceAll(tc.name, " ", "-")))
			o := connectWith(t, srv, tok, nil)
			if o.Reply != nil || o.Code != 3500 {
				t.Fatalf("got %v, want close 3500", o)
			}
			if len(o.Reason) > 123 {
				t.Fatalf("close reason is %d bytes, more than 123", len(o.Reason))
			}
			if tc.full {
				for _, want := range []string{"invalid token: signature_invalid: ", "signature does not match key " + fp} {
					if !strings.Contains(o.Reason, want) {
						t.Fatalf("full reason %q lacks %q", o.Reason, want)
					}
				}
			} else if o.Reason != "invalid token: signature_invalid" {
				t.Fatalf("close reason %q, want exactly %q", o.Reason, "invalid token: signature_invalid")
			}

			expired := testutil.Token(t, map[string]any{"sub": "rd-exp", "exp": time.Now().Add(-time.Hour).Unix()})
			e := dialWS(t, srv, "", nil).connect(expired)
			expectError(t, e, 109, "token_expired")
			if !tc.full && e.errMessage() != "token expired: token_expired" {
				t.Fatalf("error message %q, want exactly %q", e.errMessage(), "token expired: token_expired")
			}
			if tc.full && !strings.Contains(e.errMessage(), "expired 1h") {
				t.Fatalf("full error message %q lacks the detail", e.errMessage())
			}

			// The log always has everything, and never the token.
			l := expectLog(t, srv, `msg="connection refused"`, "reason=signature_invalid")
			for _, want := range []string{`detail="signature does not match key ` + fp + `"`, "key_fingerprint=" + fp, "alg=HS256", "token_source=connect.token", "hint="} {
				if !strings.Contains(l, want) {
					t.Errorf("log line lacks %s: %s", want, l)
				}
			}
			neverLogged(t, srv, tok, expired, testutil.Secret)
		})
	}
}
