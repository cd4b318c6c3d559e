package natscallout

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/natscallout/natstest"
)

const secret = "natscallout-test-secret-0123456789abcdef"

// logBuffer collects Herald's log output.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls cond until it holds or fails the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rig is a NATS server whose callout is a running Herald service.
type rig struct {
	t        *testing.T
	nats     *natstest.Server
	svc      *Service
	verifier *auth.Verifier
	log      *logBuffer
	cfg      *config.NATSCallout
	// clientOpts are added to every client connection (the sentinel's
	// credentials in operator mode).
	clientOpts []nats.Option
}

func newVerifier(t *testing.T) *auth.Verifier {
	t.Helper()
	k, err := auth.NewHMACKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewVerifier(auth.NewKeySet(k), auth.Policy{Rules: auth.Rules{Leeway: time.Second, UserClaim: "sub"}})
}

// baseConfig is a validated callout configuration for the centralized server.
func baseConfig(keys natstest.Keys) *config.NATSCallout {
	cfg := config.Default().NATSCallout
	cfg.Enabled = true
	cfg.User, cfg.Password = natstest.CalloutUser, natstest.CalloutPassword
	cfg.IssuerSeed = keys.IssuerSeed
	cfg.Account = "APP"
	cfg.Permissions.PublishAllow = []string{"chat.{{user}}.>", "$SYS.REQ.USER.INFO"}
	cfg.Permissions.SubscribeAllow = []string{"chat.{{user}}.>", "{{claim:rooms}}", "_INBOX.>"}
	cfg.Permissions.SubscribeDeny = []string{"chat.{{user}}.secret"}
	return &cfg
}

// startRig starts the NATS server with natsConf and the service with cfg
// (its url is filled in).
func startRig(t *testing.T, natsConf string, cfg *config.NATSCallout) *rig {
	t.Helper()
	ns, err := natstest.Start(t.TempDir(), natsConf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	cfg.URL = ns.URL
	cfg.Workers = 2
	full := config.Default()
	full.NATSCallout = *cfg
	if ps := full.Validate(); len(ps) > 0 {
		t.Fatalf("callout config invalid: %v", ps)
	}
	r := &rig{t: t, nats: ns, verifier: newVerifier(t), log: &logBuffer{}, cfg: cfg}
	svc, err := New(Options{Config: cfg, Engine: auth.NewEngine(r.verifier, auth.Authorities{}, false), Refusals: r.verifier.Refusals,
		Logger: slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	t.Cleanup(func() {
		svc.Close()
		if t.Failed() {
			t.Logf("herald log:\n%s\nnats log:\n%s", r.log.String(), ns.Log.String())
		}
	})
	return r
}

// token mints a client token for user with extra claims, valid for ttl.
func token(t *testing.T, key, user string, ttl time.Duration, extra map[string]any) string {
	t.Helper()
	claims := map[string]any{"sub": user, "exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	tok, err := auth.SignHS256(key, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connect logs in with tok as the NATS auth_token.
func (r *rig) connect(tok string, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.Token(tok), nats.NoReconnect(), nats.Timeout(5 * time.Second),
		nats.PermissionErrOnSubscribe(true), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})}, r.clientOpts...)
	nc, err := nats.Connect(r.nats.URL, append(all, opts...)...)
	if err == nil {
		r.t.Cleanup(nc.Close)
	}
	return nc, err
}

// mustRefuse connects with tok and expects NATS to refuse the login, with
// Herald's reason code in Herald's log, in the refusals feed and in the
// error NATS logged.
func (r *rig) mustRefuse(tok string, code auth.Code, opts ...nats.Option) {
	r.t.Helper()
	_, err := r.connect(tok, opts...)
	if err == nil || !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(err.Error(), "Authorization Violation") {
		r.t.Fatalf("login with a %s token: got %v, want Authorization Violation", code, err)
	}
	waitFor(r.t, "the refusal in Herald's log", func() bool {
		return strings.Contains(r.log.String(), "reason="+string(code))
	})
	found := false
	for _, ref := range r.verifier.Refusals.Recent() {
		if ref.Code == code && ref.Transport == "nats" {
			found = true
		}
	}
	if !found {
		r.t.Fatalf("the refusals feed has no %s from nats: %+v", code, r.verifier.Refusals.Recent())
	}
	if code != auth.NATSRequestInvalid && code != auth.NATSAnswerInvalid {
		waitFor(r.t, "the callout's error in the NATS log", func() bool {
			return strings.Contains(r.nats.Log.String(), "herald: "+string(code))
		})
	}
}

// canSubscribe subscribes to subject and reports whether the server allowed
// it. The server's refusal arrives before the reply to the flush's ping, and
// PermissionErrOnSubscribe hands it to the subscription.
func canSubscribe(t *testing.T, nc *nats.Conn, subject string) bool {
	t.Helper()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	_, err = sub.NextMsg(time.Millisecond)
	return !errors.Is(err, nats.ErrPermissionViolation)
}

// canPublish publishes to subject and reports whether the server allowed it
// (a refusal arrives before the reply to the flush's ping).
func canPublish(t *testing.T, nc *nats.Conn, subject string) bool {
	t.Helper()
	if err := nc.Publish(subject, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	last := nc.LastError()
	return last == nil || !strings.Contains(last.Error(), `Publish to "`+subject+`"`)
}
