package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// TestAuthKeyJWKSUnknownKidSaysWhenItIsPickedUp: an unknown kid within
// min_refetch of the last fetch is refused with the fetch state (when the
// endpoint was fetched, when it is fetched next); that fetch happens then
// without further traffic, and the token is accepted after it.
func TestAuthKeyJWKSUnknownKidSaysWhenItIsPickedUp(t *testing.T) {
	t.Parallel()
	k := keys()
	jwks := newEndpoint(t, http.StatusOK, jwksBody(jwkOfRSA(&k.rsaA.PublicKey, "a", "RS256")))
	cfg := testutil.Config()
	cfg.Admin.Key = "admin-key-for-tests"
	cfg.Client.Token.Keys = []config.Key{{JWKSURL: jwks.URL, MinRefetch: config.Duration(3 * time.Second)}}
	srv := testutil.Start(t, cfg)

	tokB := sign(t, jwt.SigningMethodRS256, k.rsaB, claimsFor("kid-b"), map[string]any{"kid": "b"})
	// The first refusal may or may not fetch (depending on how long the
	// start took); the second, right after, is within min_refetch.
	expectClosed(t, connectWith(t, srv, tokB, nil), 3500, "unknown_kid", `"b"`)
	o := connectWith(t, srv, tokB, nil)
	expectClosed(t, o, 3500, "unknown_kid", `no RS256 key has kid "b"; known: a; jwks fetched`, "ago, next fetch in")
	expectLog(t, srv, "reason=unknown_kid", "is fetched at most once per 3s for unknown kids", "is picked up at", "then this token is accepted")
	fetches := jwks.requests()

	// /debug/auth shows the endpoint's state and its next fetch.
	status, body := getDebugAuth(t, srv, cfg.Admin.Key)
	var dbg struct {
		Providers []struct {
			Next string   `json:"next_fetch"`
			Kids []string `json:"kids"`
		} `json:"providers"`
	}
	if err := json.Unmarshal(body, &dbg); status != http.StatusOK || err != nil || len(dbg.Providers) != 1 ||
		dbg.Providers[0].Next == "" || strings.Join(dbg.Providers[0].Kids, ",") != "a" {
		t.Fatalf("/debug/auth providers: %d %s", status, body)
	}

	// The issuer publishes b; nothing else happens, yet Herald fetches
	// when min_refetch ends, as the refusal said.
	jwks.set(http.StatusOK, jwksBody(jwkOfRSA(&k.rsaA.PublicKey, "a", "RS256"), jwkOfRSA(&k.rsaB.PublicKey, "b", "RS256")))
	if !eventually(6*time.Second, func() bool { return jwks.requests() > fetches }) {
		t.Fatalf("no fetch after min_refetch although an unknown kid was refused (%d requests)", jwks.requests())
	}
	if o := connectWith(t, srv, tokB, nil); !o.connected() {
		t.Fatalf("kid b after the announced fetch: %v", o)
	}
	if n := jwks.requests(); n != fetches+1 {
		t.Fatalf("%d fetches, want %d: the connect should use the keys fetched on schedule", n, fetches+1)
	}
}
