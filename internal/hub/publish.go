package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
)

// PublishRequest is a publication to a channel.
type PublishRequest struct {
	Channel  string
	Data     []byte
	Encoding broker.Encoding
	// ID is the publication's id (a Mercure event id); one is generated
	// when empty and the index is on.
	ID          string
	Tags        map[string]string
	SkipHistory bool
	// Mercure: the update's topics (Channel is the first), private flag,
	// event type and retry. Topic resolves Channel as a Mercure topic.
	Topics  []string
	Private bool
	Event   string
	Retry   uint64
	Topic   bool
	// OptionalNamespace resolves Channel leniently (see Namespaces.ResolveOptional).
	OptionalNamespace bool
	// A connection's publication: Client and Conn are set, and the auth
	// engine decides (a publish proxy may replace the data).
	Client   Client
	Conn     *auth.Conn
	ConnInfo json.RawMessage
}

// Publish checks and publishes a publication and returns its stream
// position (zero when the channel keeps no history).
func (h *Hub) Publish(ctx context.Context, req *PublishRequest) (broker.StreamPosition, *Error) {
	var none broker.StreamPosition
	if h.draining.Load() {
		return none, &Error{Kind: ErrShuttingDown, Msg: "the node is shutting down; publish to another node"}
	}
	var ns *Namespace
	var err error
	if req.Topic {
		ns = h.ns.ResolveTopic(req.Channel)
	} else if ns, err = h.ns.resolve(req.Channel, req.OptionalNamespace); err != nil {
		return none, channelError(err)
	}
	if e := checkText(req.Data, req.Encoding); e != nil {
		return none, e
	}
	pub := &broker.Publication{Channel: req.Channel, ID: req.ID, Data: req.Data, Encoding: req.Encoding, Tags: req.Tags,
		Topics: req.Topics, Private: req.Private, Event: req.Event, Retry: req.Retry}
	skip := req.SkipHistory
	if req.Conn != nil {
		grant, reason := h.auth.AuthorizeChannel(ctx, &auth.ChannelRequest{Op: auth.OpPublish, Channel: req.Channel,
			Namespace: &ns.NamespaceOptions, NamespaceLabel: ns.Label(), Conn: req.Conn, Data: req.Data,
			Subscribed: h.Subscribed(req.Client, req.Channel)})
		if reason != nil {
			return none, denied(reason)
		}
		if grant.ByProxy {
			// The publish proxy's answer decides, and may replace the data.
			if grant.Data != nil {
				pub.Data, pub.Encoding = grant.Data, broker.EncodingJSON
			}
			skip = skip || grant.SkipHistory
			pub.Tags = grant.Tags
		}
		pub.Info = &broker.ClientInfo{User: req.Client.User(), Client: req.Client.ID(), ConnInfo: req.ConnInfo}
		if s := h.Lookup(req.Client, req.Channel); s != nil {
			pub.Info.ChanInfo = s.Info().ChanInfo
		}
	}
	if pub.ID == "" && h.o.Index != nil {
		id, err := uuid.NewV7()
		if err != nil {
			return none, &Error{Kind: ErrInternal, Msg: "cannot generate a publication id: " + err.Error()}
		}
		pub.ID = "urn:uuid:" + id.String()
	}
	opts := PublishOptions(ns)
	if skip {
		opts.HistorySize, opts.HistoryTTL = 0, 0
	}
	opts.Index = h.o.Index
	sp, err := h.broker.Publish(pub, opts)
	if err != nil {
		return none, brokerError(err)
	}
	h.o.Metrics.Publication()
	return sp, nil
}

// checkText refuses JSON or text that is not valid UTF-8: it would go out
// in text frames, which clients must fail (RFC 6455), so one bad
// publication would disconnect every subscriber of the channel, again at
// each recovery from history.
func checkText(data []byte, enc broker.Encoding) *Error {
	if enc == broker.EncodingBinary || utf8.Valid(data) {
		return nil
	}
	return &Error{Kind: ErrBadRequest, Msg: fmt.Sprintf("publication data is not valid UTF-8 (first invalid byte at offset %d)", InvalidUTF8At(data))}
}

// InvalidUTF8At returns the offset of the first byte of b that is not part
// of valid UTF-8, or -1.
func InvalidUTF8At(b []byte) int { return auth.InvalidUTF8At(b) }

// PublishOptions returns the broker options for a namespace.
func PublishOptions(ns *Namespace) broker.PublishOptions {
	return broker.PublishOptions{HistorySize: ns.HistorySize, HistoryTTL: ns.HistoryTTL.D(), HistoryMetaTTL: metaTTL(ns),
		HistoryMaxBytes: ns.HistoryMaxBytes}
}

func metaTTL(ns *Namespace) time.Duration {
	if ns.HistoryMetaTTL > 0 {
		return ns.HistoryMetaTTL.D()
	}
	return 720 * time.Hour
}

// ReadRequest is a read of a channel's history or presence.
type ReadRequest struct {
	Channel string
	// History: Limit 0 is only the position, -1 is all (capped at
	// MaxLimit), N is at most N (capped); Since must still be in the stream.
	Limit    int64
	Since    *broker.StreamPosition
	Reverse  bool
	MaxLimit int
	// A connection's read: the auth engine decides. Nil for the server API.
	Client Client
	Conn   *auth.Conn
	// OptionalNamespace resolves Channel leniently (see Namespaces.ResolveOptional).
	OptionalNamespace bool
}

func (h *Hub) readable(ctx context.Context, r *ReadRequest, op auth.Op) (*Namespace, *Error) {
	ns, err := h.ns.resolve(r.Channel, r.OptionalNamespace)
	if err != nil {
		return nil, channelError(err)
	}
	switch {
	case op == auth.OpHistory && !ns.HistoryEnabled():
		return nil, &Error{Kind: ErrNotAvailable, Msg: fmt.Sprintf("history is off in %s (needs history_size and history_ttl)", ns.Label())}
	case op == auth.OpPresence && !ns.Presence:
		return nil, &Error{Kind: ErrNotAvailable, Msg: fmt.Sprintf("presence is off in %s", ns.Label())}
	}
	if r.Conn != nil {
		_, reason := h.auth.AuthorizeChannel(ctx, &auth.ChannelRequest{Op: op, Channel: r.Channel,
			Namespace: &ns.NamespaceOptions, NamespaceLabel: ns.Label(), Conn: r.Conn, Subscribed: h.Subscribed(r.Client, r.Channel)})
		if reason != nil {
			return nil, denied(reason)
		}
	}
	return ns, nil
}

// History reads a channel's history.
func (h *Hub) History(ctx context.Context, r *ReadRequest) ([]*broker.Publication, broker.StreamPosition, *Error) {
	ns, e := h.readable(ctx, r, auth.OpHistory)
	if e != nil {
		return nil, broker.StreamPosition{}, e
	}
	return h.readHistory(ns, r)
}

// RemoveHistory drops a channel's publications; its position stays.
func (h *Hub) RemoveHistory(channel string) *Error {
	if _, err := h.ns.Resolve(channel); err != nil {
		return channelError(err)
	}
	if err := h.broker.RemoveHistory(channel); err != nil {
		return brokerError(err)
	}
	return nil
}

// Presence returns who is subscribed to a channel, on every node.
func (h *Hub) Presence(ctx context.Context, r *ReadRequest) (map[string]*broker.ClientInfo, *Error) {
	if _, e := h.readable(ctx, r, auth.OpPresence); e != nil {
		return nil, e
	}
	p, err := h.presence.Presence(r.Channel)
	if err != nil {
		return nil, brokerError(err)
	}
	return p, nil
}

// PresenceStats counts a channel's clients and users, on every node.
func (h *Hub) PresenceStats(ctx context.Context, r *ReadRequest) (broker.PresenceStats, *Error) {
	if _, e := h.readable(ctx, r, auth.OpPresence); e != nil {
		return broker.PresenceStats{}, e
	}
	st, err := h.presence.PresenceStats(r.Channel)
	if err != nil {
		return st, brokerError(err)
	}
	return st, nil
}
