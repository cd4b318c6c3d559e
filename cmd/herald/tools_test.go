package main

// Tests of the token tools (docs/auth.md, "Checking a token: herald explain,
// herald token, herald keys"), run in-process through run().

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhub/herald/internal/auth"
)

const toolSecret = "tools-test-secret-0123456789abcdef"

// tool runs the CLI in-process with an empty environment.
func tool(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, []string{}, &out, &errb)
	return code, out.String(), errb.String()
}

func mint(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

func TestToolExplainAccepted(t *testing.T) {
	t.Parallel()
	tok := mint(t, toolSecret, jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	code, out, errOut := tool(t, "explain", "--hmac-secret", toolSecret, tok)
	if code != 0 {
		t.Fatalf("explain of a valid token: exit %d\n%s%s", code, out, errOut)
	}
	mustContain(t, "explain output", out, "PASS  size", "PASS  structure", "alg HS256", "PASS  key", "PASS  signature", "PASS  exp", `"42"`, "verdict: accepted")
	if strings.Contains(out, "FAIL") {
		t.Fatalf("a valid token has FAIL lines:\n%s", out)
	}
	if strings.Contains(out+errOut, toolSecret) {
		t.Fatalf("explain prints the secret")
	}
}

func TestToolExplainExpired(t *testing.T) {
	t.Parallel()
	tok := mint(t, toolSecret, jwt.MapClaims{"sub": "42", "exp": time.Now().Add(-time.Hour).Unix()})
	code, out, _ := tool(t, "explain", "--hmac-secret", toolSecret, tok)
	if code != 1 {
		t.Fatalf("explain of an expired token: exit %d, want 1\n%s", code, out)
	}
	mustContain(t, "explain output", out, "PASS  signature", "FAIL  exp", "token_expired", "hint:", "verdict: refused")
	// The hint line follows the failed check.
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "FAIL  exp") {
			if i+1 >= len(lines) || !strings.Contains(lines[i+1], "hint:") {
				t.Fatalf("no hint line after %q:\n%s", l, out)
			}
		}
	}
}

func TestToolExplainWrongSecret(t *testing.T) {
	t.Parallel()
	tok := mint(t, "some-other-secret-0123456789abcdef", jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix()})
	code, out, _ := tool(t, "explain", "--hmac-secret", toolSecret, tok)
	if code != 1 {
		t.Fatalf("explain with the wrong secret: exit %d, want 1\n%s", code, out)
	}
	sum := sha256.Sum256([]byte(toolSecret))
	mustContain(t, "explain output", out, "FAIL  signature", "signature_invalid", hex.EncodeToString(sum[:])[:8], "hint:", "(unverified claims)", "verdict: refused")
}

func TestToolExplainRefusals(t *testing.T) {
	t.Parallel()
	none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiI0MiJ9."
	for name, tc := range map[string]struct {
		token string
		want  []string
	}{
		"alg none":  {none, []string{"FAIL  key", "alg_not_allowed"}},
		"malformed": {"not-a-jwt", []string{"FAIL  structure", "token_malformed"}},
		"subscription token used to connect": {
			mint(t, toolSecret, jwt.MapClaims{"sub": "42", "channel": "news", "exp": time.Now().Add(time.Hour).Unix()}),
			[]string{"FAIL  channel", "claim_invalid"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out, _ := tool(t, "explain", "--hmac-secret", toolSecret, tc.token)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, out)
			}
			mustContain(t, "explain output", out, append(tc.want, "verdict: refused")...)
		})
	}
	if code, _, errOut := tool(t, "explain", "--hmac-secret", toolSecret); code != 2 || !strings.Contains(errOut, "usage") {
		t.Fatalf("explain without a token: exit %d %q, want 2 with usage", code, errOut)
	}
}

func TestToolExplainSubscription(t *testing.T) {
	t.Parallel()
	tok := mint(t, toolSecret, jwt.MapClaims{"sub": "42", "channel": "news", "exp": time.Now().Add(time.Hour).Unix()})
	code, out, _ := tool(t, "explain", "--hmac-secret", toolSecret, "--subscription", "--channel", "news", "--user", "42", tok)
	if code != 0 {
		t.Fatalf("explain --subscription of a matching token: exit %d\n%s", code, out)
	}
	mustContain(t, "explain output", out, "PASS  channel", `"news"`, "verdict: accepted")

	code, out, _ = tool(t, "explain", "--hmac-secret", toolSecret, "--subscription", "--channel", "sports", "--user", "42", tok)
	if code != 1 {
		t.Fatalf("explain --subscription for another channel: exit %d, want 1\n%s", code, out)
	}
	mustContain(t, "explain output", out, "FAIL  channel", "subscription_token_mismatch", "verdict: refused")

	code, out, _ = tool(t, "explain", "--hmac-secret", toolSecret, "--subscription", "--channel", "news", "--user", "43", tok)
	if code != 1 {
		t.Fatalf("explain --subscription for another user: exit %d, want 1\n%s", code, out)
	}
	// Each check is shown passed or failed: the refusal must be explained by a FAIL line.
	mustContain(t, "explain output for another user", out, "FAIL", "subscription_token_mismatch", "verdict: refused")

	conn := mint(t, toolSecret, jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix()})
	code, out, _ = tool(t, "explain", "--hmac-secret", toolSecret, "--subscription", "--channel", "news", "--user", "42", conn)
	if code != 1 {
		t.Fatalf("explain --subscription of a connection token: exit %d, want 1\n%s", code, out)
	}
	mustContain(t, "explain output", out, "FAIL  channel", "verdict: refused")
}

func TestToolExplainWithConfigFile(t *testing.T) {
	t.Parallel()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	dir := t.TempDir()
	pemPath := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "herald.yaml")
	yaml := "client:\n  token:\n    keys:\n      - { kid: app-1, alg: RS256, file: " + pemPath + " }\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	tk := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "7", "exp": time.Now().Add(time.Hour).Unix()})
	tk.Header["kid"] = "app-1"
	tok, err := tk.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := tool(t, "explain", "--config", cfgPath, tok)
	if code != 0 {
		t.Fatalf("explain --config: exit %d\n%s%s", code, out, errOut)
	}
	sum := sha256.Sum256(der)
	mustContain(t, "explain output", out, "kid app-1", hex.EncodeToString(sum[:])[:8], "verdict: accepted")

	code, out, _ = tool(t, "keys", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("keys --config: exit %d", code)
	}
	mustContain(t, "keys output", out, "RS256", hex.EncodeToString(sum[:])[:8], "kid=app-1")
}

func TestToolToken(t *testing.T) {
	t.Parallel()
	code, out, errOut := tool(t, "token", "--hmac-secret", toolSecret, "--user", "42", "--ttl", "1h")
	if code != 0 {
		t.Fatalf("token: exit %d %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("token output %q is not one compact JWT", out)
	}
	if code, eout, _ := tool(t, "explain", "--hmac-secret", toolSecret, tok); code != 0 || !strings.Contains(eout, "verdict: accepted") {
		t.Fatalf("explain of a minted token: exit %d\n%s", code, eout)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(toolSecret), nil },
		jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatalf("minted token does not verify with the secret: %v", err)
	}
	if claims["sub"] != "42" {
		t.Fatalf("sub %v, want the string \"42\"", claims["sub"])
	}
	exp, _ := claims["exp"].(float64)
	if d := time.Until(time.Unix(int64(exp), 0)); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("exp in %s, want about 1h", d)
	}
	if _, ok := claims["channel"]; ok {
		t.Fatalf("a connection token has a channel claim: %v", claims)
	}

	t.Run("channel", func(t *testing.T) {
		code, out, errOut := tool(t, "token", "--hmac-secret", toolSecret, "--user", "42", "--channel", "news", "--info", `{"name":"Ann"}`)
		if code != 0 {
			t.Fatalf("token --channel: exit %d %s", code, errOut)
		}
		tok := strings.TrimSpace(out)
		claims := jwt.MapClaims{}
		if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(toolSecret), nil }); err != nil {
			t.Fatal(err)
		}
		if claims["channel"] != "news" || claims["sub"] != "42" {
			t.Fatalf("claims %v, want channel news and sub 42", claims)
		}
		if info, _ := claims["info"].(map[string]any); info["name"] != "Ann" {
			t.Fatalf("info claim %v", claims["info"])
		}
		if code, eout, _ := tool(t, "explain", "--hmac-secret", toolSecret, "--subscription", "--channel", "news", "--user", "42", tok); code != 0 {
			t.Fatalf("explain --subscription of a minted subscription token: exit %d\n%s", code, eout)
		}
	})
	t.Run("no secret", func(t *testing.T) {
		code, out, errOut := tool(t, "token", "--user", "42")
		if code != 2 || out != "" {
			t.Fatalf("token without a secret: exit %d, stdout %q; want 2 and nothing on stdout", code, out)
		}
		mustContain(t, "stderr", errOut, "no HMAC secret")
	})
	t.Run("bad info", func(t *testing.T) {
		if code, _, errOut := tool(t, "token", "--hmac-secret", toolSecret, "--info", "{nope"); code != 2 || !strings.Contains(errOut, "--info") {
			t.Fatalf("token --info with bad JSON: exit %d %q", code, errOut)
		}
	})
}

func TestToolKeys(t *testing.T) {
	t.Parallel()
	code, out, _ := tool(t, "keys", "--hmac-secret", toolSecret)
	if code != 0 {
		t.Fatalf("keys: exit %d", code)
	}
	sum := sha256.Sum256([]byte(toolSecret))
	fp := hex.EncodeToString(sum[:])[:8]
	mustContain(t, "keys output", out, "connection tokens:", fp, "HS256")
	if strings.Contains(out, toolSecret) {
		t.Fatalf("keys prints the secret")
	}
	code, out, _ = tool(t, "keys")
	if code != 0 || !strings.Contains(out, "(no keys)") {
		t.Fatalf("keys without any key: exit %d\n%s", code, out)
	}
}

func TestToolConfigKeys(t *testing.T) {
	t.Parallel()
	code, out, _ := tool(t, "config-keys")
	if code != 0 {
		t.Fatalf("config-keys: exit %d", code)
	}
	mustContain(t, "config-keys output", out, "| `client.token.keys[].jwks_url` |", "| `client.token_sources` |")
}

func TestProxyCheck(t *testing.T) {
	answer := `{"result":{"user":"56","channels":["news"]}}`
	var gotCookie string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotCookie = r.Header.Get("Cookie")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	code := run([]string{"proxy-check", "--endpoint", srv.URL, "--header", "Cookie: session=secret-value"}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "decision: accepted") || !strings.Contains(out.String(), `user "56"`) {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if gotCookie != "session=secret-value" || strings.Contains(out.String(), "secret-value") {
		t.Fatalf("the cookie must be forwarded (%q) and redacted in the output:\n%s", gotCookie, out.String())
	}
	answer = `{"data":{"result":{"user":"56"}}}`
	out.Reset()
	code = run([]string{"proxy-check", "--endpoint", srv.URL}, nil, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "FAIL proxy_bad_response") || !strings.Contains(out.String(), `"data"`) || !strings.Contains(out.String(), "decision: refused") {
		t.Fatalf("wrapped answer: exit %d\n%s", code, out.String())
	}
	if code := run([]string{"proxy-check"}, nil, &out, &errb); code != 2 {
		t.Fatalf("no endpoint: exit %d", code)
	}
}

func TestToolExplainAnyCableToken(t *testing.T) {
	appSecret := "the-app-anycable-secret-0123456789"
	good, _ := auth.SignHS256(appSecret, map[string]any{"ext": `{"user_id":"42"}`, "exp": time.Now().Add(time.Hour).Unix()})
	code, out, _ := tool(t, "explain", "--hmac-secret", appSecret, good)
	mustContain(t, "accepted AnyCable token", out, "AnyCable token (ext claim)", `PASS  ext        identifiers {"user_id":"42"}`, `PASS  user       "42"`, "verdict: accepted")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	// The seed case: the app signs with one secret, Herald verifies with another.
	code, out, _ = tool(t, "explain", "--hmac-secret", "herald-has-another-secret-0123456789", good)
	mustContain(t, "wrong secret", out, "FAIL  signature  signature_invalid", auth.Fingerprint([]byte("herald-has-another-secret-0123456789")),
		"ANYCABLE_JWT_SECRET", "sha256sum | cut -c1-8", "verdict: refused")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	expired, _ := auth.SignHS256(appSecret, map[string]any{"ext": `{"user_id":"42"}`, "exp": time.Now().Add(-time.Hour).Unix()})
	_, out, _ = tool(t, "explain", "--hmac-secret", appSecret, expired)
	mustContain(t, "expired", out, "FAIL  exp        token_expired", "token_expired disconnect", "verdict: refused")
	noExt, _ := auth.SignHS256(appSecret, map[string]any{"sub": "42"})
	_, out, _ = tool(t, "explain", "--anycable", "--hmac-secret", appSecret, noExt)
	mustContain(t, "no ext", out, "FAIL  ext        claim_invalid", "verdict: refused")
}
