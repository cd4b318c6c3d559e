package server

import (
	"log/slog"

	"github.com/google/uuid"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

// StandaloneEngine builds the auth engine of cfg (the verifier and, when
// configured, the connect proxy and the auth callout) for a service that runs
// without the hub (herald nats-callout). reload rebuilds the token keys from
// a new configuration, re-reading key files and environment variables (a bad
// key keeps the old ones); stop ends the JWKS providers.
func StandaloneEngine(cfg *config.Config, log *slog.Logger) (*auth.Engine, func(*config.Config) error, func(), error) {
	v := auth.NewVerifier(auth.NewKeySet(), BuildPolicy(cfg))
	m := &keyManager{verifier: v, log: log}
	if err := m.apply(cfg); err != nil {
		return nil, nil, nil, err
	}
	proxies, err := buildProxies(cfg, log, nil) // the standalone callout serves no /metrics
	if err != nil {
		m.stop()
		return nil, nil, nil, err
	}
	authorities := proxies.Authorities(v.Policy().AllowAnonymous, cfg.Client.Proxy.ConnectMode == "always")
	co, err := buildCallout(cfg, uuid.NewString(), nil)
	if err != nil {
		m.stop()
		return nil, nil, nil, err
	}
	if co != nil {
		authorities.Callout = co
	}
	return auth.NewEngine(v, authorities, cfg.Dev), m.apply, m.stop, nil
}

// LogKeys writes the startup lines naming every token key by fingerprint.
func LogKeys(log *slog.Logger, v *auth.Verifier) { logKeys(log, v) }
