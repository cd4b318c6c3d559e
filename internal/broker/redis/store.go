package redis

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/heraldhub/herald/internal/broker"
)

// History implements broker.Broker.
func (b *Broker) History(channel string, f broker.HistoryFilter) ([]*broker.Publication, broker.StreamPosition, error) {
	c, err := b.conn()
	if err != nil {
		return nil, broker.StreamPosition{}, err
	}
	p := b.keys.partition(channel)
	since := ""
	if f.Since != nil {
		since = strconv.FormatUint(f.Since.Offset, 10)
	}
	reverse := "0"
	if f.Reverse {
		reverse = "1"
	}
	args := []string{strconv.FormatInt(int64(f.MetaTTL.Seconds()), 10), broker.NewEpoch(),
		strconv.FormatInt(f.TTL.Milliseconds(), 10), strconv.FormatInt(time.Now().UnixMilli(), 10),
		since, strconv.Itoa(f.Limit), reverse}
	ctx, cancel := b.timeout()
	defer cancel()
	vals, err := historyScript.Exec(ctx, c, []string{b.keys.stream(p, channel), b.keys.meta(p, channel)}, args).ToArray()
	if err != nil {
		return nil, broker.StreamPosition{}, unavailable("history", err)
	}
	if len(vals) != 3 {
		return nil, broker.StreamPosition{}, unavailable("history", fmt.Errorf("unexpected reply of %d values", len(vals)))
	}
	top, _ := vals[0].AsInt64()
	epoch, _ := vals[1].ToString()
	sp := broker.StreamPosition{Offset: uint64(top), Epoch: epoch}
	pubs, err := b.entries(vals[2])
	if err != nil {
		return nil, sp, err
	}
	return pubs, sp, nil
}

// entries decodes a stream range reply. An entry that does not decode is
// logged and skipped (it was written by something other than Herald).
func (b *Broker) entries(v rueidis.RedisMessage) ([]*broker.Publication, error) {
	list, err := v.ToArray()
	if err != nil {
		return nil, unavailable("read", err)
	}
	out := make([]*broker.Publication, 0, len(list))
	for _, e := range list {
		parts, err := e.ToArray()
		if err != nil || len(parts) != 2 {
			continue
		}
		fields, err := parts[1].AsStrMap()
		if err != nil {
			continue
		}
		m, err := broker.DecodeMessage([]byte(fields["d"]))
		if err != nil || m.Kind != broker.MsgPublication {
			id, _ := parts[0].ToString()
			b.log.Warn("redis: skipping a stream entry Herald cannot read", slog.String("entry", id), slog.String("error", fmt.Sprint(err)))
			continue
		}
		out = append(out, m.Pub)
	}
	return out, nil
}

// RemoveHistory implements broker.Broker: publications go, the position stays.
func (b *Broker) RemoveHistory(channel string) error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	p := b.keys.partition(channel)
	ctx, cancel := b.timeout()
	defer cancel()
	if err := removeHistoryScript.Exec(ctx, c, []string{b.keys.stream(p, channel), b.keys.meta(p, channel)}, nil).Error(); err != nil {
		return unavailable("remove history", err)
	}
	return nil
}

// IndexAfter implements broker.Broker.
func (b *Broker) IndexAfter(id string, opts broker.IndexOptions) ([]*broker.Publication, uint64, bool, error) {
	c, err := b.conn()
	if err != nil {
		return nil, 0, false, err
	}
	ctx, cancel := b.timeout()
	defer cancel()
	args := []string{id, strconv.FormatInt(opts.TTL.Milliseconds(), 10), strconv.FormatInt(time.Now().UnixMilli(), 10)}
	vals, err := indexAfterScript.Exec(ctx, c, b.keys.indexKeys(), args).ToArray()
	if err != nil {
		return nil, 0, false, unavailable("index", err)
	}
	if len(vals) != 3 {
		return nil, 0, false, unavailable("index", fmt.Errorf("unexpected reply of %d values", len(vals)))
	}
	top, _ := vals[0].AsInt64()
	found, _ := vals[1].AsInt64()
	pubs, err := b.entries(vals[2])
	if err != nil {
		return nil, 0, false, err
	}
	return pubs, uint64(top), found == 1, nil
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
	c, err := b.conn()
	if err != nil {
		return err
	}
	msg := broker.AppendPresenceMessage(nil, kind, channel, info)
	return b.publishRaw(c, b.keys.pubsub(b.keys.partition(channel), channel), string(msg))
}

func (b *Broker) publishRaw(c rueidis.Client, channel, msg string) error {
	ctx, cancel := b.timeout()
	defer cancel()
	if err := c.Do(ctx, b.publishCmd(c, channel, msg)).Error(); err != nil {
		return unavailable("publish", err)
	}
	return nil
}

// PublishControl implements broker.Broker.
func (b *Broker) PublishControl(node string, data []byte) error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	ch := b.keys.control()
	if node != "" {
		ch = b.keys.node(node)
	}
	return b.publishRaw(c, ch, string(data))
}

// presenceKey names one of this node's presence entries.
type presenceKey struct{ channel, client string }

// AddPresence implements broker.PresenceManager. The entry expires after
// PresenceTTL unless its node refreshes it: this broker refreshes the
// entries it added (until RemovePresence) every quarter of PresenceTTL, so
// the entries of a node that died go, and those of a live node stay.
func (b *Broker) AddPresence(channel, clientID string, info *broker.ClientInfo) error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	enc := string(broker.AppendClientInfo(nil, info))
	b.pmu.Lock()
	b.mine[presenceKey{channel, clientID}] = enc
	b.pmu.Unlock()
	ctx, cancel := b.timeout()
	defer cancel()
	if err := addPresenceScript.Exec(ctx, c, b.presenceKeys(channel), b.presenceArgs(clientID, enc)).Error(); err != nil {
		return unavailable("presence", err)
	}
	return nil
}

func (b *Broker) presenceKeys(channel string) []string {
	p := b.keys.partition(channel)
	return []string{b.keys.presence(p, channel), b.keys.presExp(p, channel)}
}

func (b *Broker) presenceArgs(clientID, info string) []string {
	ttl := b.opts.PresenceTTL
	return []string{clientID, info, strconv.FormatInt(time.Now().Add(ttl).UnixMilli(), 10),
		strconv.FormatInt(int64((ttl+time.Second-1)/time.Second), 10)}
}

// refreshPresence adds this node's presence entries again, in batches.
func (b *Broker) refreshPresence(c rueidis.Client) {
	b.pmu.Lock()
	execs := make([]rueidis.LuaExec, 0, len(b.mine))
	for k, info := range b.mine {
		execs = append(execs, rueidis.LuaExec{Keys: b.presenceKeys(k.channel), Args: b.presenceArgs(k.client, info)})
	}
	b.pmu.Unlock()
	for len(execs) > 0 {
		n := min(len(execs), 512)
		ctx, cancel := b.timeout()
		for _, r := range addPresenceScript.ExecMulti(ctx, c, execs[:n]...) {
			if err := r.Error(); err != nil {
				b.log.Warn("redis: refreshing presence failed; retrying at the next refresh", slog.String("error", err.Error()))
				break
			}
		}
		cancel()
		execs = execs[n:]
	}
}

// RemovePresence implements broker.PresenceManager.
func (b *Broker) RemovePresence(channel, clientID string) error {
	b.pmu.Lock()
	delete(b.mine, presenceKey{channel, clientID})
	b.pmu.Unlock()
	c, err := b.conn()
	if err != nil {
		return err
	}
	p := b.keys.partition(channel)
	ctx, cancel := b.timeout()
	defer cancel()
	if err := removePresenceScript.Exec(ctx, c, []string{b.keys.presence(p, channel), b.keys.presExp(p, channel)}, []string{clientID}).Error(); err != nil {
		return unavailable("presence", err)
	}
	return nil
}

// Presence implements broker.PresenceManager.
func (b *Broker) Presence(channel string) (map[string]*broker.ClientInfo, error) {
	c, err := b.conn()
	if err != nil {
		return nil, err
	}
	p := b.keys.partition(channel)
	ctx, cancel := b.timeout()
	defer cancel()
	m, err := presenceScript.Exec(ctx, c, []string{b.keys.presence(p, channel), b.keys.presExp(p, channel)},
		[]string{strconv.FormatInt(time.Now().UnixMilli(), 10)}).AsStrMap()
	if err != nil {
		return nil, unavailable("presence", err)
	}
	out := make(map[string]*broker.ClientInfo, len(m))
	for id, v := range m {
		info, err := broker.DecodeClientInfo([]byte(v))
		if err != nil || info == nil {
			continue
		}
		out[id] = info
	}
	return out, nil
}

// PresenceStats implements broker.PresenceManager. The anonymous user ""
// counts as one user.
func (b *Broker) PresenceStats(channel string) (broker.PresenceStats, error) {
	m, err := b.Presence(channel)
	if err != nil {
		return broker.PresenceStats{}, err
	}
	users := make(map[string]struct{}, len(m))
	for _, info := range m {
		users[info.User] = struct{}{}
	}
	return broker.PresenceStats{NumClients: len(m), NumUsers: len(users)}, nil
}

// isPrefixed reports whether s starts with prefix and returns the rest.
func isPrefixed(s, prefix string) (string, bool) {
	if strings.HasPrefix(s, prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// Top returns a channel's stream position without creating one (the zero
// position when the channel has no stream), for a broker that carries
// publications itself (NATS) and must know where a channel's stream is when
// it starts receiving it.
func (b *Broker) Top(channel string) (broker.StreamPosition, error) {
	c, err := b.conn()
	if err != nil {
		return broker.StreamPosition{}, err
	}
	p := b.keys.partition(channel)
	ctx, cancel := b.timeout()
	defer cancel()
	vals, err := c.Do(ctx, c.B().Hmget().Key(b.keys.meta(p, channel)).Field("e", "s").Build()).ToArray()
	if err != nil || len(vals) != 2 {
		return broker.StreamPosition{}, unavailable("read a position", fmt.Errorf("%v (%d values)", err, len(vals)))
	}
	epoch, _ := vals[0].ToString()
	top, _ := vals[1].AsInt64()
	return broker.StreamPosition{Offset: uint64(top), Epoch: epoch}, nil
}

// IndexTop returns the seq of the newest indexed publication.
func (b *Broker) IndexTop() (uint64, error) {
	c, err := b.conn()
	if err != nil {
		return 0, err
	}
	ctx, cancel := b.timeout()
	defer cancel()
	v, err := c.Do(ctx, c.B().Hget().Key(b.keys.indexKeys()[1]).Field("s").Build()).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable("read the index", err)
	}
	return uint64(v), nil
}
