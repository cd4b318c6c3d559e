package admin

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/hub"
	"github.com/heraldhub/herald/internal/metrics"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options build the admin page.
type Options struct {
	Config   *config.Config
	Hub      *hub.Hub
	Verifier *auth.Verifier
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	Version  string
}

// Handler serves /admin. Close ends its live feeds (before the server
// waits for its requests to finish).
type Handler struct {
	o        Options
	key      *auth.SharedKey
	sessions *sessions
	limit    *loginLimit
	pages    map[string]*template.Template
	static   http.Handler
	started  time.Time

	feedMu sync.Mutex
	feeds  int
	done   chan struct{}
	close  sync.Once
}

// maxFeeds bounds the live refusal feeds open at once.
const maxFeeds = 32

// New builds the admin page.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sub, _ := fs.Sub(staticFS, "static")
	h := &Handler{o: o, key: auth.NewSharedKey(o.Config.Admin.Key), sessions: newSessions(o.Config.Admin.SessionTTL.D()),
		limit: newLoginLimit(), pages: map[string]*template.Template{}, started: time.Now(), done: make(chan struct{}),
		static: http.StripPrefix("/admin/static/", http.FileServer(http.FS(sub)))}
	funcs := template.FuncMap{"since": since, "bytes": humanBytes}
	for _, p := range []string{"login", "overview", "refusals", "explain", "channels", "channel"} {
		h.pages[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html"))
	}
	return h
}

// Close ends the live feeds.
func (h *Handler) Close() { h.close.Do(func() { close(h.done) }) }

// ServeHTTP routes the admin page's paths.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin") // not no-referrer: it makes browsers send Origin: null on posts
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	path := r.URL.Path
	switch {
	case path == "/admin":
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
		return
	case strings.HasPrefix(path, "/admin/static/"):
		hd.Set("Cache-Control", "public, max-age=300")
		h.static.ServeHTTP(w, r)
		return
	case path == "/admin/login":
		h.login(w, r)
		return
	}
	if r.Method == http.MethodPost && !sameOrigin(r) {
		h.fail(w, r, http.StatusForbidden, "cross_origin", "this form was posted from another site", "use the admin page itself")
		return
	}
	if !h.authorized(w, r) {
		return
	}
	switch path {
	case "/admin/":
		h.overview(w, r)
	case "/admin/api/overview":
		writeJSON(w, h.overviewData())
	case "/admin/refusals":
		h.render(w, r, "refusals", map[string]any{"Title": "Refusals", "Refusals": h.o.Verifier.Refusals.Recent()})
	case "/admin/api/refusals":
		h.feed(w, r)
	case "/admin/explain":
		h.explain(w, r)
	case "/admin/channels":
		h.channels(w, r)
	case "/admin/channel":
		h.channel(w, r)
	case "/admin/publish":
		h.publish(w, r)
	case "/admin/logout":
		h.logout(w, r)
	default:
		h.fail(w, r, http.StatusNotFound, "not_found", "no such admin page", "start at /admin/")
	}
}

// authorized lets a request through with a live session cookie or the
// admin key in X-Admin-Key or Authorization: Bearer. Otherwise a browser
// asking for a page goes to the login form; anything else gets 401.
func (h *Handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	if c, err := r.Cookie(cookieName); err == nil && h.sessions.valid(c.Value) {
		return true
	}
	presented := auth.AdminKeyOf(r.Header)
	if presented != "" {
		if reason := h.key.CheckAdminKey(presented); reason != nil {
			h.o.Verifier.Refusals.Add(reason, "admin", r.RemoteAddr, "")
			w.Header().Set("WWW-Authenticate", `Bearer realm="herald admin"`)
			h.fail(w, r, http.StatusUnauthorized, string(reason.Code), reason.Detail, reason.Hint)
			return false
		}
		return true
	}
	if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/admin/api/") {
		http.Redirect(w, r, "/admin/login?next="+template.URLQueryEscaper(r.URL.RequestURI()), http.StatusSeeOther)
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="herald admin"`)
	h.fail(w, r, http.StatusUnauthorized, "admin_login_required", "log in at /admin/login or send admin.key", "send admin.key in X-Admin-Key or as Authorization: Bearer <key>")
	return false
}

// login shows the form and checks the key it posts, in constant time. A
// right key starts a session; a wrong one is a refusal (admin_key_wrong).
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{"Title": "Log in", "Next": safeNext(r.URL.Query().Get("next")), "Login": true}
	switch r.Method {
	case http.MethodGet:
		h.render(w, r, "login", data)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		h.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "use GET or POST", "")
		return
	}
	if !sameOrigin(r) {
		h.fail(w, r, http.StatusForbidden, "cross_origin", "the login form was posted from another site", "use the admin page itself")
		return
	}
	if !h.limit.allowed(r.RemoteAddr) {
		w.Header().Set("Retry-After", "60")
		data["Error"] = "too many wrong keys from your address; wait a minute"
		w.WriteHeader(http.StatusTooManyRequests)
		h.render(w, r, "login", data)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "bad_form", "the form could not be read: "+err.Error(), "")
		return
	}
	data["Next"] = safeNext(r.PostForm.Get("next"))
	if reason := h.key.CheckAdminKey(r.PostForm.Get("key")); reason != nil {
		h.limit.failed(r.RemoteAddr)
		h.o.Verifier.Refusals.Add(reason, "admin", r.RemoteAddr, "")
		h.o.Logger.LogAttrs(r.Context(), slog.LevelWarn, "admin page login refused", append(reason.LogAttrs(), slog.String("remote_addr", r.RemoteAddr))...)
		data["Error"] = "wrong admin key"
		w.WriteHeader(http.StatusUnauthorized)
		h.render(w, r, "login", data)
		return
	}
	h.o.Logger.Info("admin page login", slog.String("remote_addr", r.RemoteAddr))
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: h.sessions.create(), Path: "/admin/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(h.o.Config.Admin.SessionTTL.D() / time.Second)})
	http.Redirect(w, r, data["Next"].(string), http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "use POST", "")
		return
	}
	if c, err := r.Cookie(cookieName); err == nil {
		h.sessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/admin/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

// render executes a page into a buffer first, so a template error is a 500
// and not half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, page string, data map[string]any) {
	data["Node"] = h.o.Config.NodeName
	data["Version"] = h.o.Version
	data["Page"] = page
	var b bytes.Buffer
	if err := h.pages[page].Execute(&b, data); err != nil {
		h.o.Logger.Error("admin page failed", slog.String("page", page), slog.String("error", err.Error()))
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// fail answers with a code, a detail and a hint: JSON for scripts, a short
// page for browsers.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, code, detail, hint string) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_ = failPage.Execute(w, map[string]string{"C": code, "D": detail, "H": hint})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "detail": detail, "hint": hint})
}

var failPage = template.Must(template.New("fail").Parse(
	`<!doctype html><title>{{.C}}</title><p><b>{{.C}}</b>: {{.D}}</p><p>{{.H}}</p><p><a href="/admin/">admin page</a></p>`))

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
