package natscallout

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/natscallout/natstest"
)

// userInfo asks the server who the connection is.
func userInfo(t *testing.T, nc *nats.Conn) (account, name string) {
	t.Helper()
	msg, err := nc.Request("$SYS.REQ.USER.INFO", nil, 3*time.Second)
	if err != nil {
		t.Fatalf("user info: %v", err)
	}
	var resp struct {
		Data struct {
			Account string `json:"account"`
			User    string `json:"user"`
		} `json:"data"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		t.Fatalf("user info %s: %v", msg.Data, err)
	}
	return resp.Data.Account, resp.Data.User
}

// checkPermissions logs in as alice and checks that she may publish and
// subscribe exactly where the templates of baseConfig allow.
func checkPermissions(t *testing.T, r *rig, wantAccount string) {
	t.Helper()
	tok := token(t, secret, "alice", time.Hour, map[string]any{"rooms": []string{"rooms.eu", "rooms.us.>"}})
	nc, err := r.connect(tok)
	if err != nil {
		t.Fatalf("a valid token was refused: %v", err)
	}
	if account, user := userInfo(t, nc); account != wantAccount || user != "alice" {
		t.Fatalf("placed as user %q in account %q, want alice in %s", user, account, wantAccount)
	}
	for subject, want := range map[string]bool{
		"chat.alice.x": true, "chat.alice.x.y": true, "rooms.eu": true, "rooms.us.paris": true,
		"chat.bob.x": false, "rooms.asia": false, "chat.alice.secret": false, "other": false,
	} {
		if got := canSubscribe(t, nc, subject); got != want {
			t.Errorf("subscribe %s: allowed=%v, want %v", subject, got, want)
		}
	}
	for subject, want := range map[string]bool{"chat.alice.x": true, "chat.bob.x": false, "rooms.eu": false} {
		if got := canPublish(t, nc, subject); got != want {
			t.Errorf("publish %s: allowed=%v, want %v", subject, got, want)
		}
	}
	// Messages flow where the permissions allow.
	sub, err := nc.SubscribeSync("chat.alice.inbox")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("chat.alice.inbox", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(3 * time.Second); err != nil || string(m.Data) != "hello" {
		t.Fatalf("message on an allowed subject: %v %v", m, err)
	}
}

func TestCentralizedLogins(t *testing.T) {
	keys := natstest.NewKeys()
	cfg := baseConfig(keys)
	cfg.AccountClaim = "nats_account"
	cfg.Accounts = []config.NATSAccount{{Name: "OTHER"}}
	r := startRig(t, natstest.Centralized(keys.IssuerPub, ""), cfg)
	checkPermissions(t, r, "APP")

	// A token naming another allowed account places the user there.
	nc, err := r.connect(token(t, secret, "carol", time.Hour, map[string]any{"nats_account": "OTHER"}))
	if err != nil {
		t.Fatal(err)
	}
	if account, _ := userInfo(t, nc); account != "OTHER" {
		t.Fatalf("account %q, want OTHER", account)
	}

	r.mustRefuse(token(t, secret, "alice", -time.Minute, nil), auth.TokenExpired)
	r.mustRefuse(token(t, "a-different-secret-0123456789abcdef0123", "alice", time.Hour, nil), auth.SignatureInvalid)
	r.verifier.Revocations().RevokeToken("stolen-1", time.Now().Add(time.Hour))
	r.mustRefuse(token(t, secret, "alice", time.Hour, map[string]any{"jti": "stolen-1"}), auth.TokenRevoked)
	r.mustRefuse(token(t, secret, "alice", time.Hour, map[string]any{"nats_account": "SYS"}), auth.NATSAccountNotAllowed)
	r.mustRefuse(token(t, secret, "bob.smith", time.Hour, nil), auth.ClaimInvalid)
	r.mustRefuse(token(t, secret, "alice", time.Hour, map[string]any{"rooms": []string{"rooms eu"}}), auth.ClaimInvalid)
	r.mustRefuse("", auth.TokenMissing)
	r.mustRefuse("", auth.TokenSourceDisabled, nats.UserInfo("alice", token(t, secret, "alice", time.Hour, nil)))
	r.mustRefuse("not-a-jwt", auth.TokenMalformed)
	if strings.Contains(r.log.String(), secret) || strings.Contains(r.log.String(), "eyJ") {
		t.Fatalf("a secret or a token reached the log:\n%s", r.log.String())
	}
}

func TestTokenFromPassword(t *testing.T) {
	keys := natstest.NewKeys()
	cfg := baseConfig(keys)
	cfg.TokenSources = []string{"password"}
	r := startRig(t, natstest.Centralized(keys.IssuerPub, ""), cfg)
	if _, err := r.connect("", nats.UserInfo("alice", token(t, secret, "alice", time.Hour, nil))); err != nil {
		t.Fatalf("token in the password: %v", err)
	}
	r.mustRefuse(token(t, secret, "alice", time.Hour, nil), auth.TokenSourceDisabled)
}

func TestLoginEndsAtTokenExpiry(t *testing.T) {
	keys := natstest.NewKeys()
	r := startRig(t, natstest.Centralized(keys.IssuerPub, ""), baseConfig(keys))
	closed := make(chan struct{})
	start := time.Now()
	exp := start.Add(2 * time.Second)
	tok, err := auth.SignHS256(secret, map[string]any{"sub": "alice", "exp": exp.Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.connect(tok, nats.ClosedHandler(func(*nats.Conn) { close(closed) })); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(6 * time.Second):
		t.Fatal("the NATS login outlived its token")
	}
	// NATS counts in seconds: the login ends within a second of exp.
	if ended := time.Now(); ended.Before(exp.Add(-time.Second)) {
		t.Fatalf("the login ended %s before the token's exp", exp.Sub(ended))
	}
}

func TestCentralizedWithXKey(t *testing.T) {
	keys := natstest.NewKeys()
	cfg := baseConfig(keys)
	cfg.XKeySeed = keys.XKeySeed
	r := startRig(t, natstest.Centralized(keys.IssuerPub, keys.XKeyPub), cfg)
	checkPermissions(t, r, "APP")
	r.mustRefuse(token(t, secret, "alice", -time.Minute, nil), auth.TokenExpired)
	if !strings.Contains(r.log.String(), "nats login accepted") {
		t.Fatalf("no accepted login in the log")
	}
}

func TestXKeyMismatch(t *testing.T) {
	keys, other := natstest.NewKeys(), natstest.NewKeys()
	cfg := baseConfig(keys)
	cfg.XKeySeed = keys.XKeySeed
	r := startRig(t, natstest.Centralized(keys.IssuerPub, other.XKeyPub), cfg)
	r.mustRefuse(token(t, secret, "alice", time.Hour, nil), auth.NATSRequestInvalid)
	if !strings.Contains(r.log.String(), "reason=nats_request_invalid detail=\"cannot decrypt the request with xkey "+keys.XKeyPub) {
		t.Fatalf("the log does not say which xkey failed:\n%s", r.log.String())
	}

	// The server encrypts, but Herald has no xkey.
	r2 := startRig(t, natstest.Centralized(keys.IssuerPub, keys.XKeyPub), baseConfig(keys))
	r2.mustRefuse(token(t, secret, "alice", time.Hour, nil), auth.NATSRequestInvalid)
	if !strings.Contains(r2.log.String(), "nats_callout.xkey_seed is not set") {
		t.Fatalf("the log does not name the missing xkey:\n%s", r2.log.String())
	}
}

// TestWrongIssuerCaughtByHerald: an answer signed by a key NATS does not
// expect is refused by NATS as "signing key is unknown"; Herald says first,
// naming the key that signed and the key expected.
func TestWrongIssuerCaughtByHerald(t *testing.T) {
	keys, wrong := natstest.NewKeys(), natstest.NewKeys()
	r := startRig(t, natstest.Centralized(keys.IssuerPub, ""), baseConfig(wrong))
	r.mustRefuse(token(t, secret, "alice", time.Hour, nil), auth.NATSAnswerInvalid)
	want := "the answer is signed by " + wrong.IssuerPub + " (nats_callout.issuer_seed), but NATS expects " + keys.IssuerPub
	if !strings.Contains(r.log.String(), "reason=nats_answer_invalid detail=\""+want) || !strings.Contains(r.log.String(), "level=ERROR") {
		t.Fatalf("the log does not name both keys at ERROR; want %q in:\n%s", want, r.log.String())
	}
	waitFor(t, "NATS's own verdict", func() bool { return strings.Contains(r.nats.Log.String(), "signing key is unknown") })
}

func operatorRig(t *testing.T, xkey bool) (*rig, *natstest.Operator) {
	keys := natstest.NewKeys()
	xpub := ""
	if xkey {
		xpub = keys.XKeyPub
	}
	op, err := natstest.NewOperator(t.TempDir(), xpub)
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(keys)
	cfg.User, cfg.Password = "", ""
	cfg.Mode = "operator"
	cfg.Creds = op.CalloutCreds
	cfg.IssuerSeed = op.AuthSeed
	cfg.Account, cfg.AccountSigningSeed = op.AppPub, op.AppSigningSeed
	cfg.AccountClaim = "nats_account"
	if xkey {
		cfg.XKeySeed = keys.XKeySeed
	}
	r := startRig(t, op.Config, cfg)
	r.clientOpts = []nats.Option{nats.UserCredentials(op.SentinelCreds)}
	return r, op
}

func TestOperatorModeWithSentinel(t *testing.T) {
	r, op := operatorRig(t, false)
	checkPermissions(t, r, op.AppPub)
	r.mustRefuse(token(t, secret, "alice", -time.Minute, nil), auth.TokenExpired)
	r.mustRefuse(token(t, "a-different-secret-0123456789abcdef0123", "alice", time.Hour, nil), auth.SignatureInvalid)
	r.mustRefuse(token(t, secret, "alice", time.Hour, map[string]any{"nats_account": op.OtherPub}), auth.NATSAccountNotAllowed)
	if !strings.Contains(r.nats.Log.String(), "herald: nats_account_not_allowed: claim nats_account names account \""+op.OtherPub) {
		t.Fatalf("NATS did not log Herald's reason:\n%s", r.nats.Log.String())
	}
}

func TestOperatorModeWithXKey(t *testing.T) {
	r, op := operatorRig(t, true)
	checkPermissions(t, r, op.AppPub)
	r.mustRefuse(token(t, secret, "alice", -time.Minute, nil), auth.TokenExpired)
}

// TestReplayedAnswerRejected: an answer captured from one login attempt and
// sent for another is refused by NATS (it is bound to the first attempt's
// user key), and Herald's own check of an answer catches it too, naming the
// key it was for and the key expected.
func TestReplayedAnswerRejected(t *testing.T) {
	keys := natstest.NewKeys()
	cfg := baseConfig(keys)
	ns, err := natstest.Start(t.TempDir(), natstest.Centralized(keys.IssuerPub, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	svc, err := New(Options{Config: cfg, Engine: auth.NewEngine(newVerifier(t), auth.Authorities{}, false)})
	if err != nil {
		t.Fatal(err)
	}
	callout, err := nats.Connect(ns.URL, nats.UserInfo(natstest.CalloutUser, natstest.CalloutPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer callout.Close()
	var first []byte
	requests := make(chan []byte, 2)
	if _, err := callout.Subscribe(Subject, func(m *nats.Msg) {
		requests <- m.Data
		if first == nil {
			first, _ = svc.Answer("", m.Data)
			_ = m.Respond(first)
			return
		}
		_ = m.Respond(first) // the replay
	}); err != nil {
		t.Fatal(err)
	}
	_ = callout.Flush()
	tok := token(t, secret, "alice", time.Hour, nil)
	nc, err := nats.Connect(ns.URL, nats.Token(tok))
	if err != nil {
		t.Fatalf("the first login: %v", err)
	}
	nc.Close()
	if _, err := nats.Connect(ns.URL, nats.Token(tok)); err == nil {
		t.Fatal("NATS accepted an answer replayed for another login attempt")
	}
	waitFor(t, "NATS's verdict", func() bool { return strings.Contains(ns.Log.String(), "not for expected user") })

	<-requests
	second, r := svc.readRequest("", <-requests)
	if r != nil {
		t.Fatal(r)
	}
	replayed := decodeAnswer(t, first)
	reason := svc.checkAnswer(second.claims, replayed, time.Now())
	if reason == nil || reason.Code != auth.NATSAnswerInvalid ||
		!strings.Contains(reason.Detail, replayed.resp.Subject) || !strings.Contains(reason.Detail, second.claims.UserNkey) {
		t.Fatalf("Herald's check of the replayed answer: %v", reason)
	}
}

// decodeAnswer turns an encoded answer back into claims and signer keys.
func decodeAnswer(t *testing.T, data []byte) *answer {
	t.Helper()
	resp, err := jwt.DecodeAuthorizationResponseClaims(string(data))
	if err != nil {
		t.Fatal(err)
	}
	a := &answer{resp: resp, signer: &signer{pub: resp.Issuer}}
	if resp.Jwt != "" {
		uc, err := jwt.DecodeUserClaims(resp.Jwt)
		if err != nil {
			t.Fatal(err)
		}
		a.user, a.userSigner = uc, &signer{pub: uc.Issuer}
	}
	return a
}
