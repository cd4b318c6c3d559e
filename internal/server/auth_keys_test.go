package server_test

// End-to-end tests of verification keys (docs/auth.md, "Keys"): algorithms,
// pinning and the classic JWT attacks, kid selection, HMAC rotation, JWKS
// endpoints, reloads and separate subscription-token keys.

import (
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

func TestAuthKeyAlgorithms(t *testing.T) {
	t.Parallel()
	k := keys()
	dir := t.TempDir()
	cfg := testutil.Config()
	cfg.Client.Token.Keys = []config.Key{
		{Alg: "RS256", File: writeFile(t, dir, "rsa.pem", publicPEM(t, &k.rsaA.PublicKey))},
		{Alg: "PS256", Value: string(publicPEM(t, &k.rsaB.PublicKey))},
		{Alg: "ES256", File: writeFile(t, dir, "ec.pem", publicPEM(t, &k.ec.PublicKey))},
		{Alg: "EdDSA", Value: string(publicPEM(t, k.ed.Public()))},
	}
	srv := testutil.Start(t, cfg)
	for _, tc := range []struct {
		name   string
		method jwt.SigningMethod
		priv   any
		pub    any
	}{
		{"RS256 from a PEM file", jwt.SigningMethodRS256, k.rsaA, &k.rsaA.PublicKey},
		{"PS256", jwt.SigningMethodPS256, k.rsaB, &k.rsaB.PublicKey},
		{"ES256", jwt.SigningMethodES256, k.ec, &k.ec.PublicKey},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed, k.ed.Public()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "alg-" + tc.method.Alg()
			tok := sign(t, tc.method, tc.priv, claimsFor(user), nil)
			if o := connectWith(t, srv, tok, nil); !o.connected() {
				t.Fatalf("%s token refused: %v", tc.method.Alg(), o)
			}
			if l := connectedLine(t, srv, user); !strings.Contains(l, "key_fingerprint="+fingerprint(t, tc.pub)) {
				t.Fatalf("client connected line lacks key_fingerprint=%s: %s", fingerprint(t, tc.pub), l)
			}
			neverLogged(t, srv, tok)
		})
	}
}

// jwkOfRSA is the public JWK of an RSA key.
func jwkOfRSA(pub *rsa.PublicKey, kid, alg string) map[string]any {
	m := map[string]any{
		"kty": "RSA", "use": "sig",
		"n": b64(pub.N.Bytes()),
		"e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
	if kid != "" {
		m["kid"] = kid
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

// endpoint is an HTTP server on 127.0.0.1 whose answer tests change, and
// which counts the requests it gets.
type endpoint struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	body   string
	hits   int
}

func newEndpoint(t *testing.T, status int, body string) *endpoint {
	e := &endpoint{status: status, body: body}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hits++
		status, body := e.status, e.body
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) set(status int, body string) {
	e.mu.Lock()
	e.status, e.body = status, body
	e.mu.Unlock()
}

func (e *endpoint) requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits
}

func jwksBody(jwks ...map[string]any) string {
	b, _ := json.Marshal(map[string]any{"keys": jwks})
	return string(b)
}

func TestAuthKeyPinningAndAttacks(t *testing.T) {
	t.Parallel()
	k := keys()
	pubPEM := publicPEM(t, &k.rsaA.PublicKey)
	cfg := testutil.Config()
	cfg.Client.Token.HMACSecretKey = "" // only the RSA key
	cfg.Client.Token.Keys = []config.Key{{Alg: "RS256", File: writeFile(t, t.TempDir(), "rsa.pem", pubPEM)}}
	srv := testutil.Start(t, cfg)

	t.Run("RS256 accepted", func(t *testing.T) {
		if o := connectWith(t, srv, sign(t, jwt.SigningMethodRS256, k.rsaA, claimsFor("pin-ok"), nil), nil); !o.connected() {
			t.Fatalf("RS256 token refused: %v", o)
		}
	})
	t.Run("PS256 token against an RS256 key", func(t *testing.T) {
		tok := sign(t, jwt.SigningMethodPS256, k.rsaA, claimsFor("pin-ps"), nil)
		expectClosed(t, connectWith(t, srv, tok, nil), 3500, "invalid token", "alg_not_allowed", "PS256")
	})
	t.Run("HMAC signed with the public key", func(t *testing.T) {
		for _, secret := range [][]byte{pubPEM, []byte(strings.TrimSpace(string(pubPEM)))} {
			tok := sign(t, jwt.SigningMethodHS256, secret, claimsFor("pin-hs"), nil)
			expectClosed(t, connectWith(t, srv, tok, nil), 3500, "alg_not_allowed", "HS256")
		}
	})
	t.Run("alg none", func(t *testing.T) {
		tok := unsignedToken(claimsFor("pin-none"))
		expectClosed(t, connectWith(t, srv, tok, nil), 3500, "alg_not_allowed")
		expectClosed(t, connectWith(t, srv, "", bearer(tok)), 3500, "alg_not_allowed")
	})
	t.Run("jku x5u jwk headers are ignored", func(t *testing.T) {
		attacker := k.rsaAttacker
		evil := newEndpoint(t, http.StatusOK, jwksBody(jwkOfRSA(&attacker.PublicKey, "evil", "RS256")))
		tok := sign(t, jwt.SigningMethodRS256, attacker, claimsFor("pin-evil"), map[string]any{
			"kid": "evil",
			"jwk": jwkOfRSA(&attacker.PublicKey, "evil", "RS256"),
			"jku": evil.URL + "/jwks.json",
			"x5u": evil.URL + "/cert.pem",
		})
		expectClosed(t, connectWith(t, srv, tok, nil), 3500, "signature_invalid", fingerprint(t, &k.rsaA.PublicKey))
		if n := evil.requests(); n != 0 {
			t.Fatalf("the server fetched the attacker's URL %d times", n)
		}
		// Without kid, too.
		tok = sign(t, jwt.SigningMethodRS256, attacker, claimsFor("pin-evil2"), map[string]any{
			"jwk": jwkOfRSA(&attacker.PublicKey, "", "RS256"),
		})
		expectClosed(t, connectWith(t, srv, tok, nil), 3500, "signature_invalid")
	})
	for _, user := range []string{"pin-ps", "pin-hs", "pin-none", "pin-evil", "pin-evil2"} {
		if l := logLine(srv, `msg="client connected"`, "user="+user+" "); l != "" {
			t.Errorf("a refused token connected: %s", l)
		}
	}
}

func TestAuthKeyKid(t *testing.T) {
	t.Parallel()
	k := keys()
	cfg := testutil.Config()
	cfg.Client.Token.Keys = []config.Key{
		{Kid: "k1", Alg: "RS256", Value: string(publicPEM(t, &k.rsaA.PublicKey))},
		{Kid: "k2", Alg: "RS256", Value: string(publicPEM(t, &k.rsaB.PublicKey))},
	}
	srv := testutil.Start(t, cfg)
	t.Run("kid selects the key", func(t *testing.T) {
		for _, tc := range []struct {
			kid  string
			priv *rsa.PrivateKey
		}{{"k1", k.rsaA}, {"k2", k.rsaB}} {
			user := "kid-" + tc.kid
			tok := sign(t, jwt.SigningMethodRS256, tc.priv, claimsFor(user), map[string]any{"kid": tc.kid})
			if o := connectWith(t, srv, tok, nil); !o.connected() {
				t.Fatalf("kid %s: %v", tc.kid, o)
			}
			if l := connectedLine(t, srv, user); !strings.Contains(l, "key_fingerprint="+fingerprint(t, &tc.priv.PublicKey)) {
				t.Fatalf("kid %s verified with the wrong key: %s", tc.kid, l)
			}
		}
	})
	t.Run("kid names the other key", func(t *testing.T) {
		tok := sign(t, jwt.SigningMethodRS256, k.rsaB, claimsFor("kid-cross"), map[string]any{"kid": "k1"})
		o := connectWith(t, srv, tok, nil)
		expectClosed(t, o, 3500, "signature_invalid", fingerprint(t, &k.rsaA.PublicKey))
		if strings.Contains(o.Reason, fingerprint(t, &k.rsaB.PublicKey)) {
			t.Fatalf("kid k1 must try only k1's key: %q", o.Reason)
		}
	})
	t.Run("unknown kid", func(t *testing.T) {
		tok := sign(t, jwt.SigningMethodRS256, k.rsaA, claimsFor("kid-unknown"), map[string]any{"kid": "k3"})
		expectClosed(t, connectWith(t, srv, tok, nil), 3500, "unknown_kid", "k3", "k1,k2")
		expectLog(t, srv, "reason=unknown_kid", "kid=k3")
	})
}

func TestAuthKeyPreviousHMACSecret(t *testing.T) {
	t.Parallel()
	const current, previous = "current-secret-0123456789abcdef0123", "previous-secret-0123456789abcdef012"
	validUntil := time.Now().Add(2 * time.Second).Unix()
	cfg := testutil.Config()
	cfg.Client.Token.HMACSecretKey = current
	cfg.Client.Token.HMACPreviousSecretKey = previous
	cfg.Client.Token.HMACPreviousSecretKeyValidUntil = validUntil
	srv := testutil.Start(t, cfg)

	if o := connectWith(t, srv, hs(t, previous, claimsFor("prev-before")), nil); !o.connected() {
		t.Fatalf("previous secret before valid_until: %v", o)
	}
	if o := connectWith(t, srv, hs(t, current, claimsFor("cur-before")), nil); !o.connected() {
		t.Fatalf("current secret: %v", o)
	}
	time.Sleep(time.Until(time.Unix(validUntil, 0).Add(1100 * time.Millisecond)))

	if o := connectWith(t, srv, hs(t, current, claimsFor("cur-after")), nil); !o.connected() {
		t.Fatalf("current secret after valid_until: %v", o)
	}
	tok := hs(t, previous, claimsFor("prev-after"))
	o := connectWith(t, srv, tok, nil)
	expectClosed(t, o, 3500, "invalid token", "signature_invalid")
	// The detail must say why a secret that worked a moment ago fails now.
	if !strings.Contains(o.Reason, "stopped verifying") || !strings.Contains(o.Reason, secretFingerprint(previous)) {
		t.Errorf("previous secret after valid_until: reason %q does not say that key %s stopped verifying", o.Reason, secretFingerprint(previous))
	}
	neverLogged(t, srv, current, previous, tok)
}

func TestAuthKeyJWKSRefetchOnUnknownKid(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 30s for the documented refetch interval")
	}
	t.Parallel()
	k := keys()
	jwks := newEndpoint(t, http.StatusOK, jwksBody(jwkOfRSA(&k.rsaA.PublicKey, "a", "RS256")))
	cfg := testutil.Config()
	cfg.Client.Token.Keys = []config.Key{{JWKSURL: jwks.URL + "/jwks.json", RefreshInterval: config.Duration(10 * time.Minute)}}
	start := time.Now()
	srv := testutil.Start(t, cfg)

	tokA := sign(t, jwt.SigningMethodRS256, k.rsaA, claimsFor("jwks-a"), map[string]any{"kid": "a"})
	if o := connectWith(t, srv, tokA, nil); !o.connected() {
		t.Fatalf("token of a JWKS key: %v", o)
	}
	if l := connectedLine(t, srv, "jwks-a"); !strings.Contains(l, "key_fingerprint="+fingerprint(t, &k.rsaA.PublicKey)) {
		t.Fatalf("client connected line: %s", l)
	}
	if n := jwks.requests(); n != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", n)
	}

	// The issuer rotates: only kid b is published now.
	jwks.set(http.StatusOK, jwksBody(jwkOfRSA(&k.rsaB.PublicKey, "b", "RS256")))
	tokB := sign(t, jwt.SigningMethodRS256, k.rsaB, claimsFor("jwks-b"), map[string]any{"kid": "b"})
	// Within 30 s of the last fetch an unknown kid does not fetch again (docs: at most once per 30 s).
	expectClosed(t, connectWith(t, srv, tokB, nil), 3500, "unknown_kid", `"b"`, "a")
	if n := jwks.requests(); n != 1 {
		t.Fatalf("JWKS fetched %d times within 30s, want 1", n)
	}

	time.Sleep(time.Until(start.Add(31 * time.Second)))
	tokB = sign(t, jwt.SigningMethodRS256, k.rsaB, claimsFor("jwks-b2"), map[string]any{"kid": "b"})
	if o := connectWith(t, srv, tokB, nil); !o.connected() {
		t.Fatalf("token with the new kid after 30s (refetch on unknown kid): %v", o)
	}
	if n := jwks.requests(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (start, unknown kid)", n)
	}
	// kid a is gone with the refetch.
	tokA2 := sign(t, jwt.SigningMethodRS256, k.rsaA, claimsFor("jwks-a2"), map[string]any{"kid": "a"})
	expectClosed(t, connectWith(t, srv, tokA2, nil), 3500, "unknown_kid", `"a"`, "b")
	neverLogged(t, srv, tokA, tokB, tokA2)
}

func TestAuthKeyJWKSBackgroundRefresh(t *testing.T) {
	t.Parallel()
	k := keys()
	jwks := newEndpoint(t, http.StatusOK, jwksBody(jwkOfRSA(&k.rsaA.PublicKey, "a", "")))
	cfg := testutil.Config()
	cfg.Client.Token.Keys = []config.Key{{JWKSURL: jwks.URL, RefreshInterval: config.Duration(500 * time.Millisecond)}}
	srv := testutil.Start(t, cfg)

	tokA := sign(t, jwt.SigningMethodRS256, k.rsaA, claimsFor("bg-a"), map[string]any{"kid": "a"})
	if o := connectWith(t, srv, tokA, nil); !o.connected() {
		t.Fatalf("token of a JWKS key (alg from the key family): %v", o)
	}
	jwks.set(http.StatusOK, jwksBody(jwkOfRSA(&k.rsaB.PublicKey, "b", "")))
	var last outcome
	if !eventually(wait, func() bool {
		last = connectWith(t, srv, sign(t, jwt.SigningMethodRS256, k.rsaB, claimsFor("bg-b"), map[string]any{"kid": "b"}), nil)
		return last.connected()
	}) {
		t.Fatalf("new kid not accepted after refreshes: %v", last)
	}
	t.Run("old kid refused", func(t *testing.T) {
		tok := sign(t, jwt.SigningMethodRS256, k.rsaA, claimsFor("bg-a2"), map[string]any{"kid": "a"})
		expectClosed(t, connectWith(t, srv, tok, nil), 3500, "unknown_kid")
	})
	t.Run("a token verified before the withdrawal is refused too", func(t *testing.T) {
		// The very token accepted with kid a: its key was withdrawn from the JWKS.
		o := connectWith(t, srv, tokA, nil)
		if o.connected() {
			t.Fatalf("a token of a withdrawn JWKS key is still accepted (verified-signature cache not cleared on JWKS change)")
		}
		expectClosed(t, o, 3500, "unknown_kid")
	})
	t.Run("endpoint fails later: last good set kept", func(t *testing.T) {
		jwks.set(http.StatusInternalServerError, "boom")
		n := jwks.requests()
		if !eventually(wait, func() bool { return jwks.requests() >= n+2 }) {
			t.Fatalf("no refresh attempts")
		}
		tok := sign(t, jwt.SigningMethodRS256, k.rsaB, claimsFor("bg-b3"), map[string]any{"kid": "b"})
		if o := connectWith(t, srv, tok, nil); !o.connected() {
			t.Fatalf("the last good JWKS must be kept when the endpoint fails: %v", o)
		}
	})
}

func TestAuthKeyJWKSDown(t *testing.T) {
	t.Parallel()
	k := keys()
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL + "/jwks.json"
	down.Close()
	cfg := testutil.Config()
	cfg.Client.Token.Keys = []config.Key{{JWKSURL: url}}
	srv := testutil.Start(t, cfg)

	tok := sign(t, jwt.SigningMethodRS256, k.rsaA, claimsFor("jwks-down"), map[string]any{"kid": "a"})
	c := dialWS(t, srv, "", nil)
	o := c.connect(tok)
	expectError(t, o, 100, "jwks_unavailable")
	if e := o.Reply["error"].(map[string]any); e["temporary"] != true {
		t.Fatalf("jwks_unavailable must be temporary (the SDK retries): %v", e)
	}
	expectLog(t, srv, "reason=jwks_unavailable")
	// HMAC tokens still work while the endpoint is down.
	if o := connectWith(t, srv, testutil.UserToken(t, "hmac-while-down"), nil); !o.connected() {
		t.Fatalf("HMAC token while the JWKS is down: %v", o)
	}
}

func TestAuthKeyFileReload(t *testing.T) {
	t.Parallel()
	k := keys()
	path := writeFile(t, t.TempDir(), "signer.pem", publicPEM(t, &k.rsaA.PublicKey))
	cfg := testutil.Config()
	cfg.Client.Token.Keys = []config.Key{{Alg: "RS256", File: path}}
	srv := testutil.Start(t, cfg)

	tokA := sign(t, jwt.SigningMethodRS256, k.rsaA, claimsFor("file-a"), nil)
	if o := connectWith(t, srv, tokA, nil); !o.connected() {
		t.Fatalf("key from file: %v", o)
	}

	replaceFile(t, path, publicPEM(t, &k.rsaB.PublicKey))
	var last outcome
	if !eventually(8*time.Second, func() bool {
		last = connectWith(t, srv, sign(t, jwt.SigningMethodRS256, k.rsaB, claimsFor("file-b"), nil), nil)
		return last.connected()
	}) {
		t.Fatalf("the new key of the changed file was not picked up: %v", last)
	}
	expectLog(t, srv, "keys reloaded")
	tokA2 := sign(t, jwt.SigningMethodRS256, k.rsaA, claimsFor("file-a2"), nil)
	expectClosed(t, connectWith(t, srv, tokA2, nil), 3500, "signature_invalid", fingerprint(t, &k.rsaB.PublicKey))
	expectClosed(t, connectWith(t, srv, tokA, nil), 3500, "signature_invalid") // cached before: keys changed

	replaceFile(t, path, []byte("this is not a key\n"))
	if !eventually(8*time.Second, func() bool { return logLine(srv, "key reload failed") != "" }) {
		t.Fatalf("no \"key reload failed\" log line after a garbage key file:\n%s", srv.Logs.String())
	}
	if l := logLine(srv, "key reload failed"); !strings.Contains(l, path) {
		t.Errorf("the reload failure does not name the file: %s", l)
	}
	if o := connectWith(t, srv, sign(t, jwt.SigningMethodRS256, k.rsaB, claimsFor("file-b2"), nil), nil); !o.connected() {
		t.Fatalf("a bad new file must keep the old key: %v", o)
	}
	expectClosed(t, connectWith(t, srv, sign(t, jwt.SigningMethodRS256, k.rsaA, claimsFor("file-a3"), nil), nil), 3500, "signature_invalid")
}

func TestAuthKeyReloadKeys(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	old := testutil.UserToken(t, "reload-old")
	if o := connectWith(t, srv, old, nil); !o.connected() {
		t.Fatalf("before reload: %v", o)
	}
	const newSecret = "brand-new-secret-0123456789abcdef0123"
	next := *srv.Cfg
	next.Client.Token.HMACSecretKey = newSecret
	if err := srv.ReloadKeys(&next); err != nil {
		t.Fatalf("ReloadKeys: %v", err)
	}
	expectClosed(t, connectWith(t, srv, testutil.UserToken(t, "reload-old2"), nil), 3500, "signature_invalid", secretFingerprint(newSecret))
	expectClosed(t, connectWith(t, srv, old, nil), 3500, "signature_invalid")
	if o := connectWith(t, srv, hs(t, newSecret, claimsFor("reload-new")), nil); !o.connected() {
		t.Fatalf("new secret right after ReloadKeys: %v", o)
	}

	bad := next
	bad.Client.Token.Keys = []config.Key{{Alg: "RS256", Value: "not a key"}}
	if err := srv.ReloadKeys(&bad); err == nil {
		t.Fatalf("ReloadKeys with a bad key returned no error")
	}
	expectLog(t, srv, "key reload failed")
	if o := connectWith(t, srv, hs(t, newSecret, claimsFor("reload-kept")), nil); !o.connected() {
		t.Fatalf("a failed reload must keep the current keys: %v", o)
	}
	neverLogged(t, srv, newSecret, testutil.Secret, old)
}

func TestAuthKeySubscriptionTokenKeys(t *testing.T) {
	t.Parallel()
	const subSecret = "subscription-secret-0123456789abcdef"
	cfg := testutil.Config()
	cfg.Client.SubscriptionToken.Enabled = true
	cfg.Client.SubscriptionToken.HMACSecretKey = subSecret
	cfg.Client.SubscriptionToken.UserClaim = "sub"
	cfg.Client.SubscriptionToken.Leeway = config.Duration(5 * time.Second)
	srv := testutil.Start(t, cfg)

	c := mustConnect(t, srv, testutil.UserToken(t, "subkeys"))
	subClaims := func(ch string) map[string]any {
		return map[string]any{"sub": "subkeys", "channel": ch, "exp": time.Now().Add(time.Hour).Unix()}
	}
	o := c.call("subscribe", map[string]any{"channel": "$news", "token": hs(t, subSecret, subClaims("$news"))})
	if o.Reply == nil || o.Reply["subscribe"] == nil {
		t.Fatalf("subscription token signed with the subscription secret: %v", o)
	}
	o = c.call("subscribe", map[string]any{"channel": "$other", "token": hs(t, testutil.Secret, subClaims("$other"))})
	expectError(t, o, 103, "signature_invalid")
	// The connection keeps working after a refused subscription.
	if o := c.call("presence_stats", map[string]any{"channel": "$news"}); o.Reply == nil || o.errCode() != 0 {
		t.Fatalf("connection after a refused subscription: %v", o)
	}
	// And connection tokens are not verified with the subscription secret.
	expectClosed(t, connectWith(t, srv, hs(t, subSecret, claimsFor("subkeys2")), nil), 3500, "signature_invalid")
}
