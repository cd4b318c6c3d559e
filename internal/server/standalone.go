package server

import (
	"log/slog"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

// StandaloneVerifier builds the auth engine of cfg for a service that runs
// without the hub (herald nats-callout). reload rebuilds its keys from a new
// configuration, re-reading key files and environment variables (a bad key
// keeps the old ones); stop ends its JWKS providers.
func StandaloneVerifier(cfg *config.Config, log *slog.Logger) (*auth.Verifier, func(*config.Config) error, func(), error) {
	v := auth.NewVerifier(auth.NewKeySet(), BuildPolicy(cfg))
	m := &keyManager{verifier: v, log: log}
	if err := m.apply(cfg); err != nil {
		return nil, nil, nil, err
	}
	return v, m.apply, m.stop, nil
}

// LogKeys writes the startup lines naming every token key by fingerprint.
func LogKeys(log *slog.Logger, v *auth.Verifier) { logKeys(log, v) }
