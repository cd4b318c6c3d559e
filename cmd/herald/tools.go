package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/server"
)

// keyFlags are the flags the token tools share with serve, so a token can be
// checked or minted with the same settings the server uses.
type keyFlags struct {
	config, hmacSecret string
}

func (k *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.config, "config", "", "configuration file (YAML or JSON)")
	fs.StringVar(&k.hmacSecret, "hmac-secret", "", "HMAC secret (client.token.hmac_secret_key)")
}

// load reads the configuration. A --hmac-secret also verifies Mercure
// tokens when no Mercure key is configured, as on a development server.
func (k *keyFlags) load(env []string) (*config.Config, error) {
	flags := map[string]string{}
	if k.hmacSecret != "" {
		flags["client.token.hmac_secret_key"] = k.hmacSecret
	}
	file := k.config
	if file == "" {
		file = lookupEnv(env, "HERALD_CONFIG")
	}
	cfg, err := config.Load(config.Source{File: file, Env: env, Flags: flags})
	if err == nil && k.hmacSecret != "" && !cfg.Mercure.Publisher.Configured() && !cfg.Mercure.Subscriber.Configured() {
		cfg.Mercure.Publisher.Secret, cfg.Mercure.Subscriber.Secret = k.hmacSecret, k.hmacSecret
	}
	return cfg, err
}

// engine is the auth engine of a configuration, for the token tools.
type engine struct {
	cfg      *config.Config
	v        *auth.Verifier
	pub, sub *auth.KeySet // Mercure publisher and subscriber keys
	stop     func()
}

// engine loads the configuration and builds its auth engine and Mercure
// keys, with JWKS endpoints fetched once. On failure it reports and returns
// the exit status.
func (k *keyFlags) engine(env []string, stderr io.Writer) (*engine, int) {
	cfg, err := k.load(env)
	if err != nil {
		fmt.Fprintf(stderr, "herald: invalid configuration:\n%v\n", err)
		return nil, 2
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	v, stop, err := server.NewVerifier(cfg, quiet)
	if err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return nil, 2
	}
	pub, sub, stopMercure, err := server.NewMercureKeys(cfg, quiet)
	if err != nil {
		stop()
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return nil, 2
	}
	return &engine{cfg: cfg, v: v, pub: pub, sub: sub, stop: func() { stop(); stopMercure() }}, 0
}

// explain verifies a token offline and prints each check.
func explain(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var kf keyFlags
	kf.register(fs)
	sub := fs.Bool("subscription", false, "explain a subscription token")
	channel := fs.String("channel", "", "with --subscription: the channel being subscribed")
	user := fs.String("user", "", "with --subscription: the connection's user")
	role := fs.String("mercure", "", "explain a Mercure token of this role: publisher or subscriber (default: a token with a mercure claim is explained as one)")
	anycable := fs.Bool("anycable", false, "explain an AnyCable token (ext claim) as the Action Cable door verifies it (default: a token with an ext claim is explained as one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: herald explain [--config FILE | --hmac-secret S] [--subscription --channel C --user U | --mercure publisher|subscriber | --anycable] TOKEN   (TOKEN - reads standard input)")
		return 2
	}
	if *role != "" && *role != "publisher" && *role != "subscriber" {
		fmt.Fprintf(stderr, "herald explain: --mercure %q: use publisher or subscriber\n", *role)
		return 2
	}
	tok := fs.Arg(0)
	if tok == "-" {
		b, _ := io.ReadAll(io.LimitReader(os.Stdin, auth.MaxTokenSize+1))
		tok = strings.TrimSpace(string(b))
	}
	e, status := kf.engine(env, stderr)
	if e == nil {
		return status
	}
	defer e.stop()
	if *role == "" && !*sub {
		if has, publish := auth.HasMercureClaim(tok); has {
			*role = "subscriber"
			if publish {
				*role = "publisher"
			}
		}
	}
	var checks []auth.Check
	var ok bool
	if !*anycable && *role == "" && !*sub && hasClaim(tok, "ext") {
		*anycable = true
	}
	if *anycable {
		rules, stopCable, err := cableRules(e.cfg)
		if err != nil {
			fmt.Fprintf(stderr, "herald: %v\n", err)
			return 2
		}
		defer stopCable()
		fmt.Fprintf(stdout, "AnyCable token (ext claim), verified with %s\n", rules.KeysFrom)
		checks, ok = e.v.ExplainAnyCable(tok, rules)
	} else if *role != "" {
		keys := e.pub
		if *role == "subscriber" {
			keys = e.sub
		}
		fmt.Fprintf(stdout, "Mercure %s token (mercure.%s keys)\n", *role, *role)
		checks, ok = e.v.ExplainMercure(tok, *role, keys, server.MercureRules(e.cfg, *role))
	} else {
		checks, ok = e.v.Explain(auth.ExplainRequest{Token: tok, Subscription: *sub, Channel: *channel, User: *user})
	}
	auth.WriteExplanation(stdout, checks, ok)
	if ok {
		return 0
	}
	return 1
}

// token mints a connection or subscription token with the configured HMAC secret.
func token(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var kf keyFlags
	kf.register(fs)
	user := fs.String("user", "", "user id (sub); empty = anonymous")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime; 0 = no exp")
	channel := fs.String("channel", "", "mint a subscription token for this channel")
	info := fs.String("info", "", "JSON for the info claim")
	alg := fs.String("alg", "HS256", "HS256, HS384 or HS512")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := kf.load(env)
	if err != nil {
		fmt.Fprintf(stderr, "herald: invalid configuration:\n%v\n", err)
		return 2
	}
	t := &cfg.Client.Token
	if *channel != "" && cfg.Client.SubscriptionToken.Enabled {
		t = &cfg.Client.SubscriptionToken.Token
	}
	secret, kid := t.HMACSecretKey, ""
	if secret == "" {
		for _, k := range t.Keys {
			if k.Secret != "" && k.Alg == *alg {
				secret, kid = k.Secret, k.Kid
				break
			}
		}
	}
	if secret == "" {
		fmt.Fprintln(stderr, "herald token: no HMAC secret configured (set --hmac-secret, client.token.hmac_secret_key or an HS key in client.token.keys); tokens for public keys are minted by their private key's owner")
		return 2
	}
	method := jwt.GetSigningMethod(*alg)
	if method == nil || !strings.HasPrefix(*alg, "HS") {
		fmt.Fprintf(stderr, "herald token: --alg %q: use HS256, HS384 or HS512\n", *alg)
		return 2
	}
	now := time.Now()
	claims := jwt.MapClaims{"sub": *user, "iat": now.Unix()}
	if *ttl > 0 {
		claims["exp"] = now.Add(*ttl).Unix()
	}
	if *channel != "" {
		claims["channel"] = *channel
	}
	if *info != "" {
		var v any
		if err := json.Unmarshal([]byte(*info), &v); err != nil {
			fmt.Fprintf(stderr, "herald token: --info is not JSON: %v\n", err)
			return 2
		}
		claims["info"] = v
	}
	tk := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString([]byte(secret))
	if err != nil {
		fmt.Fprintf(stderr, "herald token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, s)
	return 0
}

// keys prints every configured key by fingerprint.
func keys(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var kf keyFlags
	kf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	e, status := kf.engine(env, stderr)
	if e == nil {
		return status
	}
	defer e.stop()
	print := func(title string, set *auth.KeySet) {
		fmt.Fprintf(stdout, "%s:\n", title)
		if set.Empty() {
			fmt.Fprintln(stdout, "  (no keys)")
		}
		for _, k := range set.Keys() {
			fmt.Fprintf(stdout, "  %s\n", k)
			if fp, ok := auth.QuotedSecret(k); ok {
				fmt.Fprintf(stdout, "    warning: this secret starts and ends with a quote, which is part of it (from a shell or .env file?); without the quotes its fingerprint is %s\n", fp)
			}
		}
		for _, p := range set.Providers() {
			if len(p.Keys()) == 0 {
				fmt.Fprintf(stdout, "  %s: no keys loaded\n", p.Name())
			}
		}
		if t := set.Types(); len(t) > 0 {
			fmt.Fprintf(stdout, "  accepted typ: %s\n", strings.Join(t, ", "))
		}
	}
	v := e.v
	print("connection tokens", v.Keys())
	if v.SubscriptionKeys() != v.Keys() {
		print("subscription tokens", v.SubscriptionKeys())
	}
	if e.cfg.Mercure.Enabled {
		print("mercure publisher tokens", e.pub)
		print("mercure subscriber tokens", e.sub)
	}
	fmt.Fprintf(stdout, "\nAn HMAC secret's fingerprint: printf %%s \"$SECRET\" | sha256sum | cut -c1-8\n")
	fmt.Fprintln(stdout, "A public key's fingerprint:   openssl pkey -pubin -in key.pem -outform DER | sha256sum | cut -c1-8")
	return 0
}

// cableRules are the rules the Action Cable door verifies AnyCable tokens
// by: actioncable.jwt's keys, else actioncable.secret, else the connection
// keys.
func cableRules(cfg *config.Config) (*auth.AnyCableRules, func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	set, from, err := server.CableKeys(ctx, cfg, auth.JWKSOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		return nil, nil, err
	}
	ac := &cfg.ActionCable
	return &auth.AnyCableRules{Keys: set, KeysFrom: from, Param: ac.JWT.Param, Leeway: ac.JWT.Leeway.D(), UserIdentifier: ac.UserIdentifier}, cancel, nil
}

// hasClaim reports whether the token's (unverified) payload has the claim.
func hasClaim(tok, name string) bool {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		return false
	}
	_, ok := claims[name]
	return ok
}
