package mercure

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
)

// subscriptionDoc is the JSON-LD document of one subscription (an event's
// data and an item of the subscriptions API).
type subscriptionDoc struct {
	Context     string          `json:"@context,omitempty"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Subscriber  string          `json:"subscriber"`
	Topic       string          `json:"topic"`
	Active      bool            `json:"active"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	LastEventID string          `json:"lastEventID,omitempty"`
}

// subscriptionTopic is the topic (and JSON-LD id) of one subscription:
// <path>/subscriptions/{topic}/{subscriber}, both parts form-escaped.
func (h *Handler) subscriptionTopic(selector, subscriber string) string {
	return h.cfg.Path + "/subscriptions/" + url.QueryEscape(selector) + "/" + url.QueryEscape(subscriber)
}

func (h *Handler) subscriptionDoc(st *stream, selector string, active bool) subscriptionDoc {
	var payload json.RawMessage
	if st.grant != nil {
		payload = st.grant.Payload
	}
	return subscriptionDoc{ID: h.subscriptionTopic(selector, st.id), Type: "Subscription", Subscriber: st.id,
		Topic: selector, Active: active, Payload: payload}
}

// announce publishes one private subscription event per topic selector of
// a stream, through the hub, as every other update.
func (h *Handler) announce(st *stream, active bool) {
	if !h.cfg.Subscriptions || st.sub == nil {
		return
	}
	for _, sel := range st.selectors {
		d := h.subscriptionDoc(st, sel, active)
		d.Context = "https://mercure.rocks/"
		data, err := json.Marshal(d)
		if err != nil {
			continue
		}
		id, err := uuid.NewV7()
		if err != nil {
			continue
		}
		eid := "urn:uuid:" + id.String()
		h.mu.Lock()
		h.lastEvent = eid
		h.mu.Unlock()
		if _, herr := h.hub.Publish(context.Background(), &hub.PublishRequest{Channel: d.ID, Topics: []string{d.ID}, Topic: true,
			ID: eid, Data: data, Encoding: broker.EncodingJSON, Private: true}); herr != nil {
			h.log.Debug("mercure: subscription event not published", slog.String("error", herr.Error()))
		}
	}
}

// snapshot returns the open streams and the id of the last subscription
// event ("earliest" when none), read together: subscribing to subscription
// events from that id continues the list without a gap.
func (h *Handler) snapshot() ([]*stream, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*stream, 0, len(h.streams))
	for st := range h.streams {
		if st.sub != nil {
			out = append(out, st)
		}
	}
	last := h.lastEvent
	if last == "" {
		last = Earliest
	}
	return out, last
}

// serveSubscriptions serves GET <path>/subscriptions[/{topic}[/{subscriber}]].
// The caller needs a subscriber token with a mercure.subscribe selector
// matching the request path (without the query string).
func (h *Handler) serveSubscriptions(w http.ResponseWriter, r *http.Request) {
	h.cors(w, r)
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed: the subscriptions API is read-only (GET)", http.StatusMethodNotAllowed)
		return
	}
	tok, src, reason := h.token(r)
	if reason == nil && tok == "" {
		reason = &auth.Reason{Code: auth.TokenMissing, Detail: "the subscriptions API needs a subscriber token",
			Hint: `send a token whose mercure.subscribe has a selector such as "` + h.cfg.Path + `/subscriptions{/topic}{/subscriber}"`}
	}
	var grant *auth.MercureGrant
	if reason == nil {
		grant, reason = h.verifier.VerifyMercure(tok, src, h.subKeys.Load(), "subscriber", h.rules("subscriber"))
	}
	if reason != nil {
		h.refuse(w, r, http.StatusUnauthorized, reason, "subscriptions API request")
		return
	}
	path := r.URL.EscapedPath()
	if !h.matcher.MatchAny(grant.Subscribe, []string{path}) {
		h.refuse(w, r, http.StatusForbidden, &auth.Reason{Code: auth.TopicNotPermitted, Source: grant.Source, KeyFingerprint: grant.KeyFingerprint,
			Detail: "the token's mercure.subscribe has no selector matching " + auth.Truncate(path, 200),
			Hint:   `add a selector such as "` + h.cfg.Path + `/subscriptions{/topic}{/subscriber}"`}, "subscriptions API request")
		return
	}
	rest := strings.TrimPrefix(path, h.cfg.Path+"/subscriptions")
	rest = strings.TrimPrefix(rest, "/")
	var topic, subscriber string
	var hasTopic, hasSubscriber bool
	if rest != "" {
		parts := strings.Split(rest, "/")
		if len(parts) > 2 {
			http.NotFound(w, r)
			return
		}
		var err error
		if topic, err = url.QueryUnescape(parts[0]); err != nil {
			http.Error(w, "the topic part of the path is not correctly escaped", http.StatusBadRequest)
			return
		}
		hasTopic = true
		if len(parts) == 2 {
			if subscriber, err = url.QueryUnescape(parts[1]); err != nil {
				http.Error(w, "the subscriber part of the path is not correctly escaped", http.StatusBadRequest)
				return
			}
			hasSubscriber = true
		}
	}
	subs, last := h.snapshot()
	w.Header().Set("ETag", `"`+last+`"`)
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == last || strings.Trim(inm, `"`) == last) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	var docs []subscriptionDoc
	for _, st := range subs {
		for _, sel := range st.selectors {
			if hasTopic && sel != topic {
				continue
			}
			if hasSubscriber && st.id != subscriber {
				continue
			}
			docs = append(docs, h.subscriptionDoc(st, sel, true))
		}
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].ID < docs[j].ID })
	w.Header().Set("Content-Type", "application/ld+json")
	w.Header().Set("Cache-Control", "private, no-cache")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if hasSubscriber {
		if len(docs) == 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("no such subscription\n"))
			return
		}
		d := docs[0]
		d.Context, d.LastEventID = "https://mercure.rocks/", last
		_ = enc.Encode(d)
		return
	}
	if docs == nil {
		docs = []subscriptionDoc{}
	}
	_ = enc.Encode(struct {
		Context       string            `json:"@context"`
		ID            string            `json:"id"`
		Type          string            `json:"type"`
		LastEventID   string            `json:"lastEventID"`
		Subscriptions []subscriptionDoc `json:"subscriptions"`
	}{"https://mercure.rocks/", h.cfg.Path + "/subscriptions", "Subscriptions", last, docs})
}
