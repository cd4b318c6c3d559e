// Package api is Herald's server HTTP API (POST /api/<method>), compatible with
// Centrifugo's: publish, broadcast, subscribe, unsubscribe, disconnect, refresh,
// presence, presence_stats, history, history_remove, channels, info and batch.
package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/hub"
)

// MaxBodySize bounds an API request body.
const MaxBodySize = 4 << 20

// Error is an API error, with the protocol's codes.
type Error struct {
	Code    uint32 `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

func apiErr(code uint32, base, detail string) *Error {
	if detail != "" {
		base += ": " + detail
	}
	return &Error{Code: code, Message: base}
}

func errInternal(detail string) *Error  { return apiErr(100, "internal server error", detail) }
func errUnknownChannel(d string) *Error { return apiErr(102, "unknown channel", d) }
func errMethodNotFound(d string) *Error { return apiErr(104, "method not found", d) }
func errBadRequest(d string) *Error     { return apiErr(107, "bad request", d) }
func errNotAvailable(d string) *Error   { return apiErr(108, "not available", d) }
func errUnrecoverable(d string) *Error  { return apiErr(112, "unrecoverable position", d) }

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
	verifier *auth.Verifier
	log      *slog.Logger
	version  string
	keySum   [32]byte
	methods  map[string]method
}

type method func(body json.RawMessage) (any, *Error)

// New builds the API handler.
func New(cfg *config.Config, h *hub.Hub, verifier *auth.Verifier, log *slog.Logger, version string) *Handler {
	a := &Handler{cfg: cfg, hub: h, verifier: verifier, log: log, version: version, keySum: sha256.Sum256([]byte(cfg.HTTPAPI.Key))}
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
	if a.cfg.HTTPAPI.Key == "" {
		a.refuse(w, r, http.StatusUnauthorized, "api_key_not_configured",
			"the server API has no key configured, so it refuses every request",
			"set http_api.key (HERALD_HTTP_API_KEY or --api-key)")
		return false
	}
	key, _, bearer := presentedKey(r)
	if key == "" {
		hint := "send the key in the X-API-Key header or as Authorization: apikey <key>"
		if bearer {
			hint = "the API key goes in X-API-Key or Authorization: apikey <key>, not Authorization: Bearer"
		}
		a.refuse(w, r, http.StatusUnauthorized, "api_key_missing", "no API key in the request", hint)
		return false
	}
	// Compare digests so that neither the content nor the length of the key
	// leaks through timing.
	sum := sha256.Sum256([]byte(key))
	if subtle.ConstantTimeCompare(sum[:], a.keySum[:]) != 1 {
		a.refuse(w, r, http.StatusUnauthorized, "api_key_wrong", "the API key does not match http_api.key",
			"check that the publisher and Herald use the same key")
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
		res, e := a.batch(body)
		a.respond(w, transport, res, e, true)
		return
	}
	m := a.methods[name]
	if m == nil {
		e := errMethodNotFound(fmt.Sprintf("unknown API method %q; known: %s", name, strings.Join(a.methodNames(), ", ")))
		if transport {
			writeJSON(w, http.StatusNotFound, e)
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"error": e})
		return
	}
	res, e := m(body)
	if e != nil && e.Code == 100 {
		a.log.Error("api method failed", slog.String("method", name), slog.String("error", e.Message))
	}
	a.respond(w, transport, res, e, false)
}

func (a *Handler) respond(w http.ResponseWriter, transport bool, res any, e *Error, bare bool) {
	if e != nil {
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

func (a *Handler) publishOne(channel string, req *PublishRequest) (*PublishResult, *Error) {
	ns, e := a.resolve(channel)
	if e != nil {
		return nil, e
	}
	if req.B64Data != "" && len(req.Data) == 0 {
		return nil, errBadRequest("b64data is not supported: JSON clients cannot receive binary data; send JSON in data")
	}
	if len(req.Data) == 0 || string(req.Data) == "null" {
		return nil, errBadRequest("data is required")
	}
	data, err := hub.NormalizeData(req.Data)
	if err != nil {
		return nil, errBadRequest(err.Error())
	}
	opts := *ns
	if req.SkipHistory {
		opts.HistorySize, opts.HistoryTTL = 0, 0
	}
	sp, err := a.hub.Publish(channel, &opts, &broker.Publication{Data: data, Tags: req.Tags})
	if err != nil {
		return nil, errInternal(err.Error())
	}
	return &PublishResult{Offset: sp.Offset, Epoch: sp.Epoch}, nil
}

func (a *Handler) publish(body json.RawMessage) (any, *Error) {
	var req PublishRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	return a.publishOne(req.Channel, &req)
}

func (a *Handler) broadcast(body json.RawMessage) (any, *Error) {
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
	type response struct {
		Error  *Error         `json:"error,omitempty"`
		Result *PublishResult `json:"result,omitempty"`
	}
	out := make([]response, len(req.Channels))
	for i, ch := range req.Channels {
		res, e := a.publishOne(ch, &req.PublishRequest)
		out[i] = response{Error: e, Result: res}
	}
	return map[string]any{"responses": out}, nil
}

func (a *Handler) userClients(user, client string) []hub.Client {
	return a.hub.UserClients(user, client)
}

func (a *Handler) subscribe(body json.RawMessage) (any, *Error) {
	var req struct {
		User         string                 `json:"user"`
		Channel      string                 `json:"channel"`
		Client       string                 `json:"client"`
		Info         json.RawMessage        `json:"info"`
		Data         json.RawMessage        `json:"data"`
		ExpireAt     int64                  `json:"expire_at"`
		RecoverSince *broker.StreamPosition `json:"recover_since"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if _, e := a.resolve(req.Channel); e != nil {
		return nil, e
	}
	opts := hub.ServerSubscription{RecoverSince: req.RecoverSince}
	var err error
	if len(req.Info) > 0 {
		if opts.Info, err = hub.NormalizeData(req.Info); err != nil {
			return nil, errBadRequest("info: " + err.Error())
		}
	}
	if len(req.Data) > 0 {
		if opts.Data, err = hub.NormalizeData(req.Data); err != nil {
			return nil, errBadRequest("data: " + err.Error())
		}
	}
	if req.ExpireAt > 0 {
		opts.ExpireAt = time.Unix(req.ExpireAt, 0)
	}
	for _, c := range a.userClients(req.User, req.Client) {
		if err := c.ServerSubscribe(req.Channel, opts); err != nil {
			return nil, errInternal(err.Error())
		}
	}
	return struct{}{}, nil
}

func (a *Handler) unsubscribe(body json.RawMessage) (any, *Error) {
	var req struct {
		User    string `json:"user"`
		Channel string `json:"channel"`
		Client  string `json:"client"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if _, e := a.resolve(req.Channel); e != nil {
		return nil, e
	}
	for _, c := range a.userClients(req.User, req.Client) {
		c.ServerUnsubscribe(req.Channel, 2000, "server unsubscribe")
	}
	return struct{}{}, nil
}

func (a *Handler) disconnect(body json.RawMessage) (any, *Error) {
	var req struct {
		User       string   `json:"user"`
		Client     string   `json:"client"`
		Whitelist  []string `json:"whitelist"`
		Disconnect *struct {
			Code   uint32 `json:"code"`
			Reason string `json:"reason"`
		} `json:"disconnect"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	code, reason := uint32(3503), "force disconnect"
	if req.Disconnect != nil {
		if req.Disconnect.Code < 3000 || req.Disconnect.Code > 4999 {
			return nil, errBadRequest(fmt.Sprintf("disconnect code %d is out of range (3000-4999; applications use 4000-4999)", req.Disconnect.Code))
		}
		if len(req.Disconnect.Reason) > 123 {
			return nil, errBadRequest("disconnect reason is longer than 123 bytes (the WebSocket close-reason limit)")
		}
		code, reason = req.Disconnect.Code, req.Disconnect.Reason
	}
	keep := map[string]bool{}
	for _, id := range req.Whitelist {
		keep[id] = true
	}
	for _, c := range a.userClients(req.User, req.Client) {
		if !keep[c.ID()] {
			c.Disconnect(code, reason)
		}
	}
	return struct{}{}, nil
}

func (a *Handler) refresh(body json.RawMessage) (any, *Error) {
	var req struct {
		User     string          `json:"user"`
		Client   string          `json:"client"`
		Expired  bool            `json:"expired"`
		ExpireAt int64           `json:"expire_at"`
		Info     json.RawMessage `json:"info"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	r := hub.ServerRefresh{Expired: req.Expired}
	if req.ExpireAt > 0 {
		r.ExpireAt = time.Unix(req.ExpireAt, 0)
	}
	if len(req.Info) > 0 {
		info, err := hub.NormalizeData(req.Info)
		if err != nil {
			return nil, errBadRequest("info: " + err.Error())
		}
		r.Info = info
	}
	for _, c := range a.userClients(req.User, req.Client) {
		c.ServerRefresh(r)
	}
	return struct{}{}, nil
}

// send delivers an asynchronous message push to a user's connections (or one
// client). It is a Herald extension: the SDKs emit it as a "message" event.
func (a *Handler) send(body json.RawMessage) (any, *Error) {
	var req struct {
		User   string          `json:"user"`
		Client string          `json:"client"`
		Data   json.RawMessage `json:"data"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if len(req.Data) == 0 || string(req.Data) == "null" {
		return nil, errBadRequest("data is required")
	}
	data, err := hub.NormalizeData(req.Data)
	if err != nil {
		return nil, errBadRequest(err.Error())
	}
	for _, c := range a.userClients(req.User, req.Client) {
		c.Send(data)
	}
	return struct{}{}, nil
}

// defaultRevocationKeep is how long a revocation is kept when the request
// does not say when the revoked tokens expire.
const defaultRevocationKeep = 30 * 24 * time.Hour

func revocationUntil(expireAt int64) (time.Time, *Error) {
	switch {
	case expireAt < 0:
		return time.Time{}, errBadRequest("expire_at must be a unix time in seconds")
	case expireAt == 0:
		return time.Now().Add(defaultRevocationKeep), nil
	}
	return time.Unix(expireAt, 0), nil
}

// revokeToken revokes one token by its jti ("uid"), for new and live connections.
func (a *Handler) revokeToken(body json.RawMessage) (any, *Error) {
	var req struct {
		UID      string `json:"uid"`
		ExpireAt int64  `json:"expire_at"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.UID == "" {
		return nil, errBadRequest("uid (the token's jti) is required")
	}
	until, e := revocationUntil(req.ExpireAt)
	if e != nil {
		return nil, e
	}
	a.log.Info("token revoked", slog.String("jti", req.UID), slog.Time("until", until))
	a.verifier.Revocations().RevokeToken(req.UID, until)
	return struct{}{}, nil
}

// invalidateUserTokens revokes every token of a user issued before a time
// (default now), for new and live connections.
func (a *Handler) invalidateUserTokens(body json.RawMessage) (any, *Error) {
	var req struct {
		User         string `json:"user"`
		IssuedBefore int64  `json:"issued_before"`
		ExpireAt     int64  `json:"expire_at"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.User == "" {
		return nil, errBadRequest("user is required")
	}
	before := time.Now()
	if req.IssuedBefore > 0 {
		before = time.Unix(req.IssuedBefore, 0)
	}
	until, e := revocationUntil(req.ExpireAt)
	if e != nil {
		return nil, e
	}
	a.log.Info("user tokens revoked", slog.String("user", req.User), slog.Time("issued_before", before), slog.Time("until", until))
	a.verifier.Revocations().RevokeUser(req.User, before, until)
	return struct{}{}, nil
}

type channelReq struct {
	Channel string `json:"channel"`
}

func (a *Handler) presenceNS(body json.RawMessage) (string, *Error) {
	var req channelReq
	if e := decode(body, &req); e != nil {
		return "", e
	}
	ns, e := a.resolve(req.Channel)
	if e != nil {
		return "", e
	}
	if !ns.Presence {
		return "", errNotAvailable(fmt.Sprintf("presence is off in %s", ns.Label()))
	}
	return req.Channel, nil
}

func (a *Handler) presence(body json.RawMessage) (any, *Error) {
	ch, e := a.presenceNS(body)
	if e != nil {
		return nil, e
	}
	p, err := a.hub.Presence().Presence(ch)
	if err != nil {
		return nil, errInternal(err.Error())
	}
	return map[string]any{"presence": p}, nil
}

func (a *Handler) presenceStats(body json.RawMessage) (any, *Error) {
	ch, e := a.presenceNS(body)
	if e != nil {
		return nil, e
	}
	st, err := a.hub.Presence().PresenceStats(ch)
	if err != nil {
		return nil, errInternal(err.Error())
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

func (a *Handler) history(body json.RawMessage) (any, *Error) {
	var req struct {
		Channel string                 `json:"channel"`
		Limit   int64                  `json:"limit"`
		Since   *broker.StreamPosition `json:"since"`
		Reverse bool                   `json:"reverse"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	ns, e := a.resolve(req.Channel)
	if e != nil {
		return nil, e
	}
	if !ns.HistoryEnabled() {
		return nil, errNotAvailable(fmt.Sprintf("history is off in %s (needs history_size and history_ttl)", ns.Label()))
	}
	// The server API is trusted, but replies stay bounded.
	const apiHistoryLimit = 10000
	pubs, top, he := hub.ReadHistory(a.hub, req.Channel, ns, req.Limit, req.Since, req.Reverse, apiHistoryLimit)
	if he != nil {
		switch he.Kind {
		case hub.HistoryBadRequest:
			return nil, errBadRequest(he.Msg)
		case hub.HistoryUnrecoverable:
			return nil, errUnrecoverable(he.Msg)
		default:
			return nil, errInternal(he.Msg)
		}
	}
	out := make([]wirePublication, 0, len(pubs))
	for _, p := range pubs {
		out = append(out, wirePublication{Data: p.Data, Info: p.Info, Offset: p.Offset, Tags: p.Tags})
	}
	res := map[string]any{"offset": top.Offset, "epoch": top.Epoch}
	if len(out) > 0 {
		res["publications"] = out
	}
	return res, nil
}

func (a *Handler) historyRemove(body json.RawMessage) (any, *Error) {
	var req channelReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if _, e := a.resolve(req.Channel); e != nil {
		return nil, e
	}
	if err := a.hub.Broker().RemoveHistory(req.Channel); err != nil {
		return nil, errInternal(err.Error())
	}
	return struct{}{}, nil
}

func (a *Handler) channels(body json.RawMessage) (any, *Error) {
	var req struct {
		Pattern string `json:"pattern"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	return map[string]any{"channels": a.hub.Channels(req.Pattern)}, nil
}

func (a *Handler) info(body json.RawMessage) (any, *Error) {
	st := a.hub.Stats()
	node := map[string]any{
		"uid":          a.hub.NodeID,
		"name":         a.hub.NodeName,
		"version":      a.version,
		"num_clients":  st.NumClients,
		"num_users":    st.NumUsers,
		"num_channels": st.NumChannels,
		"num_subs":     st.NumSubs,
		"uptime":       int64(st.Uptime / time.Second),
	}
	return map[string]any{"nodes": []any{node}}, nil
}

// maxBatch bounds the commands of one batch.
const maxBatch = 1000

func (a *Handler) batch(body json.RawMessage) (any, *Error) {
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
				replies = append(replies, map[string]any{"error": errMethodNotFound(fmt.Sprintf("unknown API method %q in command %d", name, i))})
				continue
			}
			res, e := m(params)
			if e != nil {
				replies = append(replies, map[string]any{"error": e})
			} else {
				replies = append(replies, map[string]any{name: res})
			}
		}
	}
	return map[string]any{"replies": replies}, nil
}
