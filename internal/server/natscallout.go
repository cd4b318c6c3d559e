package server

import (
	"context"
	"fmt"

	"github.com/heraldhub/herald/internal/natscallout"
)

// startNATSCallout runs the NATS auth callout service alongside the hub when
// nats_callout is enabled: the same auth engine decides NATS logins, so keys,
// reloads and revocations apply to both, and refusals share one feed.
func (s *Server) startNATSCallout() error {
	if !s.cfg.NATSCallout.Enabled {
		return nil
	}
	svc, err := natscallout.New(natscallout.Options{Config: &s.cfg.NATSCallout, Engine: s.engine,
		Refusals: s.verifier.Refusals, Logger: s.log})
	if err != nil {
		return fmt.Errorf("nats_callout: %w", err)
	}
	if err := svc.Start(context.Background()); err != nil {
		return err
	}
	s.natsCallout = svc
	return nil
}

// NATSCallout returns the NATS auth callout service, or nil when it is off.
func (s *Server) NATSCallout() *natscallout.Service { return s.natsCallout }

// natsCalloutVars adds the callout's counters to /debug/vars.
func (s *Server) natsCalloutVars(vars map[string]any) {
	if s.natsCallout == nil {
		return
	}
	st := s.natsCallout.Stats()
	vars["nats_callout_accepted"] = st.Accepted
	vars["nats_callout_refused"] = st.Refused
	vars["nats_callout_invalid"] = st.Invalid
	vars["nats_callout_p50_us"] = st.P50Micros
	vars["nats_callout_p99_us"] = st.P99Micros
}
