package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
)

func (a *Handler) resolve(channel string) (*hub.Namespace, *Error) {
	if channel == "" {
		return nil, errBadRequest("channel is required")
	}
	ns, err := a.hub.Namespaces().Resolve(channel)
	if err != nil {
		var ce *hub.ChannelError
		if errors.As(err, &ce) && ce.Kind == hub.UnknownNamespace {
			return nil, errUnknownChannel(err.Error())
		}
		return nil, errBadRequest(err.Error())
	}
	return ns, nil
}

// PublishRequest is the publish method's params.
type PublishRequest struct {
	Channel     string            `json:"channel"`
	Data        json.RawMessage   `json:"data"`
	B64Data     string            `json:"b64data"`
	SkipHistory bool              `json:"skip_history"`
	Tags        map[string]string `json:"tags"`
}

// PublishResult is the publish method's result.
type PublishResult struct {
	Offset uint64 `json:"offset,omitempty"`
	Epoch  string `json:"epoch,omitempty"`
}

func (a *Handler) publishOne(ctx context.Context, channel string, req *PublishRequest) (*PublishResult, *Error) {
	if _, e := a.resolve(channel); e != nil {
		return nil, e
	}
	var data []byte
	enc := broker.EncodingJSON
	switch {
	case req.B64Data != "" && len(req.Data) == 0:
		// Binary data: Protobuf clients receive its bytes, JSON clients a
		// JSON string of its base64.
		var err error
		if data, err = base64.StdEncoding.DecodeString(req.B64Data); err != nil {
			return nil, errBadRequest("b64data is not standard base64: " + err.Error())
		}
		enc = broker.EncodingBinary
	case len(req.Data) == 0 || string(req.Data) == "null":
		return nil, errBadRequest("data is required")
	default:
		var err error
		if data, err = hub.NormalizeData(req.Data); err != nil {
			return nil, errBadRequest(err.Error())
		}
	}
	sp, herr := a.hub.Publish(ctx, &hub.PublishRequest{Channel: channel, Data: data, Encoding: enc, Tags: req.Tags, SkipHistory: req.SkipHistory})
	if herr != nil {
		return nil, hubError(herr)
	}
	return &PublishResult{Offset: sp.Offset, Epoch: sp.Epoch}, nil
}

func (a *Handler) publish(ctx context.Context, body json.RawMessage) (any, *Error) {
	var req PublishRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	return a.publishOne(ctx, req.Channel, &req)
}

func (a *Handler) broadcast(ctx context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		Channels []string `json:"channels"`
		PublishRequest
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if len(req.Channels) == 0 {
		return nil, errBadRequest("channels is required")
	}
	if max := a.cfg.HTTPAPI.MaxBroadcastChannels; len(req.Channels) > max {
		return nil, errBadRequest(fmt.Sprintf("broadcast names %d channels; http_api.max_broadcast_channels is %d (split it, or raise the limit)", len(req.Channels), max))
	}
	type response struct {
		Error  *Error         `json:"error,omitempty"`
		Result *PublishResult `json:"result,omitempty"`
	}
	out := make([]response, len(req.Channels))
	for i, ch := range req.Channels {
		res, e := a.publishOne(ctx, ch, &req.PublishRequest)
		out[i] = response{Error: e, Result: res}
	}
	return map[string]any{"responses": out}, nil
}

type channelReq struct {
	Channel string `json:"channel"`
}

func (a *Handler) presence(ctx context.Context, body json.RawMessage) (any, *Error) {
	var req channelReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if _, e := a.resolve(req.Channel); e != nil {
		return nil, e
	}
	p, herr := a.hub.Presence(ctx, &hub.ReadRequest{Channel: req.Channel})
	if herr != nil {
		return nil, hubError(herr)
	}
	return map[string]any{"presence": p}, nil
}

func (a *Handler) presenceStats(ctx context.Context, body json.RawMessage) (any, *Error) {
	var req channelReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if _, e := a.resolve(req.Channel); e != nil {
		return nil, e
	}
	st, herr := a.hub.PresenceStats(ctx, &hub.ReadRequest{Channel: req.Channel})
	if herr != nil {
		return nil, hubError(herr)
	}
	return st, nil
}

// wirePublication is a publication in API results.
type wirePublication struct {
	Data   json.RawMessage    `json:"data,omitempty"`
	Info   *broker.ClientInfo `json:"info,omitempty"`
	Offset uint64             `json:"offset,omitempty"`
	Tags   map[string]string  `json:"tags,omitempty"`
}

// apiHistoryLimit bounds history replies: the server API is trusted, but
// replies stay bounded.
const apiHistoryLimit = 10000

func (a *Handler) history(ctx context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		Channel string                 `json:"channel"`
		Limit   int64                  `json:"limit"`
		Since   *broker.StreamPosition `json:"since"`
		Reverse bool                   `json:"reverse"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if _, e := a.resolve(req.Channel); e != nil {
		return nil, e
	}
	pubs, top, herr := a.hub.History(ctx, &hub.ReadRequest{Channel: req.Channel, Limit: req.Limit, Since: req.Since,
		Reverse: req.Reverse, MaxLimit: apiHistoryLimit})
	if herr != nil {
		return nil, hubError(herr)
	}
	out := make([]wirePublication, 0, len(pubs))
	for _, p := range pubs {
		out = append(out, wirePublication{Data: hub.JSONData(p), Info: p.Info, Offset: p.Offset, Tags: p.Tags})
	}
	res := map[string]any{"offset": top.Offset, "epoch": top.Epoch}
	if len(out) > 0 {
		res["publications"] = out
	}
	return res, nil
}

func (a *Handler) historyRemove(_ context.Context, body json.RawMessage) (any, *Error) {
	var req channelReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if _, e := a.resolve(req.Channel); e != nil {
		return nil, e
	}
	if herr := a.hub.RemoveHistory(req.Channel); herr != nil {
		return nil, hubError(herr)
	}
	return struct{}{}, nil
}

func (a *Handler) channels(_ context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		Pattern string `json:"pattern"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	return map[string]any{"channels": a.hub.Channels(req.Pattern)}, nil
}

// info lists every live node with its counters.
func (a *Handler) info(context.Context, json.RawMessage) (any, *Error) {
	return map[string]any{"nodes": a.hub.Nodes()}, nil
}

// maxBatch bounds the commands of one batch.
const maxBatch = 1000

func (a *Handler) batch(ctx context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		Commands []map[string]json.RawMessage `json:"commands"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if len(req.Commands) > maxBatch {
		return nil, errBadRequest(fmt.Sprintf("batch has %d commands, limit %d", len(req.Commands), maxBatch))
	}
	replies := make([]map[string]any, 0, len(req.Commands))
	for i, cmd := range req.Commands {
		if len(cmd) != 1 {
			replies = append(replies, map[string]any{"error": errBadRequest(fmt.Sprintf("command %d must have exactly one method key, got %d", i, len(cmd)))})
			continue
		}
		for name, params := range cmd {
			m := a.methods[name]
			if m == nil {
				replies = append(replies, map[string]any{"error": a.unknownMethod(nil, name, fmt.Sprintf(" in command %d", i))})
				continue
			}
			res, e := m(ctx, params)
			if e != nil {
				replies = append(replies, map[string]any{"error": e})
			} else {
				replies = append(replies, map[string]any{name: res})
			}
		}
	}
	return map[string]any{"replies": replies}, nil
}

// unixTime reads a unix time in seconds (0: unset).
func unixTime(sec int64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}
