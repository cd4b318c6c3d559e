package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sort"
	"strings"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/cfcodes"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/hub"
	"github.com/heraldhub/herald/internal/suggest"
)

// MaxBodySize bounds an API request body.
const MaxBodySize = 4 << 20

// Error is an API error, with the protocol's codes.
type Error struct {
	Code    uint32 `json:"code"`
	Message string `json:"message"`
	// Temporary: try again later (the broker is unreachable, or the node is
	// shutting down). Such errors are answered with HTTP 503 in either mode.
	Temporary bool `json:"temporary,omitempty"`
}

func (e *Error) Error() string { return e.Message }

func apiErr(code uint32, base, detail string) *Error {
	if detail != "" {
		base += ": " + detail
	}
	return &Error{Code: code, Message: base}
}

func errInternal(detail string) *Error {
	return apiErr(cfcodes.ErrInternal.Code, "internal server error", detail)
}
func errUnknownChannel(d string) *Error {
	return apiErr(cfcodes.ErrUnknownChannel.Code, "unknown channel", d)
}
func errMethodNotFound(d string) *Error {
	return apiErr(cfcodes.ErrMethodNotFound.Code, "method not found", d)
}
func errBadRequest(d string) *Error { return apiErr(cfcodes.ErrBadRequest.Code, "bad request", d) }
func errNotAvailable(d string) *Error {
	return apiErr(cfcodes.ErrNotAvailable.Code, "not available", d)
}
func errUnrecoverable(d string) *Error {
	return apiErr(cfcodes.ErrUnrecoverablePosition.Code, "unrecoverable position", d)
}

// hubError maps a refused hub operation to the API's codes.
func hubError(e *hub.Error) *Error {
	switch e.Kind {
	case hub.ErrUnknownNamespace:
		return errUnknownChannel(e.Msg)
	case hub.ErrBadChannel, hub.ErrBadRequest:
		return errBadRequest(e.Msg)
	case hub.ErrNotAvailable:
		return errNotAvailable(e.Msg)
	case hub.ErrUnrecoverable:
		return errUnrecoverable(e.Msg)
	case hub.ErrUnavailable, hub.ErrShuttingDown:
		err := errInternal(e.Msg)
		err.Temporary = true
		return err
	}
	return errInternal(e.Error())
}

// transportStatus maps API error codes to HTTP statuses in transport error mode.
func transportStatus(code uint32) int {
	switch code {
	case 100:
		return http.StatusInternalServerError
	case 102, 104:
		return http.StatusNotFound
	case 107, 108:
		return http.StatusBadRequest
	case 112:
		return http.StatusRequestedRangeNotSatisfiable
	case 113:
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

// Handler serves /api/<method>.
type Handler struct {
	cfg      *config.Config
	hub      *hub.Hub
	refusals *auth.RefusalLog
	log      *slog.Logger
	version  string
	key      *auth.SharedKey
	methods  map[string]method
}

type method func(ctx context.Context, body json.RawMessage) (any, *Error)

// New builds the API handler.
func New(cfg *config.Config, h *hub.Hub, refusals *auth.RefusalLog, log *slog.Logger, version string) *Handler {
	a := &Handler{cfg: cfg, hub: h, refusals: refusals, log: log, version: version, key: auth.NewSharedKey(cfg.HTTPAPI.Key)}
	a.methods = map[string]method{
		"publish":        a.publish,
		"broadcast":      a.broadcast,
		"subscribe":      a.subscribe,
		"unsubscribe":    a.unsubscribe,
		"disconnect":     a.disconnect,
		"refresh":        a.refresh,
		"presence":       a.presence,
		"presence_stats": a.presenceStats,
		"history":        a.history,
		"history_remove": a.historyRemove,
		"channels":       a.channels,
		"info":           a.info,
		"send":           a.send,
		// Revocation, with the method names and shapes of Centrifugo PRO.
		"revoke_token":           a.revokeToken,
		"invalidate_user_tokens": a.invalidateUserTokens,
	}
	return a
}

// refusal is the JSON body of a refused request.
type refusal struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (a *Handler) refuse(w http.ResponseWriter, r *http.Request, status int, code, detail, hint string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `apikey realm="herald"`)
		a.log.Info("api request refused", slog.String("reason", code), slog.String("detail", detail),
			slog.String("path", r.URL.Path), slog.String("remote_addr", r.RemoteAddr))
	}
	writeJSON(w, status, refusal{Error: code, Detail: detail, Hint: hint})
}

// presentedKey returns the API key sent with the request and where it was found.
func presentedKey(r *http.Request) (key, where string, bearer bool) {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k, "X-API-Key", false
	}
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, rest, _ := strings.Cut(v, " ")
		switch strings.ToLower(scheme) {
		case "apikey":
			return strings.TrimSpace(rest), "Authorization", false
		case "bearer":
			return "", "", true
		}
	}
	if k := r.URL.Query().Get("api_key"); k != "" {
		return k, "api_key", false
	}
	return "", "", false
}

func (a *Handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	if a.cfg.HTTPAPI.Insecure {
		return true
	}
	key, _, bearer := presentedKey(r)
	if reason := a.key.CheckAPIKey(key, bearer); reason != nil {
		a.refusals.Add(reason, "api", r.RemoteAddr, "")
		a.refuse(w, r, http.StatusUnauthorized, string(reason.Code), reason.Detail, reason.Hint)
		return false
	}
	return true
}

// contentTypeOK accepts JSON and the types curl and form posts send by default
// (the body must still be JSON); anything else is refused with 415.
func contentTypeOK(ct string) (bool, string) {
	if ct == "" {
		return true, ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, "unparsable Content-Type"
	}
	switch {
	case mt == "application/json", strings.HasSuffix(mt, "+json"), mt == "text/plain",
		mt == "application/x-www-form-urlencoded", mt == "application/octet-stream":
		return true, ""
	}
	return false, mt
}

// ServeHTTP implements http.Handler.
func (a *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api")
	name = strings.TrimPrefix(name, "/")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		a.refuse(w, r, http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not allowed; the API takes POST /api/<method> with a JSON body", r.Method), "")
		return
	}
	if !a.authorize(w, r) {
		return
	}
	if ok, got := contentTypeOK(r.Header.Get("Content-Type")); !ok {
		a.refuse(w, r, http.StatusUnsupportedMediaType, "unsupported_content_type",
			fmt.Sprintf("Content-Type %s is not accepted", got), "send the body as application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			a.refuse(w, r, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body is larger than %d bytes", MaxBodySize), "")
			return
		}
		a.refuse(w, r, http.StatusBadRequest, "bad_request", "could not read the body: "+err.Error(), "")
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		a.refuse(w, r, http.StatusBadRequest, "bad_request", "body is not valid JSON: "+jsonError(body),
			"send one JSON object, e.g. {\"channel\":\"news\",\"data\":{\"text\":\"hi\"}}")
		return
	}
	transport := strings.EqualFold(r.Header.Get("X-Centrifugo-Error-Mode"), "transport") ||
		strings.EqualFold(r.Header.Get("X-Herald-Error-Mode"), "transport")

	if name == "batch" {
		res, e := a.batch(r.Context(), body)
		a.respond(w, transport, res, e, true)
		return
	}
	m := a.methods[name]
	if m == nil {
		e := a.unknownMethod(r, name, "")
		if transport {
			writeJSON(w, http.StatusNotFound, e)
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"error": e})
		return
	}
	res, e := m(r.Context(), body)
	if e != nil && e.Code == cfcodes.ErrInternal.Code {
		a.log.Error("api method failed", slog.String("method", name), slog.String("error", e.Message))
	}
	a.respond(w, transport, res, e, false)
}

func (a *Handler) respond(w http.ResponseWriter, transport bool, res any, e *Error, bare bool) {
	if e != nil {
		if e.Temporary {
			// A false success would lose the publication; 503 says "not
			// now", with the reason, whatever the error mode.
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": e})
			return
		}
		if transport {
			writeJSON(w, transportStatus(e.Code), e)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"error": e})
		return
	}
	if bare {
		writeJSON(w, http.StatusOK, res)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": res})
}

// unknownMethod builds error 104 for a method name Herald does not have,
// with the closest known name, and logs it (at INFO, as every refusal).
func (a *Handler) unknownMethod(r *http.Request, name, where string) *Error {
	shown := auth.Truncate(name, 64)
	msg := fmt.Sprintf("unknown API method %q%s", shown, where)
	best, bestD := "", 3
	for _, known := range a.methodNames() {
		if d := suggest.Distance(strings.ToLower(name), known); d < bestD && d < len(known) {
			best, bestD = known, d
		}
	}
	if best != "" {
		msg += fmt.Sprintf("; did you mean %q?", best)
	}
	attrs := []any{slog.String("reason", "method_not_found"), slog.Int("code", 104), slog.String("method", shown)}
	if best != "" {
		attrs = append(attrs, slog.String("did_you_mean", best))
	}
	if r != nil {
		attrs = append(attrs, slog.String("remote_addr", r.RemoteAddr))
	}
	a.log.Info("api request refused: unknown method"+where, attrs...)
	return errMethodNotFound(msg + "; known: " + strings.Join(a.methodNames(), ", "))
}

func (a *Handler) methodNames() []string {
	names := []string{"batch"}
	for n := range a.methods {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func jsonError(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	if err == nil {
		return ""
	}
	return err.Error()
}

// decode reads a method's params; fields of the wrong type are a bad request
// that names the field.
func decode(body json.RawMessage, v any) *Error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errBadRequest(fmt.Sprintf("field %q must be %s, got %s", te.Field, typeName(te.Type.Kind().String()), te.Value))
		}
		return errBadRequest(err.Error())
	}
	return nil
}

func typeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}
