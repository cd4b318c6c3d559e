// Command herald runs the Herald real-time messaging server and its tools.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `herald: a real-time messaging server (Centrifugo-compatible)

Usage:
  herald serve [--config FILE] [--listen ADDR] [--api-key KEY] [--hmac-secret SECRET] [--dev]
               [--broker memory|redis|nats] [--redis-address ADDR] [--nats-url URL]
  herald check-config --config FILE [--connect]
  herald explain [--config FILE | --hmac-secret S] [--subscription --channel C --user U | --mercure ROLE] TOKEN
  herald token [--config FILE | --hmac-secret S] --user USER [--ttl 24h] [--channel C] [--info JSON]
  herald keys [--config FILE | --hmac-secret S]
  herald mercure-token [--config FILE | --secret S] [--publish SEL]... [--subscribe SEL]... [--payload JSON] [--ttl D]
  herald proxy-check (--config FILE | --endpoint URL [--ca-file PEM]) [--type connect] [--header 'Authorization: Bearer …']
  herald nats-callout [--config FILE] [--nats-url URL] [--user U --password P | --creds FILE | --nkey-seed SU…]
                      [--issuer-seed SA…] [--account A] [--xkey-seed SX…] [--hmac-secret S] [--mode operator]
  herald nats-callout check [the same flags] [--sentinel-creds FILE]
  herald config-keys
  herald version

With no configuration at all, "herald serve" runs a development server on
127.0.0.1:8000 and prints a generated secret, API key and token.
The configuration file may also be named by HERALD_CONFIG. Every option
can also be set with a HERALD_* environment variable
(precedence: flag > environment > file > default); see docs/configuration.md.
`

func main() {
	// Client ids are random UUIDs; reading randomness in batches instead of
	// one getrandom call per connect saves a syscall on every connect.
	uuid.EnableRandPool()
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args, env []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], env, stdout, stderr)
	case "check-config", "checkconfig":
		return checkConfig(args[1:], env, stdout, stderr)
	case "explain":
		return explain(args[1:], env, stdout, stderr)
	case "token":
		return token(args[1:], env, stdout, stderr)
	case "keys":
		return keys(args[1:], env, stdout, stderr)
	case "mercure-token":
		return mercureToken(args[1:], env, stdout, stderr)
	case "proxy-check":
		return proxyCheck(args[1:], env, stdout, stderr)
	case "nats-callout":
		return natsCallout(args[1:], env, stdout, stderr)
	case "config-keys":
		fmt.Fprint(stdout, config.ReferenceTable())
		return 0
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "herald %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "herald: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func checkConfig(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "configuration file to check (YAML or JSON)")
	connect := fs.Bool("connect", false, "also connect to the configured broker (Redis, NATS) and say what failed")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" {
		fmt.Fprintln(stderr, "herald check-config: --config FILE is required")
		return 2
	}
	if problems := config.CheckFile(*file); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p.String())
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: configuration is valid\n", *file)
	if !*connect {
		return 0
	}
	cfg, err := config.Load(config.Source{File: *file, Env: env})
	if err != nil {
		fmt.Fprintf(stderr, "herald check-config: %v\n", err)
		return 1
	}
	what, err := server.CheckBroker(cfg, slog.New(slog.DiscardHandler), 5*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "broker %s: cannot connect: %v\n", what, err)
		return 1
	}
	fmt.Fprintf(stdout, "broker %s: connected\n", what)
	return 0
}

type serveFlags struct {
	config, listen, apiKey, hmacSecret string
	broker, redisAddress, natsURL      string
	dev                                bool
	set                                map[string]bool
}

func serve(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "configuration file (YAML or JSON)")
	fs.StringVar(&f.listen, "listen", "", "address to listen on (default 127.0.0.1:8000)")
	fs.StringVar(&f.apiKey, "api-key", "", "server API key (http_api.key)")
	fs.StringVar(&f.hmacSecret, "hmac-secret", "", "HMAC secret for connection and subscription tokens (client.token.hmac_secret_key)")
	fs.BoolVar(&f.dev, "dev", false, "development permissions: anonymous connections, every channel operation allowed")
	fs.StringVar(&f.broker, "broker", "", "what connects the nodes: memory (one node), redis or nats (broker.type)")
	fs.StringVar(&f.redisAddress, "redis-address", "", "Redis address, host:port or a redis:// URL (broker.redis.address)")
	fs.StringVar(&f.natsURL, "nats-url", "", "NATS URL (broker.nats.url)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if f.config == "" {
		f.config = lookupEnv(env, "HERALD_CONFIG")
	}

	flags := map[string]string{}
	if f.set["listen"] {
		flags["listen"] = f.listen
	}
	if f.set["api-key"] {
		flags["http_api.key"] = f.apiKey
	}
	if f.set["hmac-secret"] {
		flags["client.token.hmac_secret_key"] = f.hmacSecret
	}
	if f.set["dev"] {
		flags["dev"] = fmt.Sprint(f.dev)
	}
	if f.set["broker"] {
		flags["broker.type"] = f.broker
	}
	if f.set["redis-address"] {
		flags["broker.redis.address"] = f.redisAddress
	}
	if f.set["nats-url"] {
		flags["broker.nats.url"] = f.natsURL
	}
	// With no configuration at all, run the development server.
	implied := f.config == "" && !hasHeraldEnv(env) && !f.set["api-key"] && !f.set["hmac-secret"] && !f.set["dev"]
	if implied {
		flags["dev"] = "true"
	}
	cfg, err := config.Load(config.Source{File: f.config, Env: env, Flags: flags})
	if err != nil {
		fmt.Fprintf(stderr, "herald: invalid configuration:\n%v\n", err)
		return 1
	}
	if implied && !isLoopback(cfg.Listen) {
		fmt.Fprintf(stderr, "herald: the implied development server listens on loopback only, not %s; pass --dev to run development permissions elsewhere, or configure keys\n", cfg.Listen)
		return 1
	}
	log := newLogger(cfg, stderr)
	var generated *devCredentials
	if cfg.Dev {
		cfg.ApplyDevDefaults()
		generated = fillDevCredentials(cfg)
	}
	srv, err := server.New(cfg, log, version)
	if err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	if err := srv.Listen(); err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	srv.LogStartup()
	if cfg.Dev {
		printDevBanner(stdout, cfg, srv.Addr(), generated)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the keys (key files, environment and the configuration
	// file's token settings) without a restart; a bad new key keeps the old set.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			log.Info("SIGHUP received, reloading keys")
			next, err := config.Load(config.Source{File: f.config, Env: env, Flags: flags})
			if err != nil {
				log.Error("key reload failed: invalid configuration; the previous keys stay in use", slog.String("error", err.Error()))
				continue
			}
			if next.Client.Token.HMACSecretKey == "" && generated != nil && generated.secret {
				next.Client.Token.HMACSecretKey = cfg.Client.Token.HMACSecretKey // keep the generated development secret
			}
			if generated != nil && generated.mercure {
				shareDevSecret(next)
			}
			_ = srv.ReloadKeys(next)
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	select {
	case err := <-errc:
		if err != nil {
			fmt.Fprintf(stderr, "herald: %v\n", err)
			return 1
		}
		return 0
	case <-ctx.Done():
	}
	stop() // a second signal ends the process at once
	log.Info("signal received, shutting down", slog.Duration("timeout", cfg.ShutdownTimeout.D()))
	if err := srv.Shutdown(context.Background()); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Error("shutdown", slog.String("error", err.Error()))
	}
	<-errc
	log.Info("stopped")
	return 0
}

func lookupEnv(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// hasHeraldEnv reports whether env configures Herald: a HERALD_* variable or
// one of the reference Mercure hub's key variables.
func hasHeraldEnv(env []string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, "HERALD_") {
			return true
		}
		if name, _, _ := strings.Cut(kv, "="); slices.Contains(config.MercureEnv, name) {
			return true
		}
	}
	return false
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

type devCredentials struct {
	secret, apiKey bool // which were generated
	mercure        bool // the Mercure roles use the HMAC secret
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fillDevCredentials generates the secrets a development server lacks.
func fillDevCredentials(cfg *config.Config) *devCredentials {
	g := &devCredentials{}
	if cfg.Client.Token.HMACSecretKey == "" {
		cfg.Client.Token.HMACSecretKey = randomHex(32)
		g.secret = true
	}
	if cfg.HTTPAPI.Key == "" && !cfg.HTTPAPI.Insecure {
		cfg.HTTPAPI.Key = randomHex(16)
		g.apiKey = true
	}
	g.mercure = shareDevSecret(cfg)
	return g
}

// shareDevSecret makes the HMAC secret (given or generated) verify Mercure
// publisher and subscriber tokens too, when no Mercure key is configured:
// in development one secret serves every door.
func shareDevSecret(cfg *config.Config) bool {
	m := &cfg.Mercure
	if !m.Enabled || m.Publisher.Configured() || m.Subscriber.Configured() || cfg.Client.Token.HMACSecretKey == "" {
		return false
	}
	m.Publisher.Secret, m.Subscriber.Secret = cfg.Client.Token.HMACSecretKey, cfg.Client.Token.HMACSecretKey
	m.Publisher.Alg, m.Subscriber.Alg = "HS256", "HS256"
	return true
}

// devKeys says which keys verify which tokens, for the banner.
func devKeys(cfg *config.Config, g *devCredentials) string {
	fp := auth.Fingerprint([]byte(cfg.Client.Token.HMACSecretKey))
	if g.mercure {
		return "HMAC secret " + fp + " verifies every token: connection and subscription (HS256/HS384/HS512), Mercure publisher and subscriber (HS256)"
	}
	out := "HMAC secret " + fp + " verifies connection and subscription tokens (HS256/HS384/HS512)"
	if !cfg.Mercure.Enabled {
		return out
	}
	role := func(name string, k *config.MercureKeys) string {
		switch {
		case k.Secret != "":
			return fmt.Sprintf("; Mercure %s tokens: mercure.%s.secret %s (%s)", name, name, auth.Fingerprint([]byte(k.Secret)), k.Alg)
		case len(k.Keys) > 0:
			return fmt.Sprintf("; Mercure %s tokens: the %d keys of mercure.%s.keys", name, len(k.Keys), name)
		}
		return fmt.Sprintf("; Mercure %s tokens: no key (mercure.%s)", name, name)
	}
	return out + role("publisher", &cfg.Mercure.Publisher) + role("subscriber", &cfg.Mercure.Subscriber)
}

// printDevBanner shows a developer what they need to connect and publish.
// It goes to the terminal (stdout), never to the log.
func printDevBanner(w io.Writer, cfg *config.Config, addr string, g *devCredentials) {
	base := "http://" + addr
	fmt.Fprintf(w, "\nHerald %s development server (permissions relaxed; tokens still verified)\n", version)
	fmt.Fprintf(w, "  WebSocket:   ws://%s/connection/websocket\n", addr)
	if g.secret {
		fmt.Fprintf(w, "  HMAC secret: %s   (generated; set --hmac-secret to keep one)\n", cfg.Client.Token.HMACSecretKey)
	}
	if g.apiKey {
		fmt.Fprintf(w, "  API key:     %s   (generated; set --api-key to keep one)\n", cfg.HTTPAPI.Key)
	}
	if tok, err := auth.SignHS256(cfg.Client.Token.HMACSecretKey, map[string]any{
		"sub": "dev-user", "exp": time.Now().Add(24 * time.Hour).Unix(),
	}); err == nil {
		fmt.Fprintf(w, "  Token:       %s   (user dev-user, valid 24h)\n", tok)
	}
	fmt.Fprintf(w, "  Keys:        %s\n", devKeys(cfg, g))
	if ac := &cfg.ActionCable; ac.Enabled {
		fmt.Fprintf(w, "  Action Cable:      ws://%s%s   (anonymous clients allowed; broadcast: curl -H 'Authorization: Bearer <API key>' -d '{\"stream\":\"chat\",\"data\":\"{}\"}' %s%s)\n",
			addr, ac.Path, base, ac.Broadcast.Path)
	}
	if m := &cfg.Mercure; m.Enabled {
		hub := base + m.Path
		fmt.Fprintf(w, "  Mercure hub:       %s   (anonymous subscribers: %v)\n", hub, m.Anonymous)
		pubTok := "<publisher token>"
		if g.mercure {
			if tok, err := auth.SignHS256(m.Publisher.Secret, map[string]any{"mercure": map[string]any{"publish": []string{"*"}, "subscribe": []string{"*"}}}); err == nil {
				pubTok = tok
				fmt.Fprintf(w, "  Mercure token:     %s   (publish and subscribe on every topic; signed with the HMAC secret)\n", tok)
			}
		}
		fmt.Fprintf(w, "  Mercure subscribe: curl -N -G --data-urlencode 'topic=https://example.com/books/{id}' %s\n", hub)
		fmt.Fprintf(w, "  Mercure publish:   curl -X POST -H 'Authorization: Bearer %s' -d 'topic=https://example.com/books/1&data=hello' %s\n", pubTok, hub)
	}
	key := cfg.HTTPAPI.Key
	if !g.apiKey {
		key = "<your API key>"
	}
	fmt.Fprintf(w, "  Publish:     curl -X POST -H 'X-API-Key: %s' -d '{\"channel\":\"news\",\"data\":{\"text\":\"hello\"}}' %s/api/publish\n\n", key, base)
}
