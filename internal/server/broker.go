package server

import (
	"context"
	"fmt"
	"log/slog"
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

// waitBroker waits until a broker with a backing service answers: with
// broker.at_start wait, for ever, with a log line every 5 s; with exit, for
// a few seconds, then it returns why it could not connect.
func waitBroker(ctx context.Context, b broker.Broker, cfg *config.Config, log *slog.Logger) error {
	hc, ok := b.(broker.HealthChecker)
	if !ok {
		return nil
	}
	start := time.Now()
	giveUp := 2*cfg.Broker.Redis.ConnectTimeout.D() + 3*time.Second
	nextLog := start.Add(5 * time.Second)
	for {
		err := hc.Health()
		if err == nil {
			if time.Since(start) > time.Second {
				log.Info("broker reachable", slog.String("broker", describeBroker(cfg)), slog.Duration("waited", time.Since(start).Round(time.Second)))
			}
			return nil
		}
		now := time.Now()
		if cfg.Broker.AtStart == "exit" && now.Sub(start) > giveUp {
			return fmt.Errorf("broker %s is unreachable (broker.at_start is exit): %v", describeBroker(cfg), err)
		}
		if now.After(nextLog) {
			log.Warn("broker unreachable; waiting (set broker.at_start: exit to stop instead)",
				slog.String("broker", describeBroker(cfg)), slog.String("error", err.Error()),
				slog.Duration("waited", now.Sub(start).Round(time.Second)))
			nextLog = now.Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
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
