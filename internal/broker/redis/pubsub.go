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

// psConn is one PUB/SUB connection: a partition's (its channels and its
// all-channel) or the node's meta connection (control, unicast, index). It
// runs until the broker closes: when the connection breaks it dials again,
// subscribes everything this node needs, and then the broker asks the hub
// to resync.
type psConn struct {
	b    *Broker
	part int // -1: the meta connection

	// mu guards the fields below and orders subscribe commands; the reader
	// (onMessage) never takes it, because a command holding it waits for a
	// reply that the reader delivers.
	mu       sync.Mutex
	channels map[string]struct{} // Herald channels wanted (partitions only)
	dc       rueidis.DedicatedClient
	up       bool
	why      error  // why it could not subscribe last, while down
	addr     string // the Redis server it talks to
	kick     chan struct{}

	allOn atomic.Bool // the all-channel subscription is confirmed (reader side)
}

func newPSConn(b *Broker, part int) *psConn {
	return &psConn{b: b, part: part, channels: map[string]struct{}{}, kick: make(chan struct{}, 1)}
}

func (c *psConn) name() string {
	if c.part < 0 {
		return "control"
	}
	return "partition " + strconv.Itoa(c.part)
}

func (c *psConn) isUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// state says whether the connection is up, and when down why it could not
// subscribe last (nil when it was not tried yet, or it was lost).
func (c *psConn) state() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up, c.why
}

func (c *psConn) sub(cl rueidis.Client, dc rueidis.DedicatedClient, unsub bool, channels ...string) error {
	var cmd rueidis.Completed
	switch {
	case c.b.sharded && unsub:
		cmd = cl.B().Sunsubscribe().Channel(channels...).Build()
	case c.b.sharded:
		cmd = cl.B().Ssubscribe().Channel(channels...).Build()
	case unsub:
		cmd = cl.B().Unsubscribe().Channel(channels...).Build()
	default:
		cmd = cl.B().Subscribe().Channel(channels...).Build()
	}
	ctx, cancel := c.b.timeout()
	defer cancel()
	return dc.Do(ctx, cmd).Error()
}

// run keeps the connection subscribed until the broker closes.
func (c *psConn) run() {
	defer c.b.wg.Done()
	delay := 50 * time.Millisecond
	failures := 0 // failed attempts since the connection was last up
	for {
		cl := c.b.waitClient()
		if cl == nil {
			return
		}
		dc, cancelDC := cl.Dedicate()
		errc := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: c.onMessage, OnSubscription: c.onSubscription})
		c.allOn.Store(false)
		err := c.subscribeAll(cl, dc)
		if err != nil {
			dc.Close()
			cancelDC()
			c.lost()
			err = explain(err)
			c.mu.Lock()
			c.why = err
			c.mu.Unlock()
			// One line per outage, not one per connection and attempt.
			level := slog.LevelDebug
			if c.b.markLost() {
				level = slog.LevelWarn
			}
			failures++
			c.b.log.Log(c.b.ctx, level, "redis: PUB/SUB connection could not subscribe; retrying", slog.String("connection", c.name()),
				slog.String("error", err.Error()), slog.Duration("retry_in", delay))
			select {
			case <-c.b.ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, 2*time.Second)
			continue
		}
		if failures > 0 {
			c.b.log.Debug("redis: PUB/SUB connection subscribed again", slog.String("connection", c.name()), slog.Int("attempts", failures+1))
		}
		delay, failures = 50*time.Millisecond, 0
		c.b.connUp()
		var why string
		select {
		case err := <-errc:
			why = fmt.Sprint(err)
		case <-c.kick:
			why = "restarted (Redis master changed or a subscription was dropped by Redis)"
		case <-c.b.ctx.Done():
			c.down()
			dc.Close()
			cancelDC()
			return
		}
		c.down()
		dc.Close()
		cancelDC()
		c.lost()
		level := slog.LevelDebug
		if c.b.markLost() {
			level = slog.LevelWarn
		}
		c.b.log.Log(c.b.ctx, level, "redis: PUB/SUB connection lost; reconnecting", slog.String("connection", c.name()), slog.String("reason", why))
	}
}

// lost records that this connection may have missed messages.
func (c *psConn) lost() {
	if c.part < 0 {
		c.b.metaStale.Store(true)
	}
}

func (c *psConn) down() {
	c.mu.Lock()
	c.up, c.dc = false, nil
	c.mu.Unlock()
}

// subscribeAll subscribes a fresh connection to everything wanted, in
// batches, and marks it up.
func (c *psConn) subscribeAll(cl rueidis.Client, dc rueidis.DedicatedClient) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := &c.b.keys
	var names []string
	if c.part < 0 {
		names = []string{k.control(), k.node(c.b.nodeID), k.indexChannel()}
	} else {
		if c.b.sharded {
			// A sharded PUB/SUB connection is bound to the node that
			// serves the partition's slot. The anchor, which nobody
			// publishes to, keeps one subscription on it, so that Redis
			// tells this connection when the slot moves, even while the
			// partition has no channel.
			names = append(names, k.anchor(c.part))
		}
		if c.b.all.Load() {
			if err := c.b.setAllFlag(cl, c.part); err != nil {
				return err
			}
			names = append(names, k.allChannel(c.part))
		}
		for ch := range c.channels {
			names = append(names, k.pubsub(c.part, ch))
		}
	}
	if len(names) == 0 {
		// Nothing to subscribe yet: check that the connection works, so
		// that a dead Redis is not taken for a live connection.
		ctx, cancel := c.b.timeout()
		err := dc.Do(ctx, cl.B().Ping().Build()).Error()
		cancel()
		if err != nil {
			return err
		}
	}
	const batch = 512
	for len(names) > 0 {
		n := min(batch, len(names))
		if err := c.sub(cl, dc, false, names[:n]...); err != nil {
			return err
		}
		names = names[n:]
	}
	if c.b.sharded {
		// A replica accepts sharded subscriptions too, but publications
		// do not reach them: after a failover the client's map of the
		// cluster may still name the old master, now a replica. A read of
		// a key in the connection's slot is answered by its master only
		// (a replica redirects it), and the redirect makes the client
		// refresh its map for the next attempt.
		key := k.indexKeys()[1]
		if c.part >= 0 {
			key = k.allFlag(c.part)
		}
		ctx, cancel := c.b.timeout()
		err := dc.Do(ctx, cl.B().Exists().Key(key).Build()).Error()
		cancel()
		if err != nil {
			return fmt.Errorf("checking the connection serves its slot: %w", err)
		}
	}
	c.dc, c.up, c.why = dc, true, nil
	for a := range cl.Nodes() {
		c.addr = a
	}
	return nil
}

// subscribe adds (or removes) a Herald channel. When the connection is down
// the wish is kept and applied when it is back.
func (c *psConn) subscribe(ch string, on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		c.channels[ch] = struct{}{}
	} else {
		delete(c.channels, ch)
	}
	if !c.up {
		if on {
			// The channel's publications until the connection is back are
			// missed: the hub will be told to resync.
			c.b.markLost()
		}
		_, err := c.b.conn()
		if err == nil {
			err = fmt.Errorf("%w: redis PUB/SUB connection %s is reconnecting", broker.ErrUnavailable, c.name())
		}
		return err
	}
	cl, err := c.b.conn()
	if err != nil {
		return err
	}
	if err := c.sub(cl, c.dc, !on, c.b.keys.pubsub(c.part, ch)); err != nil {
		c.restartIfAstray(err)
		return unavailable("subscribe", err)
	}
	return nil
}

// setAll subscribes to (or leaves) the partition's all-channel.
func (c *psConn) setAll(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up {
		if on {
			c.b.markLost()
		}
		return fmt.Errorf("%w: redis PUB/SUB connection %s is reconnecting", broker.ErrUnavailable, c.name())
	}
	cl, err := c.b.conn()
	if err != nil {
		return err
	}
	if on {
		if err := c.b.setAllFlag(cl, c.part); err != nil {
			return err
		}
	}
	if err := c.sub(cl, c.dc, !on, c.b.keys.allChannel(c.part)); err != nil {
		c.restartIfAstray(err)
		return unavailable("subscribe", err)
	}
	return nil
}

// restartIfAstray restarts the connection after a subscribe command failed
// because the connection is broken or bound to a node that no longer serves
// the partition's slot (a MOVED reply, the cluster down): the connection
// would fail every later command too. Other Redis errors (such as an ACL
// refusal) are the command's own.
func (c *psConn) restartIfAstray(err error) {
	re, ok := rueidis.IsRedisErr(err)
	if !ok {
		c.restart()
		return
	}
	if _, redirect := re.IsRedirect(); redirect || re.IsClusterDown() || re.IsTryAgain() {
		c.restart()
	}
}

// restart asks the connection to reconnect (and so resubscribe).
func (c *psConn) restart() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *psConn) onSubscription(s rueidis.PubSubSubscription) {
	// Redis Cluster drops the sharded subscriptions of a slot that moved
	// (resharding, or a master demoted by a failover while it lives on),
	// with a sunsubscribe this node did not ask for: the connection then
	// starts again on the slot's new node.
	dropped := s.Kind == "sunsubscribe"
	if c.part < 0 {
		// The meta connection never unsubscribes by itself.
		if dropped {
			c.restart()
		}
		return
	}
	k := &c.b.keys
	switch s.Channel {
	case k.allChannel(c.part):
		// Switching happens here, in the reader, in order with the
		// messages: from now on publications come through the
		// all-channel (and are ignored on the channels' own).
		c.allOn.Store(s.Kind == "subscribe" || s.Kind == "ssubscribe")
		if dropped && c.b.all.Load() {
			c.restart()
		}
		return
	case k.anchor(c.part):
		if dropped {
			c.restart()
		}
		return
	}
	if dropped {
		ch, ok := isPrefixed(s.Channel, k.pubsubPrefix(c.part))
		if !ok {
			return
		}
		c.b.lmu.RLock()
		_, wanted := c.b.local[ch]
		c.b.lmu.RUnlock()
		if wanted {
			c.restart()
		}
	}
}

func (c *psConn) onMessage(m rueidis.PubSubMessage) {
	b := c.b
	k := &b.keys
	if c.part < 0 {
		switch {
		case m.Channel == k.control() || m.Channel == k.node(b.nodeID):
			b.handler.HandleControl([]byte(m.Message))
		case m.Channel == k.indexChannel():
			b.hold.RLock()
			defer b.hold.RUnlock()
			if b.metaStale.Load() {
				return // the resync to come makes its subscribers replay or recover it
			}
			// Every indexed publication reaches every node; one of a
			// channel this node does not want is dropped before decoding.
			if !b.all.Load() {
				ch, ok := broker.PeekChannel([]byte(m.Message))
				b.lmu.RLock()
				_, want := b.local[ch]
				b.lmu.RUnlock()
				if ok && !want {
					return
				}
			}
			msg, ok := b.decode(m)
			if !ok || msg.Kind != broker.MsgPublication {
				return
			}
			b.handler.HandlePublication(msg.Pub, broker.StreamPosition{Offset: msg.Pub.Offset, Epoch: msg.Epoch})
		}
		return
	}
	msg, ok := b.decode(m)
	if !ok {
		return
	}
	if m.Channel != k.allChannel(c.part) && msg.Kind == broker.MsgPublication && c.allOn.Load() {
		return // delivered through the all-channel
	}
	switch msg.Kind {
	case broker.MsgPublication:
		b.handler.HandlePublication(msg.Pub, broker.StreamPosition{Offset: msg.Pub.Offset, Epoch: msg.Epoch})
	case broker.MsgJoin:
		b.handler.HandleJoin(msg.Channel, msg.Info)
	case broker.MsgLeave:
		b.handler.HandleLeave(msg.Channel, msg.Info)
	}
}

func (b *Broker) decode(m rueidis.PubSubMessage) (broker.Message, bool) {
	msg, err := broker.DecodeMessage([]byte(m.Message))
	if err != nil {
		b.log.Warn("redis: dropping a PUB/SUB message Herald cannot read", slog.String("channel", m.Channel), slog.String("error", err.Error()))
		return msg, false
	}
	return msg, true
}

// Subscribe implements broker.Broker. It returns once Redis confirmed the
// subscription: a publication made after it returns reaches this node.
func (b *Broker) Subscribe(channel string) error {
	b.lmu.Lock()
	b.local[channel] = struct{}{}
	b.lmu.Unlock()
	return b.parts[b.keys.partition(channel)].subscribe(channel, true)
}

// Unsubscribe implements broker.Broker.
func (b *Broker) Unsubscribe(channel string) error {
	b.lmu.Lock()
	delete(b.local, channel)
	b.lmu.Unlock()
	return b.parts[b.keys.partition(channel)].subscribe(channel, false)
}

// SubscribeAll implements broker.Broker: every partition's connection joins
// its all-channel, and publishers, seeing the partition's flag, publish
// there too. A publication reaches the hub once: through the all-channel
// once its subscription is confirmed, through the channel's own before.
func (b *Broker) SubscribeAll() error {
	b.all.Store(true)
	var errs []error
	for _, c := range b.parts {
		errs = append(errs, c.setAll(true))
	}
	return errors.Join(errs...)
}

// UnsubscribeAll implements broker.Broker.
func (b *Broker) UnsubscribeAll() error {
	b.all.Store(false)
	var errs []error
	for _, c := range b.parts {
		errs = append(errs, c.setAll(false))
	}
	return errors.Join(errs...)
}

// allFlagTTL is how long a partition's all-flag lives without a refresh.
const allFlagTTL = 60 * time.Second

// setAllFlag sets the partition's all-flag and reports, through markLost,
// when it had vanished while this node relied on it (publications in
// between skipped the all-channel).
func (b *Broker) setAllFlag(cl rueidis.Client, part int) error {
	ctx, cancel := b.timeout()
	defer cancel()
	err := cl.Do(ctx, cl.B().Set().Key(b.keys.allFlag(part)).Value("1").Get().Ex(allFlagTTL).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return nil
	}
	if err != nil {
		return unavailable("subscribe", err)
	}
	return nil
}

// watch refreshes the all-flags and notices a change of Redis server
// (Sentinel failover): the PUB/SUB connections then move to the new master
// and the hub resyncs.
func (b *Broker) watch() {
	defer b.wg.Done()
	cl := b.waitClient()
	if cl == nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-tick.C:
		}
		// A command every second finds a dead connection to a restarted
		// Redis before a publication does.
		ctx, cancel := context.WithTimeout(b.ctx, b.opts.IOTimeout)
		_ = cl.Do(ctx, cl.B().Ping().Build()).Error()
		cancel()
		if b.topo == topoSentinel {
			var cur string
			for a := range cl.Nodes() {
				cur = a
			}
			for _, c := range append([]*psConn{b.meta}, b.parts...) {
				c.mu.Lock()
				stale := c.up && c.addr != "" && cur != "" && c.addr != cur
				c.mu.Unlock()
				if stale {
					c.restart()
				}
			}
		}
		if b.all.Load() && time.Since(last) >= allFlagTTL/3 {
			last = time.Now()
			b.refreshAllFlags(cl)
		}
	}
}

func (b *Broker) refreshAllFlags(cl rueidis.Client) {
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.IOTimeout)
	defer cancel()
	for p := range b.parts {
		r := cl.Do(ctx, cl.B().Set().Key(b.keys.allFlag(p)).Value("1").Get().Ex(allFlagTTL).Build())
		if err := r.Error(); rueidis.IsRedisNil(err) {
			// The flag had expired or was evicted: publications of this
			// partition may have skipped the all-channel.
			b.log.Warn("redis: a partition's all-channel flag had vanished; resyncing", slog.Int("partition", p))
			b.markLost()
			b.connUp()
		}
	}
}

// markLost records that publications may have been missed; it reports
// whether this starts a loss (none was recorded since the last resync).
func (b *Broker) markLost() bool {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	first := !b.lost
	b.lost = true
	return first
}

// connUp is called when a connection is subscribed again: once every
// connection is up after a loss, the hub is told to resync.
func (b *Broker) connUp() {
	for _, c := range append([]*psConn{b.meta}, b.parts...) {
		if !c.isUp() {
			return
		}
	}
	b.rmu.Lock()
	lost := b.lost
	b.lost = false
	b.rmu.Unlock()
	if lost {
		b.log.Info("redis: PUB/SUB connections are back; telling the hub to resync")
		b.hold.Lock()
		b.handler.HandleResync()
		b.metaStale.Store(false)
		b.hold.Unlock()
	}
}
