package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

func seed(t *testing.T, create func() (nkeys.KeyPair, error)) (string, string) {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	return string(s), pub
}

func TestNATSCalloutValidation(t *testing.T) {
	accSeed, accPub := seed(t, nkeys.CreateAccount)
	userSeed, _ := seed(t, nkeys.CreateUser)
	xSeed, _ := seed(t, nkeys.CreateCurveKeys)
	good := func() *Config {
		c := Default()
		c.NATSCallout.Enabled = true
		c.NATSCallout.IssuerSeed = accSeed
		return c
	}
	if ps := good().Validate(); ps != nil {
		t.Fatalf("a minimal callout: %v", ps)
	}
	tests := []struct {
		name   string
		mutate func(*NATSCallout)
		want   string // a problem containing this; "" means valid
	}{
		{"no issuer", func(n *NATSCallout) { n.IssuerSeed = "" }, "nats_callout.issuer_seed: is required"},
		{"user seed as issuer", func(n *NATSCallout) { n.IssuerSeed = userSeed }, "nats_callout.issuer_seed: is not an account seed; it should start with SA"},
		{"garbage seed", func(n *NATSCallout) { n.XKeySeed = "SXnope" }, "nats_callout.xkey_seed: is not an nkey seed"},
		{"account seed as xkey", func(n *NATSCallout) { n.XKeySeed = accSeed }, "nats_callout.xkey_seed: is not a curve (xkey) seed; it should start with SX"},
		{"xkey ok", func(n *NATSCallout) { n.XKeySeed = xSeed }, ""},
		{"two credentials", func(n *NATSCallout) { n.User, n.Creds = "herald", "/x.creds" }, "give one of user (with password), creds and nkey_seed"},
		{"nkey seed ok", func(n *NATSCallout) { n.NkeySeed = userSeed }, ""},
		{"mode", func(n *NATSCallout) { n.Mode = "decentral" }, `nats_callout.mode: must be centralized or operator (got "decentral")`},
		{"operator needs account key", func(n *NATSCallout) { n.Mode, n.Account = "operator", "APP" }, "nats_callout.account: must be an account public key (A...) in operator mode"},
		{"operator ok", func(n *NATSCallout) { n.Mode, n.Account = "operator", accPub }, ""},
		{"signing seed centralized", func(n *NATSCallout) { n.AccountSigningSeed = accSeed }, "account_signing_seed: applies to operator mode only"},
		{"token source", func(n *NATSCallout) { n.TokenSources = []string{"cookie"} }, `"cookie" is not a NATS token source (use auth_token, password, jwt)`},
		{"template placeholder", func(n *NATSCallout) { n.Permissions.SubscribeAllow = []string{"chat.{{name}}.>"} }, "permissions.subscribe_allow[0]: placeholder {{name}} is not {{user}} or {{claim:NAME}}"},
		{"template unclosed", func(n *NATSCallout) { n.Permissions.PublishAllow = []string{"chat.{{user}.>"} }, "has an unclosed placeholder"},
		{"template wildcard", func(n *NATSCallout) { n.Permissions.PublishDeny = []string{"a.>.b"} }, "> may only be the last token"},
		{"template queue ok", func(n *NATSCallout) {
			n.Permissions.SubscribeAllow = []string{"jobs.{{claim:team}}.* workers", "{{claim:subjects}}"}
		}, ""},
		{"accounts without claim", func(n *NATSCallout) { n.Accounts = []NATSAccount{{Name: "OTHER"}} }, "nats_callout.account_claim: must name the claim"},
		{"max_expiry", func(n *NATSCallout) { n.MaxExpiry = Duration(1) }, "must be at least 1s"},
	}
	for _, tt := range tests {
		c := good()
		tt.mutate(&c.NATSCallout)
		ps := c.Validate()
		if tt.want == "" {
			if ps != nil {
				t.Errorf("%s: unexpected problems: %v", tt.name, ps)
			}
			continue
		}
		if !strings.Contains(ps.Error(), tt.want) {
			t.Errorf("%s: problems %q lack %q", tt.name, ps.Error(), tt.want)
		}
		if strings.Contains(ps.Error(), accSeed) || strings.Contains(ps.Error(), userSeed) {
			t.Errorf("%s: a seed appears in the problems", tt.name)
		}
	}
}

// TestNATSCalloutCheckConfigLines: herald check-config reports each callout
// problem on one line with its file line.
func TestNATSCalloutCheckConfigLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.yaml")
	os.WriteFile(path, []byte("nats_callout:\n  enabled: true\n  mode: operator\n  issuer_seed: SAnotaseed\n  permissions:\n    subscribe_allow: [\"a.{{usr}}\"]\n"), 0o600)
	ps := CheckFile(path)
	if len(ps) != 3 {
		t.Fatalf("want 3 problems, got:\n%v", ps)
	}
	want := []string{path + ":4: nats_callout.issuer_seed: is not an nkey seed", path + ":6: nats_callout.permissions.subscribe_allow[0]: placeholder {{usr}}",
		"nats_callout.account: is required in operator mode"}
	for _, w := range want {
		if !strings.Contains(ps.Error(), w) {
			t.Errorf("problems lack %q:\n%v", w, ps)
		}
	}
	if strings.Contains(ps.Error(), "SAnotaseed") {
		t.Errorf("the seed appears in the problems:\n%v", ps)
	}
}
