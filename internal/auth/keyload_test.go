package auth

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Test keys are generated once per test binary.
var (
	testKeysOnce sync.Once
	testRSA      *rsa.PrivateKey // 2048
	testRSA2     *rsa.PrivateKey // 2048, another one
	testRSA1024  *rsa.PrivateKey
	testP256     *ecdsa.PrivateKey
	testP384     *ecdsa.PrivateKey
	testP521     *ecdsa.PrivateKey
	testEd       ed25519.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	testKeysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		testRSA, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		testRSA2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		testRSA1024, err = rsa.GenerateKey(rand.Reader, 1024)
		must(err)
		testP256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		testP384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		testP521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		must(err)
		_, testEd, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	})
}

func pkixPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func pkcs1PEM(pub *rsa.PublicKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}))
}

func certPEM(t testing.TB, priv crypto.Signer) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "herald test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func privPEM(t testing.TB, priv any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// jwkOf returns the JWK JSON object of a raw key with extra members.
func jwkOf(t testing.TB, raw any, extra map[string]any) map[string]any {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for name, v := range extra {
		m[name] = v
	}
	return m
}

// rawRSAJWK builds an RSA JWK by hand (jwx refuses to export small keys).
func rawRSAJWK(pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
}

func jsonText(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jwksText(t testing.TB, keys ...map[string]any) string {
	t.Helper()
	return jsonText(t, map[string]any{"keys": keys})
}

func signWith(t testing.TB, alg string, priv any, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), jwt.MapClaims{"sub": "u1"})
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustVerify proves that key.Material verifies tok with golang-jwt.
func mustVerify(t testing.TB, key *Key, tok string) {
	t.Helper()
	_, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return key.Material, nil }, jwt.WithValidMethods(key.Algs))
	if err != nil {
		t.Fatalf("key %s does not verify its token: %v", key, err)
	}
	// As the verifier does it: a VerificationKeySet.
	_, err = jwt.Parse(tok, func(*jwt.Token) (any, error) {
		return jwt.VerificationKeySet{Keys: []jwt.VerificationKey{key.Material}}, nil
	}, jwt.WithValidMethods(key.Algs))
	if err != nil {
		t.Fatalf("key %s does not verify its token in a key set: %v", key, err)
	}
}

func derFingerprint(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])[:8]
}

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func TestLoadKeysFormats(t *testing.T) {
	testKeys(t)
	dir := t.TempDir()
	ecPath := filepath.Join(dir, "ec.pem")
	if err := os.WriteFile(ecPath, []byte(pkixPEM(t, testP384.Public())), 0o600); err != nil {
		t.Fatal(err)
	}
	secretPath := filepath.Join(dir, "hmac.secret")
	if err := os.WriteFile(secretPath, []byte("file-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{
		"HERALD_HMAC": "env-secret-value",
		"HERALD_OCT":  jsonText(t, jwkOf(t, []byte("env-oct-secret"), map[string]any{"kid": "o2"})),
		"HERALD_PUB":  pkixPEM(t, testEd.Public()),
		// A PEM pasted into an env var with escaped newlines.
		"HERALD_PUB_ESCAPED": strings.ReplaceAll(strings.TrimSpace(pkixPEM(t, testP256.Public())), "\n", `\n`),
	})
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	cases := []struct {
		name   string
		spec   KeySpec
		alg    string
		priv   any    // signs the token; nil for HMAC
		secret string // HMAC secret
		family Family
		kid    string
		origin string
	}{
		{"RSA PKIX PEM RS256", KeySpec{Alg: "RS256", Value: pkixPEM(t, testRSA.Public())}, "RS256", testRSA, "", FamilyRSA, "", "inline"},
		{"RSA PKIX PEM PS512", KeySpec{Alg: "PS512", Kid: "ps", Value: pkixPEM(t, testRSA.Public())}, "PS512", testRSA, "", FamilyRSA, "ps", "inline"},
		{"RSA PKCS1 PEM RS384", KeySpec{Alg: "RS384", Value: pkcs1PEM(&testRSA.PublicKey)}, "RS384", testRSA, "", FamilyRSA, "", "inline"},
		{"RSA certificate PEM", KeySpec{Alg: "RS256", Value: certPEM(t, testRSA)}, "RS256", testRSA, "", FamilyRSA, "", "inline"},
		{"EC certificate PEM", KeySpec{Alg: "ES256", Value: certPEM(t, testP256)}, "ES256", testP256, "", FamilyEC, "", "inline"},
		{"EC P-256 PKIX PEM", KeySpec{Alg: "ES256", Value: pkixPEM(t, testP256.Public())}, "ES256", testP256, "", FamilyEC, "", "inline"},
		{"EC P-384 PEM file", KeySpec{Alg: "ES384", File: ecPath}, "ES384", testP384, "", FamilyEC, "", "file " + ecPath},
		{"EC P-521 PKIX PEM", KeySpec{Alg: "ES512", Value: pkixPEM(t, testP521.Public())}, "ES512", testP521, "", FamilyEC, "", "inline"},
		{"Ed25519 PEM env", KeySpec{Alg: "EdDSA", Env: "HERALD_PUB"}, "EdDSA", testEd, "", FamilyEdDSA, "", "env HERALD_PUB"},
		{"PEM with escaped newlines", KeySpec{Alg: "ES256", Env: "HERALD_PUB_ESCAPED"}, "ES256", testP256, "", FamilyEC, "", "env HERALD_PUB_ESCAPED"},
		{"JWK RSA with its alg and kid", KeySpec{Value: jsonText(t, jwkOf(t, testRSA.Public(), map[string]any{"alg": "RS256", "kid": "r1", "use": "sig"}))}, "RS256", testRSA, "", FamilyRSA, "r1", "inline"},
		{"JWK RSA pinned PS256", KeySpec{Alg: "PS256", Kid: "r1", Value: jsonText(t, jwkOf(t, testRSA.Public(), map[string]any{"kid": "r1"}))}, "PS256", testRSA, "", FamilyRSA, "r1", "inline"},
		{"JWK EC alg from spec", KeySpec{Alg: "ES256", Kid: "e1", Value: jsonText(t, jwkOf(t, testP256.Public(), nil))}, "ES256", testP256, "", FamilyEC, "e1", "inline"},
		{"JWK EC P-521 same alg", KeySpec{Alg: "ES512", Value: jsonText(t, jwkOf(t, testP521.Public(), map[string]any{"alg": "ES512"}))}, "ES512", testP521, "", FamilyEC, "", "inline"},
		{"JWK OKP Ed25519", KeySpec{Value: jsonText(t, jwkOf(t, testEd.Public(), map[string]any{"alg": "EdDSA", "kid": "d1"}))}, "EdDSA", testEd, "", FamilyEdDSA, "d1", "inline"},
		{"JWK oct pinned HS256", KeySpec{Alg: "HS256", Value: jsonText(t, jwkOf(t, []byte("jwk-oct-secret"), map[string]any{"kid": "o1"}))}, "HS256", nil, "jwk-oct-secret", FamilyHMAC, "o1", "inline"},
		{"HMAC secret inline", KeySpec{Alg: "HS256", Secret: "inline-secret-value", ValidUntil: until}, "HS256", nil, "inline-secret-value", FamilyHMAC, "", "inline"},
		{"HMAC secret env", KeySpec{Alg: "HS384", Kid: "h", Env: "HERALD_HMAC"}, "HS384", nil, "env-secret-value", FamilyHMAC, "h", "env HERALD_HMAC"},
		{"HMAC JWK oct in env", KeySpec{Alg: "HS256", Env: "HERALD_OCT"}, "HS256", nil, "env-oct-secret", FamilyHMAC, "o2", "env HERALD_OCT"},
		{"HMAC secret file, newline trimmed", KeySpec{Alg: "HS512", File: secretPath}, "HS512", nil, "file-secret-value", FamilyHMAC, "", "file " + secretPath},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := LoadKeys([]KeySpec{tc.spec}, env)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 {
				t.Fatalf("got %d keys, want 1", len(keys))
			}
			k := keys[0]
			if len(k.Algs) != 1 || k.Algs[0] != tc.alg || k.Family != tc.family || k.ID != tc.kid || k.Origin != tc.origin {
				t.Fatalf("got algs=%v family=%s kid=%q origin=%q; want %s %s %q %q", k.Algs, k.Family, k.ID, k.Origin, tc.alg, tc.family, tc.kid, tc.origin)
			}
			if !k.NotAfter.Equal(tc.spec.ValidUntil) {
				t.Fatalf("NotAfter = %v, want %v", k.NotAfter, tc.spec.ValidUntil)
			}
			var tok string
			if tc.priv == nil {
				if string(k.Material.([]byte)) != tc.secret {
					t.Fatal("wrong secret")
				}
				if k.Fingerprint != Fingerprint([]byte(tc.secret)) {
					t.Fatalf("fingerprint %s, want %s", k.Fingerprint, Fingerprint([]byte(tc.secret)))
				}
				tok = signWith(t, tc.alg, []byte(tc.secret), tc.kid)
			} else {
				if want := derFingerprint(t, tc.priv.(crypto.Signer).Public()); k.Fingerprint != want {
					t.Fatalf("fingerprint %s, want %s", k.Fingerprint, want)
				}
				tok = signWith(t, tc.alg, tc.priv, tc.kid)
			}
			mustVerify(t, k, tok)
			if strings.Contains(k.String(), tc.secret) && tc.secret != "" {
				t.Fatal("Key.String shows the secret")
			}
		})
	}
}

func TestLoadKeysJWKS(t *testing.T) {
	testKeys(t)
	doc := jwksText(t,
		jwkOf(t, testRSA.Public(), map[string]any{"kid": "r1", "alg": "RS256", "use": "sig"}),
		jwkOf(t, testRSA2.Public(), map[string]any{"kid": "r2", "alg": "PS384"}),
		jwkOf(t, testP256.Public(), map[string]any{"kid": "e1", "alg": "ES256"}),
		jwkOf(t, testEd.Public(), map[string]any{"kid": "d1", "alg": "EdDSA"}),
		jwkOf(t, testP384.Public(), map[string]any{"kid": "enc", "alg": "ES384", "use": "enc"}),
	)
	keys, err := LoadKeys([]KeySpec{{Value: doc}}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	byKid := map[string]*Key{}
	for _, k := range keys {
		byKid[k.ID] = k
	}
	if len(keys) != 4 || byKid["enc"] != nil {
		t.Fatalf("got %v, want r1 r2 e1 d1 (the enc key skipped)", keys)
	}
	mustVerify(t, byKid["r1"], signWith(t, "RS256", testRSA, "r1"))
	mustVerify(t, byKid["r2"], signWith(t, "PS384", testRSA2, "r2"))
	mustVerify(t, byKid["e1"], signWith(t, "ES256", testP256, "e1"))
	mustVerify(t, byKid["d1"], signWith(t, "EdDSA", testEd, "d1"))
	if byKid["r1"].Fingerprint == byKid["r2"].Fingerprint {
		t.Fatal("different keys share a fingerprint")
	}

	// A configured kid selects the JWK with that kid.
	keys, err = LoadKeys([]KeySpec{{Kid: "e1", Value: doc}}, noEnv)
	if err != nil || len(keys) != 1 || keys[0].ID != "e1" {
		t.Fatalf("kid e1: %v %v", keys, err)
	}
	// A configured alg keeps only the JWKs of that alg.
	keys, err = LoadKeys([]KeySpec{{Alg: "EdDSA", Value: doc}}, noEnv)
	if err != nil || len(keys) != 1 || keys[0].ID != "d1" {
		t.Fatalf("alg EdDSA: %v %v", keys, err)
	}

	// The keys work through a KeySet.
	keys, _ = LoadKeys([]KeySpec{{Value: doc}}, noEnv)
	set := NewKeySet(keys...)
	got, r := set.Lookup("ES256", "e1", time.Now())
	if r != nil || len(got) != 1 || got[0].ID != "e1" {
		t.Fatalf("KeySet.Lookup: %v %v", got, r)
	}
	if _, r := set.Lookup("ES256", "nope", time.Now()); r == nil || r.Code != UnknownKid {
		t.Fatalf("unknown kid: %v", r)
	}
}

// The fingerprint of a public key is the SHA-256 of its DER
// SubjectPublicKeyInfo, whatever the format it was given in.
func TestLoadKeysFingerprintIsDERSHA256(t *testing.T) {
	testKeys(t)
	der, err := x509.MarshalPKIXPublicKey(testRSA.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	want := hex.EncodeToString(sum[:])[:8]
	specs := []KeySpec{
		{Alg: "RS256", Value: pkixPEM(t, testRSA.Public())},
		{Alg: "RS256", Value: pkcs1PEM(&testRSA.PublicKey)},
		{Alg: "RS256", Value: certPEM(t, testRSA)},
		{Alg: "RS256", Value: jsonText(t, jwkOf(t, testRSA.Public(), nil))},
	}
	keys, err := LoadKeys(specs, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if k.Fingerprint != want {
			t.Errorf("spec %d: fingerprint %s, want %s", i, k.Fingerprint, want)
		}
	}
	for _, pub := range []any{testP256.Public(), testP521.Public(), testEd.Public()} {
		der, _ := x509.MarshalPKIXPublicKey(pub)
		sum := sha256.Sum256(der)
		keys, err := LoadKeys([]KeySpec{{Value: jsonText(t, jwkOf(t, pub, map[string]any{"alg": algFor(pub)}))}}, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if keys[0].Fingerprint != hex.EncodeToString(sum[:4]) {
			t.Errorf("%T: fingerprint %s, want %x", pub, keys[0].Fingerprint, sum[:4])
		}
	}
}

func algFor(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[k.Curve.Params().Name]
	case ed25519.PublicKey:
		return "EdDSA"
	}
	return "RS256"
}

// The documented shell command gives the same 8 hex digits.
func TestLoadKeysFingerprintMatchesOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("sha256sum not installed")
	}
	testKeys(t)
	dir := t.TempDir()
	for _, pub := range []any{testRSA.Public(), testP384.Public(), testEd.Public()} {
		path := filepath.Join(dir, "pub.pem")
		if err := os.WriteFile(path, []byte(pkixPEM(t, pub)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "-c", `openssl pkey -pubin -in "$1" -outform DER | sha256sum | cut -c1-8`, "sh", path).Output()
		if err != nil {
			t.Fatal(err)
		}
		keys, err := LoadKeys([]KeySpec{{Alg: algFor(pub), File: path}}, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != keys[0].Fingerprint {
			t.Errorf("%T: openssl says %s, LoadKeys %s", pub, got, keys[0].Fingerprint)
		}
	}
}

func TestLoadKeysErrors(t *testing.T) {
	testKeys(t)
	dir := t.TempDir()
	rsaPEM := pkixPEM(t, testRSA.Public())
	pubPath := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pubPath, []byte(rsaPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "top-secret-hmac-value"
	rsaJWK := jwkOf(t, testRSA.Public(), map[string]any{"kid": "a", "alg": "RS256"})
	privJWK := jwkOf(t, testP256, map[string]any{"alg": "ES256"})
	ecPrivDER, _ := x509.MarshalECPrivateKey(testP256)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	env := envOf(map[string]string{"HERALD_EMPTY": "", "HERALD_PEM": rsaPEM})

	cases := []struct {
		name   string
		spec   KeySpec
		want   string // the whole message after "key 0 (origin): "
		prefix string // origin in the message; "inline" when empty
		hidden string // text that must not appear in the message
	}{
		{"two sources", KeySpec{Alg: "HS256", Secret: secret, File: pubPath},
			"give exactly one of secret, value, env or file; this key sets secret and file", "inline, file " + pubPath, secret},
		{"no source", KeySpec{Alg: "HS256"}, "no key given: set one of secret, value, env or file", "no source", ""},
		{"unknown alg", KeySpec{Alg: "XS256", Secret: secret},
			`alg "XS256" is not supported; use one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`, "", secret},
		{"alg case", KeySpec{Alg: "rs256", Value: rsaPEM}, `alg "rs256" is not supported; did you mean RS256?`, "", rsaPEM[30:60]},
		{"alg none", KeySpec{Alg: "none", Secret: secret}, "alg none is never accepted: tokens must be signed", "", secret},
		{"secret without alg", KeySpec{Secret: secret}, "alg is required for an HMAC secret: HS256, HS384 or HS512", "", secret},
		{"secret with RS256", KeySpec{Alg: "RS256", Secret: secret}, "a secret is for HMAC: alg must be HS256, HS384 or HS512, not RS256", "", secret},
		{"family mismatch", KeySpec{Alg: "ES256", Value: rsaPEM}, "alg ES256 needs an EC key, got an RSA key", "", rsaPEM[30:60]},
		{"EdDSA with RSA", KeySpec{Alg: "EdDSA", Value: rsaPEM}, "alg EdDSA needs an Ed25519 key, got an RSA key", "", rsaPEM[30:60]},
		{"RSA alg with EC key", KeySpec{Alg: "PS256", Value: pkixPEM(t, testP256.Public())}, "alg PS256 needs an RSA key, got an EC key", "", ""},
		{"curve mismatch", KeySpec{Alg: "ES256", Value: pkixPEM(t, testP384.Public())}, "alg ES256 needs a P-256 key, got a P-384 key", "", ""},
		{"curve mismatch JWK", KeySpec{Alg: "ES512", Value: jsonText(t, jwkOf(t, testP256.Public(), nil))}, "alg ES512 needs a P-521 key, got a P-256 key", "", ""},
		{"HMAC alg with PEM value", KeySpec{Alg: "HS256", Value: rsaPEM},
			"HMAC with a public key is not allowed: alg HS256 needs a shared secret, got an RSA key (public)", "", rsaPEM[30:60]},
		{"HMAC alg with PEM secret", KeySpec{Alg: "HS256", Secret: rsaPEM},
			"HMAC with a public key is not allowed: alg HS256 needs a shared secret, but this is PEM key text", "", rsaPEM[30:60]},
		{"HMAC alg with PEM file", KeySpec{Alg: "HS384", File: pubPath},
			"HMAC with a public key is not allowed: alg HS384 needs a shared secret, but this is PEM key text", "file " + pubPath, rsaPEM[30:60]},
		{"HMAC alg with PEM env", KeySpec{Alg: "HS512", Env: "HERALD_PEM"},
			"HMAC with a public key is not allowed: alg HS512 needs a shared secret, but this is PEM key text", "env HERALD_PEM", rsaPEM[30:60]},
		{"HMAC alg with certificate", KeySpec{Alg: "HS256", Value: certPEM(t, testP256)},
			"HMAC with a public key is not allowed: alg HS256 needs a shared secret, got an EC key (public)", "", ""},
		{"HMAC alg with RSA JWK", KeySpec{Alg: "HS256", Value: jsonText(t, jwkOf(t, testRSA.Public(), nil))},
			"HMAC with a public key is not allowed: alg HS256 needs a shared secret, got a JWK of kty RSA (public)", "", rsaJWK["n"].(string)[:30]},
		{"JWK claiming HS256", KeySpec{Value: jsonText(t, jwkOf(t, testP256.Public(), map[string]any{"alg": "HS256"}))},
			"HMAC with a public key is not allowed: alg HS256 needs a shared secret, got a JWK of kty EC (public)", "", ""},
		{"private PKCS8 PEM", KeySpec{Alg: "RS256", Value: privPEM(t, testRSA)},
			"this is a private key; give the public key instead (a verifier must never hold private keys): openssl pkey -in key.pem -pubout", "", privPEM(t, testRSA)[40:80]},
		{"private PKCS1 PEM", KeySpec{Alg: "RS256", Value: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testRSA)}))},
			"this is a private key; give the public key instead (a verifier must never hold private keys): openssl pkey -in key.pem -pubout", "", ""},
		{"private EC PEM with parameters", KeySpec{Alg: "ES256", Value: "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" +
			string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecPrivDER}))},
			"this is a private key; give the public key instead (a verifier must never hold private keys): openssl pkey -in key.pem -pubout", "", ""},
		{"certificate with its private key", KeySpec{Alg: "ES256", Value: certPEM(t, testP256) + privPEM(t, testP256)},
			"this is a private key; give the public key instead (a verifier must never hold private keys): openssl pkey -in key.pem -pubout", "", ""},
		{"private PEM as HMAC secret", KeySpec{Alg: "HS256", Secret: privPEM(t, testEd)},
			"this is a private key; give the public key instead (a verifier must never hold private keys): openssl pkey -in key.pem -pubout", "", privPEM(t, testEd)[30:60]},
		{"private JWK", KeySpec{Value: jsonText(t, privJWK)},
			`JWK holds a private key (it has "d"); give only its public members (a verifier must never hold private keys)`, "", privJWK["d"].(string)},
		{"private JWK in a JWKS", KeySpec{Value: jwksText(t, rsaJWK, privJWK)},
			`JWK 1: JWK holds a private key (it has "d"); give only its public members (a verifier must never hold private keys)`, "", privJWK["d"].(string)},
		{"RSA 1024 PEM", KeySpec{Alg: "RS256", Value: pkixPEM(t, testRSA1024.Public())}, "RSA key has 1024 bits; at least 2048 are required", "", ""},
		{"RSA 1024 JWK", KeySpec{Alg: "RS256", Value: jsonText(t, rawRSAJWK(&testRSA1024.PublicKey))}, "RSA key has 1024 bits; at least 2048 are required", "", ""},
		{"JWK alg disagrees", KeySpec{Alg: "PS256", Value: jsonText(t, rsaJWK)}, "JWK alg RS256 disagrees with the configured alg PS256", "", rsaJWK["n"].(string)[:30]},
		{"JWK kid disagrees", KeySpec{Kid: "b", Value: jsonText(t, rsaJWK)}, `JWK kid "a" disagrees with the configured kid "b"`, "", rsaJWK["n"].(string)[:30]},
		{"JWKS without the kid", KeySpec{Kid: "zz", Value: jwksText(t, rsaJWK)},
			`no usable key in the JWKS: JWK 0 (kid "a"): JWK kid "a" disagrees with the configured kid "zz"`, "", ""},
		{"JWKS only enc keys", KeySpec{Value: jwksText(t, jwkOf(t, testP256.Public(), map[string]any{"kid": "e", "alg": "ES256", "use": "enc"}))},
			`no usable key in the JWKS: JWK 0 (kid "e"): JWK is an encryption key (use enc)`, "", ""},
		{"empty JWKS", KeySpec{Value: `{"keys":[]}`}, "no usable key in the JWKS: it has no keys", "", ""},
		{"JWK without alg", KeySpec{Value: jsonText(t, jwkOf(t, testRSA.Public(), nil))},
			"JWK has no alg; set alg in the key spec (this is an RSA key, which can verify RS256, RS384, RS512, PS256, PS384, PS512)", "", ""},
		{"JWK oct without alg", KeySpec{Value: jsonText(t, jwkOf(t, []byte(secret), nil))},
			"JWK of kty oct is an HMAC secret: pin it with alg HS256, HS384 or HS512 in the key spec", "", secret},
		{"JWK oct with RS256", KeySpec{Alg: "RS256", Value: jsonText(t, jwkOf(t, []byte(secret), nil))},
			"JWK of kty oct is an HMAC secret; alg RS256 needs an RSA key", "", secret},
		{"JWK X25519", KeySpec{Alg: "EdDSA", Value: jsonText(t, jwkOf(t, x25519.PublicKey(), nil))},
			"an X25519 key is for key agreement and cannot verify signatures; use an Ed25519 key", "", ""},
		{"PEM X25519", KeySpec{Alg: "EdDSA", Value: pkixPEM(t, x25519.PublicKey())},
			"an X25519 key is for key agreement and cannot verify signatures; use an Ed25519 key", "", ""},
		{"JWK bad curve", KeySpec{Alg: "ES256", Value: `{"kty":"EC","crv":"secp256k1","x":"c2VjcmV0LXNlY3JldC1zZWNyZXQ","y":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}`},
			`EC curve "secp256k1" is not supported; use P-256, P-384 or P-521`, "", "c2VjcmV0LXNlY3JldC1zZWNyZXQ"},
		{"JWK bad parameters", KeySpec{Alg: "ES256", Value: `{"kty":"EC","crv":"P-256","x":"c2VjcmV0LXNlY3JldA","y":"c2VjcmV0LXNlY3JldA"}`},
			`invalid JWK of kty EC: invalid "x" length (13) for curve "P-256"`, "", "c2VjcmV0LXNlY3JldA"},
		{"JWK without kty", KeySpec{Alg: "RS256", Value: `{"n":"c2VjcmV0LXNlY3JldA"}`}, "not a PEM public key, certificate, JWK or JWKS: a JSON object without kty or keys", "", "c2VjcmV0LXNlY3JldA"},
		{"JWK bad kty", KeySpec{Alg: "RS256", Value: `{"kty":"DSA","n":"c2VjcmV0LXNlY3JldA"}`}, `JWK kty "DSA" is not supported`, "", "c2VjcmV0LXNlY3JldA"},
		{"missing env", KeySpec{Alg: "HS256", Env: "HERALD_NOPE"}, "environment variable HERALD_NOPE is not set", "env HERALD_NOPE", ""},
		{"empty env", KeySpec{Alg: "HS256", Env: "HERALD_EMPTY"}, "environment variable HERALD_EMPTY is empty", "env HERALD_EMPTY", ""},
		{"missing file", KeySpec{Alg: "RS256", File: filepath.Join(dir, "nope.pem")}, "file does not exist", "file " + filepath.Join(dir, "nope.pem"), ""},
		{"directory", KeySpec{Alg: "RS256", File: dir}, "is a directory, not a key file", "file " + dir, ""},
		{"JWK member of the wrong type", KeySpec{Alg: "RS256", Value: `{"kty":"RSA","kid":5,"n":"c2VjcmV0LXNlY3JldA"}`},
			`invalid JWK: member "kid" must be a string, not a JSON number`, "", "c2VjcmV0LXNlY3JldA"},
		{"JWKS keys not a list", KeySpec{Value: `{"keys":{"kty":"RSA"}}`}, `not a JWKS: member "keys" must be a list, not a JSON object`, "", ""},
		{"JSON list", KeySpec{Alg: "RS256", Value: `[{"kty":"RSA"}]`}, `not a PEM public key, certificate, JWK or JWKS: a JSON list (a JWKS is {"keys":[...]})`, "", ""},
		{"garbage", KeySpec{Alg: "RS256", Value: "sk_live_garbage_but_secret_text"}, "not a PEM public key, certificate, JWK or JWKS", "", "sk_live"},
		{"garbage for HMAC", KeySpec{Alg: "HS256", Value: "sk_live_garbage_but_secret_text"},
			"not a PEM public key, certificate, JWK or JWKS (an HMAC secret goes in secret, env or file)", "", "sk_live"},
		{"bad JSON", KeySpec{Alg: "RS256", Value: `{"kty":"RSA","n":"sk_live_secret_text`}, "not a PEM public key, certificate, JWK or JWKS: invalid JSON at byte 37", "", "sk_live"},
		{"bad PEM", KeySpec{Alg: "RS256", Value: "-----BEGIN PUBLIC KEY-----\nsk_live_secret_text\n"}, "not a PEM public key, certificate, JWK or JWKS: malformed PEM", "", "sk_live"},
		{"corrupt PEM body", KeySpec{Alg: "RS256", Value: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("sk_live_secret_text")}))},
			"invalid PEM public key: ", "", "c2tfbGl2ZV9zZWNyZXRfdGV4dA"},
		{"unknown PEM block", KeySpec{Alg: "RS256", Value: string(pem.EncodeToMemory(&pem.Block{Type: "SSH2 KEY", Bytes: []byte("sk_live_secret_text")}))},
			`not a PEM public key, certificate, JWK or JWKS: PEM block "SSH2 KEY"`, "", "c2tfbGl2ZV9zZWNyZXRfdGV4dA"},
		{"two public keys", KeySpec{Alg: "RS256", Value: rsaPEM + pkixPEM(t, testRSA2.Public())}, "holds 2 PEM blocks; give one key per key spec", "", ""},
		{"PEM without alg", KeySpec{Value: rsaPEM}, "alg is required for a PEM public key; this is an RSA key, which can verify RS256, RS384, RS512, PS256, PS384, PS512", "", ""},
		{"EC PEM without alg", KeySpec{Value: pkixPEM(t, testP384.Public())}, "alg is required for a PEM public key; this is an EC key, which can verify ES384", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := LoadKeys([]KeySpec{tc.spec}, env)
			if err == nil {
				t.Fatalf("no error; keys %v", keys)
			}
			if keys != nil {
				t.Fatalf("keys returned with an error: %v", keys)
			}
			origin := tc.prefix
			if origin == "" {
				origin = "inline"
			}
			msg := err.Error()
			want := "key 0 (" + origin + "): " + tc.want
			if !strings.HasPrefix(msg, want) || (!strings.HasSuffix(tc.want, ": ") && msg != want) {
				t.Fatalf("error\n got: %s\nwant: %s", msg, want)
			}
			if tc.hidden != "" && strings.Contains(msg, tc.hidden) {
				t.Fatalf("error shows key text or secret: %s", msg)
			}
			for _, s := range []string{tc.spec.Secret, tc.spec.Value} {
				if len(s) >= 8 && strings.Contains(msg, strings.TrimSpace(s)) {
					t.Fatalf("error shows the whole key text: %s", msg)
				}
			}
			var lerr *LoadError
			if !errors.As(err, &lerr) || len(lerr.Problems) != 1 || lerr.Problems[0].Index != 0 {
				t.Fatalf("not a LoadError with one problem: %#v", err)
			}
		})
	}
}

func TestLoadKeysReportsEveryProblem(t *testing.T) {
	testKeys(t)
	specs := []KeySpec{
		{Alg: "HS256", Secret: "s3cret-one"},
		{Alg: "RS256", Env: "HERALD_MISSING"},
		{Alg: "ES256", Value: pkixPEM(t, testP256.Public())},
		{Alg: "RS256", File: "/nonexistent/herald/pub.pem"},
		{Alg: "HS256", Secret: "s3cret-two", Value: "x"},
	}
	keys, err := LoadKeys(specs, noEnv)
	if err == nil || keys != nil {
		t.Fatalf("keys %v err %v", keys, err)
	}
	want := "key 1 (env HERALD_MISSING): environment variable HERALD_MISSING is not set; " +
		"key 3 (file /nonexistent/herald/pub.pem): file does not exist; " +
		"key 4 (inline): give exactly one of secret, value, env or file; this key sets secret and value"
	if err.Error() != want {
		t.Fatalf("got  %s\nwant %s", err, want)
	}
	var se *KeySpecError
	if !errors.As(err, &se) || se.Index != 1 {
		t.Fatalf("errors.As KeySpecError: %v", se)
	}
	// Without the broken specs every key loads.
	keys, err = LoadKeys([]KeySpec{specs[0], specs[2]}, nil)
	if err != nil || len(keys) != 2 {
		t.Fatalf("%v %v", keys, err)
	}
}

func TestKeySpecFiles(t *testing.T) {
	got := KeySpecFiles([]KeySpec{{File: "/a"}, {Secret: "x"}, {File: "/b"}, {File: "/a"}})
	if strings.Join(got, ",") != "/a,/b" {
		t.Fatalf("got %v", got)
	}
}
