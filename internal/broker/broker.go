// Package broker owns what crosses node boundaries: delivery of publications and
// join/leave events to the node's hub, channel history streams (offset + epoch)
// and presence. Memory (single node) is the default; Redis and NATS come later.
package broker

import (
	"encoding/json"
	"time"
)

// ClientInfo describes a client in presence, join/leave and publications.
type ClientInfo struct {
	User     string          `json:"user,omitempty"`
	Client   string          `json:"client,omitempty"`
	ConnInfo json.RawMessage `json:"conn_info,omitempty"`
	ChanInfo json.RawMessage `json:"chan_info,omitempty"`
}

// Publication is one message in a channel.
type Publication struct {
	Offset uint64            // 0 when the channel keeps no history
	Data   json.RawMessage   // compact JSON, no raw newlines
	Info   *ClientInfo       // set for client-originated publications
	Tags   map[string]string // optional
	Time   time.Time         // when it was accepted
}

// StreamPosition is a place in a channel stream.
type StreamPosition struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// PublishOptions say how a channel keeps history.
type PublishOptions struct {
	HistorySize    int
	HistoryTTL     time.Duration
	HistoryMetaTTL time.Duration
}

// HistoryFilter selects publications from a stream.
type HistoryFilter struct {
	// Since, when set, selects publications after this position (or before it,
	// with Reverse).
	Since *StreamPosition
	// Limit: 0 = only the position, -1 = all, N = at most N.
	Limit   int
	Reverse bool
	// MetaTTL is how long the stream position lives without publications.
	MetaTTL time.Duration
	// TTL drops publications older than this before reading; 0 keeps all.
	TTL time.Duration
}

// PresenceStats counts the clients and distinct users in a channel.
type PresenceStats struct {
	NumClients int `json:"num_clients"`
	NumUsers   int `json:"num_users"`
}

// Handler receives what the broker delivers to this node.
type Handler interface {
	HandlePublication(channel string, pub *Publication, sp StreamPosition)
	HandleJoin(channel string, info *ClientInfo)
	HandleLeave(channel string, info *ClientInfo)
}

// Broker moves publications between nodes and keeps history streams.
type Broker interface {
	// Run starts delivering to h.
	Run(h Handler) error
	// Publish appends to history (when opts enable it) and delivers to every node.
	Publish(channel string, pub *Publication, opts PublishOptions) (StreamPosition, error)
	PublishJoin(channel string, info *ClientInfo) error
	PublishLeave(channel string, info *ClientInfo) error
	// History reads a stream. It returns the publications and the stream's top position.
	History(channel string, f HistoryFilter) ([]*Publication, StreamPosition, error)
	RemoveHistory(channel string) error
	// Subscribe and Unsubscribe tell the broker that this node has (no more)
	// subscribers for a channel.
	Subscribe(channel string) error
	Unsubscribe(channel string) error
	Close() error
}

// PresenceManager keeps who is in which channel.
type PresenceManager interface {
	AddPresence(channel, clientID string, info *ClientInfo) error
	RemovePresence(channel, clientID string) error
	Presence(channel string) (map[string]*ClientInfo, error)
	PresenceStats(channel string) (PresenceStats, error)
}
