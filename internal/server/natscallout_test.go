package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhub/herald/internal/natscallout/natstest"
	"github.com/heraldhub/herald/internal/testutil"
)

// TestServeRunsNATSCallout: herald serve with a nats_callout section decides
// NATS logins with the hub's own verifier, so a revocation through the
// server API refuses the NATS login too, and the refusal appears in the same
// /debug/auth feed and the callout's counters in /debug/vars.
func TestServeRunsNATSCallout(t *testing.T) {
	keys := natstest.NewKeys()
	ns, err := natstest.Start(t.TempDir(), natstest.Centralized(keys.IssuerPub, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	cfg := testutil.Config()
	cfg.Admin.Key = "admin-secret"
	nc := &cfg.NATSCallout
	nc.Enabled = true
	nc.URL = ns.URL
	nc.User, nc.Password = natstest.CalloutUser, natstest.CalloutPassword
	nc.IssuerSeed = keys.IssuerSeed
	nc.Account = "APP"
	nc.Permissions.SubscribeAllow = []string{"chat.{{user}}.>"}
	srv := testutil.Start(t, cfg)

	tok := testutil.Token(t, map[string]any{"sub": "alice", "jti": "nats-jti-1", "exp": time.Now().Add(time.Hour).Unix()})
	conn, err := nats.Connect(ns.URL, nats.Token(tok))
	if err != nil {
		t.Fatalf("NATS login through herald serve: %v", err)
	}
	conn.Close()

	apiOK(t, srv, "revoke_token", map[string]any{"uid": "nats-jti-1"})
	if _, err := nats.Connect(ns.URL, nats.Token(tok)); err == nil {
		t.Fatal("a revoked token still logs in to NATS")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(srv.Logs.String(), "reason=token_revoked") {
		if time.Now().After(deadline) {
			t.Fatalf("no token_revoked in the log:\n%s", srv.Logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	get := func(path string, v any) {
		req, _ := http.NewRequest("GET", "http://"+srv.Addr+path, nil)
		req.Header.Set("X-Admin-Key", "admin-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var feed struct {
		Refusals []struct{ Code, Transport string }
	}
	get("/debug/auth", &feed)
	if len(feed.Refusals) == 0 || feed.Refusals[0].Code != "token_revoked" || feed.Refusals[0].Transport != "nats" {
		t.Fatalf("/debug/auth refusals: %+v", feed.Refusals)
	}
	var vars map[string]any
	get("/debug/vars", &vars)
	if vars["nats_callout_accepted"] != 1.0 || vars["nats_callout_refused"] != 1.0 {
		t.Fatalf("/debug/vars callout counters: accepted %v refused %v", vars["nats_callout_accepted"], vars["nats_callout_refused"])
	}
}
