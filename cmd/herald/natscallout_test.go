package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/natscallout/natstest"
)

const calloutSecret = "cli-callout-secret-0123456789abcdef0123"

func waitForLog(t *testing.T, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", want, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func clientToken(t *testing.T, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.SignHS256(calloutSecret, map[string]any{"sub": "alice", "exp": time.Now().Add(ttl).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestNATSCalloutCommand runs `herald nats-callout` from flags alone against
// a real NATS server that encrypts its requests, logs in through it, and
// checks the configuration with `herald nats-callout check`.
func TestNATSCalloutCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	keys := natstest.NewKeys()
	ns, err := natstest.Start(t.TempDir(), natstest.Centralized(keys.IssuerPub, keys.XKeyPub))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	flags := func(issuerSeed, password string) []string {
		return []string{"--nats-url", ns.URL, "--user", natstest.CalloutUser, "--password", password,
			"--issuer-seed", issuerSeed, "--account", "APP", "--xkey-seed", keys.XKeySeed, "--hmac-secret", calloutSecret}
	}
	p := start(t, buildBinary(t), nil, append([]string{"nats-callout"}, flags(keys.IssuerSeed, natstest.CalloutPassword)...)...)
	waitForLog(t, p, "nats callout serving")

	nc, err := nats.Connect(ns.URL, nats.Token(clientToken(t, time.Hour)))
	if err != nil {
		t.Fatalf("a valid token through herald nats-callout: %v\n%s", err, p.stderr.String())
	}
	nc.Close()
	if _, err := nats.Connect(ns.URL, nats.Token(clientToken(t, -time.Minute))); err == nil {
		t.Fatal("an expired token was accepted")
	}
	waitForLog(t, p, "reason=token_expired")

	code, out, errOut := runCLI(append([]string{"nats-callout", "check"}, flags(keys.IssuerSeed, natstest.CalloutPassword)...)...)
	if code != 0 {
		t.Fatalf("check of a good configuration: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"PASS  connect", "PASS  subscribe", "PASS  request   the request from server herald-test", "encrypted for xkey " + keys.XKeyPub,
		"PASS  issuer    NATS expects answers signed by " + keys.IssuerPub, "PASS  login     a probe login through the callout was accepted (user herald-check, account APP)"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	wrong := natstest.NewKeys()
	code, out, _ = runCLI(append([]string{"nats-callout", "check"}, flags(wrong.IssuerSeed, natstest.CalloutPassword)...)...)
	if code != 1 || !strings.Contains(out, "FAIL  issuer    the answer is signed by "+wrong.IssuerPub) || !strings.Contains(out, "NATS expects "+keys.IssuerPub) {
		t.Fatalf("check with the wrong issuer seed: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(append([]string{"nats-callout", "check"}, flags(keys.IssuerSeed, "wrong-password")...)...)
	if code != 1 || !strings.Contains(out, "FAIL  connect") || !strings.Contains(out, "auth_users") {
		t.Fatalf("check with a wrong callout password: exit %d\n%s", code, out)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("herald nats-callout did not stop on SIGTERM")
	}
	if log := p.stderr.String(); !strings.Contains(log, "nats callout stopped") || !strings.Contains(log, "processing_p50_us=") {
		t.Fatalf("no closing line with the processing times:\n%s", log)
	}
	if strings.Contains(p.stderr.String(), keys.IssuerSeed) || strings.Contains(p.stderr.String(), calloutSecret) {
		t.Fatal("a seed or a secret reached the log")
	}
}
