package mercure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/conn"
	"github.com/heraldhub/herald/internal/glob"
	"github.com/heraldhub/herald/internal/hub"
)

// reservedPath is the namespace publishers may not use in topics: the hub's
// own subscription events live there.
const reservedPath = "/.well-known/mercure"

// Earliest is the reserved last event id that asks for the whole history.
const Earliest = "earliest"

// Options build a Handler.
type Options struct {
	Config   *config.Config
	Verifier *auth.Verifier
	Hub      *hub.Hub
	Pool     *conn.Pool
	Logger   *slog.Logger
}

// Handler serves the hub: GET subscribes (SSE), POST publishes, OPTIONS
// answers CORS preflights.
type Handler struct {
	cfg      *config.Mercure
	full     bool // clients see reason details and hints
	verifier *auth.Verifier
	log      *slog.Logger
	hub      *hub.Hub
	pool     *conn.Pool
	matcher  *hub.Matcher
	queueMax int // client.queue_max_size: bytes waiting for one subscriber

	pubKeys atomic.Pointer[auth.KeySet]
	subKeys atomic.Pointer[auth.KeySet]

	mu        sync.Mutex
	closed    bool
	streams   map[*stream]struct{}
	lastEvent string // id of the last subscription event
}

// New returns the hub handler. Set its keys with SetKeys.
func New(o Options) *Handler {
	h := &Handler{cfg: &o.Config.Mercure, full: o.Config.FullReasons(), verifier: o.Verifier, log: o.Logger,
		hub: o.Hub, pool: o.Pool, matcher: o.Hub.Matcher(), queueMax: o.Config.Client.QueueMaxSize, streams: map[*stream]struct{}{}}
	h.pubKeys.Store(auth.NewKeySet())
	h.subKeys.Store(auth.NewKeySet())
	return h
}

// SetKeys swaps the publisher and subscriber key sets atomically.
func (h *Handler) SetKeys(publisher, subscriber *auth.KeySet) {
	h.pubKeys.Store(publisher)
	h.subKeys.Store(subscriber)
	h.verifier.ForgetVerified()
}

// PublisherKeys and SubscriberKeys return the current key sets.
func (h *Handler) PublisherKeys() *auth.KeySet  { return h.pubKeys.Load() }
func (h *Handler) SubscriberKeys() *auth.KeySet { return h.subKeys.Load() }

// NumSubscribers counts the open subscription streams.
func (h *Handler) NumSubscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

// Shutdown ends every subscription stream (clients reconnect elsewhere),
// refuses new ones with 503, and waits for the streams to end or for ctx.
func (h *Handler) Shutdown(ctx context.Context) {
	h.mu.Lock()
	h.closed = true
	streams := make([]*stream, 0, len(h.streams))
	for st := range h.streams {
		streams = append(streams, st)
	}
	h.mu.Unlock()
	for _, st := range streams {
		st.end("server_shutdown")
	}
	for _, st := range streams {
		select {
		case <-st.done:
		case <-ctx.Done():
			return
		}
	}
}

func (h *Handler) forget(st *stream) {
	h.mu.Lock()
	delete(h.streams, st)
	h.mu.Unlock()
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != h.cfg.Path {
		if h.cfg.Subscriptions && (r.URL.Path == h.cfg.Path+"/subscriptions" || strings.HasPrefix(r.URL.Path, h.cfg.Path+"/subscriptions/")) {
			if r.Method == http.MethodOptions {
				h.preflight(w, r)
				return
			}
			h.serveSubscriptions(w, r)
			return
		}
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodOptions {
		h.preflight(w, r)
		return
	}
	h.cors(w, r)
	switch r.Method {
	case http.MethodGet:
		h.subscribe(w, r)
	case http.MethodPost:
		h.publish(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		http.Error(w, "method not allowed: use GET to subscribe and POST to publish", http.StatusMethodNotAllowed)
	}
}

// --- CORS ---------------------------------------------------------------

func (h *Handler) corsAllowed(origin string) bool {
	for _, o := range h.cfg.CORSOrigins {
		if o == "*" || o == origin {
			return true
		}
	}
	return false
}

// cors adds the CORS headers of an allowed origin to an actual request.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || len(h.cfg.CORSOrigins) == 0 {
		return
	}
	w.Header().Add("Vary", "Origin")
	if !h.corsAllowed(origin) {
		if !sameOrigin(r, origin) { // a page of the hub's own origin needs no CORS
			h.log.Info("mercure: CORS origin refused", slog.String("origin", origin), slog.Any("cors_origins", h.cfg.CORSOrigins))
		}
		return
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", origin)
	hd.Set("Access-Control-Allow-Credentials", "true")
	hd.Set("Access-Control-Expose-Headers", exposedHeaders)
}

// preflight answers OPTIONS: 204, with the CORS grant only for an allowed origin.
func (h *Handler) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	hd := w.Header()
	hd.Set("Allow", "GET, POST, OPTIONS")
	if origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		hd.Add("Vary", "Origin")
		hd.Add("Vary", "Access-Control-Request-Method")
		hd.Add("Vary", "Access-Control-Request-Headers")
		if h.corsAllowed(origin) {
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Set("Access-Control-Allow-Credentials", "true")
			hd.Set("Access-Control-Allow-Methods", "GET, POST")
			hd.Set("Access-Control-Allow-Headers", "authorization, cache-control, last-event-id")
			hd.Set("Access-Control-Expose-Headers", exposedHeaders)
			hd.Set("Access-Control-Max-Age", "600")
		} else {
			h.log.Info("mercure: CORS preflight from a refused origin", slog.String("origin", origin), slog.Any("cors_origins", h.cfg.CORSOrigins))
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- tokens and refusals ---------------------------------------------------

// token finds the request's token with the draft-07 precedence: the
// Authorization header, else the authorization query parameter, else the
// cookie. Only the winner is used; differing losers are logged.
func (h *Handler) token(r *http.Request) (string, auth.Source, *auth.Reason) {
	src := auth.FirstSources{QueryParam: "authorization", Cookie: h.cfg.CookieName}
	chosen, ignored, reason := auth.PickFirst(src.FromHTTP(r))
	switch {
	case reason != nil:
		return "", reason.Source, reason
	case chosen == nil:
		return "", "", nil
	}
	for _, c := range ignored {
		h.log.Warn("mercure: several token sources carry different tokens; only the first by precedence is used (header > authorization query > cookie)",
			slog.String("used", string(chosen.Source)), slog.String("ignored", string(c.Source)), slog.String("remote_addr", r.RemoteAddr))
	}
	return chosen.Token, chosen.Source, nil
}

// refuse answers 401 or 403 with an RFC 6750 challenge and the reason in the
// body, and logs all of it at INFO.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, status int, reason *auth.Reason, what string) {
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "mercure: "+what+" refused",
		append(reason.LogAttrs(), slog.Int("status", status), slog.String("remote_addr", r.RemoteAddr))...)
	h.verifier.Refusals.Add(reason, "mercure", r.RemoteAddr, "")
	desc := string(reason.Code)
	if h.full && reason.Detail != "" {
		desc += ": " + reason.Detail
	}
	switch {
	case status == http.StatusUnauthorized && reason.Code == auth.TokenMissing:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mercure"`)
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mercure", error="invalid_token", error_description="`+quoteSafe(desc)+`"`)
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mercure", error="insufficient_scope", error_description="`+quoteSafe(desc)+`"`)
	}
	body := desc + "\n"
	if h.full && reason.Hint != "" {
		body += "hint: " + reason.Hint + "\n"
	}
	writeText(w, status, body)
}

// quoteSafe makes s fit an RFC 6750 quoted string (printable ASCII without " and \).
func quoteSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '\''
		}
	}
	return string(b)
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// --- publish -----------------------------------------------------------------

func (h *Handler) publish(w http.ResponseWriter, r *http.Request) {
	tok, src, reason := h.token(r)
	if reason == nil && tok == "" {
		reason = &auth.Reason{Code: auth.TokenMissing, Detail: "no token: publishing needs a publisher token",
			Hint: "send Authorization: Bearer <JWT with mercure.publish>"}
	}
	if reason != nil {
		h.refuse(w, r, http.StatusUnauthorized, reason, "publication")
		return
	}
	grant, reason := h.verifier.VerifyMercure(tok, src, h.pubKeys.Load(), "publisher", h.rules("publisher"))
	if reason != nil {
		h.misplaced(reason, tok, "publisher")
		h.refuse(w, r, http.StatusUnauthorized, reason, "publication")
		return
	}
	if src == auth.SourceCookie {
		if reason := h.checkPublishOrigin(r); reason != nil {
			h.refuse(w, r, http.StatusForbidden, reason, "publication")
			return
		}
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
		got := ct
		if got == "" {
			got = "no Content-Type"
		}
		writeText(w, http.StatusBadRequest, fmt.Sprintf("Content-Type must be application/x-www-form-urlencoded, got %s\n", got))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, int64(h.cfg.MaxBodySize))
	if err := r.ParseForm(); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes (mercure.max_body_size)\n", h.cfg.MaxBodySize))
			return
		}
		writeText(w, http.StatusBadRequest, "the body is not a valid form: "+err.Error()+"\n")
		return
	}
	f := r.PostForm
	topics := f["topic"]
	if len(topics) == 0 {
		writeText(w, http.StatusBadRequest, "Missing \"topic\" parameter\n")
		return
	}
	if len(topics) > h.cfg.MaxTopics {
		writeText(w, http.StatusBadRequest, fmt.Sprintf("Too many \"topic\" parameters: %d, at most %d (mercure.max_topics)\n", len(topics), h.cfg.MaxTopics))
		return
	}
	for _, t := range topics {
		if strings.Contains(t, reservedPath) || strings.Contains(t, h.cfg.Path+"/") {
			writeText(w, http.StatusForbidden, fmt.Sprintf("%q: topic value references the reserved %q namespace\n", t, reservedPath))
			return
		}
	}
	id, typ := f.Get("id"), f.Get("type")
	for _, fld := range []struct{ name, v string }{{"id", id}, {"type", typ}} {
		if strings.ContainsAny(fld.v, "\x00\r\n") {
			writeText(w, http.StatusBadRequest, fmt.Sprintf("%q field contains a forbidden control character (NUL, CR or LF)\n", fld.name))
			return
		}
	}
	if strings.HasPrefix(id, "#") {
		writeText(w, http.StatusBadRequest, "\"id\" must not start with #: such ids are reserved for ids the hub generates\n")
		return
	}
	if id == Earliest {
		writeText(w, http.StatusBadRequest, "\"id\" must not be earliest: it is reserved for reconnection (Last-Event-ID: earliest asks for the whole history)\n")
		return
	}
	var retry uint64
	if rs := f.Get("retry"); rs != "" {
		n, err := strconv.ParseUint(rs, 10, 64)
		if err != nil {
			writeText(w, http.StatusBadRequest, "Invalid \"retry\" parameter: "+strconv.Quote(rs)+" is not a number of milliseconds\n")
			return
		}
		retry = n
	}
	if reason := h.checkPublishScope(grant, topics); reason != nil {
		h.refuse(w, r, http.StatusForbidden, reason, "publication")
		return
	}
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			writeText(w, http.StatusInternalServerError, "cannot generate an id: "+err.Error()+"\n")
			return
		}
		id = "urn:uuid:" + u.String()
	}
	_, private := f["private"]
	data := []byte(f.Get("data"))
	enc := broker.EncodingText
	if json.Valid(data) {
		enc = broker.EncodingJSON
	}
	if _, herr := h.hub.Publish(r.Context(), &hub.PublishRequest{Channel: topics[0], Topics: topics, Topic: true, ID: id,
		Data: data, Encoding: enc, Private: private, Event: typ, Retry: retry}); herr != nil {
		h.publishFailed(w, r, herr)
		return
	}
	writeText(w, http.StatusOK, id)
}

// checkPublishScope: every topic must match a selector of mercure.publish.
func (h *Handler) checkPublishScope(g *auth.MercureGrant, topics []string) *auth.Reason {
	if len(g.Publish) == 0 {
		detail := "the token has no mercure.publish selectors, so it may publish nothing"
		if len(g.Subscribe) > 0 {
			detail = "the token has only mercure.subscribe selectors: it is a subscriber token, and publishing needs mercure.publish"
		}
		if !g.HasClaim {
			detail = "the token has no mercure claim (nor https://mercure.rocks/), so it may publish nothing"
		}
		return &auth.Reason{Code: auth.TopicNotPermitted, Source: g.Source, KeyFingerprint: g.KeyFingerprint, Detail: detail,
			Hint: `sign publisher tokens with {"mercure":{"publish":["<topic or URI template>"]}} ("*" allows every topic)`}
	}
	for _, t := range topics {
		if !h.matcher.MatchAny(g.Publish, []string{t}) {
			return &auth.Reason{Code: auth.TopicNotPermitted, Source: g.Source, KeyFingerprint: g.KeyFingerprint,
				Detail: fmt.Sprintf("topic %q is not covered by the token's mercure.publish", auth.Truncate(t, 200)),
				Hint:   "every topic of an update (canonical and alternates) must match a publish selector; use URI templates like https://example.com/books/{id}, not *"}
		}
	}
	return nil
}

// checkPublishOrigin guards cookie-authenticated publications against CSRF:
// the Origin (else the Referer's origin) must be in publish_origins.
func (h *Handler) checkPublishOrigin(r *http.Request) *auth.Reason {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if ref := r.Header.Get("Referer"); ref != "" {
			if u, err := url.Parse(ref); err == nil && u.Scheme != "" && u.Host != "" {
				origin = u.Scheme + "://" + u.Host
			}
		}
	}
	hint := "list the page's origin in mercure.publish_origins, or publish with an Authorization header"
	if origin == "" {
		return &auth.Reason{Code: auth.OriginNotAllowed, Source: auth.SourceCookie,
			Detail: "no Origin or Referer header on a cookie-authenticated publication", Hint: hint}
	}
	for _, p := range h.cfg.PublishOrigins {
		if p == "*" || p == origin || glob.Match(p, origin) {
			return nil
		}
	}
	return &auth.Reason{Code: auth.OriginNotAllowed, Source: auth.SourceCookie,
		Detail: fmt.Sprintf("origin %s is not in mercure.publish_origins %v", auth.Truncate(origin, 100), h.cfg.PublishOrigins), Hint: hint}
}

// publishFailed answers a publication the hub refused: 400 for bad data,
// 503 (temporary, with the reason) when the broker is unreachable or the
// node is shutting down, never a false success.
func (h *Handler) publishFailed(w http.ResponseWriter, r *http.Request, e *hub.Error) {
	switch {
	case e.Temporary():
		h.log.Warn("mercure: publication refused for now", slog.String("error", e.Error()), slog.String("remote_addr", r.RemoteAddr))
		w.Header().Set("Retry-After", "1")
		writeText(w, http.StatusServiceUnavailable, "the publication was not accepted: "+e.Error()+"; try again\n")
	case e.Kind == hub.ErrBadRequest || e.Kind == hub.ErrBadChannel:
		writeText(w, http.StatusBadRequest, e.Error()+"\n")
	default:
		h.log.Error("mercure: publication failed", slog.String("error", e.Error()))
		writeText(w, http.StatusInternalServerError, "the publication failed: "+e.Error()+"\n")
	}
}

// --- subscribe -----------------------------------------------------------------

// lastEventID reads the last event id: the Last-Event-ID header, else the
// lastEventID query parameter, else the legacy Last-Event-ID query
// parameter, else last_event_id.
func lastEventID(r *http.Request) string {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v
	}
	q := r.URL.Query()
	for _, name := range []string{"lastEventID", "Last-Event-ID", "last_event_id"} {
		if v := q.Get(name); v != "" {
			return v
		}
	}
	return ""
}

func (h *Handler) subscribe(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		writeText(w, http.StatusServiceUnavailable, "the hub is shutting down; reconnect\n")
		return
	}
	tok, src, reason := h.token(r)
	var grant *auth.MercureGrant
	switch {
	case reason != nil:
	case tok != "":
		grant, reason = h.verifier.VerifyMercure(tok, src, h.subKeys.Load(), "subscriber", h.rules("subscriber"))
		if reason != nil {
			h.misplaced(reason, tok, "subscriber")
		}
	case !h.cfg.Anonymous:
		reason = &auth.Reason{Code: auth.TokenMissing, Detail: "no token (no Authorization header, authorization query parameter or " + h.cfg.CookieName + " cookie) and anonymous subscribers are not allowed",
			Hint: "send a subscriber token, or set mercure.anonymous: true to let anyone receive public updates"}
	}
	if reason != nil {
		// A presented token that fails is refused even when anonymous
		// subscribers are allowed: falling back would hide the problem.
		h.refuse(w, r, http.StatusUnauthorized, reason, "subscription")
		return
	}
	selectors := r.URL.Query()["topic"]
	if len(selectors) == 0 {
		writeText(w, http.StatusBadRequest, "Missing \"topic\" parameter.\n")
		return
	}
	if len(selectors) > h.cfg.MaxTopics {
		writeText(w, http.StatusBadRequest, fmt.Sprintf("Too many \"topic\" parameters: %d, at most %d (mercure.max_topics).\n", len(selectors), h.cfg.MaxTopics))
		return
	}
	for _, s := range selectors {
		if s != "*" && strings.Contains(s, "*") {
			h.log.Info("mercure: a topic selector contains * but is not exactly *; * is only special on its own (use a URI template such as https://example.com/books/{id})",
				slog.String("selector", auth.Truncate(s, 200)), slog.String("remote_addr", r.RemoteAddr))
		}
	}
	// The stream is a hijacked connection written by the shared writers,
	// the same whichever server carried the request: the goroutine that
	// served the request (grown through routing, parsing and token checks)
	// ends, and the one that waits for the client to leave does no deep
	// work, so its stack stays small.
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeText(w, http.StatusInternalServerError, "this connection cannot carry an event stream: "+err.Error()+"\n")
		return
	}
	if brw.Reader.Buffered() > 0 {
		// A client of a stream sends nothing after its request: say so
		// rather than close without an answer.
		refuseExtraBytes(nc)
		return
	}
	// HTTP/1.0 clients (nginx talks to its upstreams in 1.0 unless told
	// otherwise) get a body that ends when the connection closes: they do
	// not know chunked encoding.
	st := &stream{h: h, nc: nc, id: "urn:uuid:" + uuid.NewString(), grant: grant, selectors: selectors, remote: r.RemoteAddr,
		chunked: r.ProtoAtLeast(1, 1), done: make(chan struct{})}
	framer := conn.Raw
	if st.chunked {
		framer = conn.Chunked
	}
	st.q.Init(nc, h.pool, conn.QueueOptions{Framer: framer, Owner: st, MaxBytes: h.queueMax, MaxMessages: h.cfg.SubscriberQueue,
		WriteTimeout: h.dispatchTimeout(), Door: "mercure", Transport: "sse"})
	h.serveStream(w, st, r)
}

// dispatchTimeout bounds one write to a subscriber (no limit: an hour).
func (h *Handler) dispatchTimeout() time.Duration {
	if d := h.cfg.DispatchTimeout.D(); d > 0 {
		return d
	}
	return time.Hour
}

// serveStream registers the stream with the hub, writes the response head
// and what the subscriber missed, and switches it to live delivery.
func (h *Handler) serveStream(w http.ResponseWriter, st *stream, r *http.Request) {
	if err := h.hub.AddClient(st, 0); err != nil {
		_ = st.nc.Close()
		return
	}
	h.mu.Lock()
	if h.closed { // Shutdown ran while this request was being authorized
		h.mu.Unlock()
		h.hub.RemoveClient(st)
		_ = st.nc.Close()
		return
	}
	h.streams[st] = struct{}{}
	h.mu.Unlock()
	last := lastEventID(r)
	req := &hub.SelectorRequest{Client: st, Selectors: st.selectors, Replay: last != ""}
	if last != Earliest {
		req.LastEventID = last
	}
	if g := st.grant; g != nil {
		req.Authenticated, req.Allowed = true, g.Subscribe
	}
	res, herr := h.hub.SubscribeSelectors(r.Context(), req)
	if herr != nil {
		h.log.Warn("mercure: subscription failed", slog.String("error", herr.Error()), slog.String("remote_addr", r.RemoteAddr))
		st.end("hub_error")
		go st.run()
		return
	}
	st.sub = res.Sub
	lastHeader := ""
	switch {
	case last == "":
	case last != Earliest && res.Found:
		lastHeader = last
	default:
		lastHeader = Earliest
		if last != Earliest {
			h.log.Info("mercure: the subscriber's last event id is not in the history; nothing is replayed",
				slog.String("last_event_id", auth.Truncate(last, 200)), slog.String("remote_addr", r.RemoteAddr))
		}
	}
	msgs := [][]byte{heartbeatComment}
	for _, p := range res.Replay {
		msgs = append(msgs, EncodeEvent(p))
	}
	head := h.streamHead(w.Header(), st, lastHeader)
	if st.chunked {
		head = conn.Chunked(head, msgs)
	} else {
		head = conn.Raw(head, msgs)
	}
	// The status line and header go out with the first chunk: the comment
	// that makes browsers fire onopen at once, and the replay.
	if err := st.q.WriteNow(head, h.dispatchTimeout()); err != nil {
		streamLog{st}.Debug("mercure: subscriber gone before the stream started", slog.String("error", err.Error()))
		st.end("client_left")
		go st.run()
		return
	}
	h.hub.Activate(res.Sub)
	h.announce(st, true)
	st.start()
	if g := st.grant; g != nil {
		streamLog{st}.Debug("mercure: subscriber connected", slog.Bool("authenticated", true), slog.String("token_source", string(g.Source)),
			slog.String("key_fingerprint", g.KeyFingerprint), slog.Int("replayed", len(res.Replay)))
	} else {
		streamLog{st}.Debug("mercure: subscriber connected", slog.Bool("authenticated", false), slog.Int("replayed", len(res.Replay)))
	}
	go st.run()
}

// streamHead is the status line and header of an event stream, with the
// headers already set on the response (CORS).
func (h *Handler) streamHead(set http.Header, st *stream, lastHeader string) []byte {
	hd := set.Clone()
	hd.Del("Content-Length")
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "private, no-cache, no-store, must-revalidate, max-age=0")
	hd.Set("Connection", "keep-alive")
	hd.Set("Pragma", "no-cache")
	hd.Set("Expires", "0")
	hd.Set("X-Accel-Buffering", "no")
	hd.Set("Content-Security-Policy", "default-src 'self'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Xss-Protection", "1; mode=block")
	if lastHeader != "" {
		hd.Set("Last-Event-ID", lastHeader)
	}
	hd.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if st.chunked {
		hd.Set("Transfer-Encoding", "chunked")
	} else {
		hd.Set("Connection", "close")
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = hd.Write(&head)
	head.WriteString("\r\n")
	return head.Bytes()
}
