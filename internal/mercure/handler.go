package mercure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/glob"
)

// reservedPath is the namespace publishers may not use in topics: the hub's
// own subscription events live there.
const reservedPath = "/.well-known/mercure"

// Options build a Handler.
type Options struct {
	Config   *config.Config
	Verifier *auth.Verifier
	Logger   *slog.Logger
}

// Handler serves the hub: GET subscribes (SSE), POST publishes, OPTIONS
// answers CORS preflights.
type Handler struct {
	cfg      *config.Mercure
	full     bool // clients see reason details and hints
	verifier *auth.Verifier
	log      *slog.Logger
	bus      *Bus
	matcher  *Matcher

	pubKeys atomic.Pointer[auth.KeySet]
	subKeys atomic.Pointer[auth.KeySet]

	mu     sync.Mutex
	closed bool
}

// New returns the hub handler. Set its keys with SetKeys.
func New(o Options) *Handler {
	m := NewMatcher(o.Config.Mercure.TopicCacheSize)
	h := &Handler{cfg: &o.Config.Mercure, full: o.Config.FullReasons(), verifier: o.Verifier, log: o.Logger,
		matcher: m, bus: NewBus(m, o.Config.Mercure.HistorySize, o.Config.Mercure.HistoryTTL.D())}
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

// Bus returns the update bus (tests and the server use it).
func (h *Handler) Bus() *Bus { return h.bus }

// NumSubscribers counts the open subscription streams.
func (h *Handler) NumSubscribers() int { return len(h.bus.Subscribers()) }

// Shutdown ends every subscription stream (clients reconnect elsewhere) and
// refuses new ones with 503.
func (h *Handler) Shutdown() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	for _, s := range h.bus.Subscribers() {
		s.Drop("server_shutdown")
	}
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
		h.log.Info("mercure: CORS origin refused", slog.String("origin", origin), slog.Any("cors_origins", h.cfg.CORSOrigins))
		return
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", origin)
	hd.Set("Access-Control-Allow-Credentials", "true")
	hd.Set("Access-Control-Expose-Headers", "Last-Event-ID")
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
			hd.Set("Access-Control-Expose-Headers", "Last-Event-ID")
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
	type found struct {
		tok string
		src auth.Source
	}
	var all []found
	var bad *auth.Reason
	if vals := r.Header.Values("Authorization"); len(vals) > 0 {
		scheme, tok, ok := strings.Cut(vals[0], " ")
		tok = strings.TrimSpace(tok)
		switch {
		case len(vals) > 1:
			bad = &auth.Reason{Code: auth.TokenMalformed, Source: auth.SourceHeader, Detail: "the request has several Authorization headers",
				Hint: "send exactly one Authorization: Bearer <token> header"}
		case !ok || !strings.EqualFold(scheme, "Bearer") || tok == "":
			bad = &auth.Reason{Code: auth.TokenMalformed, Source: auth.SourceHeader, Detail: "Authorization header is not `Bearer <token>`",
				Hint: "send Authorization: Bearer <JWT> (the token itself, not the key)"}
		}
		all = append(all, found{tok, auth.SourceHeader})
	}
	if vals, ok := r.URL.Query()["authorization"]; ok {
		if len(vals) > 1 && len(all) == 0 {
			bad = &auth.Reason{Code: auth.TokenMalformed, Source: auth.SourceQuery,
				Detail: fmt.Sprintf("the authorization query parameter appears %d times", len(vals)), Hint: "give it once"}
		}
		all = append(all, found{vals[0], auth.SourceQuery})
	}
	if c, err := r.Cookie(h.cfg.CookieName); err == nil && c.Value != "" {
		all = append(all, found{c.Value, auth.SourceCookie})
	}
	if bad != nil {
		return "", bad.Source, bad
	}
	if len(all) == 0 {
		return "", "", nil
	}
	for _, f := range all[1:] {
		if f.tok != all[0].tok {
			h.log.Warn("mercure: several token sources carry different tokens; only the first by precedence is used (header > authorization query > cookie)",
				slog.String("used", string(all[0].src)), slog.String("ignored", string(f.src)), slog.String("remote_addr", r.RemoteAddr))
		}
	}
	if all[0].tok == "" {
		return "", all[0].src, &auth.Reason{Code: auth.TokenMalformed, Source: all[0].src, Detail: "the token is empty"}
	}
	return all[0].tok, all[0].src, nil
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
	grant, reason := h.verifier.VerifyMercure(tok, src, h.pubKeys.Load(), "publisher", h.cfg.Leeway.D())
	if reason != nil {
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
	h.bus.Publish(NewUpdate(id, topics, f.Get("data"), typ, retry, private))
	writeText(w, http.StatusOK, id)
}

// checkPublishScope: every topic must match a selector of mercure.publish.
func (h *Handler) checkPublishScope(g *auth.MercureGrant, topics []string) *auth.Reason {
	if len(g.Publish) == 0 {
		detail := "the token has no mercure.publish selectors, so it may publish nothing"
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
		grant, reason = h.verifier.VerifyMercure(tok, src, h.subKeys.Load(), "subscriber", h.cfg.Leeway.D())
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
	var sub *Subscriber
	if grant != nil {
		sub = NewSubscriber(selectors, true, grant.Subscribe, h.cfg.SubscriberQueue)
		sub.Payload = grant.Payload
	} else {
		sub = NewSubscriber(selectors, false, nil, h.cfg.SubscriberQueue)
	}
	if h.cfg.Subscriptions {
		sub.ID = "urn:uuid:" + uuid.NewString()
	}
	// The stream is a hijacked connection that its own goroutine writes, the
	// same whichever server carried the request: the goroutine that served
	// the request (grown through routing, parsing and token checks) ends, and
	// the stream's goroutine does no deep work, so its stack stays small
	// (heraldbench conns -transport sse: 6 KiB of stacks per subscriber with
	// the one that watches for the client leaving).
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeText(w, http.StatusInternalServerError, "this connection cannot carry an event stream: "+err.Error()+"\n")
		return
	}
	if brw.Reader.Buffered() > 0 {
		// A client of a stream sends nothing after its request.
		_ = conn.Close()
		return
	}
	// HTTP/1.0 clients (nginx talks to its upstreams in 1.0 unless told
	// otherwise) get a body that ends when the connection closes: they do
	// not know chunked encoding.
	st := &stream{h: h, conn: conn, sub: sub, grant: grant, selectors: selectors, remote: r.RemoteAddr, chunked: r.ProtoAtLeast(1, 1)}
	sub.OnDrop = func() { _ = conn.SetWriteDeadline(time.Now()) }
	last := lastEventID(r)
	replay, lastHeader := h.bus.Subscribe(sub, last)
	h.announce(sub, true)
	h.mu.Lock()
	if h.closed { // Shutdown ran while this request was being authorized
		sub.Drop("server_shutdown")
	}
	h.mu.Unlock()
	if last != "" && lastHeader == Earliest && last != Earliest {
		h.log.Info("mercure: the subscriber's last event id is not in the history; nothing is replayed",
			slog.String("last_event_id", auth.Truncate(last, 200)), slog.String("remote_addr", r.RemoteAddr))
	}

	hd := w.Header()
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
	hd.Del("Content-Length")
	if st.chunked {
		hd.Set("Transfer-Encoding", "chunked")
	} else {
		hd.Set("Connection", "close")
	}
	// The status line and header go out with the first chunk: the comment
	// that makes browsers fire onopen at once, and the replay.
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = hd.Write(&head)
	head.WriteString("\r\n")
	st.buf = head.Bytes()
	st.pending = append(st.pending, ":\n"...)
	go st.run(replay)
}

// stream is one subscriber's event stream on its hijacked connection.
type stream struct {
	h         *Handler
	conn      net.Conn
	sub       *Subscriber
	grant     *auth.MercureGrant
	selectors []string
	remote    string
	buf       []byte    // bytes for the next write: chunks, and the header before the first
	pending   []byte    // events not yet framed as a chunk
	deadline  time.Time // the connection's write deadline (moved only when it gets close)
	lastWrite time.Time // of updates, for mercure.write_lag
	chunked   bool      // HTTP/1.1 framing; false for HTTP/1.0 clients
}

// run writes the stream until it ends: the client leaves, the hub drops the
// subscriber, or its lifetime ends.
func (st *stream) run(replay []*Update) {
	h, sub := st.h, st.sub
	left := make(chan struct{})
	go watchClose(st.conn, left)
	defer func() {
		h.bus.Unsubscribe(sub)
		h.announce(sub, false)
		// The last chunk ends the response cleanly when the client still reads.
		if st.chunked {
			_ = st.conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = st.conn.Write([]byte("0\r\n\r\n"))
		}
		_ = st.conn.Close()
	}()
	log := streamLog{st}
	fail := func(err error) {
		select {
		case <-sub.Gone(): // the hub dropped it and cut the write short
			h.dropped(log, sub.Why())
		default:
			h.writeFailed(log, err)
		}
	}
	if err := st.write(replay); err != nil {
		log.Debug("mercure: subscriber gone before the stream started", slog.String("error", err.Error()))
		return
	}
	grant := st.grant
	if grant != nil {
		log.Debug("mercure: subscriber connected", slog.Bool("authenticated", true), slog.String("token_source", string(grant.Source)),
			slog.String("key_fingerprint", grant.KeyFingerprint), slog.Int("replayed", len(replay)))
	} else {
		log.Debug("mercure: subscriber connected", slog.Bool("authenticated", false), slog.Int("replayed", len(replay)))
	}

	// Lifetime: a random 80-100 % of write_timeout minus dispatch_timeout,
	// and before the token expires.
	dispatch := h.cfg.DispatchTimeout.D()
	var deadline <-chan time.Time
	why := ""
	life := time.Duration(0)
	if wt := h.cfg.WriteTimeout.D(); wt > 0 {
		life = jitter(wt) - dispatch
		if life <= 0 {
			life = jitter(wt)
		}
		why = "write_timeout"
	}
	if grant != nil && !grant.Expiry.IsZero() {
		left := jitter(time.Until(grant.Expiry))
		if life == 0 || left < life {
			life, why = max(left, time.Millisecond), "token_expired"
		}
	}
	if life > 0 {
		t := time.NewTimer(life)
		defer t.Stop()
		deadline = t.C
	}
	var heartbeat *time.Ticker
	var beats <-chan time.Time
	if hb := h.cfg.Heartbeat.D(); hb > 0 {
		heartbeat = time.NewTicker(hb)
		defer heartbeat.Stop()
		beats = heartbeat.C
	}
	lag := h.cfg.WriteLag.D()
	var hold *time.Timer // made the first time a stream is held
	var held <-chan time.Time
	defer func() {
		if hold != nil {
			hold.Stop()
		}
	}()
	ready := sub.Ready()
	for {
		select {
		case <-left:
			log.Debug("mercure: subscriber disconnected")
			return
		case <-sub.Gone():
			h.dropped(log, sub.Why())
			return
		case <-deadline:
			if why == "token_expired" {
				log.Info("mercure: subscription closed because its token expires", slog.Time("exp", grant.Expiry))
			} else {
				log.Debug("mercure: subscription closed at the end of its lifetime (write_timeout); the client reconnects")
			}
			return
		case <-beats:
			st.pending = append(st.pending, ":\n"...)
			if err := st.write(nil); err != nil {
				fail(err)
				return
			}
		case <-ready:
			// A stream that wrote less than mercure.write_lag ago waits out
			// the rest of it, and then writes what arrived meanwhile in one
			// go: under load the cost is per write, not per update
			// (heraldbench fanout -transport sse: 4.5 -> 1.8-2.4 us per
			// delivery, p99 100-108 -> 56-68 ms). A stream written to less
			// often than that is not held at all.
			if wait := lag - time.Since(st.lastWrite); lag > 0 && wait > 0 {
				if hold == nil {
					hold = time.NewTimer(wait)
				} else {
					hold.Reset(wait)
				}
				ready, held = nil, hold.C
				continue
			}
			if err := st.flush(heartbeat); err != nil {
				fail(err)
				return
			}
		case <-held:
			ready, held = sub.Ready(), nil
			if err := st.flush(heartbeat); err != nil {
				fail(err)
				return
			}
		}
	}
}

// flush writes every update waiting for the subscriber and restarts the
// heartbeat (nil when off).
func (st *stream) flush(heartbeat *time.Ticker) error {
	st.lastWrite = time.Now()
	if err := st.write(st.sub.Take()); err != nil {
		return err
	}
	if heartbeat != nil {
		heartbeat.Reset(st.h.cfg.Heartbeat.D())
	}
	return nil
}

// maxChunk bounds one chunk; a larger event is a chunk of its own.
const maxChunk = 64 << 10

// write sends what is pending and the events of us, as chunks of at most
// about 64 KiB, in as few writes as possible. A write must finish within
// dispatch_timeout; the deadline moves only when it gets close, because
// moving it costs a timer update.
func (st *stream) write(us []*Update) error {
	for _, u := range us {
		e := u.Encoded()
		if len(st.pending) > 0 && len(st.pending)+len(e) > maxChunk {
			st.frame()
		}
		st.pending = append(st.pending, e...)
	}
	st.frame()
	if len(st.buf) == 0 {
		return nil
	}
	if dispatch := st.h.cfg.DispatchTimeout.D(); dispatch > 0 {
		if now := time.Now(); st.deadline.Sub(now) < dispatch/2 {
			st.deadline = now.Add(dispatch)
			_ = st.conn.SetWriteDeadline(st.deadline)
		}
	}
	_, err := st.conn.Write(st.buf)
	st.buf = st.buf[:0]
	if cap(st.buf) > 256<<10 {
		st.buf = nil
	}
	if cap(st.pending) > 256<<10 {
		st.pending = nil
	}
	return err
}

// frame moves the pending events into the write buffer as one chunk.
func (st *stream) frame() {
	if len(st.pending) == 0 {
		return
	}
	if !st.chunked {
		st.buf = append(st.buf, st.pending...)
		st.pending = st.pending[:0]
		return
	}
	st.buf = strconv.AppendInt(st.buf, int64(len(st.pending)), 16)
	st.buf = append(st.buf, "\r\n"...)
	st.buf = append(st.buf, st.pending...)
	st.buf = append(st.buf, "\r\n"...)
	st.pending = st.pending[:0]
}

// watchClose reads from the stream's connection until it ends: a client of
// a stream sends nothing more, so the end of input is the client leaving.
func watchClose(c net.Conn, left chan<- struct{}) {
	var b [1]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			close(left)
			return
		}
	}
}

// streamLog writes a stream's log lines with its remote address and topics.
// It builds nothing unless the level is enabled: a logger made with With for
// every stream held preformatted attributes for the stream's whole life.
type streamLog struct{ st *stream }

func (l streamLog) log(level slog.Level, msg string, attrs ...slog.Attr) {
	h := l.st.h.log
	if !h.Enabled(context.Background(), level) {
		return
	}
	attrs = append([]slog.Attr{slog.String("remote_addr", l.st.remote), slog.Any("topics", truncateList(l.st.selectors))}, attrs...)
	h.LogAttrs(context.Background(), level, msg, attrs...)
}

func (l streamLog) Debug(msg string, attrs ...slog.Attr) { l.log(slog.LevelDebug, msg, attrs...) }
func (l streamLog) Info(msg string, attrs ...slog.Attr)  { l.log(slog.LevelInfo, msg, attrs...) }

func (h *Handler) dropped(log streamLog, why string) {
	switch why {
	case "queue_full":
		log.Info("mercure: subscriber dropped: it did not keep up and its queue of updates is full", slog.Int("subscriber_queue", h.cfg.SubscriberQueue))
	case "server_shutdown":
		log.Debug("mercure: subscription closed: the server is shutting down")
	default:
		log.Info("mercure: subscriber dropped", slog.String("why", why))
	}
}

func (h *Handler) writeFailed(log streamLog, err error) {
	if isTimeout(err) {
		log.Info("mercure: subscriber dropped: writing to it took longer than dispatch_timeout", slog.Duration("dispatch_timeout", h.cfg.DispatchTimeout.D()))
		return
	}
	log.Debug("mercure: subscriber gone", slog.String("error", err.Error()))
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// jitter returns a random duration in [80 %, 100 %] of d.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * (0.8 + 0.2*rand.Float64()))
}

func truncateList(s []string) []string {
	if len(s) > 5 {
		s = append(s[:5:5], fmt.Sprintf("… %d more", len(s)-5))
	}
	return s
}
