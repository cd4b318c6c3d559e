package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// benchClaims are the claims of a typical connection token.
func benchClaims() jwt.MapClaims {
	return jwt.MapClaims{"sub": "user-4242", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
		"info": map[string]any{"name": "Alex", "role": "member"}}
}

func benchVerify(b *testing.B, method jwt.SigningMethod, signKey any, key *Key, cache bool) {
	tok, err := jwt.NewWithClaims(method, benchClaims()).SignedString(signKey)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(NewKeySet(key), Policy{})
	if !cache {
		v.cache = newVerifiedCache(0) // every put is dropped at once
		v.cache.max = 0
	}
	req := &Request{Tokens: []Candidate{{Source: SourceConnectCommand, Token: tok}}}
	if _, r := v.Connect(req); r != nil {
		b.Fatal(r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !cache {
			v.cache.clear()
		}
		if _, r := v.Connect(req); r != nil {
			b.Fatal(r)
		}
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	k, _ := NewHMACKey("a-long-random-secret-of-32-bytes!!")
	benchVerify(b, jwt.SigningMethodHS256, []byte("a-long-random-secret-of-32-bytes!!"), k, false)
}

func BenchmarkVerifyRS256(b *testing.B) {
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	k := &Key{Family: FamilyRSA, Algs: []string{"RS256"}, Material: &priv.PublicKey, Fingerprint: "rsa"}
	benchVerify(b, jwt.SigningMethodRS256, priv, k, false)
}

func BenchmarkVerifyRS256Cached(b *testing.B) {
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	k := &Key{Family: FamilyRSA, Algs: []string{"RS256"}, Material: &priv.PublicKey, Fingerprint: "rsa"}
	benchVerify(b, jwt.SigningMethodRS256, priv, k, true)
}

func BenchmarkVerifyES256(b *testing.B) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k := &Key{Family: FamilyEC, Algs: []string{"ES256"}, Material: &priv.PublicKey, Fingerprint: "ec"}
	benchVerify(b, jwt.SigningMethodES256, priv, k, false)
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	k := &Key{Family: FamilyEdDSA, Algs: []string{"EdDSA"}, Material: pub, Fingerprint: "ed"}
	benchVerify(b, jwt.SigningMethodEdDSA, priv, k, false)
}
