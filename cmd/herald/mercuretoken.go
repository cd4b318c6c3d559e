package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhub/herald/internal/config"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// mercureToken mints a Mercure (draft-07) token with the publisher or
// subscriber secret of the configuration (or --secret).
func mercureToken(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mercure-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "configuration file (YAML or JSON); its mercure.publisher / mercure.subscriber secret signs")
	secret := fs.String("secret", "", "HMAC secret to sign with instead of the configured one")
	role := fs.String("role", "", "publisher or subscriber: whose secret signs (default: publisher when --publish is given)")
	var publish, subscribe listFlag
	fs.Var(&publish, "publish", "topic selector for mercure.publish (repeatable; * = every topic)")
	fs.Var(&subscribe, "subscribe", "topic selector for mercure.subscribe (repeatable)")
	payload := fs.String("payload", "", "JSON for mercure.payload")
	ttl := fs.Duration("ttl", 0, "lifetime (exp); 0 = no exp, as Mercure allows")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald mercure-token: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *role == "" {
		*role = "subscriber"
		if len(publish) > 0 {
			*role = "publisher"
		}
	}
	if *role != "publisher" && *role != "subscriber" {
		fmt.Fprintf(stderr, "herald mercure-token: --role %q: use publisher or subscriber\n", *role)
		return 2
	}
	key, alg := *secret, "HS256"
	if key == "" {
		path := *file
		if path == "" {
			path = lookupEnv(env, "HERALD_CONFIG")
		}
		cfg, err := config.Load(config.Source{File: path, Env: env})
		if err != nil {
			fmt.Fprintf(stderr, "herald: invalid configuration:\n%v\n", err)
			return 2
		}
		k := &cfg.Mercure.Publisher
		if *role == "subscriber" {
			k = &cfg.Mercure.Subscriber
		}
		key, alg = k.Secret, k.Alg
		if key == "" {
			fmt.Fprintf(stderr, "herald mercure-token: no mercure.%s.secret configured; pass --secret, --config or HERALD_MERCURE_%s_SECRET\n", *role, strings.ToUpper(*role))
			return 2
		}
	}
	m := map[string]any{}
	if len(publish) > 0 {
		m["publish"] = []string(publish)
	}
	if len(subscribe) > 0 {
		m["subscribe"] = []string(subscribe)
	}
	if *payload != "" {
		var v any
		if err := json.Unmarshal([]byte(*payload), &v); err != nil {
			fmt.Fprintf(stderr, "herald mercure-token: --payload is not JSON: %v\n", err)
			return 2
		}
		m["payload"] = v
	}
	claims := jwt.MapClaims{"mercure": m}
	if *ttl > 0 {
		claims["exp"] = time.Now().Add(*ttl).Unix()
	}
	s, err := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims).SignedString([]byte(key))
	if err != nil {
		fmt.Fprintf(stderr, "herald mercure-token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, s)
	return 0
}
