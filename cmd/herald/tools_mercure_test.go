package main

// Tests of herald keys and herald explain for Mercure keys and tokens, for
// JWKS keys, and of the warning about quoted secrets.

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
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

const (
	toolPubSecret = "tools-mercure-publisher-secret-0123456789"
	toolSubSecret = "tools-mercure-subscriber-secret-0123456789"
)

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestToolKeysAndExplainCoverMercure(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "mercure:\n  publisher:\n    secret: "+toolPubSecret+"\n  subscriber:\n    secret: "+toolSubSecret+"\n")
	code, out, errOut := tool(t, "keys", "--config", cfg)
	if code != 0 {
		t.Fatalf("keys: exit %d %s", code, errOut)
	}
	mustContain(t, "keys output", out, "mercure publisher tokens:", auth.Fingerprint([]byte(toolPubSecret)),
		"mercure subscriber tokens:", auth.Fingerprint([]byte(toolSubSecret)))

	pub := mint(t, toolPubSecret, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
	code, out, _ = tool(t, "explain", "--config", cfg, pub)
	if code != 0 {
		t.Fatalf("explain of a publisher token: exit %d\n%s", code, out)
	}
	mustContain(t, "explain output", out, "Mercure publisher token", "PASS  signature", "publish [*]", "verdict: accepted")

	// A subscriber token explained as a publisher token: refused, and why.
	sub := mint(t, toolSubSecret, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"*"}}})
	code, out, _ = tool(t, "explain", "--config", cfg, "--mercure", "publisher", sub)
	if code != 1 {
		t.Fatalf("explain --mercure publisher of a subscriber token: exit %d\n%s", code, out)
	}
	mustContain(t, "explain output", out, "FAIL  signature", auth.Fingerprint([]byte(toolPubSecret)), "verdict: refused")
	code, out, _ = tool(t, "explain", "--config", cfg, sub)
	if code != 0 {
		t.Fatalf("explain of a subscriber token: exit %d\n%s", code, out)
	}
	mustContain(t, "explain output", out, "Mercure subscriber token", "verdict: accepted")

	// --hmac-secret alone verifies Mercure tokens too, as on a development server.
	code, out, _ = tool(t, "explain", "--hmac-secret", toolSecret, mint(t, toolSecret, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}}))
	if code != 0 {
		t.Fatalf("explain --hmac-secret of a Mercure token: exit %d\n%s", code, out)
	}
	if strings.Contains(out, toolPubSecret) || strings.Contains(out, toolSubSecret) {
		t.Fatal("a secret is printed")
	}
}

func TestToolKeysWarnsAboutQuotedSecrets(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "client:\n  token:\n    hmac_secret_key: \"'"+toolSecret+"'\"\n")
	code, out, _ := tool(t, "keys", "--config", cfg)
	if code != 0 {
		t.Fatalf("keys: exit %d", code)
	}
	mustContain(t, "keys output", out, "starts and ends with a quote", "without the quotes its fingerprint is "+auth.Fingerprint([]byte(toolSecret)))
}

// TestToolExplainJWKSSaysFetchedNow: a token of a JWKS key is accepted by
// explain with the keys it fetched; explain says so, and what a running
// server with an older copy does.
func TestToolExplainJWKSSaysFetchedNow(t *testing.T) {
	t.Parallel()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk := map[string]any{"kty": "RSA", "kid": "new-1", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(priv.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(priv.E)).Bytes())}
	body, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	cfg := writeConfig(t, "client:\n  token:\n    keys:\n      - { jwks_url: "+srv.URL+" }\n")
	tk := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "7", "exp": time.Now().Add(time.Hour).Unix()})
	tk.Header["kid"] = "new-1"
	tok, _ := tk.SignedString(priv)
	code, out, _ := tool(t, "explain", "--config", cfg, tok)
	if code != 0 {
		t.Fatalf("explain: exit %d\n%s", code, out)
	}
	mustContain(t, "explain output", out, `PASS  jwks`, `kid "new-1" is in jwks `+srv.URL, "a running server whose copy predates it refuses this token (unknown_kid",
		"verdict: accepted")
}
