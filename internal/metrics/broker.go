package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhub/herald/internal/broker"
)

// Broker returns b and p instrumented: each operation is timed by kind
// (herald_broker_operation_duration_seconds, whose _count counts them) and
// its failures counted (herald_broker_errors_total), and herald_broker_up
// follows the broker's Health when it has one (memory has none: always up).
// name labels them (memory, redis, nats). With nil metrics b and p are
// returned as they are.
func (m *Metrics) Broker(name string, b broker.Broker, p broker.PresenceManager) (broker.Broker, broker.PresenceManager) {
	if m == nil {
		return b, p
	}
	name = Label(name)
	ops := map[string]prometheus.Observer{}
	for _, op := range []string{"publish", "publish_join", "publish_leave", "publish_control", "history", "remove_history",
		"index_after", "subscribe", "unsubscribe", "subscribe_all", "unsubscribe_all",
		"add_presence", "remove_presence", "presence", "presence_stats"} {
		ops[op] = m.brokerDuration.WithLabelValues(name, op)
	}
	mb := &meteredBroker{Broker: b, presence: p, m: m, name: name, ops: ops}
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "broker_up",
		Help: "1 while the broker (and its backing service) is reachable, 0 when not.", ConstLabels: prometheus.Labels{"broker": name}},
		func() float64 {
			if mb.Health() != nil {
				return 0
			}
			return 1
		})
	m.register("broker_up", up)
	return mb, mb
}

// meteredBroker times every operation of the broker it wraps. Operations
// the Broker interface gains later pass through untimed until added here.
type meteredBroker struct {
	broker.Broker
	presence broker.PresenceManager
	m        *Metrics
	name     string
	ops      map[string]prometheus.Observer // read-only after construction
}

// Health reports the wrapped broker's health when it can tell.
func (b *meteredBroker) Health() error {
	if hc, ok := b.Broker.(interface{ Health() error }); ok {
		return hc.Health()
	}
	return nil
}

func (b *meteredBroker) done(op string, start time.Time, err error) {
	b.ops[op].Observe(time.Since(start).Seconds())
	if err != nil {
		kind := "error"
		if errors.Is(err, broker.ErrUnavailable) {
			kind = "unavailable"
		}
		b.m.brokerErrors.WithLabelValues(b.name, op, kind).Inc()
	}
}

func (b *meteredBroker) Publish(pub *broker.Publication, opts broker.PublishOptions) (broker.StreamPosition, error) {
	start := time.Now()
	sp, err := b.Broker.Publish(pub, opts)
	b.done("publish", start, err)
	return sp, err
}

func (b *meteredBroker) PublishJoin(channel string, info *broker.ClientInfo) error {
	start := time.Now()
	err := b.Broker.PublishJoin(channel, info)
	b.done("publish_join", start, err)
	return err
}

func (b *meteredBroker) PublishLeave(channel string, info *broker.ClientInfo) error {
	start := time.Now()
	err := b.Broker.PublishLeave(channel, info)
	b.done("publish_leave", start, err)
	return err
}

func (b *meteredBroker) PublishControl(node string, data []byte) error {
	start := time.Now()
	err := b.Broker.PublishControl(node, data)
	b.done("publish_control", start, err)
	return err
}

func (b *meteredBroker) History(channel string, f broker.HistoryFilter) ([]*broker.Publication, broker.StreamPosition, error) {
	start := time.Now()
	pubs, sp, err := b.Broker.History(channel, f)
	b.done("history", start, err)
	return pubs, sp, err
}

func (b *meteredBroker) RemoveHistory(channel string) error {
	start := time.Now()
	err := b.Broker.RemoveHistory(channel)
	b.done("remove_history", start, err)
	return err
}

func (b *meteredBroker) IndexAfter(id string, opts broker.IndexOptions) ([]*broker.Publication, uint64, bool, error) {
	start := time.Now()
	pubs, top, found, err := b.Broker.IndexAfter(id, opts)
	b.done("index_after", start, err)
	return pubs, top, found, err
}

func (b *meteredBroker) Subscribe(channel string) error {
	start := time.Now()
	err := b.Broker.Subscribe(channel)
	b.done("subscribe", start, err)
	return err
}

func (b *meteredBroker) Unsubscribe(channel string) error {
	start := time.Now()
	err := b.Broker.Unsubscribe(channel)
	b.done("unsubscribe", start, err)
	return err
}

func (b *meteredBroker) SubscribeAll() error {
	start := time.Now()
	err := b.Broker.SubscribeAll()
	b.done("subscribe_all", start, err)
	return err
}

func (b *meteredBroker) UnsubscribeAll() error {
	start := time.Now()
	err := b.Broker.UnsubscribeAll()
	b.done("unsubscribe_all", start, err)
	return err
}

// AddPresence implements broker.PresenceManager.
func (b *meteredBroker) AddPresence(channel, clientID string, info *broker.ClientInfo) error {
	start := time.Now()
	err := b.presence.AddPresence(channel, clientID, info)
	b.done("add_presence", start, err)
	return err
}

// RemovePresence implements broker.PresenceManager.
func (b *meteredBroker) RemovePresence(channel, clientID string) error {
	start := time.Now()
	err := b.presence.RemovePresence(channel, clientID)
	b.done("remove_presence", start, err)
	return err
}

// Presence implements broker.PresenceManager.
func (b *meteredBroker) Presence(channel string) (map[string]*broker.ClientInfo, error) {
	start := time.Now()
	p, err := b.presence.Presence(channel)
	b.done("presence", start, err)
	return p, err
}

// PresenceStats implements broker.PresenceManager.
func (b *meteredBroker) PresenceStats(channel string) (broker.PresenceStats, error) {
	start := time.Now()
	st, err := b.presence.PresenceStats(channel)
	b.done("presence_stats", start, err)
	return st, err
}
