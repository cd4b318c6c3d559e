package broker

import (
	"encoding/json"
	"errors"
	"time"
)

// ErrUnavailable marks a failure to reach the broker's backing service (Redis
// down, NATS disconnected). Such an operation may succeed later: callers
// answer with a temporary error (HTTP 503, client error 100 with temporary
// set), never with a false success.
var ErrUnavailable = errors.New("broker unavailable")

// ClientInfo describes a client in presence, join/leave and publications.
type ClientInfo struct {
	User     string          `json:"user,omitempty"`
	Client   string          `json:"client,omitempty"`
	ConnInfo json.RawMessage `json:"conn_info,omitempty"`
	ChanInfo json.RawMessage `json:"chan_info,omitempty"`
}

// Encoding says what a publication's Data holds, so that each front door can
// put it on its wire faithfully.
type Encoding uint8

// Publication encodings.
const (
	// EncodingJSON: Data is compact JSON with no raw newlines (the API, JSON
	// clients, a Mercure update whose data is JSON).
	EncodingJSON Encoding = iota
	// EncodingText: Data is UTF-8 text that is not JSON (a Mercure update).
	EncodingText
	// EncodingBinary: Data is arbitrary bytes (Protobuf clients, b64data).
	EncodingBinary
)

// Publication is one message in a channel. Once published it is shared by
// every subscriber and the history, and must not be modified.
type Publication struct {
	Channel  string
	Offset   uint64 // place in the channel's stream; 0 when it keeps no history
	Seq      uint64 // place in the index; 0 when not indexed
	ID       string // unique id (a Mercure event id); the hub sets one when empty
	Data     []byte
	Encoding Encoding
	Info     *ClientInfo       // set for client-originated publications
	Tags     map[string]string // optional
	Time     time.Time         // when it was accepted

	// Mercure metadata: the update's topics (canonical first, then
	// alternates; nil for a publication made through another door), its
	// private flag, SSE event type and retry.
	Topics  []string
	Private bool
	Event   string
	Retry   uint64
}

// Size is the approximate memory a publication holds, for byte bounds.
func (p *Publication) Size() int {
	n := 160 + len(p.Channel) + len(p.ID) + len(p.Data) + len(p.Event)
	for _, t := range p.Topics {
		n += 16 + len(t)
	}
	for k, v := range p.Tags {
		n += 32 + len(k) + len(v)
	}
	if p.Info != nil {
		n += 64 + len(p.Info.User) + len(p.Info.Client) + len(p.Info.ConnInfo) + len(p.Info.ChanInfo)
	}
	return n
}

// StreamPosition is a place in a channel stream.
type StreamPosition struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// PublishOptions say how a channel keeps history.
type PublishOptions struct {
	HistorySize     int
	HistoryTTL      time.Duration
	HistoryMetaTTL  time.Duration
	HistoryMaxBytes int // 0: bounded by size and age only
	// Index, when set, also records the publication in the cluster-wide
	// index that Mercure subscribers replay from with Last-Event-ID, and
	// sets pub.Seq. The index refers to publications; it does not copy
	// their data when the channel's stream holds them. Indexed
	// publications reach every node's hub in Seq order.
	Index *IndexOptions
}

// IndexOptions bound the cluster-wide index of publications.
type IndexOptions struct {
	Size     int           // entries kept; 0 keeps none
	TTL      time.Duration // 0: no age limit
	MaxBytes int           // 0: no byte limit
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
	// HandlePublication delivers a publication of a channel this node has
	// subscribers for (or of any channel after SubscribeAll), in offset
	// order per channel. sp.Epoch is the stream's epoch when it keeps history.
	HandlePublication(pub *Publication, sp StreamPosition)
	HandleJoin(channel string, info *ClientInfo)
	HandleLeave(channel string, info *ClientInfo)
	// HandleControl delivers a control message published by some node's hub
	// (this one included) to every node, or to this node by its id.
	HandleControl(data []byte)
	// HandleResync says that publications may have been lost (the broker's
	// connection was down and is back): subscribers that rely on continuity
	// must be told by their protocol's rules.
	HandleResync()
}

// Broker moves publications, join/leave and control messages between nodes,
// and keeps history streams and the index.
type Broker interface {
	// Run starts delivering to h. NodeID names this node in control messages.
	Run(nodeID string, h Handler) error
	// Publish appends to history (when opts enable it) and delivers to every
	// node with subscribers of the channel. It sets pub.Offset.
	Publish(pub *Publication, opts PublishOptions) (StreamPosition, error)
	PublishJoin(channel string, info *ClientInfo) error
	PublishLeave(channel string, info *ClientInfo) error
	// PublishControl delivers data to the hub of node (every node when node
	// is ""), this one included.
	PublishControl(node string, data []byte) error
	// History reads a stream. It returns the publications and the stream's top position.
	History(channel string, f HistoryFilter) ([]*Publication, StreamPosition, error)
	RemoveHistory(channel string) error
	// IndexAfter returns the indexed publications after the earliest one
	// whose ID is id, oldest first, and whether id was found; with id ""
	// it returns every indexed publication. top is the Seq of the newest
	// entry when it read: a publication delivered live with Seq <= top was
	// already in the index when it was read.
	IndexAfter(id string, opts IndexOptions) (pubs []*Publication, top uint64, found bool, err error)
	// Subscribe and Unsubscribe tell the broker that this node has (no more)
	// subscribers for a channel.
	Subscribe(channel string) error
	Unsubscribe(channel string) error
	// SubscribeAll and UnsubscribeAll switch delivery of every channel's
	// publications to this node on and off (Mercure subscribers match topics
	// by templates). A publication is still delivered once.
	SubscribeAll() error
	UnsubscribeAll() error
	Close() error
}

// PresenceManager keeps who is in which channel.
type PresenceManager interface {
	// AddPresence adds or refreshes a client's presence; a shared store
	// expires entries that their node stops refreshing.
	AddPresence(channel, clientID string, info *ClientInfo) error
	RemovePresence(channel, clientID string) error
	Presence(channel string) (map[string]*ClientInfo, error)
	PresenceStats(channel string) (PresenceStats, error)
}

// SharedRecords is a store that every node of a cluster reads: small
// records, each kept until its expiry, that a node starting later must know
// (token revocations). Brokers with a shared store (Redis) provide it.
type SharedRecords interface {
	// PutRecord keeps data in set until the given time; putting the same
	// data again keeps one record with the later expiry.
	PutRecord(set string, data []byte, until time.Time) error
	// Records returns the set's records that have not expired.
	Records(set string) ([][]byte, error)
}

// HealthChecker is implemented by brokers with a backing service: Health
// returns nil while it is reachable.
type HealthChecker interface {
	Health() error
}
