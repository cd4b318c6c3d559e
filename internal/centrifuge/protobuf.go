package centrifuge

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/centrifugal/protocol"

	"github.com/heraldhub/herald/internal/broker"
)

// The Protobuf encoding of the protocol: the published Go types of the
// protocol's schema (github.com/centrifugal/protocol) on the wire, and
// Herald's own command and reply types inside the session, so that one
// session serves both encodings. Every message is written as its length (an
// unsigned varint) and its bytes; a frame holds one or more of them.

// decodeProtoFrame splits a binary frame into its varint-delimited
// commands. limit bounds the length one record may declare, checked before
// anything is decoded. An empty record is the empty command (a pong).
func decodeProtoFrame(frame []byte, limit int) ([]*Command, error) {
	if len(frame) == 0 {
		return nil, errEmptyFrame
	}
	var cmds []*Command
	for at := 0; len(frame) > 0; {
		n, k := binary.Uvarint(frame)
		switch {
		case k == 0:
			return nil, fmt.Errorf("truncated length prefix at byte %d", at)
		case k < 0:
			return nil, fmt.Errorf("length prefix at byte %d overflows 64 bits", at)
		}
		frame, at = frame[k:], at+k
		if limit > 0 && n > uint64(limit) {
			return nil, fmt.Errorf("command at byte %d declares %d bytes, over the limit of %d", at, n, limit)
		}
		if n > uint64(len(frame)) {
			return nil, fmt.Errorf("command at byte %d declares %d bytes, but the frame has %d left", at, n, len(frame))
		}
		var pc protocol.Command
		if err := pc.UnmarshalCF(frame[:n]); err != nil {
			return nil, fmt.Errorf("undecodable command at byte %d: %v", at, err)
		}
		cmd, err := fromProtoCommand(&pc)
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, cmd)
		frame, at = frame[n:], at+int(n)
	}
	return cmds, nil
}

// jsonField is a bytes field that Herald hands to the team's backend (the
// connect, subscribe and RPC proxies) as JSON: it must be JSON.
func jsonField(name string, b []byte) (json.RawMessage, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s is not JSON: Herald passes it to the backend as JSON", name)
	}
	return json.RawMessage(b), nil
}

func fromProtoSubscribe(r *protocol.SubscribeRequest) (*SubscribeRequest, error) {
	data, err := jsonField("subscribe data", r.Data)
	if err != nil {
		return nil, err
	}
	return &SubscribeRequest{Channel: r.Channel, Token: r.Token, Data: data, Recover: r.Recover, Offset: r.Offset,
		Epoch: r.Epoch, Positioned: r.Positioned, Recoverable: r.Recoverable, JoinLeave: r.JoinLeave, Delta: r.Delta, Flag: r.Flag}, nil
}

func fromProtoConnect(r *protocol.ConnectRequest) (*ConnectRequest, error) {
	data, err := jsonField("connect data", r.Data)
	if err != nil {
		return nil, err
	}
	c := &ConnectRequest{Token: r.Token, Data: data, Name: r.Name, Version: r.Version, Headers: r.Headers}
	for ch, sr := range r.Subs {
		if sr == nil {
			continue
		}
		if c.Subs == nil {
			c.Subs = map[string]*SubscribeRequest{}
		}
		// Only the recovery position of a connect subscription is used.
		c.Subs[ch] = &SubscribeRequest{Recover: sr.Recover, Offset: sr.Offset, Epoch: sr.Epoch}
	}
	return c, nil
}

// fromProtoCommand converts a decoded command to Herald's command type. A
// publication's data may be any bytes; the other data fields go to the
// backend as JSON and must be JSON.
func fromProtoCommand(c *protocol.Command) (*Command, error) {
	cmd := &Command{ID: c.Id}
	var err error
	switch {
	case c.Connect != nil:
		cmd.Connect, err = fromProtoConnect(c.Connect)
	case c.Subscribe != nil:
		cmd.Subscribe, err = fromProtoSubscribe(c.Subscribe)
	case c.Unsubscribe != nil:
		cmd.Unsubscribe = &UnsubscribeRequest{Channel: c.Unsubscribe.Channel}
	case c.Publish != nil:
		cmd.Publish = &PublishRequest{Channel: c.Publish.Channel, Data: json.RawMessage(c.Publish.Data), raw: true}
	case c.Presence != nil:
		cmd.Presence = &ChannelRequest{Channel: c.Presence.Channel}
	case c.PresenceStats != nil:
		cmd.PresenceStats = &ChannelRequest{Channel: c.PresenceStats.Channel}
	case c.History != nil:
		h := c.History
		cmd.History = &HistoryRequest{Channel: h.Channel, Limit: int64(h.Limit), Reverse: h.Reverse}
		if h.Since != nil {
			cmd.History.Since = &broker.StreamPosition{Offset: h.Since.Offset, Epoch: h.Since.Epoch}
		}
	case c.Rpc != nil:
		var data json.RawMessage
		data, err = jsonField("rpc data", c.Rpc.Data)
		cmd.RPC = &RPCRequest{Method: c.Rpc.Method, Data: data}
	case c.Send != nil:
		cmd.Send = &SendRequest{Data: json.RawMessage(c.Send.Data)}
	case c.Refresh != nil:
		cmd.Refresh = &RefreshRequest{Token: c.Refresh.Token}
	case c.SubRefresh != nil:
		cmd.SubRefresh = &SubRefreshRequest{Channel: c.SubRefresh.Channel, Token: c.SubRefresh.Token}
	case c.Ping != nil:
		ping := json.RawMessage("{}")
		cmd.Ping = &ping
	}
	if err != nil {
		return nil, err
	}
	return cmd, nil
}

// sizedMessage is what the schema's generated types offer for encoding.
type sizedMessage interface {
	SizeCF() int
	MarshalToSizedBufferCF([]byte) (int, error)
}

// delimited encodes m as one record: its length, then its bytes.
func delimited(m sizedMessage) []byte {
	n := m.SizeCF()
	b := make([]byte, binary.MaxVarintLen64+n)
	k := binary.PutUvarint(b, uint64(n))
	if _, err := m.MarshalToSizedBufferCF(b[k : k+n]); err != nil {
		// Only a message that changed while being encoded fails; Herald's
		// messages are built for one encoding and not shared meanwhile.
		return []byte{0}
	}
	return b[:k+n]
}

// encodeProtoReply encodes a reply as one Protobuf record.
func encodeProtoReply(r *Reply) []byte { return delimited(toProtoReply(r)) }

// protoPing is the server ping: the empty reply, a zero-length record.
var protoPing = []byte{0}

func toProtoInfo(i *ClientInfo) *protocol.ClientInfo {
	if i == nil {
		return nil
	}
	return &protocol.ClientInfo{User: i.User, Client: i.Client, ConnInfo: protocol.Raw(i.ConnInfo), ChanInfo: protocol.Raw(i.ChanInfo)}
}

func toProtoPub(p *Publication) *protocol.Publication {
	data := p.raw
	if data == nil {
		data = p.Data
	}
	return &protocol.Publication{Data: data, Info: toProtoInfo(p.Info), Offset: p.Offset, Tags: p.Tags, Delta: p.Delta}
}

func toProtoPubs(ps []*Publication) []*protocol.Publication {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*protocol.Publication, len(ps))
	for i, p := range ps {
		out[i] = toProtoPub(p)
	}
	return out
}

func toProtoSubResult(s *SubscribeResult) *protocol.SubscribeResult {
	if s == nil {
		return nil
	}
	return &protocol.SubscribeResult{Expires: s.Expires, Ttl: s.TTL, Recoverable: s.Recoverable, Epoch: s.Epoch,
		Publications: toProtoPubs(s.Publications), Recovered: s.Recovered, Offset: s.Offset, Positioned: s.Positioned,
		Data: protocol.Raw(s.Data), WasRecovering: s.WasRecovering, Delta: s.Delta}
}

func toProtoConnect(c *ConnectResult) *protocol.ConnectResult {
	r := &protocol.ConnectResult{Client: c.Client, Version: c.Version, Expires: c.Expires, Ttl: c.TTL, Data: protocol.Raw(c.Data),
		Ping: c.Ping, Pong: c.Pong, Session: c.Session, Node: c.Node}
	if len(c.Subs) > 0 {
		r.Subs = make(map[string]*protocol.SubscribeResult, len(c.Subs))
		for ch, s := range c.Subs {
			r.Subs[ch] = toProtoSubResult(s)
		}
	}
	return r
}

func toProtoPush(p *Push) *protocol.Push {
	out := &protocol.Push{Channel: p.Channel}
	switch {
	case p.Pub != nil:
		out.Pub = toProtoPub(p.Pub)
	case p.Join != nil:
		out.Join = &protocol.Join{Info: toProtoInfo(p.Join.Info)}
	case p.Leave != nil:
		out.Leave = &protocol.Leave{Info: toProtoInfo(p.Leave.Info)}
	case p.Unsubscribe != nil:
		out.Unsubscribe = &protocol.Unsubscribe{Code: p.Unsubscribe.Code, Reason: strings.ToValidUTF8(p.Unsubscribe.Reason, "?")}
	case p.Subscribe != nil:
		s := p.Subscribe
		out.Subscribe = &protocol.Subscribe{Recoverable: s.Recoverable, Epoch: s.Epoch, Offset: s.Offset, Positioned: s.Positioned, Data: protocol.Raw(s.Data)}
	case p.Message != nil:
		out.Message = &protocol.Message{Data: protocol.Raw(p.Message.Data)}
	case p.Connect != nil:
		c := p.Connect
		out.Connect = &protocol.Connect{Client: c.Client, Version: c.Version, Data: protocol.Raw(c.Data), Expires: c.Expires, Ttl: c.TTL,
			Ping: c.Ping, Pong: c.Pong, Session: c.Session, Node: c.Node, Subs: toProtoConnect(c).Subs}
	case p.Disconnect != nil:
		out.Disconnect = &protocol.Disconnect{Code: p.Disconnect.Code, Reason: strings.ToValidUTF8(p.Disconnect.Reason, "?")}
	case p.Refresh != nil:
		out.Refresh = &protocol.Refresh{Expires: p.Refresh.Expires, Ttl: p.Refresh.TTL}
	}
	return out
}

// toProtoReply converts a reply to the schema's type.
func toProtoReply(r *Reply) *protocol.Reply {
	out := &protocol.Reply{Id: r.ID}
	switch {
	case r.Error != nil:
		out.Error = &protocol.Error{Code: r.Error.Code, Message: strings.ToValidUTF8(r.Error.Message, "?"), Temporary: r.Error.Temporary}
	case r.Connect != nil:
		out.Connect = toProtoConnect(r.Connect)
	case r.Subscribe != nil:
		out.Subscribe = toProtoSubResult(r.Subscribe)
	case r.Unsubscribe != nil:
		out.Unsubscribe = &protocol.UnsubscribeResult{}
	case r.Publish != nil:
		out.Publish = &protocol.PublishResult{}
	case r.Presence != nil:
		out.Presence = &protocol.PresenceResult{Presence: map[string]*protocol.ClientInfo{}}
		for id, info := range r.Presence.Presence {
			out.Presence.Presence[id] = toProtoInfo(info)
		}
	case r.PresenceStats != nil:
		out.PresenceStats = &protocol.PresenceStatsResult{NumClients: uint32(r.PresenceStats.NumClients), NumUsers: uint32(r.PresenceStats.NumUsers)}
	case r.History != nil:
		out.History = &protocol.HistoryResult{Publications: toProtoPubs(r.History.Publications), Epoch: r.History.Epoch, Offset: r.History.Offset}
	case r.RPC != nil:
		out.Rpc = &protocol.RPCResult{Data: protocol.Raw(r.RPC.Data)}
	case r.Refresh != nil:
		out.Refresh = &protocol.RefreshResult{Expires: r.Refresh.Expires, Ttl: r.Refresh.TTL}
	case r.SubRefresh != nil:
		out.SubRefresh = &protocol.SubRefreshResult{Expires: r.SubRefresh.Expires, Ttl: r.SubRefresh.TTL}
	case r.Push != nil:
		out.Push = toProtoPush(r.Push)
	}
	return out
}

// errNotJSONEmulation is the answer to a JSON /emulation data field that is
// not a string.
var errNotJSONEmulation = errors.New(`"data" must be a JSON string holding the command frame`)
