package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhub/herald/internal/broker"
	natsbroker "github.com/heraldhub/herald/internal/broker/nats"
	redisbroker "github.com/heraldhub/herald/internal/broker/redis"
	"github.com/heraldhub/herald/internal/config"
)

// nodeBroker is a broker with its presence manager (every broker is both).
type nodeBroker interface {
	broker.Broker
	broker.PresenceManager
}

// BuildBroker builds the configured broker without connecting (the Redis
// and NATS brokers connect in the background once built and Run).
func BuildBroker(cfg *config.Config, log *slog.Logger) (nodeBroker, error) {
	bc := &cfg.Broker
	switch bc.Type {
	case "redis":
		return redisbroker.New(redisOptions(&bc.Redis), log)
	case "nats":
		o := natsbroker.Options{URL: bc.NATS.URL, Prefix: bc.NATS.Prefix, User: bc.NATS.User, Password: bc.NATS.Password,
			Token: bc.NATS.Token, CredsFile: bc.NATS.CredsFile, TLSCAFile: bc.NATS.TLSCAFile,
			ConnectTimeout: bc.NATS.ConnectTimeout.D(), FlushTimeout: bc.NATS.SubscribeTimeout.D()}
		if bc.NATS.Store == "redis" {
			rb, err := redisbroker.New(redisOptions(&bc.Redis), log)
			if err != nil {
				return nil, err
			}
			o.Store = rb
		}
		return natsbroker.New(o, log)
	}
	return broker.NewMemory(), nil
}

// sharedRecords returns the store every node of the cluster reads, or nil
// when there is none (memory, NATS with a store per node).
func sharedRecords(b nodeBroker) broker.SharedRecords {
	switch b := b.(type) {
	case *redisbroker.Broker:
		return b
	case *natsbroker.Broker:
		return b.Records()
	}
	return nil
}

func redisOptions(r *config.RedisBroker) redisbroker.Options {
	return redisbroker.Options{Address: r.Address, User: r.User, Password: r.Password, DB: r.DB,
		TLS: r.TLS, TLSCAFile: r.TLSCAFile, TLSServerName: r.TLSServerName, TLSSkipVerify: r.TLSSkipVerify,
		SentinelMasterName: r.SentinelMasterName, SentinelUser: r.SentinelUser, SentinelPassword: r.SentinelPassword,
		Prefix: r.Prefix, Partitions: r.Partitions, ConnectTimeout: r.ConnectTimeout.D(), IOTimeout: r.IOTimeout.D(),
		PresenceTTL: r.PresenceTTL.D()}
}

// describeBroker names the configured broker for logs, without secrets.
func describeBroker(cfg *config.Config) string {
	bc := &cfg.Broker
	switch bc.Type {
	case "redis":
		return "redis at " + redisbroker.RedactAddress(bc.Redis.Address)
	case "nats":
		s := "nats at " + bc.NATS.URL
		if bc.NATS.Store == "redis" {
			s += " with history and presence in redis at " + redisbroker.RedactAddress(bc.Redis.Address)
		}
		return s
	}
	return "memory"
}

// waitBroker waits a few seconds for a broker with a backing service to
// answer (broker.at_start: exit) and returns why it could not connect.
func waitBroker(ctx context.Context, b broker.Broker, cfg *config.Config) error {
	hc, ok := b.(broker.HealthChecker)
	if !ok {
		return nil
	}
	giveUp := time.Now().Add(2*cfg.Broker.Redis.ConnectTimeout.D() + 3*time.Second)
	for {
		err := hc.Health()
		if err == nil {
			return nil
		}
		if time.Now().After(giveUp) {
			return fmt.Errorf("broker %s is unreachable (broker.at_start is exit): %v", describeBroker(cfg), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// brokerWatch is the broker's health as the node last saw it, for the log
// and /debug/vars.
type brokerWatch struct {
	mu      sync.Mutex
	err     error     // nil while the broker is reachable
	since   time.Time // when err last changed between nil and not
	start   time.Time // when the node started waiting
	reached bool      // the broker was reachable once
	nextLog time.Time // the next "waiting" line
	losses  int       // times the broker was lost after having been reachable
}

// monitorBroker follows the health of a broker with a backing service
// until ctx ends. /health observes it too, so that no change goes unseen.
func (s *Server) monitorBroker(ctx context.Context) {
	hc, ok := s.broker.(broker.HealthChecker)
	if !ok {
		return
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		_ = s.observeBroker(hc)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// observeBroker checks the broker's health, records it and logs each
// change: while the node waits for the broker at start, a line every 5 s;
// then one line when the broker is lost (publications are refused
// meanwhile) and one when it is back.
func (s *Server) observeBroker(hc broker.HealthChecker) error {
	err := hc.Health()
	now := time.Now()
	w := &s.watch
	w.mu.Lock()
	if w.start.IsZero() {
		w.start, w.nextLog = now, now.Add(5*time.Second)
	}
	changed := (err == nil) != (w.err == nil) || w.since.IsZero()
	prevSince, wasReached := w.since, w.reached
	w.err = err
	if changed {
		w.since = now
		if err != nil && w.reached {
			w.losses++
		}
	}
	waiting := !w.reached && err != nil && now.After(w.nextLog)
	if waiting {
		w.nextLog = now.Add(5 * time.Second)
	}
	if err == nil {
		w.reached = true
	}
	start := w.start
	w.mu.Unlock()

	what := describeBroker(s.cfg)
	switch {
	case !wasReached && err == nil:
		s.log.Info("broker reachable", slog.String("broker", what), slog.Duration("waited", now.Sub(start).Round(time.Millisecond)))
	case waiting:
		s.log.Warn("broker unreachable; waiting (set broker.at_start: exit to stop instead); /health answers 503 and publications are refused meanwhile",
			slog.String("broker", what), slog.String("error", err.Error()), slog.Duration("waited", now.Sub(start).Round(time.Second)))
	case wasReached && changed && err != nil:
		s.log.Warn("broker unavailable: publications are refused (503, client error 100) and /health answers 503 until it is back",
			slog.String("broker", what), slog.String("error", err.Error()))
	case wasReached && changed && err == nil:
		s.log.Info("broker available again; subscriptions restored", slog.String("broker", what),
			slog.Duration("down_for", now.Sub(prevSince).Round(time.Millisecond)))
	}
	return err
}

// brokerVars adds the broker's state to /debug/vars.
func (s *Server) brokerVars(vars map[string]any) {
	vars["broker"] = s.cfg.Broker.Type
	if _, ok := s.broker.(broker.HealthChecker); !ok {
		vars["broker_up"] = true
		return
	}
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	vars["broker_up"] = s.watch.err == nil && !s.watch.since.IsZero()
	if s.watch.err != nil {
		vars["broker_error"] = s.watch.err.Error()
	}
	if !s.watch.since.IsZero() {
		vars["broker_state_since"] = s.watch.since.UTC().Format(time.RFC3339Nano)
	}
	vars["broker_losses"] = s.watch.losses
}

// CheckBroker connects to the configured broker as a node would and says
// what failed, within timeout (herald check-config --connect).
func CheckBroker(cfg *config.Config, log *slog.Logger, timeout time.Duration) (string, error) {
	what := describeBroker(cfg)
	b, err := BuildBroker(cfg, log)
	if err != nil {
		return what, err
	}
	defer b.Close()
	if err := b.Run("check-config", nopHandler{}); err != nil {
		return what, err
	}
	hc, ok := b.(broker.HealthChecker)
	if !ok {
		return what, nil
	}
	deadline := time.Now().Add(timeout)
	for {
		err := hc.Health()
		if err == nil {
			return what, nil
		}
		if time.Now().After(deadline) {
			return what, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type nopHandler struct{}

func (nopHandler) HandlePublication(*broker.Publication, broker.StreamPosition) {}
func (nopHandler) HandleJoin(string, *broker.ClientInfo)                        {}
func (nopHandler) HandleLeave(string, *broker.ClientInfo)                       {}
func (nopHandler) HandleControl([]byte)                                         {}
func (nopHandler) HandleResync()                                                {}
