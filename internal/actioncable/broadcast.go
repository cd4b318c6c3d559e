package actioncable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
)

// AnyCable's HTTP broadcast endpoint: what a Rails app's broadcasts
// (ActionCable.server.broadcast, Turbo's broadcast_*, with anycable-rails'
// http broadcast adapter) post to:
//
//	POST /_broadcast   Authorization: Bearer <key>
//	{"stream":"chat_1","data":"{\"text\":\"hi\"}","meta":{"exclude_socket":"<sid>","transient":true}}
//	[ {...}, {...} ]                                                 a batch
//	{"command":"disconnect","payload":{"identifier":"<identifiers>","reconnect":false}}
//
// A stream is the hub channel of the same name, so the publication reaches
// the channel's subscribers of every door. data is a string: JSON text is
// delivered as JSON, anything else as a string. A batch is checked whole
// before anything is published.

const (
	maxBroadcastBody  = 4 << 20
	maxBroadcastBatch = 1000
)

// broadcastItem is one entry of a broadcast body.
type broadcastItem struct {
	Stream  string          `json:"stream"`
	Data    json.RawMessage `json:"data"`
	Command string          `json:"command"`
	Payload *struct {
		Identifier string `json:"identifier"`
		Reconnect  bool   `json:"reconnect"`
	} `json:"payload"`
	Meta struct {
		ExcludeSocket string `json:"exclude_socket"`
		Transient     bool   `json:"transient"`
		BroadcastType string `json:"broadcast_type"`
	} `json:"meta"`
}

// Broadcaster serves the broadcast endpoint.
type Broadcaster struct {
	h        *Handler
	key      *auth.SharedKey
	keyFrom  string
	insecure bool
}

// Broadcaster returns the broadcast endpoint's handler.
func (h *Handler) Broadcaster() *Broadcaster {
	ac := h.ac
	b := &Broadcaster{h: h}
	switch {
	case ac.Broadcast.Key != "":
		b.key, b.keyFrom = auth.NewSharedKey(ac.Broadcast.Key), "actioncable.broadcast.key"
	case ac.Secret != "":
		b.key, b.keyFrom = auth.NewSharedKey(DerivedSecret(ac.Secret, "broadcast-cable")), "the broadcast key AnyCable derives from actioncable.secret"
	default:
		b.key, b.keyFrom, b.insecure = auth.NewSharedKey(h.cfg.HTTPAPI.Key), "http_api.key", h.cfg.HTTPAPI.Insecure
	}
	return b
}

func (b *Broadcaster) refuse(w http.ResponseWriter, r *http.Request, status int, reason *auth.Reason) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
		b.h.log.LogAttrs(r.Context(), slog.LevelInfo, "broadcast refused", append(reason.LogAttrs(), slog.String("remote_addr", r.RemoteAddr))...)
		b.h.engine.Verifier().Refusals.Add(reason, "broadcast", r.RemoteAddr, "")
	}
	writeRefusal(w, status, string(reason.Code), reason.Detail, reason.Hint)
}

// authorize checks the key: Authorization: Bearer <key> (what anycable-rails
// sends) or X-API-Key.
func (b *Broadcaster) authorize(r *http.Request) *auth.Reason {
	if b.insecure {
		return nil
	}
	key := r.Header.Get("X-API-Key")
	if scheme, rest, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && key == "" && strings.EqualFold(scheme, "bearer") {
		key = strings.TrimSpace(rest)
	}
	switch {
	case !b.key.Configured():
		return &auth.Reason{Code: auth.APIKeyNotConfigured, Detail: "the broadcast endpoint has no key, so it refuses every request",
			Hint: "set actioncable.broadcast.key (the app's AnyCable broadcast_key), actioncable.secret, or http_api.key"}
	case key == "":
		return &auth.Reason{Code: auth.APIKeyMissing, Detail: "no key in the broadcast request",
			Hint: "send Authorization: Bearer <key> (anycable-rails does when broadcast_key or secret is set) or X-API-Key"}
	case !b.key.Matches(key):
		return &auth.Reason{Code: auth.APIKeyWrong, Detail: "the broadcast key does not match " + b.keyFrom,
			Hint: "the app sends its AnyCable broadcast_key, else hex HMAC-SHA256(secret, \"broadcast-cable\"): set actioncable.broadcast.key or actioncable.secret to match"}
	}
	return nil
}

func (b *Broadcaster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeRefusal(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed", "POST the broadcast as JSON")
		return
	}
	if reason := b.authorize(r); reason != nil {
		b.refuse(w, r, http.StatusUnauthorized, reason)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBroadcastBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeRefusal(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body is larger than %d bytes", maxBroadcastBody), "send smaller batches")
			return
		}
		writeRefusal(w, http.StatusUnprocessableEntity, "bad_request", "could not read the body", "")
		return
	}
	items, detail := parseBroadcast(body)
	if detail != "" {
		writeRefusal(w, http.StatusUnprocessableEntity, "bad_request", detail,
			`send {"stream":"<name>","data":"<JSON text or string>"} or an array of them`)
		return
	}
	for i, it := range items {
		if herr := b.publish(r.Context(), it); herr != nil {
			status := http.StatusUnprocessableEntity
			if herr.Temporary() {
				status = http.StatusServiceUnavailable
				w.Header().Set("Retry-After", "1")
			}
			writeRefusal(w, status, "not_published", fmt.Sprintf("entry %d (%d published before it): %s", i, i, herr.Error()), "")
			return
		}
	}
	w.WriteHeader(http.StatusCreated)
}

// parseBroadcast reads a body: one entry or an array of them, every entry
// checked.
func parseBroadcast(body []byte) ([]*broadcastItem, string) {
	body = bytes.TrimSpace(body)
	var items []*broadcastItem
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, "body is not an array of broadcasts: " + auth.Truncate(err.Error(), 100)
		}
		if len(items) > maxBroadcastBatch {
			return nil, fmt.Sprintf("a batch holds %d broadcasts, at most %d", len(items), maxBroadcastBatch)
		}
	} else {
		var it broadcastItem
		if err := json.Unmarshal(body, &it); err != nil {
			return nil, "body is not a broadcast object: " + auth.Truncate(err.Error(), 100)
		}
		items = append(items, &it)
	}
	for i, it := range items {
		where := ""
		if len(items) > 1 {
			where = fmt.Sprintf("entry %d: ", i)
		}
		switch {
		case it == nil:
			return nil, where + "null"
		case it.Command == "disconnect":
			if it.Payload == nil || it.Payload.Identifier == "" {
				return nil, where + `a disconnect needs payload.identifier (the connection identifiers)`
			}
		case it.Command != "":
			return nil, where + fmt.Sprintf("unknown command %q (disconnect is the only one)", auth.Truncate(it.Command, 32))
		case it.Stream == "":
			return nil, where + "stream is required"
		case isNull(it.Data):
			return nil, where + "data is required"
		}
	}
	return items, ""
}

// publish applies one entry.
func (b *Broadcaster) publish(ctx context.Context, it *broadcastItem) *hub.Error {
	h := b.h
	if it.Command == "disconnect" {
		if err := h.hub.SendControl("", controlKind, remoteDisconnect{Identifiers: it.Payload.Identifier, Reconnect: it.Payload.Reconnect}); err != nil {
			var herr *hub.Error
			if errors.As(err, &herr) {
				return herr
			}
			return &hub.Error{Kind: hub.ErrInternal, Msg: err.Error()}
		}
		return nil
	}
	data, enc := it.Data, broker.EncodingJSON
	var s string
	if data[0] == '"' && json.Unmarshal(data, &s) == nil {
		if json.Valid([]byte(s)) {
			data = []byte(s)
		} else {
			data, enc = []byte(s), broker.EncodingText
		}
	}
	if enc == broker.EncodingJSON {
		norm, err := hub.NormalizeData(data)
		if err != nil {
			return &hub.Error{Kind: hub.ErrBadRequest, Msg: err.Error()}
		}
		data = norm
	}
	var tags map[string]string
	if it.Meta.ExcludeSocket != "" || it.Meta.BroadcastType == "presence" {
		tags = map[string]string{}
		if it.Meta.ExcludeSocket != "" {
			tags[tagExclude] = it.Meta.ExcludeSocket
		}
		if it.Meta.BroadcastType == "presence" {
			tags[tagType] = "presence"
		}
	}
	_, herr := h.hub.Publish(ctx, &hub.PublishRequest{Channel: it.Stream, Data: data, Encoding: enc, SkipHistory: it.Meta.Transient,
		Tags: tags, OptionalNamespace: true})
	return herr
}
