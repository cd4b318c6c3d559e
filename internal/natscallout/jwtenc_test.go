package natscallout

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// testSigner is a signer for seed kind (an account key, or another kind).
func testSigner(t testing.TB, kp nkeys.KeyPair) *signer {
	t.Helper()
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSigner(string(seed), "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func accountSigner(t testing.TB) *signer {
	kp, _ := nkeys.CreateAccount()
	return testSigner(t, kp)
}

func userKey(t testing.TB) string {
	kp, _ := nkeys.CreateUser()
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// sameAsLibrary encodes the claims build returns with the library and with
// Herald's encoder at the library's iat, and fails unless the two JWTs are
// the same bytes and decode to the same claims.
func sameAsLibrary[C interface {
	jwt.Claims
	*jwt.UserClaims | *jwt.AuthorizationResponseClaims
}, S string | []byte](t *testing.T, build func() C, k *signer, encode func(C, *signer, int64) (S, error), decode func(string) (C, error)) {
	t.Helper()
	lib := build()
	want, wantErr := lib.Encode(k.kp)
	ours := build()
	enc, err := encode(ours, k, lib.Claims().IssuedAt)
	got := string(enc)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("errors differ: library %v, Herald %v", wantErr, err)
	}
	if err != nil {
		return
	}
	if got != want {
		t.Fatalf("JWTs differ\nlibrary: %s\nHerald:  %s", payloadOf(want), payloadOf(got))
	}
	if !reflect.DeepEqual(lib, ours) {
		t.Fatalf("the claims after encoding differ\nlibrary: %+v\nHerald:  %+v", lib, ours)
	}
	dec, err := decode(got)
	if err != nil {
		t.Fatalf("the library cannot decode Herald's JWT: %v", err)
	}
	if dec.Claims().Issuer != k.pub || dec.Claims().Subject != ours.Claims().Subject || dec.Claims().ID != ours.Claims().ID {
		t.Fatalf("decoded iss/sub/jti %s/%s/%s, want %s/%s/%s", dec.Claims().Issuer, dec.Claims().Subject, dec.Claims().ID,
			k.pub, ours.Claims().Subject, ours.Claims().ID)
	}
}

// payloadOf is the JSON of a JWT's claims, and its signature.
func payloadOf(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return token
	}
	p, _ := b64.DecodeString(parts[1])
	return string(p) + " signed " + parts[2]
}

// userClaims builds user claims as Herald does, and with every other field
// when full.
func userClaims(sub string, full bool) *jwt.UserClaims {
	uc := jwt.NewUserClaims(sub)
	uc.Name = "alice"
	uc.Audience = "APP"
	uc.Expires = 1_900_000_000
	uc.Pub.Allow.Add("chat.alice.>", "$SYS.REQ.USER.INFO")
	uc.Sub.Allow.Add("chat.alice.>", "rooms.eu", "_INBOX.>")
	uc.Sub.Deny.Add("chat.alice.secret")
	uc.NatsLimits = jwt.NatsLimits{Subs: jwt.NoLimit, Data: jwt.NoLimit, Payload: 1 << 20}
	if full {
		uc.Resp = &jwt.ResponsePermission{MaxMsgs: 1, Expires: 5 * time.Second}
		uc.Src.Add("10.0.0.0/8", "192.168.1.1/32")
		uc.Times = []jwt.TimeRange{{Start: "08:00:00", End: "17:00:00"}, {Start: "20:00:00"}}
		uc.Locale = "Europe/Paris"
		uc.BearerToken, uc.ProxyRequired = true, true
		uc.AllowedConnectionTypes.Add(jwt.ConnectionTypeStandard, jwt.ConnectionTypeWebsocket)
		uc.IssuerAccount = "ACZSWBJ4SYILK7QVDELO64VX3EFWB6CXCPMEBO6GFJ3VMFAMYANUIN2D"
		uc.Tags.Add("team:a", "prod")
		uc.NotBefore = 1_800_000_000
		uc.Name = "Zoë <ops> & \"friends\"\n\u2028\xff"
	}
	return uc
}

func TestEncodeMatchesLibrary(t *testing.T) {
	k := accountSigner(t)
	sub := userKey(t)
	for _, full := range []bool{false, true} {
		sameAsLibrary(t, func() *jwt.UserClaims { return userClaims(sub, full) }, k, encodeUser, jwt.DecodeUserClaims)
	}
	// A scoped user: the fields the library leaves empty.
	sameAsLibrary(t, func() *jwt.UserClaims { uc := jwt.NewUserClaims(sub); uc.SetScoped(true); return uc }, k, encodeUser, jwt.DecodeUserClaims)
	resp := func(jwtOrErr string, issuerAccount bool) func() *jwt.AuthorizationResponseClaims {
		return func() *jwt.AuthorizationResponseClaims {
			rc := jwt.NewAuthorizationResponseClaims(sub)
			rc.Audience = "NDPGR6TOSOVJ67AQ6ZLBRT2GZMDTXNKTMN3ZWTMRHWMEQCMPHHMVWKCU"
			rc.Expires = 1_900_000_000
			if strings.HasPrefix(jwtOrErr, "eyJ") {
				rc.Jwt = jwtOrErr
			} else {
				rc.Error = jwtOrErr
			}
			if issuerAccount {
				rc.IssuerAccount = "ACZSWBJ4SYILK7QVDELO64VX3EFWB6CXCPMEBO6GFJ3VMFAMYANUIN2D"
			}
			return rc
		}
	}
	ujwt, err := encodeUser(userClaims(sub, true), k, time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	sameAsLibrary(t, resp(ujwt, false), k, encodeResponse, jwt.DecodeAuthorizationResponseClaims)
	sameAsLibrary(t, resp(ujwt, true), k, encodeResponse, jwt.DecodeAuthorizationResponseClaims)
	sameAsLibrary(t, resp("herald: token_expired: token expired at <then> & \"now\"", false), k, encodeResponse, jwt.DecodeAuthorizationResponseClaims)

	// What the fast path does not take, the library refuses with its error.
	uk, _ := nkeys.CreateUser()
	sameAsLibrary(t, func() *jwt.UserClaims { return userClaims(sub, false) }, testSigner(t, uk), encodeUser, jwt.DecodeUserClaims)
	sameAsLibrary(t, func() *jwt.UserClaims { return userClaims(k.pub, false) }, k, encodeUser, jwt.DecodeUserClaims)
	sameAsLibrary(t, resp("x", false), testSigner(t, uk), encodeResponse, jwt.DecodeAuthorizationResponseClaims)
	sameAsLibrary(t, func() *jwt.AuthorizationResponseClaims { return &jwt.AuthorizationResponseClaims{} }, k, encodeResponse,
		jwt.DecodeAuthorizationResponseClaims)
}

// TestJWTHeader checks the header constant against the library's.
func TestJWTHeader(t *testing.T) {
	k := accountSigner(t)
	s, err := jwt.NewUserClaims(userKey(t)).Encode(k.kp)
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := strings.Cut(s, "."); h != jwtHeader {
		t.Fatalf("the library's header is %s, Herald writes %s", h, jwtHeader)
	}
}

func FuzzEncodeUser(f *testing.F) {
	f.Add("alice", "APP", "chat.alice.>", "rooms.<eu>&", "", int64(1_900_000_000), int64(-1), 0, int64(0), false)
	f.Add("Zoë\n\"\\\u2028", "", "a b", "\xff\xfe", "tag", int64(-5), int64(1<<40), 3, int64(time.Second), true)
	k := accountSigner(f)
	sub := userKey(f)
	f.Fuzz(func(t *testing.T, name, aud, allow, deny, tag string, exp, limit int64, max int, ttl int64, bearer bool) {
		build := func() *jwt.UserClaims {
			uc := jwt.NewUserClaims(sub)
			uc.Name, uc.Audience, uc.Expires, uc.NotBefore = name, aud, exp, -exp
			uc.Pub.Allow.Add(allow, deny)
			uc.Pub.Deny.Add(deny)
			uc.Sub.Allow.Add(tag, allow)
			uc.NatsLimits = jwt.NatsLimits{Subs: limit, Data: -limit, Payload: limit / 2}
			if max != 0 {
				uc.Resp = &jwt.ResponsePermission{MaxMsgs: max, Expires: time.Duration(ttl)}
			}
			uc.Src.Add(deny)
			uc.Times = []jwt.TimeRange{{Start: name, End: tag}}
			uc.Locale, uc.IssuerAccount = tag, aud
			uc.BearerToken, uc.ProxyRequired = bearer, !bearer
			uc.AllowedConnectionTypes.Add(tag)
			uc.Tags.Add(tag, name)
			return uc
		}
		sameAsLibrary(t, build, k, encodeUser, jwt.DecodeUserClaims)
	})
}

func FuzzEncodeResponse(f *testing.F) {
	f.Add("eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig", "", "NDPG", int64(1_900_000_000), "tag")
	f.Add("", "herald: <refused> & \"why\"\n", "\x00", int64(-1), "")
	k := accountSigner(f)
	sub := userKey(f)
	f.Fuzz(func(t *testing.T, jwtStr, errStr, aud string, exp int64, tag string) {
		build := func() *jwt.AuthorizationResponseClaims {
			rc := jwt.NewAuthorizationResponseClaims(sub)
			rc.Jwt, rc.Error, rc.Audience, rc.Expires, rc.IssuerAccount = jwtStr, errStr, aud, exp, tag
			rc.Tags.Add(tag)
			return rc
		}
		sameAsLibrary(t, build, k, encodeResponse, jwt.DecodeAuthorizationResponseClaims)
	})
}
