package centrifuge

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
)

// Command is one client command. Exactly one request field is set, except for
// the pong, which is the empty command {}.
type Command struct {
	ID            uint32              `json:"id"`
	Connect       *ConnectRequest     `json:"connect"`
	Subscribe     *SubscribeRequest   `json:"subscribe"`
	Unsubscribe   *UnsubscribeRequest `json:"unsubscribe"`
	Publish       *PublishRequest     `json:"publish"`
	Presence      *ChannelRequest     `json:"presence"`
	PresenceStats *ChannelRequest     `json:"presence_stats"`
	History       *HistoryRequest     `json:"history"`
	RPC           *RPCRequest         `json:"rpc"`
	Send          *SendRequest        `json:"send"`
	Refresh       *RefreshRequest     `json:"refresh"`
	SubRefresh    *SubRefreshRequest  `json:"sub_refresh"`
	Ping          *json.RawMessage    `json:"ping"`
}

// ConnectRequest is the connect command.
type ConnectRequest struct {
	Token   string                       `json:"token"`
	Data    json.RawMessage              `json:"data"`
	Subs    map[string]*SubscribeRequest `json:"subs"`
	Name    string                       `json:"name"`
	Version string                       `json:"version"`
	// Headers are "emulated headers" the client sends in band (browsers
	// cannot set them on a WebSocket); untrusted, forwarded to proxies only
	// when allowlisted.
	Headers map[string]string `json:"headers"`
}

// SubscribeRequest is the subscribe command (and a connect.subs entry).
type SubscribeRequest struct {
	Channel     string          `json:"channel"`
	Token       string          `json:"token"`
	Data        json.RawMessage `json:"data"`
	Recover     bool            `json:"recover"`
	Offset      uint64          `json:"offset"`
	Epoch       string          `json:"epoch"`
	Positioned  bool            `json:"positioned"`
	Recoverable bool            `json:"recoverable"`
	JoinLeave   bool            `json:"join_leave"`
	Delta       string          `json:"delta"`
	Flag        int64           `json:"flag"`
}

// flagRejectUnrecovered is subscribe flag bit 2: answer 112 instead of recovered:false.
const flagRejectUnrecovered = 2

// UnsubscribeRequest is the unsubscribe command.
type UnsubscribeRequest struct {
	Channel string `json:"channel"`
}

// PublishRequest is the publish command.
type PublishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	// raw: Data is any bytes, as a Protobuf client published them.
	raw bool
}

// ChannelRequest is the presence and presence_stats command.
type ChannelRequest struct {
	Channel string `json:"channel"`
}

// HistoryRequest is the history command.
type HistoryRequest struct {
	Channel string                 `json:"channel"`
	Limit   int64                  `json:"limit"`
	Since   *broker.StreamPosition `json:"since"`
	Reverse bool                   `json:"reverse"`
}

// RPCRequest is the rpc command.
type RPCRequest struct {
	Method string          `json:"method"`
	Data   json.RawMessage `json:"data"`
}

// SendRequest is the send command.
type SendRequest struct {
	Data json.RawMessage `json:"data"`
}

// RefreshRequest is the refresh command.
type RefreshRequest struct {
	Token string `json:"token"`
}

// SubRefreshRequest is the sub_refresh command.
type SubRefreshRequest struct {
	Channel string `json:"channel"`
	Token   string `json:"token"`
}

// Reply is one server message: a command reply (with id), a push, or the
// empty ping {}.
type Reply struct {
	ID            uint32                `json:"id,omitempty"`
	Error         *Error                `json:"error,omitempty"`
	Connect       *ConnectResult        `json:"connect,omitempty"`
	Subscribe     *SubscribeResult      `json:"subscribe,omitempty"`
	Unsubscribe   *struct{}             `json:"unsubscribe,omitempty"`
	Publish       *struct{}             `json:"publish,omitempty"`
	Presence      *PresenceResult       `json:"presence,omitempty"`
	PresenceStats *broker.PresenceStats `json:"presence_stats,omitempty"`
	History       *HistoryResult        `json:"history,omitempty"`
	RPC           *RPCResult            `json:"rpc,omitempty"`
	Refresh       *RefreshResult        `json:"refresh,omitempty"`
	SubRefresh    *RefreshResult        `json:"sub_refresh,omitempty"`
	Push          *Push                 `json:"push,omitempty"`
}

// ConnectResult is the reply to connect.
type ConnectResult struct {
	Client  string                      `json:"client"`
	Version string                      `json:"version,omitempty"`
	Expires bool                        `json:"expires,omitempty"`
	TTL     uint32                      `json:"ttl,omitempty"`
	Data    json.RawMessage             `json:"data,omitempty"`
	Subs    map[string]*SubscribeResult `json:"subs,omitempty"`
	Ping    uint32                      `json:"ping,omitempty"`
	Pong    bool                        `json:"pong,omitempty"`
	// Session and Node identify an emulation session (/emulation); uni
	// transports get Session only.
	Session string `json:"session,omitempty"`
	Node    string `json:"node,omitempty"`
}

// SubscribeResult is the reply to subscribe (and a connect.subs entry).
type SubscribeResult struct {
	Expires       bool            `json:"expires,omitempty"`
	TTL           uint32          `json:"ttl,omitempty"`
	Recoverable   bool            `json:"recoverable,omitempty"`
	Epoch         string          `json:"epoch,omitempty"`
	Publications  []*Publication  `json:"publications,omitempty"`
	Recovered     bool            `json:"recovered,omitempty"`
	Offset        uint64          `json:"offset,omitempty"`
	Positioned    bool            `json:"positioned,omitempty"`
	Data          json.RawMessage `json:"data,omitempty"`
	WasRecovering bool            `json:"was_recovering,omitempty"`
	Delta         bool            `json:"delta,omitempty"`
}

// PresenceResult is the reply to presence.
type PresenceResult struct {
	Presence map[string]*ClientInfo `json:"presence"`
}

// HistoryResult is the reply to history.
type HistoryResult struct {
	Publications []*Publication `json:"publications,omitempty"`
	Epoch        string         `json:"epoch,omitempty"`
	Offset       uint64         `json:"offset,omitempty"`
}

// RPCResult is the reply to rpc.
type RPCResult struct {
	Data json.RawMessage `json:"data,omitempty"`
}

// RefreshResult is the reply to refresh and sub_refresh.
type RefreshResult struct {
	Expires bool   `json:"expires,omitempty"`
	TTL     uint32 `json:"ttl,omitempty"`
}

// Push is an asynchronous message.
type Push struct {
	Channel     string           `json:"channel,omitempty"`
	Pub         *Publication     `json:"pub,omitempty"`
	Join        *InfoPush        `json:"join,omitempty"`
	Leave       *InfoPush        `json:"leave,omitempty"`
	Unsubscribe *UnsubscribePush `json:"unsubscribe,omitempty"`
	Subscribe   *SubscribeResult `json:"subscribe,omitempty"`
	Message     *MessagePush     `json:"message,omitempty"`
	// Connect, Disconnect and Refresh are pushes of the streaming and
	// unidirectional transports.
	Connect    *ConnectResult  `json:"connect,omitempty"`
	Disconnect *DisconnectPush `json:"disconnect,omitempty"`
	Refresh    *RefreshResult  `json:"refresh,omitempty"`
}

// DisconnectPush tells a client on a stream why it ends.
type DisconnectPush struct {
	Code   uint32 `json:"code"`
	Reason string `json:"reason,omitempty"`
}

// InfoPush is a join or leave push.
type InfoPush struct {
	Info *ClientInfo `json:"info"`
}

// UnsubscribePush tells the client it was unsubscribed.
type UnsubscribePush struct {
	Code   uint32 `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// MessagePush is an asynchronous message to one client.
type MessagePush struct {
	Data json.RawMessage `json:"data,omitempty"`
}

// ClientInfo is a client in presence, join/leave and publications.
type ClientInfo = broker.ClientInfo

// Publication is a publication on the wire.
type Publication struct {
	Offset uint64            `json:"offset,omitempty"`
	Data   json.RawMessage   `json:"data,omitempty"`
	Info   *ClientInfo       `json:"info,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
	Delta  bool              `json:"delta,omitempty"`
	// raw is the data as published: what Protobuf clients receive.
	raw []byte
}

// wirePub is a publication for a reply. escaped: the data goes as a JSON
// string of its JSON text (JSON subscriptions with delta compression).
func wirePub(p *broker.Publication, escaped bool) *Publication {
	data := hub.JSONData(p)
	if escaped {
		data, _ = json.Marshal(string(data))
	}
	return &Publication{Offset: p.Offset, Data: data, Info: p.Info, Tags: p.Tags, raw: p.Data}
}

var errEmptyFrame = errors.New("empty frame")

// decodeFrame splits a frame into commands. One trailing newline is allowed;
// an empty frame or any undecodable line is an error.
func decodeFrame(frame []byte) ([]*Command, error) {
	frame = bytes.TrimSuffix(frame, []byte("\n"))
	if len(bytes.TrimSpace(frame)) == 0 {
		return nil, errEmptyFrame
	}
	var cmds []*Command
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		cmd, ok := fastDecode(line)
		if !ok {
			cmd = &Command{}
			if err := json.Unmarshal(line, cmd); err != nil {
				return nil, err
			}
		}
		cmds = append(cmds, cmd)
	}
	return cmds, nil
}

// encodeReply encodes a reply. Raw JSON fields are compacted by the encoder,
// which also removes any raw newline that could break the line framing.
func encodeReply(r *Reply) []byte {
	if b, ok := fastEncodeReply(r); ok {
		return b
	}
	b, err := json.Marshal(r)
	if err != nil {
		// Only invalid raw JSON can fail here, and raw JSON is validated when it
		// enters Herald; answer with an internal error rather than a bad frame.
		b, _ = json.Marshal(&Reply{ID: r.ID, Error: ErrInternal})
	}
	return b
}

// pingFrame is the server ping: the empty reply.
var pingFrame = []byte("{}")

// encodeDelivery encodes a hub delivery as a push. It is called once per
// delivery for all subscribers (hub.Delivery.Encoded), so it is kept
// allocation-lean: publications are written by hand around their raw data.
func encodeDelivery(d *hub.Delivery) []byte {
	switch d.Kind {
	case hub.KindPublication:
		return encodePubPush(d.Channel, d.Pub, hub.JSONData(d.Pub), false)
	case hub.KindJoin:
		return encodeReply(&Reply{Push: &Push{Channel: d.Channel, Join: &InfoPush{Info: d.Info}}})
	case hub.KindLeave:
		return encodeReply(&Reply{Push: &Push{Channel: d.Channel, Leave: &InfoPush{Info: d.Info}}})
	}
	return nil
}

// encodePubPush writes a publication push around data, its data on this
// wire; delta marks data as a delta against the previous publication.
func encodePubPush(channel string, p *broker.Publication, data json.RawMessage, delta bool) []byte {
	ch, _ := json.Marshal(channel)
	b := make([]byte, 0, 52+len(ch)+len(data))
	b = append(b, `{"push":{"channel":`...)
	b = append(b, ch...)
	b = append(b, `,"pub":{`...)
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if len(data) > 0 {
		field("data")
		b = append(b, data...)
	}
	if p.Info != nil {
		info, _ := json.Marshal(p.Info)
		field("info")
		b = append(b, info...)
	}
	if p.Offset > 0 {
		field("offset")
		b = strconv.AppendUint(b, p.Offset, 10)
	}
	if len(p.Tags) > 0 {
		tags, _ := json.Marshal(p.Tags)
		field("tags")
		b = append(b, tags...)
	}
	if delta {
		field("delta")
		b = append(b, "true"...)
	}
	b = append(b, "}}}"...)
	return b
}
