package natscallout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

// maxRequest bounds an authorization request (NATS sends a few KiB; a
// client certificate chain may add more).
const maxRequest = 256 << 10

// queueLen bounds the requests waiting for a worker.
const queueLen = 4096

// Engine decides a connection attempt: the auth engine's one decision call
// (auth.Engine), with the same authorities as every front door.
type Engine interface {
	Authenticate(ctx context.Context, req *auth.ConnectRequest) (*auth.Identity, *auth.Reason)
}

// Options configure a Service.
type Options struct {
	Config *config.NATSCallout
	Engine Engine
	// Refusals is the recent-refusals feed the service adds to (may be nil).
	Refusals *auth.RefusalLog
	Logger   *slog.Logger
}

// Service answers NATS authorization requests.
type Service struct {
	cfg      *config.NATSCallout
	engine   Engine
	refusals *auth.RefusalLog
	log      *slog.Logger
	keys     *keyring
	perms    *permissions
	sources  []auth.Source
	now      func() time.Time
	stats    stats

	mu      sync.Mutex
	nc      *nats.Conn
	sub     *nats.Subscription
	stop    chan struct{}
	workers sync.WaitGroup
}

// New builds the service from configuration (which Load has validated).
func New(o Options) (*Service, error) {
	if o.Engine == nil {
		return nil, errors.New("natscallout: no auth engine")
	}
	keys, err := newKeyring(o.Config)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: o.Config, engine: o.Engine, refusals: o.Refusals, log: log, keys: keys,
		perms: newPermissions(&o.Config.Permissions), now: time.Now}
	for _, name := range o.Config.TokenSources {
		if src, ok := sourceByName[name]; ok {
			s.sources = append(s.sources, src)
		}
	}
	return s, nil
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// IssuerKey is the public key that signs the answers; XKey the public xkey
// ("" without encryption).
func (s *Service) IssuerKey() string { return s.keys.issuer.pub }

// XKey is the public key of nats_callout.xkey_seed, or "".
func (s *Service) XKey() string { return s.keys.xpub }

// ConnectOptions are the nats.go options of the callout user's connection.
func ConnectOptions(cfg *config.NATSCallout, log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(cfg.Name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	switch {
	case cfg.Creds != "":
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	case cfg.NkeySeed != "":
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(cfg.NkeySeed)))
		if err != nil {
			return nil, fmt.Errorf("nats_callout.nkey_seed: %v", err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("nats_callout.nkey_seed: %v", err)
		}
		opts = append(opts, nats.Nkey(pub, kp.Sign))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if log != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					log.Warn("nats callout connection lost; reconnecting", slog.String("error", err.Error()))
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("nats callout connection restored", slog.String("url", nc.ConnectedUrlRedacted()))
			}),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				log.Error("nats callout connection error", slog.String("error", err.Error()))
			}))
	}
	return opts, nil
}

// Start connects as the callout user and serves the requests as a member of
// the queue group, until Close.
func (s *Service) Start(ctx context.Context) error {
	opts, err := ConnectOptions(s.cfg, s.log)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(s.cfg.URL, opts...)
	if err != nil {
		return fmt.Errorf("nats callout: cannot connect to %s: %w%s", s.cfg.URL, err, connectHint(err))
	}
	msgs := make(chan *nats.Msg, queueLen)
	sub, err := nc.ChanQueueSubscribe(Subject, s.cfg.Queue, msgs)
	if err == nil {
		err = nc.FlushTimeout(5 * time.Second)
	}
	if err == nil {
		err = nc.LastError()
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("nats callout: cannot subscribe to %s: %w%s", Subject, err, connectHint(err))
	}
	n := s.cfg.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	stop := make(chan struct{})
	s.mu.Lock()
	s.nc, s.sub, s.stop = nc, sub, stop
	s.mu.Unlock()
	for range n {
		s.workers.Add(1)
		go s.work(msgs, stop)
	}
	s.log.Info("nats callout serving", slog.String("url", nc.ConnectedUrlRedacted()), slog.String("subject", Subject),
		slog.String("queue", s.cfg.Queue), slog.String("mode", s.cfg.Mode), slog.String("issuer", s.keys.issuer.pub),
		slog.String("xkey", s.keys.xpub), slog.String("account", s.keys.def.name), slog.String("server_id", nc.ConnectedServerId()))
	return nil
}

// connectHint explains the usual cause of a failed callout connection.
func connectHint(err error) string {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "authorization violation"):
		return " (is the callout user in the server's auth_callout.auth_users? A user not in that list is itself sent to the callout)"
	case strings.Contains(msg, "permissions violation"):
		return " (the callout user may not subscribe to " + Subject + ": put it in the server's auth_callout.auth_users)"
	}
	return ""
}

// work answers requests until stop, then those already received.
func (s *Service) work(msgs <-chan *nats.Msg, stop <-chan struct{}) {
	defer s.workers.Done()
	for {
		select {
		case m := <-msgs:
			s.handle(m)
			continue
		case <-stop:
		}
		for {
			select {
			case m := <-msgs:
				s.handle(m)
			default:
				return
			}
		}
	}
}

// handle answers one request message.
func (s *Service) handle(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	var xkey string
	if m.Header != nil {
		xkey = m.Header.Get(XKeyHeader)
	}
	out, _, n := s.timedAnswer(xkey, m.Data)
	if err := m.Respond(out); err != nil {
		s.log.Warn("nats callout: cannot send the answer", slog.String("error", err.Error()))
	}
	s.record(n)
}

// Close stops serving: the subscription ends, the requests already received
// are answered, and the connection closes.
func (s *Service) Close() {
	s.mu.Lock()
	nc, sub, stop := s.nc, s.sub, s.stop
	s.nc, s.sub, s.stop = nil, nil, nil
	s.mu.Unlock()
	if nc == nil {
		return
	}
	// No new requests; those received are answered, then the answers are
	// flushed before the connection closes.
	_ = sub.Unsubscribe()
	_ = nc.FlushTimeout(time.Second)
	close(stop)
	s.workers.Wait()
	_ = nc.FlushTimeout(time.Second)
	nc.Close()
	st := s.Stats()
	s.log.Info("nats callout stopped", slog.Uint64("accepted", st.Accepted), slog.Uint64("refused", st.Refused),
		slog.Uint64("invalid", st.Invalid), slog.Float64("processing_p50_us", st.P50Micros),
		slog.Float64("processing_p99_us", st.P99Micros), slog.Float64("processing_mean_us", st.MeanMicros))
}
