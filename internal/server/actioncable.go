package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/heraldhub/herald/internal/actioncable"
	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

// CableKeys builds the key set of AnyCable tokens: actioncable.jwt's secrets
// and keys, else actioncable.secret (AnyCable's jwt_secret defaults to its
// secret); nil when neither is set, and the connection keys verify them.
// from names the set in hints and logs.
// base gives the JWKS providers their logger and hooks.
func CableKeys(ctx context.Context, cfg *config.Config, base auth.JWKSOptions) (set *auth.KeySet, from string, err error) {
	j := &cfg.ActionCable.JWT
	t := config.Token{HMACSecretKey: j.Secret, HMACPreviousSecretKey: j.PreviousSecret,
		HMACPreviousSecretKeyValidUntil: j.PreviousSecretValidUntil, Keys: j.Keys}
	from = "actioncable.jwt"
	if t.HMACSecretKey == "" && len(t.Keys) == 0 {
		if cfg.ActionCable.Secret == "" {
			return nil, "client.token", nil
		}
		t.HMACSecretKey, from = cfg.ActionCable.Secret, "actioncable.secret"
	}
	set, err = buildSet(ctx, &t, base)
	return set, from, err
}

// applyCableKeys builds the key set of AnyCable tokens and swaps it in; on
// error the current set stays.
func (s *Server) applyCableKeys(cfg *config.Config) error {
	if s.cable == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	set, from, err := CableKeys(ctx, cfg, s.keys.jwksBase())
	if err != nil {
		cancel()
		return fmt.Errorf("actioncable.jwt: %w", err)
	}
	s.mercureMu.Lock()
	old := s.cableStop
	s.cableStop = cancel
	s.mercureMu.Unlock()
	s.cable.SetJWTKeys(set, from)
	if old != nil {
		old()
	}
	return nil
}

// logCableStartup prints the keys of AnyCable tokens by fingerprint and
// warns about settings that commonly surprise users.
func (s *Server) logCableStartup() {
	if s.cable == nil {
		return
	}
	ac := &s.cfg.ActionCable
	s.log.Info("action cable endpoint", slog.String("path", ac.Path), slog.String("broadcast_path", ac.Broadcast.Path),
		slog.Any("subprotocols", ac.Subprotocols), slog.String("rpc", ac.RPC.Endpoint))
	if set := s.cable.JWTKeys(); set != s.verifier.Keys() {
		for _, k := range set.Keys() {
			s.log.Info("token key loaded", slog.String("for", "anycable tokens"), slog.String("algs", strings.Join(k.Algs, "/")),
				slog.String("key_fingerprint", k.Fingerprint), slog.String("origin", k.Origin))
		}
	}
	if ac.Streams.Public {
		s.log.Warn("actioncable.streams.public is on: every connection may follow any stream by its name")
	}
	if ac.RPC.Endpoint == "" && !ac.Anonymous && !s.cfg.Dev && s.cable.JWTKeys().Empty() {
		s.log.Warn("action cable: no AnyCable token key, no RPC and no anonymous connections: every connection will be refused (set actioncable.jwt.secret, actioncable.rpc.endpoint or actioncable.anonymous)")
	}
}

// ActionCable returns the Action Cable front door, or nil when it is off.
func (s *Server) ActionCable() *actioncable.Handler { return s.cable }

// ActionCableSessions counts the open Action Cable sessions.
func (s *Server) ActionCableSessions() int {
	if s.cable == nil {
		return 0
	}
	return s.cable.NumSessions()
}
