package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/natscallout"
	"github.com/heraldhub/herald/internal/server"
)

// calloutFlags are the essentials of the NATS callout, so that it starts
// without a configuration file. Each sets the nats_callout key it names.
var calloutFlags = []struct{ flag, key, usage string }{
	{"nats-url", "nats_callout.url", "NATS server URL(s)"},
	{"user", "nats_callout.user", "the callout user (in the server's auth_callout.auth_users)"},
	{"password", "nats_callout.password", "the callout user's password"},
	{"creds", "nats_callout.creds", "credentials file of the callout user (operator mode)"},
	{"nkey-seed", "nats_callout.nkey_seed", "user nkey seed (SU...) of the callout user"},
	{"issuer-seed", "nats_callout.issuer_seed", "account nkey seed (SA...) that signs the answers (auth_callout.issuer)"},
	{"issuer-account", "nats_callout.issuer_account", "operator mode, when --issuer-seed is a signing key: the callout account"},
	{"account", "nats_callout.account", "account users are placed in (a name, or an account public key in operator mode)"},
	{"account-signing-seed", "nats_callout.account_signing_seed", "operator mode: seed that signs the user JWTs of --account"},
	{"xkey-seed", "nats_callout.xkey_seed", "xkey seed (SX...) whose public key is the server's auth_callout.xkey"},
	{"mode", "nats_callout.mode", "centralized or operator"},
	{"queue", "nats_callout.queue", "queue group shared by the Herald instances"},
	{"hmac-secret", "client.token.hmac_secret_key", "HMAC secret of client tokens (as on herald serve)"},
}

// loadCalloutConfig parses the flags of the nats-callout commands and loads
// the configuration (flag > env > file > default), with the callout enabled.
func loadCalloutConfig(fs *flag.FlagSet, args, env []string, stderr io.Writer) (*config.Config, func() (*config.Config, error), int) {
	file := fs.String("config", "", "configuration file (YAML or JSON)")
	values := map[string]*string{}
	for _, f := range calloutFlags {
		values[f.flag] = fs.String(f.flag, "", f.usage+" ("+f.key+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return nil, nil, 2
	}
	flags := map[string]string{"nats_callout.enabled": "true"}
	fs.Visit(func(fl *flag.Flag) {
		for _, f := range calloutFlags {
			if f.flag == fl.Name {
				flags[f.key] = *values[f.flag]
			}
		}
	})
	if *file == "" {
		*file = lookupEnv(env, "HERALD_CONFIG")
	}
	load := func() (*config.Config, error) { return config.Load(config.Source{File: *file, Env: env, Flags: flags}) }
	cfg, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "herald: invalid configuration:\n%v\n", err)
		return nil, nil, 1
	}
	return cfg, load, 0
}

// natsCallout runs the NATS auth callout service on its own.
func natsCallout(args, env []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return natsCalloutCheck(args[1:], env, stdout, stderr)
	}
	fs := flag.NewFlagSet("nats-callout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, load, status := loadCalloutConfig(fs, args, env, stderr)
	if cfg == nil {
		return status
	}
	log := newLogger(cfg, stderr)
	engine, reload, stop, err := server.StandaloneEngine(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	defer stop()
	v := engine.Verifier()
	server.LogKeys(log, v)
	if v.Keys().Empty() {
		log.Warn("no token key configured: every NATS login will be refused (set client.token.hmac_secret_key or --hmac-secret, or client.token.keys)")
	}
	svc, err := natscallout.New(natscallout.Options{Config: &cfg.NATSCallout, Engine: engine, Refusals: v.Refusals, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	// SIGHUP reloads the token keys (key files, environment, the file's
	// token settings); a bad new key keeps the old ones.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			next, err := load()
			if err == nil {
				err = reload(next)
			}
			if err != nil {
				log.Error("key reload failed; the previous keys stay in use", slog.String("error", err.Error()))
				continue
			}
			log.Info("keys reloaded")
			server.LogKeys(log, v)
		}
	}()
	<-ctx.Done()
	cancel()
	log.Info("signal received, stopping the nats callout")
	svc.Close()
	return 0
}

// natsCalloutCheck validates the callout configuration against a running
// NATS server, one line per finding.
func natsCalloutCheck(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nats-callout check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sentinel := fs.String("sentinel-creds", "", "operator mode: credentials of the sentinel user the probe login presents")
	timeout := fs.Duration("timeout", 5*time.Second, "how long each step may take")
	cfg, _, status := loadCalloutConfig(fs, args, env, stderr)
	if cfg == nil {
		return status
	}
	engine, _, stop, err := server.StandaloneEngine(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	defer stop()
	svc, err := natscallout.New(natscallout.Options{Config: &cfg.NATSCallout, Engine: engine})
	if err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	// A token Herald accepts, when the configuration has an HMAC secret,
	// makes the probe an accepted login that tests the whole chain.
	probe := ""
	if secret := cfg.Client.Token.HMACSecretKey; secret != "" {
		probe, _ = auth.SignHS256(secret, map[string]any{"sub": "herald-check", "exp": time.Now().Add(time.Minute).Unix()})
	}
	var opts []nats.Option
	if *sentinel != "" {
		opts = append(opts, nats.UserCredentials(*sentinel))
	}
	failed := false
	for _, f := range svc.Check(probe, opts, *timeout) {
		fmt.Fprintf(stdout, "%-4s  %-9s %s\n", f.Status, f.Name, f.Detail)
		failed = failed || f.Status == "FAIL"
	}
	if failed {
		return 1
	}
	return 0
}
