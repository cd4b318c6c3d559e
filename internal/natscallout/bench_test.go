package natscallout

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/natscallout/natstest"
)

// benchRequest builds an authorization request as a NATS server does, for
// the callout's issuer, with a client token; encrypted when xkeyPub is set.
func benchRequest(b *testing.B, issuerPub, xkeyPub, tok string) (string, []byte) {
	server, _ := nkeys.CreateServer()
	spub, _ := server.PublicKey()
	user, _ := nkeys.CreateUser()
	upub, _ := user.PublicKey()
	rc := jwt.NewAuthorizationRequestClaims(issuerPub)
	rc.Audience = requestAudience
	rc.UserNkey = upub
	rc.Server = jwt.ServerID{Name: "bench", ID: spub, Version: "2.15.3"}
	rc.ClientInformation = jwt.ClientInformation{Host: "127.0.0.1", ID: 7, Kind: "Client", Type: "nats"}
	rc.ConnectOptions = jwt.ConnectOptions{Token: tok, Lang: "go", Version: "1.56.0", Protocol: 1}
	rc.Expires = time.Now().Add(time.Hour).Unix()
	var serverX nkeys.KeyPair
	serverXPub := ""
	if xkeyPub != "" {
		serverX, _ = nkeys.CreateCurveKeys()
		serverXPub, _ = serverX.PublicKey()
		rc.Server.XKey = serverXPub
	}
	s, err := rc.Encode(server)
	if err != nil {
		b.Fatal(err)
	}
	if serverX == nil {
		return "", []byte(s)
	}
	sealed, err := serverX.Seal([]byte(s), xkeyPub)
	if err != nil {
		b.Fatal(err)
	}
	return serverXPub, sealed
}

func benchAnswer(b *testing.B, xkey bool, log *slog.Logger) {
	keys := natstest.NewKeys()
	cfg := baseConfig(keys)
	xpub := ""
	if xkey {
		cfg.XKeySeed, xpub = keys.XKeySeed, keys.XKeyPub
	}
	t := &testing.T{}
	svc, err := New(Options{Config: cfg, Engine: auth.NewEngine(newVerifier(t), auth.Authorities{}, false), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	hdr, data := benchRequest(b, keys.IssuerPub, xpub, token(t, secret, "alice", time.Hour, map[string]any{"rooms": []string{"rooms.eu"}}))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if out, d := svc.Answer(hdr, data); d.Reason != nil || len(out) == 0 {
			b.Fatal(d.Reason)
		}
	}
}

// BenchmarkAnswerHS256 is Herald's own work per login: verify the request,
// verify the client's HS256 token, build and sign the user JWT and the answer.
func BenchmarkAnswerHS256(b *testing.B) { benchAnswer(b, false, nil) }

// BenchmarkAnswerHS256Logged adds the "nats login accepted" line that
// log_level info writes per login, as JSON to a file (Herald's stderr in the
// bench harness).
func BenchmarkAnswerHS256Logged(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "herald.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	benchAnswer(b, false, slog.New(slog.NewJSONHandler(f, nil)))
}

// BenchmarkAnswerXKey adds decrypting the request and encrypting the answer.
func BenchmarkAnswerXKey(b *testing.B) { benchAnswer(b, true, nil) }
