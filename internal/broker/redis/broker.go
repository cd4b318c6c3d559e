package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/heraldhub/herald/internal/broker"
)

// Broker is the Redis broker and presence manager. See doc.go.
type Broker struct {
	opts    Options
	log     *slog.Logger
	keys    keyspace
	copt    rueidis.ClientOption
	topo    topology
	scripts [2]*rueidis.Lua // publish script: plain, sharded
	plain   [2]*rueidis.Lua // no-history, not indexed publish: plain, sharded

	cmu     sync.RWMutex
	client  rueidis.Client // nil until the first successful connect
	sharded bool           // Redis Cluster: sharded PUB/SUB (SPUBLISH/SSUBSCRIBE)
	connErr error          // why the last connect failed
	ready   chan struct{}  // closed once client is set

	handler broker.Handler
	nodeID  string
	parts   []*psConn // one PUB/SUB connection per partition
	meta    *psConn   // control, this node's unicast channel, the index
	all     atomic.Bool

	lmu   sync.RWMutex
	local map[string]struct{} // channels this node subscribed to

	rmu  sync.Mutex
	lost bool // a PUB/SUB connection was down since the last resync

	// Once the meta connection was down, the indexed publications it
	// delivers before the resync are dropped: a Mercure subscriber must not
	// receive a publication after a gap and then be told to replay from
	// it. The resync tells every subscriber, who replays or recovers them.
	hold      sync.RWMutex // index deliveries (read) against the resync (write)
	metaStale atomic.Bool

	pmu  sync.Mutex
	mine map[presenceKey]string // presence entries this node added, encoded

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New returns a broker for opts. It does not wait for Redis: it connects in
// the background, and until it has, operations fail with
// broker.ErrUnavailable and Health says why.
func New(opts Options, log *slog.Logger) (*Broker, error) {
	o := opts.withDefaults()
	if o.Partitions > clusterSlots {
		return nil, fmt.Errorf("redis partitions must be at most %d (got %d)", clusterSlots, o.Partitions)
	}
	copt, topo, err := o.clientOption()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{opts: o, log: log, keys: newKeyspace(o.Prefix, o.Partitions), copt: copt, topo: topo,
		scripts: [2]*rueidis.Lua{newPublishScript(false), newPublishScript(true)},
		plain:   [2]*rueidis.Lua{newPlainScript(false), newPlainScript(true)},
		ready:   make(chan struct{}), local: map[string]struct{}{}, mine: map[presenceKey]string{}, ctx: ctx, cancel: cancel,
		connErr: errors.New("connecting")}
	b.wg.Add(2)
	go b.connect()
	go b.keepPresence()
	return b, nil
}

// keepPresence refreshes this node's presence entries every quarter of their
// time to live.
func (b *Broker) keepPresence() {
	defer b.wg.Done()
	c := b.waitClient()
	if c == nil {
		return
	}
	tick := time.NewTicker(b.opts.PresenceTTL / 4)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-tick.C:
			b.refreshPresence(c)
		}
	}
}

// connect dials until Redis answers, then keeps the client: from then on
// the client reconnects by itself and the PUB/SUB connections restart.
func (b *Broker) connect() {
	defer b.wg.Done()
	delay := 100 * time.Millisecond
	for {
		c, err := rueidis.NewClient(b.copt)
		if err == nil {
			b.cmu.Lock()
			b.client, b.connErr = c, nil
			b.sharded = c.Mode() == rueidis.ClientModeCluster
			b.cmu.Unlock()
			close(b.ready)
			b.log.Info("redis connected", slog.String("address", RedactAddress(b.opts.Address)),
				slog.String("topology", b.mode()))
			return
		}
		b.cmu.Lock()
		b.connErr = explainDial(err, b.copt.TLSConfig != nil)
		b.cmu.Unlock()
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (b *Broker) mode() string {
	if b.sharded {
		return "cluster (sharded PUB/SUB)"
	}
	return b.topo.String()
}

// conn returns the client, or an ErrUnavailable error before the first connect.
func (b *Broker) conn() (rueidis.Client, error) {
	b.cmu.RLock()
	c, err := b.client, b.connErr
	b.cmu.RUnlock()
	if c == nil {
		return nil, fmt.Errorf("%w: redis at %s not reachable: %v", broker.ErrUnavailable, RedactAddress(b.opts.Address), err)
	}
	return c, nil
}

// waitClient blocks until connected; nil when the broker closes first.
func (b *Broker) waitClient() rueidis.Client {
	select {
	case <-b.ready:
		c, _ := b.conn()
		return c
	case <-b.ctx.Done():
		return nil
	}
}

func unavailable(op string, err error) error {
	if errors.Is(err, broker.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: redis %s: %w", broker.ErrUnavailable, op, explain(err))
}

func (b *Broker) timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, b.opts.IOTimeout)
}

// Run implements broker.Broker: it starts the PUB/SUB connections.
func (b *Broker) Run(nodeID string, h broker.Handler) error {
	if b.handler != nil {
		return errors.New("redis broker: Run called twice")
	}
	b.handler, b.nodeID = h, nodeID
	b.meta = newPSConn(b, -1)
	b.parts = make([]*psConn, b.opts.Partitions)
	for i := range b.parts {
		b.parts[i] = newPSConn(b, i)
	}
	for _, c := range append([]*psConn{b.meta}, b.parts...) {
		b.wg.Add(1)
		go c.run()
	}
	b.wg.Add(1)
	go b.watch()
	return nil
}

// Close implements broker.Broker. The presence entries this node added stop
// being refreshed and expire.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.cancel()
		b.wg.Wait()
		b.cmu.Lock()
		if b.client != nil {
			b.client.Close()
		}
		b.cmu.Unlock()
	})
	return nil
}

// Health implements broker.HealthChecker: nil while Redis answers and every
// PUB/SUB connection is subscribed.
func (b *Broker) Health() error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	if b.handler != nil {
		for _, p := range append([]*psConn{b.meta}, b.parts...) {
			if up, why := p.state(); !up {
				if why != nil {
					return fmt.Errorf("%w: redis PUB/SUB connection %s is down: %w", broker.ErrUnavailable, p.name(), why)
				}
				return fmt.Errorf("%w: redis PUB/SUB connection %s is down", broker.ErrUnavailable, p.name())
			}
		}
	}
	ctx, cancel := b.timeout()
	defer cancel()
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

func (b *Broker) publishCmd(c rueidis.Client, channel, msg string) rueidis.Completed {
	if b.sharded {
		return c.B().Spublish().Channel(channel).Message(msg).Build()
	}
	return c.B().Publish().Channel(channel).Message(msg).Build()
}

// Publish implements broker.Broker.
func (b *Broker) Publish(pub *broker.Publication, opts broker.PublishOptions) (broker.StreamPosition, error) {
	return b.publish(pub, opts, false)
}

// Store appends to the channel's stream and the index as Publish does, and
// sets pub.Offset and pub.Seq, but publishes nothing: for a broker that
// carries publications between nodes itself (NATS) and keeps history here.
func (b *Broker) Store(pub *broker.Publication, opts broker.PublishOptions) (broker.StreamPosition, error) {
	return b.publish(pub, opts, true)
}

func (b *Broker) publish(pub *broker.Publication, opts broker.PublishOptions, quiet bool) (broker.StreamPosition, error) {
	c, err := b.conn()
	if err != nil {
		return broker.StreamPosition{}, err
	}
	if pub.Time.IsZero() {
		pub.Time = time.Now()
	}
	p := b.keys.partition(pub.Channel)
	hist := opts.HistorySize > 0 && opts.HistoryTTL > 0
	if !hist && opts.Index == nil {
		pub.Offset, pub.Seq = 0, 0
		if quiet {
			return broker.StreamPosition{}, nil
		}
		return broker.StreamPosition{}, b.publishPlain(c, p, pub)
	}
	body := string(broker.AppendPublication(make([]byte, 0, 64+len(pub.Data)), pub))
	a := publishArgs{body: body, id: pub.ID, now: pub.Time.UnixMilli(), size: pub.Size(), newEpoch: broker.NewEpoch(), quiet: quiet}
	if hist {
		a.hist = &opts
	}
	a.index = opts.Index
	var keys []string
	if hist {
		keys = append(keys, b.keys.stream(p, pub.Channel), b.keys.meta(p, pub.Channel))
	}
	var r publishResult
	switch {
	case opts.Index != nil && hist && b.sharded:
		// On a cluster the channel's keys and the index live in different
		// slots: store in the stream first, then index and publish, in the
		// channel's offset order (see publishScript).
		a1 := a
		a1.index, a1.quiet, a1.record = nil, true, true
		if r, err = b.runPublish(c, keys, a1, p, pub.Channel); err != nil {
			return broker.StreamPosition{}, err
		}
		a.hist, a.offset, a.epoch, a.ordered, a.recent = nil, r.offset, r.epoch, true, r.recent
		r, err = b.indexInOrder(c, append(b.keys.indexKeys(), b.keys.indexLine(pub.Channel)), a, p, pub.Channel)
	case opts.Index != nil:
		r, err = b.runPublish(c, append(keys, b.keys.indexKeys()...), a, p, pub.Channel)
	default:
		r, err = b.runPublish(c, append(keys, b.keys.allFlag(p)), a, p, pub.Channel)
	}
	if err != nil {
		return broker.StreamPosition{}, err
	}
	pub.Offset, pub.Seq = r.offset, r.seq
	if !hist {
		return broker.StreamPosition{}, nil
	}
	return broker.StreamPosition{Offset: r.offset, Epoch: r.epoch}, nil
}

func (b *Broker) publishPlain(c rueidis.Client, p int, pub *broker.Publication) error {
	msg := broker.AppendPubMessage(make([]byte, 0, 80+len(pub.Data)), pub, "")
	script := b.plain[0]
	if b.sharded {
		script = b.plain[1]
	}
	ctx, cancel := b.timeout()
	defer cancel()
	err := script.Exec(ctx, c, []string{b.keys.allFlag(p)}, []string{b.keys.pubsub(p, pub.Channel), b.keys.allChannel(p), string(msg)}).Error()
	if err != nil {
		return unavailable("publish", err)
	}
	return nil
}

// indexWait is how long the index step of a publication waits for the
// channel's previous publication to be indexed (on a cluster) before it is
// indexed anyway: the previous one's publisher died, or its step failed.
// The nodes then see a gap in the channel's offsets, and their subscribers
// recover.
const indexWait = 250 * time.Millisecond

// indexInOrder runs the ordered index step, again while it must wait.
func (b *Broker) indexInOrder(c rueidis.Client, keys []string, a publishArgs, p int, channel string) (publishResult, error) {
	giveUp := time.Now().Add(indexWait)
	pause := 200 * time.Microsecond
	for {
		r, err := b.runPublish(c, keys, a, p, channel)
		if err != nil || !r.wait {
			return r, err
		}
		if time.Now().After(giveUp) {
			b.log.Warn("redis: indexing a publication before the channel's previous one, which did not come",
				slog.String("channel", channel), slog.Uint64("offset", r.offset))
			a.force = true
			continue
		}
		select {
		case <-b.ctx.Done():
			return publishResult{}, fmt.Errorf("%w: redis broker closed", broker.ErrUnavailable)
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Millisecond)
	}
}

type publishArgs struct {
	body     string
	id       string
	now      int64
	size     int
	newEpoch string // the epoch of a stream this publication creates
	offset   uint64 // given by an earlier step (cluster), with epoch
	epoch    string
	hist     *broker.PublishOptions
	index    *broker.IndexOptions
	quiet    bool
	record   bool // record when the channel published, and say if it did recently
	ordered  bool // index after the channel's previous publication (line key given)
	recent   bool // the channel's previous publication was recent
	force    bool // index now, even out of order
}

type publishResult struct {
	offset, seq uint64
	epoch       string
	recent      bool // the previous publication of the channel was recent (record)
	wait        bool // the ordered index step must wait
}

func (b *Broker) runPublish(c rueidis.Client, keys []string, a publishArgs, p int, channel string) (publishResult, error) {
	flags := ""
	hs, httl, mttl, hmax := "0", "0", "0", "0"
	if a.hist != nil {
		flags += "h"
		hs, httl = strconv.Itoa(a.hist.HistorySize), strconv.FormatInt(a.hist.HistoryTTL.Milliseconds(), 10)
		mttl = strconv.FormatInt(int64(a.hist.HistoryMetaTTL.Seconds()), 10)
		hmax = strconv.Itoa(a.hist.HistoryMaxBytes)
	}
	is, ittl, imax := "0", "0", "0"
	if a.index != nil {
		flags += "x"
		is, ittl, imax = strconv.Itoa(a.index.Size), strconv.FormatInt(a.index.TTL.Milliseconds(), 10), strconv.Itoa(a.index.MaxBytes)
	}
	for _, f := range []struct {
		on   bool
		flag string
	}{{a.quiet, "n"}, {a.record, "r"}, {a.ordered, "o"}, {a.force, "f"}} {
		if f.on {
			flags += f.flag
		}
	}
	recent := "0"
	if a.recent {
		recent = "1"
	}
	args := []string{flags, a.body, b.keys.pubsub(p, channel), b.keys.allChannel(p),
		hs, httl, mttl, hmax, strconv.Itoa(a.size), strconv.FormatInt(a.now, 10), a.newEpoch,
		is, ittl, imax, b.keys.indexChannel(), a.id, strconv.FormatUint(a.offset, 10), a.epoch, recent}
	ctx, cancel := b.timeout()
	defer cancel()
	script := b.scripts[0]
	if b.sharded {
		script = b.scripts[1]
	}
	vals, err := script.Exec(ctx, c, keys, args).ToArray()
	if err != nil {
		return publishResult{}, unavailable("publish", err)
	}
	if len(vals) != 4 {
		return publishResult{}, unavailable("publish", fmt.Errorf("unexpected reply of %d values", len(vals)))
	}
	off, _ := vals[0].AsInt64()
	ep, _ := vals[1].ToString()
	seq, _ := vals[2].AsInt64()
	rec, _ := vals[3].AsInt64()
	if seq < 0 {
		return publishResult{offset: uint64(off), epoch: ep, wait: true}, nil
	}
	return publishResult{offset: uint64(off), epoch: ep, seq: uint64(seq), recent: rec == 1}, nil
}
