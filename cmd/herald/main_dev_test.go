package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhub/herald/internal/auth"
)

// TestServeDevOneSecretServesEveryDoor: `herald serve --dev --hmac-secret S`
// verifies Mercure tokens signed with S too, and the banner says which key
// verifies what.
func TestServeDevOneSecretServesEveryDoor(t *testing.T) {
	bin := buildBinary(t)
	const secret = "dev-secret-for-every-door-0123456789abcdef"
	p := start(t, bin, nil, "serve", "--dev", "--hmac-secret", secret, "--listen", "127.0.0.1:0")
	b := p.banner(t)
	fp := auth.Fingerprint([]byte(secret))
	if !strings.Contains(b["Keys"], "HMAC secret "+fp+" verifies every token") || !strings.Contains(b["Keys"], "Mercure publisher and subscriber") {
		t.Fatalf("banner Keys line %q", b["Keys"])
	}
	if _, generated := b["HMAC secret"]; generated {
		t.Fatalf("the banner shows a generated secret although one was given: %v", b)
	}
	hub := strings.Fields(b["Mercure hub"])[0]
	pub := mint(t, secret, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
	req, _ := http.NewRequest(http.MethodPost, hub, strings.NewReader(url.Values{"topic": {"https://example.com/x"}, "data": {"hi"}}.Encode()))
	req.Header.Set("Authorization", "Bearer "+pub)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Mercure publish with a token signed with --hmac-secret: %d", resp.StatusCode)
	}
	if strings.Contains(p.stderr.String(), secret) {
		t.Fatal("the secret is in the log")
	}
}
