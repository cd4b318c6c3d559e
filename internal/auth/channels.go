package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/glob"
)

// Reserved symbols of channel names.
const (
	NamespaceBoundary = ":"
	UserBoundary      = "#"
	UserSeparator     = ","
	PrivatePrefix     = "$"
)

// IsPrivate reports whether a channel needs a subscription token.
func IsPrivate(channel string) bool { return strings.HasPrefix(channel, PrivatePrefix) }

// UserLimited reports whether channel is user-limited (has "#") and whether
// user is one of the users it names.
func UserLimited(channel, user string) (limited, allowed bool) {
	i := strings.LastIndex(channel, UserBoundary)
	if i < 0 {
		return false, false
	}
	if user == "" {
		return true, false
	}
	for _, u := range strings.Split(channel[i+1:], UserSeparator) {
		if u == user {
			return true, true
		}
	}
	return true, false
}

// Op is what a connection asks to do on a channel.
type Op uint8

// Channel operations.
const (
	OpSubscribe Op = iota + 1
	OpPublish
	OpHistory
	OpPresence
)

func (o Op) String() string {
	switch o {
	case OpSubscribe:
		return "subscribe"
	case OpPublish:
		return "publish"
	case OpHistory:
		return "history"
	case OpPresence:
		return "presence"
	}
	return "unknown"
}

// Grants are glob patterns of the channels a connection may use, per
// operation: set by an authority (the auth callout) that decides channels
// for the connections it admits, instead of the namespace options.
type Grants struct {
	Subscribe []string `json:"subscribe"`
	Publish   []string `json:"publish"`
	History   []string `json:"history"`
	Presence  []string `json:"presence"`
}

// Allows reports whether op on channel is granted.
func (g *Grants) Allows(op Op, channel string) bool {
	var patterns []string
	switch op {
	case OpSubscribe:
		patterns = g.Subscribe
	case OpPublish:
		patterns = g.Publish
	case OpHistory:
		patterns = g.History
	case OpPresence:
		patterns = g.Presence
	}
	for _, p := range patterns {
		if glob.Match(p, channel) {
			return true
		}
	}
	return false
}

// Conn is a connection as the channel policy and the channel authorities see it.
type Conn struct {
	Client, User string
	// Transport, Protocol and Encoding name the connection's wire, for proxies.
	Transport, Protocol, Encoding string
	// Meta is server-only data from the token or the connect proxy.
	Meta json.RawMessage
	// Grants, when set, decide the connection's channel operations.
	Grants *Grants
	// Headers are the transport headers kept for proxies.
	Headers http.Header
}

// ChannelRequest asks whether a connection may do Op on Channel.
type ChannelRequest struct {
	Op      Op
	Channel string
	// Namespace holds the channel's options; NamespaceLabel names them in
	// messages ("namespace \"chat\"").
	Namespace      *config.NamespaceOptions
	NamespaceLabel string
	Conn           *Conn
	// Token is a subscription token (OpSubscribe).
	Token string
	// Data is the subscribe data or the publication (for the proxies).
	Data json.RawMessage
	// Subscribed: the connection is subscribed to Channel (the
	// allow_*_for_subscriber options).
	Subscribed bool
}

// ChannelGrant is a permitted channel operation and what its authority
// attached to it.
type ChannelGrant struct {
	// Info, Data, Override and ExpireAt come from a subscription token or
	// the subscribe proxy (OpSubscribe).
	Info     json.RawMessage
	Data     json.RawMessage
	Override *Override
	ExpireAt time.Time // zero means never
	// ByToken: a subscription token granted the subscription.
	ByToken bool
	// ByProxy: the team's backend decided.
	ByProxy bool
	// History and Presence: the subscriber may also read the channel's
	// history (so positioning and recovery) and presence (so join/leave).
	History, Presence bool
	// A publish proxy may replace the data (Data), skip history and add tags.
	SkipHistory bool
	Tags        map[string]string
}

// AuthorizeChannel decides a channel operation: for subscriptions a
// subscription token first (private $ channels need one), then the auth
// callout's grants, user-limited channels, the subscribe proxy, and the
// namespace's allow_* options; for publications the publish proxy first.
// A refusal is channel_not_permitted unless a token or proxy said otherwise.
func (e *Engine) AuthorizeChannel(ctx context.Context, req *ChannelRequest) (*ChannelGrant, *Reason) {
	switch req.Op {
	case OpSubscribe:
		return e.subscribe(ctx, req)
	case OpPublish:
		if a := e.authority(e.a.Publish, req.Namespace); a != nil {
			g, r := a.AuthorizeChannel(ctx, req)
			if g != nil {
				g.ByProxy = true
			}
			return g, r
		}
	}
	ns := req.Namespace
	if g := req.Conn.Grants; g != nil {
		if !g.Allows(req.Op, req.Channel) {
			return nil, deny(fmt.Sprintf("the callout's grants do not include %s on this channel", req.Op))
		}
		return &ChannelGrant{}, nil
	}
	var forClient, forSubscriber, forAnonymous bool
	switch req.Op {
	case OpPublish:
		forClient, forSubscriber, forAnonymous = ns.AllowPublishForClient, ns.AllowPublishForSubscriber, ns.AllowPublishForAnonymous
	case OpHistory:
		forClient, forSubscriber, forAnonymous = ns.AllowHistoryForClient, ns.AllowHistoryForSubscriber, ns.AllowHistoryForAnonymous
	case OpPresence:
		forClient, forSubscriber, forAnonymous = ns.AllowPresenceForClient, ns.AllowPresenceForSubscriber, ns.AllowPresenceForAnonymous
	default:
		return nil, deny("unknown channel operation")
	}
	if e.allowed(req.Conn, forClient, forSubscriber && req.Subscribed, forAnonymous) {
		return &ChannelGrant{}, nil
	}
	detail := fmt.Sprintf("%s: %s needs allow_%s_for_client, or allow_%s_for_subscriber while subscribed", req.NamespaceLabel, req.Op, req.Op, req.Op)
	if req.Conn.User == "" && (forClient || forSubscriber) && !forAnonymous {
		detail = fmt.Sprintf("%s: allow_%s_for_anonymous is false and the connection is anonymous", req.NamespaceLabel, req.Op)
	}
	return nil, deny(detail)
}

func (e *Engine) subscribe(ctx context.Context, req *ChannelRequest) (*ChannelGrant, *Reason) {
	ns, c := req.Namespace, req.Conn
	var g *ChannelGrant
	switch {
	case IsPrivate(req.Channel) && req.Token == "":
		return nil, deny("channel is private ($ prefix) and needs a subscription token")
	case req.Token != "":
		sg, reason := e.v.Subscription(SubscriptionRequest{Token: req.Token, Channel: req.Channel, User: c.User, Client: c.Client})
		if reason != nil {
			return nil, reason
		}
		g = &ChannelGrant{ByToken: true, Info: sg.Info, Data: sg.Data, Override: sg.Override, ExpireAt: sg.ExpireAt, History: true, Presence: true}
		return g, nil
	case c.Grants != nil:
		// The callout's grants decide for connections it authorized.
		if !c.Grants.Allows(OpSubscribe, req.Channel) {
			return nil, deny("the callout's grants do not include subscribe on this channel")
		}
		g = &ChannelGrant{}
	default:
		if limited, allowed := UserLimited(req.Channel, c.User); limited && ns.AllowUserLimitedChannels {
			if !allowed {
				return nil, deny(fmt.Sprintf("user-limited channel does not list user %q", c.User))
			}
			g = &ChannelGrant{}
		} else if a := e.authority(e.a.Subscribe, ns); a != nil {
			// The subscribe proxy decides, after tokens and user-limited
			// channels and before the allow_* options.
			pg, reason := a.AuthorizeChannel(ctx, req)
			if reason != nil {
				return nil, reason
			}
			g = pg
			g.ByProxy = true
		} else if !e.allowed(c, ns.AllowSubscribeForClient, false, ns.AllowSubscribeForAnonymous) {
			detail := fmt.Sprintf("%s: allow_subscribe_for_client is false and no token grants it", req.NamespaceLabel)
			if c.User == "" && ns.AllowSubscribeForClient && !ns.AllowSubscribeForAnonymous {
				detail = fmt.Sprintf("%s: allow_subscribe_for_anonymous is false and the connection is anonymous", req.NamespaceLabel)
			}
			return nil, deny(detail)
		} else {
			g = &ChannelGrant{}
		}
	}
	// The subscribing client counts as a subscriber for these grants.
	g.History = ns.AllowRecovery || e.allowed(c, ns.AllowHistoryForClient || ns.AllowHistoryForSubscriber, false, ns.AllowHistoryForAnonymous)
	g.Presence = e.allowed(c, ns.AllowPresenceForClient || ns.AllowPresenceForSubscriber, false, ns.AllowPresenceForAnonymous)
	if c.Grants != nil {
		g.History = g.History || c.Grants.Allows(OpHistory, req.Channel)
		g.Presence = g.Presence || c.Grants.Allows(OpPresence, req.Channel)
	}
	return g, nil
}

func (e *Engine) authority(find func(*config.NamespaceOptions) ChannelAuthority, ns *config.NamespaceOptions) ChannelAuthority {
	if find == nil {
		return nil
	}
	return find(ns)
}

// allowed applies an allow_*_for_client / _for_subscriber / _for_anonymous
// triple (every operation is allowed in development mode).
func (e *Engine) allowed(c *Conn, forClient, forSubscriber, forAnonymous bool) bool {
	if e.dev {
		return true
	}
	if c.User == "" && !forAnonymous {
		return false
	}
	return forClient || forSubscriber
}

func deny(detail string) *Reason {
	return &Reason{Code: ChannelNotPermitted, Detail: detail,
		Hint: "set the namespace's allow_* option, or use a subscription token"}
}
