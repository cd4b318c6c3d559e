package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
)

// DoorCount is the connections and subscriptions of one front door and transport.
type DoorCount struct {
	Door          string  `json:"door"`
	Transport     string  `json:"transport"`
	Connections   float64 `json:"connections"`
	Subscriptions float64 `json:"subscriptions"`
}

// ReasonCount is the refusals of one reason code at one front door.
type ReasonCount struct {
	Reason string  `json:"reason"`
	Door   string  `json:"door"`
	Count  float64 `json:"count"`
}

// Overview is what the overview page shows; the page polls it and turns
// the totals into rates.
type Overview struct {
	Time     int64          `json:"time_ms"`
	Uptime   string         `json:"uptime"`
	Nodes    []hub.NodeInfo `json:"nodes"`
	Doors    []DoorCount    `json:"doors"`
	Channels int            `json:"channels"`
	Users    int            `json:"users"`
	Clients  int            `json:"clients"`
	// Totals are counters since start: publications, deliveries,
	// refusals, connects, disconnects, written_bytes, messages_written,
	// slow_client_disconnects, queue_dropped_messages.
	Totals  map[string]float64 `json:"totals"`
	Reasons []ReasonCount      `json:"refusals_by_reason"`
}

func (h *Handler) overviewData() *Overview {
	snap := h.o.Metrics.Snapshot()
	st := h.o.Hub.Stats()
	o := &Overview{Time: time.Now().UnixMilli(), Uptime: since(h.started), Nodes: h.o.Hub.Nodes(),
		Channels: st.NumChannels, Users: st.NumUsers, Clients: st.NumClients, Totals: map[string]float64{}}
	subs := snap.Values("subscriptions", "door", "transport")
	for k, v := range snap.Values("connections", "door", "transport") {
		door, tr, _ := strings.Cut(k, "/")
		o.Doors = append(o.Doors, DoorCount{Door: door, Transport: tr, Connections: v, Subscriptions: subs[k]})
	}
	sort.Slice(o.Doors, func(i, j int) bool {
		return o.Doors[i].Door+o.Doors[i].Transport < o.Doors[j].Door+o.Doors[j].Transport
	})
	for _, name := range []string{"publications_total", "deliveries_total", "refusals_total", "connects_total", "disconnects_total",
		"written_bytes_total", "messages_written_total", "slow_client_disconnects_total", "queue_dropped_messages_total"} {
		o.Totals[strings.TrimSuffix(name, "_total")] = snap.Total(name)
	}
	for k, v := range snap.Values("refusals_total", "reason", "door") {
		reason, door, _ := strings.Cut(k, "/")
		o.Reasons = append(o.Reasons, ReasonCount{Reason: reason, Door: door, Count: v})
	}
	sort.Slice(o.Reasons, func(i, j int) bool { return o.Reasons[i].Count > o.Reasons[j].Count })
	return o
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "overview", map[string]any{"Title": "Overview", "O": h.overviewData()})
}

// KeyView is a configured key as the explainer lists it: by fingerprint, never its material.
type KeyView struct {
	For, Fingerprint, Algs, Kid, Origin, NotAfter string
}

func (h *Handler) keys() (keys []KeyView, providers []string) {
	v := h.o.Verifier
	add := func(what string, set *auth.KeySet) {
		for _, k := range set.Keys() {
			kv := KeyView{For: what, Fingerprint: k.Fingerprint, Algs: strings.Join(k.Algs, "/"), Kid: k.ID, Origin: k.Origin}
			if !k.NotAfter.IsZero() {
				kv.NotAfter = k.NotAfter.UTC().Format(time.RFC3339)
			}
			keys = append(keys, kv)
		}
		for _, p := range set.Providers() {
			providers = append(providers, fmt.Sprintf("%s: %s (%d keys)", what, p.Name(), len(p.Keys())))
		}
	}
	add("connection tokens", v.Keys())
	if sub := v.SubscriptionKeys(); sub != v.Keys() {
		add("subscription tokens", sub)
	}
	return keys, providers
}

// explain runs `herald explain` on a pasted token with the node's keys.
// The token is not shown back, logged or recorded.
func (h *Handler) explain(w http.ResponseWriter, r *http.Request) {
	keys, providers := h.keys()
	data := map[string]any{"Title": "Token explainer", "Keys": keys, "Providers": providers}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 2*auth.MaxTokenSize+16<<10)
		if err := r.ParseForm(); err != nil {
			h.fail(w, r, http.StatusBadRequest, "bad_form", "the form could not be read: "+err.Error(), "tokens are limited in size")
			return
		}
		f := r.PostForm
		req := auth.ExplainRequest{Token: f.Get("token"), Subscription: f.Get("subscription") != "", Channel: f.Get("channel"), User: f.Get("user")}
		if strings.TrimSpace(req.Token) == "" {
			data["Error"] = "paste a token to explain"
		} else {
			checks, ok := h.o.Verifier.Explain(req)
			var b bytes.Buffer
			auth.WriteExplanation(&b, checks, ok)
			data["Checks"], data["Accepted"], data["Text"], data["Explained"] = checks, ok, b.String(), true
		}
		data["Subscription"], data["Channel"], data["User"] = req.Subscription, req.Channel, req.User
	}
	h.render(w, r, "explain", data)
}

func (h *Handler) channels(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	type row struct {
		Name    string
		Clients int
	}
	var rows []row
	for name, ci := range h.o.Hub.Channels(q) {
		rows = append(rows, row{name, ci.NumClients})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Clients != rows[j].Clients {
			return rows[i].Clients > rows[j].Clients
		}
		return rows[i].Name < rows[j].Name
	})
	total := len(rows)
	if len(rows) > 200 {
		rows = rows[:200]
	}
	h.render(w, r, "channels", map[string]any{"Title": "Channels", "Q": q, "Rows": rows, "Total": total})
}

// Subscriber is one local subscription in the channel view.
type Subscriber struct {
	Client, User, Door, Transport string
}

// Pub is a publication in the channel view, its data shortened.
type Pub struct {
	Offset uint64
	Time   string
	Data   string
	Binary bool
}

const shownSubscribers = 100

func (h *Handler) channel(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	data := map[string]any{"Title": "Channel " + name, "Name": name, "Published": r.URL.Query().Get("published"),
		"Error": r.URL.Query().Get("error")}
	subs, n := h.o.Hub.Subscribers(name, shownSubscribers)
	var list []Subscriber
	for _, s := range subs {
		door, tr := hub.DoorOf(s.Client())
		list = append(list, Subscriber{Client: s.Client().ID(), User: s.Client().User(), Door: door, Transport: tr})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Client < list[j].Client })
	data["Subscribers"], data["NumSubscribers"] = list, n
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if p, herr := h.o.Hub.Presence(ctx, &hub.ReadRequest{Channel: name}); herr != nil {
		data["PresenceError"] = herr.Error()
	} else {
		var ids []string
		for id := range p {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		type member struct{ Client, User string }
		var members []member
		for _, id := range ids {
			members = append(members, member{id, p[id].User})
		}
		data["Presence"] = members
	}
	if pubs, sp, herr := h.o.Hub.History(ctx, &hub.ReadRequest{Channel: name, Limit: 10, Reverse: true, MaxLimit: 10}); herr != nil {
		data["HistoryError"] = herr.Error()
	} else {
		var shown []Pub
		for _, p := range pubs {
			shown = append(shown, showPub(p))
		}
		data["History"], data["Position"] = shown, sp
	}
	h.render(w, r, "channel", data)
}

func showPub(p *broker.Publication) Pub {
	out := Pub{Offset: p.Offset, Binary: p.Encoding == broker.EncodingBinary}
	if !p.Time.IsZero() {
		out.Time = p.Time.UTC().Format("15:04:05.000")
	}
	if out.Binary {
		out.Data = fmt.Sprintf("%d bytes of binary data", len(p.Data))
		return out
	}
	d := p.Data
	if len(d) > 500 {
		d = d[:500]
		for len(d) > 0 && !utf8.Valid(d) {
			d = d[:len(d)-1]
		}
		out.Data = string(d) + "…"
		return out
	}
	out.Data = string(d)
	return out
}

// maxPublish bounds what the publish form sends.
const maxPublish = 1 << 20

// publish publishes the form's JSON to a channel through the hub, as the
// server API does, and goes back to the channel view.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "use POST", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxPublish+16<<10)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "bad_form", "the form could not be read: "+err.Error(), "publications from the form are limited to 1 MiB")
		return
	}
	channel := r.PostForm.Get("channel")
	back := func(key, value string) {
		http.Redirect(w, r, "/admin/channel?name="+url.QueryEscape(channel)+"&"+key+"="+url.QueryEscape(value), http.StatusSeeOther)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(r.PostForm.Get("data"))); err != nil {
		back("error", "the data is not JSON: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	sp, herr := h.o.Hub.Publish(ctx, &hub.PublishRequest{Channel: channel, Data: b.Bytes()})
	if herr != nil {
		back("error", herr.Error())
		return
	}
	h.o.Logger.Info("admin page published", slog.String("channel", channel), slog.Int("bytes", b.Len()), slog.String("remote_addr", r.RemoteAddr))
	back("published", "offset "+strconv.FormatUint(sp.Offset, 10))
}

// since says how long ago t was, in whole seconds.
func since(t time.Time) string { return time.Since(t).Round(time.Second).String() }

func humanBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}
