package nats

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/broker/redis"
)

// Options configure the NATS broker.
type Options struct {
	// URL is one or more nats:// or tls:// URLs, comma-separated.
	URL string
	// Prefix starts every subject.
	Prefix string
	// User and Password, or Token, or CredsFile authenticate with NATS.
	User, Password, Token, CredsFile string
	// TLSCAFile verifies the server with this CA (tls:// URLs).
	TLSCAFile      string
	ConnectTimeout time.Duration
	// FlushTimeout bounds the wait for NATS to confirm a subscription.
	FlushTimeout time.Duration
	// Store, when set, keeps history, the Mercure index and presence in
	// Redis, shared by every node. Without it each node keeps its own.
	Store *redis.Broker
}

// Defaults for options left zero.
const (
	DefaultURL            = "nats://127.0.0.1:4222"
	DefaultPrefix         = "herald"
	DefaultConnectTimeout = time.Second
	DefaultFlushTimeout   = 4 * time.Second
)

// Broker carries publications, joins, leaves and control messages between
// nodes over core NATS subjects. See doc.go for what it keeps where.
type Broker struct {
	opts  Options
	log   *slog.Logger
	subj  subjects
	nc    *natsgo.Conn
	msgs  chan *natsgo.Msg
	mem   *broker.Memory // history, index and presence without Redis
	redis *redis.Broker  // with Redis

	handler broker.Handler
	nodeID  string
	nonce   atomic.Uint64

	// smu orders subscription changes; the fields below it are under it.
	smu   sync.Mutex
	subs  map[string]*natsgo.Subscription // per-channel subscriptions (nil entries while all-mode)
	wild  *natsgo.Subscription            // the all-channel subscription
	all   atomic.Bool
	local sync.Map // channel -> struct{}: channels this node subscribed to

	dedupe overlap
	seq    sequencer
	up     atomic.Bool    // connected at least once
	locks  [64]sync.Mutex // per-channel order of publish
	seed   maphash.Seed
	done   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New connects to NATS in the background (a server that is down at start
// is retried for ever; operations fail with broker.ErrUnavailable until it
// answers).
func New(opts Options, log *slog.Logger) (*Broker, error) {
	if opts.URL == "" {
		opts.URL = DefaultURL
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = DefaultFlushTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{opts: opts, log: log, subj: subjects{opts.Prefix}, redis: opts.Store,
		subs: map[string]*natsgo.Subscription{}, msgs: make(chan *natsgo.Msg, 1<<16),
		seed: maphash.MakeSeed(), done: make(chan struct{})}
	if b.redis == nil {
		b.mem = broker.NewMemory()
	}
	return b, nil
}

func (b *Broker) connect() error {
	o := b.opts
	nopts := []natsgo.Option{
		natsgo.Name("herald " + b.nodeID),
		natsgo.Timeout(o.ConnectTimeout),
		natsgo.RetryOnFailedConnect(true),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(250 * time.Millisecond),
		// Publishing while disconnected fails at once instead of being
		// buffered and perhaps lost: never a false success.
		natsgo.ReconnectBufSize(-1),
		// This node delivers its own publications itself, in order.
		natsgo.NoEcho(),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			b.log.Warn("nats: disconnected; reconnecting", slog.String("error", fmt.Sprint(err)))
		}),
		natsgo.ReconnectHandler(func(*natsgo.Conn) { go b.reconnected() }),
		natsgo.ConnectHandler(func(c *natsgo.Conn) {
			b.log.Info("nats connected", slog.String("url", c.ConnectedUrlRedacted()))
			// Subscriptions made before a late first connection missed
			// what was published meanwhile.
			if b.up.CompareAndSwap(false, true) {
				go b.lost(true)
			}
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			if errors.Is(err, natsgo.ErrSlowConsumer) {
				// Messages were dropped before this node read them.
				b.log.Warn("nats: this node fell behind and messages were dropped; resyncing")
				go b.lost(true)
				return
			}
			b.log.Warn("nats: error", slog.String("error", err.Error()))
		}),
	}
	if o.User != "" {
		nopts = append(nopts, natsgo.UserInfo(o.User, o.Password))
	}
	if o.Token != "" {
		nopts = append(nopts, natsgo.Token(o.Token))
	}
	if o.CredsFile != "" {
		nopts = append(nopts, natsgo.UserCredentials(o.CredsFile))
	}
	if o.TLSCAFile != "" {
		nopts = append(nopts, natsgo.RootCAs(o.TLSCAFile))
	}
	nc, err := natsgo.Connect(o.URL, nopts...)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	b.nc = nc
	return nil
}

// Run implements broker.Broker.
func (b *Broker) Run(nodeID string, h broker.Handler) error {
	if b.handler != nil {
		return errors.New("nats broker: Run called twice")
	}
	b.handler, b.nodeID = h, nodeID
	b.seq.b = b
	if b.mem != nil {
		if err := b.mem.Run(nodeID, receivedOnly{b}); err != nil {
			return err
		}
	}
	if err := b.connect(); err != nil {
		return err
	}
	if b.nc.IsConnected() {
		b.up.Store(true)
	}
	for _, s := range []string{b.subj.control(), b.subj.node(nodeID), b.subj.resync()} {
		if _, err := b.nc.ChanSubscribe(s, b.msgs); err != nil {
			return fmt.Errorf("nats: subscribe %s: %w", s, err)
		}
	}
	if b.nc.IsConnected() {
		// The control subscriptions are in place before Run returns.
		_ = b.nc.FlushTimeout(b.opts.FlushTimeout)
	}
	b.wg.Add(1)
	go b.dispatch()
	return nil
}

// Records returns the store every node shares (the Redis of
// broker.nats.store: redis), or nil when each node keeps its own.
func (b *Broker) Records() broker.SharedRecords {
	if b.redis == nil {
		return nil
	}
	return b.redis
}

// Close implements broker.Broker.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	if b.nc != nil {
		b.nc.Close()
	}
	close(b.done)
	b.wg.Wait()
	if b.redis != nil {
		return b.redis.Close()
	}
	return nil
}

// Health implements broker.HealthChecker.
func (b *Broker) Health() error {
	if b.nc == nil || !b.nc.IsConnected() {
		return fmt.Errorf("%w: nats at %s is not connected", broker.ErrUnavailable, b.redactedURL())
	}
	if b.redis != nil {
		return b.redis.Health()
	}
	return nil
}

func (b *Broker) redactedURL() string {
	if b.nc != nil {
		if u := b.nc.ConnectedUrlRedacted(); u != "" {
			return u
		}
	}
	return "the configured URL"
}

func (b *Broker) unavailable(op string, err error) error {
	return fmt.Errorf("%w: nats %s: %v", broker.ErrUnavailable, op, err)
}

// reconnected runs after NATS came back: subscriptions were restored by the
// client; once the server confirmed them, the hub resyncs and the other
// nodes learn that this node's publications in flight may be lost.
func (b *Broker) reconnected() {
	if err := b.nc.FlushTimeout(b.opts.FlushTimeout); err != nil {
		b.log.Warn("nats: reconnected but the subscriptions are not confirmed", slog.String("error", err.Error()))
	}
	b.log.Info("nats reconnected; telling the hub to resync")
	_ = b.nc.Publish(b.subj.resync(), []byte(b.nodeID))
	b.lost(true)
}

// lost makes this node forget what it may have missed and resync.
func (b *Broker) lost(forgetAll bool) {
	if b.mem != nil && forgetAll {
		b.mem.Forget(nil, true)
	}
	b.handler.HandleResync()
}

func (b *Broker) received(ch string) bool {
	if b.all.Load() {
		return true
	}
	_, ok := b.local.Load(ch)
	return ok
}

func (b *Broker) lock(ch string) *sync.Mutex {
	return &b.locks[maphash.String(b.seed, ch)%uint64(len(b.locks))]
}

func (b *Broker) nextNonce() string {
	return b.nodeID + ":" + strconv.FormatUint(b.nonce.Add(1), 10)
}

// dispatch handles every message this node receives, in the order NATS
// delivered them.
func (b *Broker) dispatch() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case m := <-b.msgs:
			b.handle(m)
		}
	}
}

func (b *Broker) handle(m *natsgo.Msg) {
	switch m.Subject {
	case b.subj.control(), b.subj.node(b.nodeID):
		b.handler.HandleControl(m.Data)
		return
	case b.subj.resync():
		b.log.Info("nats: another node reconnected; resyncing", slog.String("node", string(m.Data)))
		b.lost(true)
		return
	}
	e, err := decodeEnvelope(m.Data)
	if err != nil {
		b.log.Warn("nats: dropping a message Herald cannot read", slog.String("subject", m.Subject), slog.String("error", err.Error()))
		return
	}
	if !b.dedupe.first(e.nonce) || !b.received(e.msg.Channel) {
		return
	}
	switch e.msg.Kind {
	case broker.MsgJoin:
		b.handler.HandleJoin(e.msg.Channel, e.msg.Info)
	case broker.MsgLeave:
		b.handler.HandleLeave(e.msg.Channel, e.msg.Info)
	case broker.MsgPublication:
		if b.mem != nil {
			// Without Redis this node numbers what it receives itself.
			pub := e.msg.Pub
			pub.Offset, pub.Seq = 0, 0
			l := b.lock(pub.Channel)
			l.Lock()
			_, _ = b.mem.Publish(pub, e.opts)
			l.Unlock()
			return
		}
		b.seq.deliver(e.msg.Pub, broker.StreamPosition{Offset: e.msg.Pub.Offset, Epoch: e.msg.Epoch})
	}
}

// receivedOnly passes on what the memory store delivers only for channels
// this node receives: its own publications to other channels are stored,
// not delivered.
type receivedOnly struct{ b *Broker }

func (r receivedOnly) HandlePublication(p *broker.Publication, sp broker.StreamPosition) {
	if r.b.received(p.Channel) {
		r.b.handler.HandlePublication(p, sp)
	}
}
func (r receivedOnly) HandleJoin(ch string, info *broker.ClientInfo) {
	r.b.handler.HandleJoin(ch, info)
}
func (r receivedOnly) HandleLeave(ch string, info *broker.ClientInfo) {
	r.b.handler.HandleLeave(ch, info)
}
func (r receivedOnly) HandleControl(data []byte) { r.b.handler.HandleControl(data) }
func (r receivedOnly) HandleResync()             { r.b.handler.HandleResync() }

// Publish implements broker.Broker.
func (b *Broker) Publish(pub *broker.Publication, opts broker.PublishOptions) (broker.StreamPosition, error) {
	if b.nc == nil || !b.nc.IsConnected() {
		return broker.StreamPosition{}, fmt.Errorf("%w: nats at %s is not connected", broker.ErrUnavailable, b.redactedURL())
	}
	if pub.Time.IsZero() {
		pub.Time = time.Now()
	}
	l := b.lock(pub.Channel)
	l.Lock()
	defer l.Unlock()
	var sp broker.StreamPosition
	if b.redis != nil {
		var err error
		if sp, err = b.redis.Store(pub, opts); err != nil {
			return broker.StreamPosition{}, err
		}
	}
	epoch := sp.Epoch
	msg := broker.AppendPubMessage(make([]byte, 0, 96+len(pub.Data)), pub, epoch)
	if err := b.nc.Publish(b.subj.channel(pub.Channel), appendEnvelope(nil, b.nextNonce(), opts, msg)); err != nil {
		return broker.StreamPosition{}, b.unavailable("publish", err)
	}
	if b.mem != nil {
		// The position is this node's own (see doc.go); its stream holds
		// what it received while it had subscribers, and what was
		// published through it.
		return b.mem.Publish(pub, opts)
	}
	if b.received(pub.Channel) {
		b.seq.deliver(pub, sp)
	}
	return sp, nil
}

// PublishJoin implements broker.Broker.
func (b *Broker) PublishJoin(channel string, info *broker.ClientInfo) error {
	return b.publishPresence(broker.MsgJoin, channel, info)
}

// PublishLeave implements broker.Broker.
func (b *Broker) PublishLeave(channel string, info *broker.ClientInfo) error {
	return b.publishPresence(broker.MsgLeave, channel, info)
}

func (b *Broker) publishPresence(kind byte, channel string, info *broker.ClientInfo) error {
	if b.nc == nil || !b.nc.IsConnected() {
		return fmt.Errorf("%w: nats at %s is not connected", broker.ErrUnavailable, b.redactedURL())
	}
	msg := broker.AppendPresenceMessage(nil, kind, channel, info)
	if err := b.nc.Publish(b.subj.channel(channel), appendEnvelope(nil, b.nextNonce(), broker.PublishOptions{}, msg)); err != nil {
		return b.unavailable("publish", err)
	}
	if b.received(channel) {
		if kind == broker.MsgJoin {
			b.handler.HandleJoin(channel, info)
		} else {
			b.handler.HandleLeave(channel, info)
		}
	}
	return nil
}

// PublishControl implements broker.Broker.
func (b *Broker) PublishControl(node string, data []byte) error {
	if node == b.nodeID {
		b.handler.HandleControl(data)
		return nil
	}
	if b.nc == nil || !b.nc.IsConnected() {
		return fmt.Errorf("%w: nats at %s is not connected", broker.ErrUnavailable, b.redactedURL())
	}
	subj := b.subj.control()
	if node != "" {
		subj = b.subj.node(node)
	}
	if err := b.nc.Publish(subj, data); err != nil {
		return b.unavailable("publish", err)
	}
	if node == "" {
		b.handler.HandleControl(data)
	}
	return nil
}
