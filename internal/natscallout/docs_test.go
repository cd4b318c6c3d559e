package natscallout

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/natscallout/natstest"
)

var fenceRE = regexp.MustCompile("(?s)```[a-z]*\n(# [^\n]+)\n(.*?)```")

// docBlocks returns the fenced blocks of docs/nats-callout.md by their
// first line ("# nats-server.conf (centralized)").
func docBlocks(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/nats-callout.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	for _, m := range fenceRE.FindAllStringSubmatch(string(doc), -1) {
		blocks[strings.TrimPrefix(m[1], "# ")] = m[2]
	}
	return blocks
}

// TestDocumentedSetupsWork runs the complete configurations of
// docs/nats-callout.md as they are (on a free port): a real NATS server
// with the documented server config, Herald with the documented herald.yaml,
// and a client logging in with a token and, in operator mode, the sentinel.
func TestDocumentedSetupsWork(t *testing.T) {
	blocks := docBlocks(t)
	for _, mode := range []string{"centralized", "operator"} {
		t.Run(mode, func(t *testing.T) {
			natsConf, heraldConf := blocks["nats-server.conf ("+mode+")"], blocks["herald.yaml ("+mode+")"]
			if natsConf == "" || heraldConf == "" {
				t.Fatalf("docs/nats-callout.md lacks the %s blocks", mode)
			}
			dir := t.TempDir()
			ns, err := natstest.Start(dir, strings.Replace(natsConf, "listen: 127.0.0.1:4222", "listen: 127.0.0.1:-1", 1))
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Stop()
			var clientOpts []nats.Option
			for _, creds := range []string{"callout.creds", "sentinel.creds"} {
				if text := blocks[creds]; text != "" {
					if err := os.WriteFile(filepath.Join(dir, creds), []byte(text), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			if mode == "operator" {
				clientOpts = append(clientOpts, nats.UserCredentials(filepath.Join(dir, "sentinel.creds")))
			}
			heraldConf = strings.ReplaceAll(heraldConf, "nats://127.0.0.1:4222", ns.URL)
			heraldConf = strings.ReplaceAll(heraldConf, "/etc/herald/", dir+"/")
			path := filepath.Join(dir, "herald.yaml")
			if err := os.WriteFile(path, []byte(heraldConf), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(config.Source{File: path})
			if err != nil {
				t.Fatalf("the documented herald.yaml: %v", err)
			}
			k, _ := auth.NewHMACKey(cfg.Client.Token.HMACSecretKey)
			v := auth.NewVerifier(auth.NewKeySet(k), auth.Policy{Rules: auth.Rules{UserClaim: "sub"}})
			logs := &logBuffer{}
			svc, err := New(Options{Config: &cfg.NATSCallout, Engine: auth.NewEngine(v, auth.Authorities{}, false), Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			tok, _ := auth.SignHS256(cfg.Client.Token.HMACSecretKey, map[string]any{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
			nc, err := nats.Connect(ns.URL, append(clientOpts, nats.Token(tok), nats.PermissionErrOnSubscribe(true))...)
			if err != nil {
				t.Fatalf("login with the documented setup: %v\nherald: %s\nnats: %s", err, logs.String(), ns.Log.String())
			}
			defer nc.Close()
			if !canSubscribe(t, nc, "chat.alice.news") || canSubscribe(t, nc, "chat.bob.news") {
				t.Fatal("the documented permissions do not hold")
			}
		})
	}
}
