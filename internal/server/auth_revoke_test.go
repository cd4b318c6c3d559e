package server_test

// End-to-end tests of revocation through the server API (docs/auth.md, "Live
// enforcement and revocation") and of GET /debug/auth.

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/testutil"
)

// apiOK calls an API method and fails unless it returned a result.
func apiOK(t *testing.T, srv *testutil.Server, method string, body any) {
	t.Helper()
	status, res := srv.API(t, method, body)
	if status != http.StatusOK || res["error"] != nil || res["result"] == nil {
		t.Fatalf("api %s %v: %d %v", method, body, status, res)
	}
}

// stillOpen fails unless c answers a command.
func stillOpen(t *testing.T, c *wsConn) {
	t.Helper()
	if o := c.call("presence_stats", map[string]any{"channel": "room"}); o.Reply == nil || o.errCode() != 0 {
		t.Fatalf("connection should be alive and working: %v", o)
	}
}

func TestAuthRevokeToken(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	claims := claimsFor("rev-jti")
	claims["jti"] = "jti-123"
	tok := testutil.Token(t, claims)
	live := mustConnect(t, srv, tok)
	other := mustConnect(t, srv, testutil.Token(t, map[string]any{"sub": "rev-jti", "jti": "jti-other", "exp": time.Now().Add(time.Hour).Unix()}))

	apiOK(t, srv, "revoke_token", map[string]any{"uid": "jti-123"})
	code, reason := live.expectClose(2 * time.Second)
	if code != 3500 || !strings.Contains(reason, "token_revoked") {
		t.Fatalf("live connection closed with %d %q, want 3500 token_revoked", code, reason)
	}
	expectClosed(t, connectWith(t, srv, tok, nil), 3500, "invalid token", "token_revoked")
	// Another token of the same user is not revoked.
	stillOpen(t, other)
	expectLog(t, srv, "reason=token_revoked", "token_source=live")

	t.Run("expire_at in the past ends the revocation", func(t *testing.T) {
		c := claimsFor("rev-past")
		c["jti"] = "jti-past"
		tok := testutil.Token(t, c)
		apiOK(t, srv, "revoke_token", map[string]any{"uid": "jti-past", "expire_at": time.Now().Add(-time.Minute).Unix()})
		if o := connectWith(t, srv, tok, nil); !o.connected() {
			t.Fatalf("a revocation kept until a past time must not apply: %v", o)
		}
	})
	neverLogged(t, srv, tok)
}

func TestAuthInvalidateUserTokens(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	withIat := func(user string, iat time.Time) string {
		c := claimsFor(user)
		c["iat"] = iat.Unix()
		return testutil.Token(t, c)
	}
	before := withIat("victim", time.Now().Add(-10*time.Second))
	noIat := testutil.UserToken(t, "victim")
	v1 := mustConnect(t, srv, before)
	v2 := mustConnect(t, srv, noIat)
	bystander := mustConnect(t, srv, withIat("bystander", time.Now().Add(-10*time.Second)))

	apiOK(t, srv, "invalidate_user_tokens", map[string]any{"user": "victim"})
	revokedAt := time.Now()
	for i, c := range []*wsConn{v1, v2} {
		code, reason := c.expectClose(2 * time.Second)
		if code != 3500 || !strings.Contains(reason, "token_revoked") {
			t.Fatalf("victim connection %d closed with %d %q, want 3500 token_revoked", i, code, reason)
		}
	}
	stillOpen(t, bystander)

	expectClosed(t, connectWith(t, srv, before, nil), 3500, "token_revoked")
	// A token without iat cannot prove it was issued after the revocation.
	expectClosed(t, connectWith(t, srv, noIat, nil), 3500, "token_revoked")
	// A token issued after the revocation works (iat in whole seconds, within the leeway).
	after := withIat("victim", time.Unix(revokedAt.Unix()+1, 0))
	if o := connectWith(t, srv, after, nil); !o.connected() {
		t.Fatalf("token issued after invalidate_user_tokens: %v", o)
	}
	// Other users are unaffected, with or without iat.
	if o := connectWith(t, srv, testutil.UserToken(t, "bystander"), nil); !o.connected() {
		t.Fatalf("another user's token: %v", o)
	}

	t.Run("issued_before", func(t *testing.T) {
		cut := time.Now().Add(-time.Hour)
		older := withIat("hist", cut.Add(-time.Minute))
		newer := withIat("hist", cut.Add(time.Minute))
		apiOK(t, srv, "invalidate_user_tokens", map[string]any{"user": "hist", "issued_before": cut.Unix()})
		expectClosed(t, connectWith(t, srv, older, nil), 3500, "token_revoked")
		if o := connectWith(t, srv, newer, nil); !o.connected() {
			t.Fatalf("token issued after issued_before: %v", o)
		}
	})
}

func TestAuthRevokeBadInput(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	for _, tc := range []struct {
		method string
		body   any
	}{
		{"revoke_token", map[string]any{}},
		{"revoke_token", map[string]any{"uid": ""}},
		{"revoke_token", map[string]any{"uid": "x", "expire_at": -1}},
		{"revoke_token", map[string]any{"uid": 42}},
		{"invalidate_user_tokens", map[string]any{}},
		{"invalidate_user_tokens", map[string]any{"user": ""}},
		{"invalidate_user_tokens", map[string]any{"user": "u", "expire_at": -5}},
	} {
		status, res := srv.API(t, tc.method, tc.body)
		e, _ := res["error"].(map[string]any)
		if status != http.StatusOK || e == nil || e["code"] != float64(107) {
			t.Errorf("%s %v: %d %v, want error 107", tc.method, tc.body, status, res)
		}
	}
	// Nothing was revoked by the refused requests.
	if o := connectWith(t, srv, testutil.UserToken(t, "u"), nil); !o.connected() {
		t.Fatalf("after refused revocations: %v", o)
	}
}

// --- GET /debug/auth ---

func getDebugAuth(t *testing.T, srv *testutil.Server, key string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr+"/debug/auth", nil)
	if key != "" {
		req.Header.Set("X-Admin-Key", key)
	}
	resp, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestAuthDebugEndpoint(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.Admin.Key = "admin-key-for-tests"
	srv := testutil.Start(t, cfg)

	bad := hs(t, "wrong-secret-0123456789abcdef0123456", claimsFor("dbg-1"))
	expectClosed(t, connectWith(t, srv, "", bearer(bad)), 3500, "signature_invalid")
	withChannel := claimsFor("dbg-2")
	withChannel["channel"] = "oops" // a subscription token used to connect
	second := testutil.Token(t, withChannel)
	expectClosed(t, connectWith(t, srv, second, nil), 3500, "claim_invalid")
	apiOK(t, srv, "revoke_token", map[string]any{"uid": "dbg-jti"})

	status, body := getDebugAuth(t, srv, "admin-key-for-tests")
	if status != http.StatusOK {
		t.Fatalf("GET /debug/auth: %d %s", status, body)
	}
	var view struct {
		Refusals []map[string]any `json:"refusals"`
		Keys     []map[string]any `json:"keys"`
		Revoked  float64          `json:"revocations"`
	}
	if err := json.Unmarshal(body, &view); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if len(view.Refusals) != 2 {
		t.Fatalf("refusals %v, want 2", view.Refusals)
	}
	newest, oldest := view.Refusals[0], view.Refusals[1]
	if newest["code"] != "claim_invalid" || oldest["code"] != "signature_invalid" {
		t.Fatalf("refusals not newest first: %v", view.Refusals)
	}
	fp := secretFingerprint(testutil.Secret)
	for k, want := range map[string]string{
		"detail": "signature does not match key " + fp, "token_source": "header", "alg": "HS256", "key_fingerprint": fp,
	} {
		if oldest[k] != want {
			t.Errorf("refusal %s = %v, want %q (%v)", k, oldest[k], want, oldest)
		}
	}
	if ra, _ := oldest["remote_addr"].(string); !strings.HasPrefix(ra, "127.0.0.1:") {
		t.Errorf("refusal remote_addr %q", ra)
	}
	if newest["token_source"] != "connect.token" || newest["detail"] == "" {
		t.Errorf("newest refusal %v", newest)
	}
	if len(view.Keys) != 1 || view.Keys[0]["fingerprint"] != fp {
		t.Errorf("keys %v, want the HMAC key %s", view.Keys, fp)
	}
	if view.Revoked != 1 {
		t.Errorf("revocations %v, want 1", view.Revoked)
	}
	for _, secret := range []string{bad, second, testutil.Secret, strings.Split(bad, ".")[2]} {
		if strings.Contains(string(body), secret) {
			t.Fatalf("/debug/auth shows a token or secret: %.30s", secret)
		}
	}

	for _, key := range []string{"", "wrong"} {
		if status, body := getDebugAuth(t, srv, key); status != http.StatusUnauthorized || strings.Contains(string(body), "signature_invalid") {
			t.Fatalf("admin key %q: %d %s, want 401", key, status, body)
		}
	}
	t.Run("admin key empty", func(t *testing.T) {
		srv := testutil.Start(t, nil)
		if status, body := getDebugAuth(t, srv, ""); status != http.StatusNotFound {
			t.Fatalf("without admin.key: %d %s, want 404", status, body)
		}
		if status, _ := getDebugAuth(t, srv, "anything"); status != http.StatusNotFound {
			t.Fatalf("without admin.key, with a key header: %d, want 404", status)
		}
	})
}
