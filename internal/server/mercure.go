package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/mercure"
)

// mercureSet builds the key set of one Mercure role: its secret pinned to
// its alg, then its keys (PEM, JWK, JWKS files and URLs), each pinned.
func mercureSet(ctx context.Context, k *config.MercureKeys, base auth.JWKSOptions) (*auth.KeySet, error) {
	var specs []auth.KeySpec
	if k.Secret != "" {
		specs = append(specs, auth.KeySpec{Alg: k.Alg, Secret: k.Secret})
	}
	static, jwks := splitKeys(k.Keys)
	specs = append(specs, static...)
	set, err := assembleSet(ctx, nil, specs, jwks, "keys (numbered from 0, the secret first when set)", base)
	if err != nil {
		return nil, err
	}
	return set.WithTypes(k.Typ...), nil
}

// NewMercureKeys builds the Mercure publisher and subscriber key sets of cfg
// on their own (for the CLI tools); stop ends their JWKS providers.
func NewMercureKeys(cfg *config.Config, log *slog.Logger) (pub, sub *auth.KeySet, stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	if pub, err = mercureSet(ctx, &cfg.Mercure.Publisher, auth.JWKSOptions{Logger: log}); err != nil {
		cancel()
		return nil, nil, nil, fmt.Errorf("mercure.publisher: %w", err)
	}
	if sub, err = mercureSet(ctx, &cfg.Mercure.Subscriber, auth.JWKSOptions{Logger: log}); err != nil {
		cancel()
		return nil, nil, nil, fmt.Errorf("mercure.subscriber: %w", err)
	}
	return pub, sub, cancel, nil
}

// MercureRules returns the claim rules of a Mercure role's tokens.
func MercureRules(cfg *config.Config, role string) *auth.Rules {
	return mercure.RoleRules(&cfg.Mercure, role)
}

// applyMercureKeys builds both Mercure key sets and swaps them in; on error
// the current sets stay.
func (s *Server) applyMercureKeys(cfg *config.Config) error {
	if s.mercure == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	pub, err := mercureSet(ctx, &cfg.Mercure.Publisher, s.keys.jwksBase())
	if err != nil {
		cancel()
		return fmt.Errorf("mercure.publisher: %w", err)
	}
	sub, err := mercureSet(ctx, &cfg.Mercure.Subscriber, s.keys.jwksBase())
	if err != nil {
		cancel()
		return fmt.Errorf("mercure.subscriber: %w", err)
	}
	s.mercureMu.Lock()
	old := s.mercureStop
	s.mercureStop = cancel
	s.mercureMu.Unlock()
	s.mercure.SetKeys(pub, sub)
	if old != nil {
		old()
	}
	return nil
}

// logMercureStartup prints the Mercure keys by fingerprint and warns about
// settings that commonly surprise users.
func (s *Server) logMercureStartup() {
	if s.mercure == nil {
		return
	}
	m := &s.cfg.Mercure
	for _, role := range []struct {
		name string
		set  *auth.KeySet
	}{{"mercure publisher tokens", s.mercure.PublisherKeys()}, {"mercure subscriber tokens", s.mercure.SubscriberKeys()}} {
		for _, k := range role.set.Keys() {
			s.log.Info("token key loaded", slog.String("for", role.name), slog.String("algs", strings.Join(k.Algs, "/")),
				slog.String("key_fingerprint", k.Fingerprint), slog.String("kid", k.ID), slog.String("origin", k.Origin))
		}
	}
	if s.mercure.PublisherKeys().Empty() {
		s.log.Warn("mercure: no publisher key: every publication to " + m.Path + " is refused (set mercure.publisher.secret or HERALD_MERCURE_PUBLISHER_SECRET)")
	}
	if s.mercure.SubscriberKeys().Empty() && !m.Anonymous {
		s.log.Warn("mercure: no subscriber key and anonymous subscribers are off: every subscription is refused (set mercure.subscriber.secret or mercure.anonymous)")
	}
	for _, o := range m.CORSOrigins {
		if o == "*" && !s.cfg.Dev {
			s.log.Warn("mercure.cors_origins contains \"*\": pages on any site may read streams with the user's cookie; list origins instead")
		}
	}
	for _, o := range m.PublishOrigins {
		if o == "*" {
			s.log.Warn("mercure.publish_origins contains \"*\": pages on any site may publish with the user's cookie")
		}
	}
}

// MercureSubscribers counts the open Mercure subscription streams (0 when
// the front door is off).
func (s *Server) MercureSubscribers() int {
	if s.mercure == nil {
		return 0
	}
	return s.mercure.NumSubscribers()
}
