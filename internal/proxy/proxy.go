package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/metrics"
)

// Defaults of Config.
const (
	DefaultTimeout         = time.Second
	DefaultMaxConcurrent   = 64
	DefaultBreakerFailures = 20
	DefaultBreakerCooldown = 5 * time.Second
	// MaxBodySize is the largest response body accepted from a backend.
	MaxBodySize = 1 << 20
)

const (
	maxDetail     = 200  // bytes of a Reason's Detail
	snippetLen    = 64   // bytes of a body shown in a Detail
	errBodyRead   = 8192 // bytes read of a non-2xx body
	maxWarnedKeys = 256  // distinct unknown keys logged per Proxy
)

// StatusTransform turns a backend HTTP status into a decision instead of a
// failure (Centrifugo's http.status_to_code_transforms). Exactly one of
// ToError and ToDisconnect is set.
type StatusTransform struct {
	StatusCode   int
	ToError      *ErrorReply
	ToDisconnect *DisconnectReply
}

// Config configures one backend proxy.
type Config struct {
	Name     string        // for logs ("connect", or a named proxy)
	Endpoint string        // http:// or https:// URL
	Timeout  time.Duration // default 1s
	// HTTPHeaders is the allowlist of transport headers of the client's
	// upgrade request to forward (case-insensitive), e.g. Cookie, Authorization.
	HTTPHeaders []string
	// EmulatedHeaders is the allowlist of headers the client sent inside its
	// connect message (untrusted); a transport header of the same name wins.
	EmulatedHeaders []string
	// Cookies is the allowlist of cookies of the upgrade request to forward,
	// in a Cookie header of their own (when Cookie itself is not in HTTPHeaders).
	Cookies []string
	// StaticHeaders are added to every request (lowest precedence).
	StaticHeaders    map[string]string
	StatusTransforms []StatusTransform
	// MaxConcurrent bounds the requests in flight (default 64); over it a
	// call fails at once with ProxyOverloaded (temporary).
	MaxConcurrent int
	// BreakerFailures consecutive transport failures (timeout, unreachable,
	// 5xx) open the circuit (default 20).
	BreakerFailures int
	// BreakerCooldown is how long an open circuit refuses calls
	// (ProxyCircuitOpen, temporary), default 5s; then one trial call.
	BreakerCooldown time.Duration
	// Client sends the requests; nil = a default client that follows no
	// redirects (a 3xx is a ProxyHTTPStatus).
	Client *http.Client
	// CAFile is a PEM bundle of CA certificates trusted for an https
	// endpoint, besides the system's (used when Client is nil).
	CAFile string
	// Setting is the configuration path of the proxy ("client.proxy.connect"),
	// for hints; "" names the proxy by Name.
	Setting string
	Logger  *slog.Logger // may be nil
	// Metrics, when set, counts calls by outcome and times them.
	Metrics *metrics.Metrics
}

// Headers are what a call may forward: the transport headers of the client's
// upgrade request and the headers it sent inside its connect message.
type Headers struct {
	Transport http.Header
	Emulated  map[string]string
}

// Base holds the fields common to every proxy request.
type Base struct {
	Client    string `json:"client"`
	Transport string `json:"transport"` // "websocket"
	Protocol  string `json:"protocol"`  // "json"
	Encoding  string `json:"encoding"`  // "json"
}

// ConnectRequest asks whether a client that presented no token may connect.
type ConnectRequest struct {
	Base
	Name     string          `json:"name,omitempty"`
	Version  string          `json:"version,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Channels []string        `json:"channels,omitempty"` // keys of connect.subs
	// User and Meta are set when the proxy is asked after a verified token
	// (client.proxy.connect_mode: always): the token says who the client is.
	User string          `json:"user,omitempty"`
	Meta json.RawMessage `json:"meta,omitempty"`
}

// ConnectResult is an accepted connection.
type ConnectResult struct {
	User     string // empty: anonymous (only when allowed)
	ExpireAt int64  // unix seconds; 0 = no expiry
	Info     json.RawMessage
	Data     json.RawMessage
	Channels []string
	Subs     map[string]SubscribeOptions
	Meta     json.RawMessage
}

// SubscribeOptions are the options of a server-side subscription from a
// connect result. Override is the raw JSON object (see auth.DecodeOverride).
type SubscribeOptions struct {
	Info     json.RawMessage
	Data     json.RawMessage
	Override json.RawMessage
}

// RefreshRequest asks whether a connection may live on.
type RefreshRequest struct {
	Base
	User string          `json:"user"`
	Meta json.RawMessage `json:"meta,omitempty"`
}

// RefreshResult extends (or expires) a connection.
type RefreshResult struct {
	Expired  bool
	ExpireAt int64
	Info     json.RawMessage
	Meta     json.RawMessage
}

// SubscribeRequest asks whether a connection may subscribe to a channel.
type SubscribeRequest struct {
	Base
	User    string          `json:"user"`
	Channel string          `json:"channel"`
	Token   string          `json:"token,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Meta    json.RawMessage `json:"meta,omitempty"`
}

// SubscribeResult is an accepted subscription. Override is a raw JSON object.
type SubscribeResult struct {
	Info     json.RawMessage
	Data     json.RawMessage
	Override json.RawMessage
	ExpireAt int64
}

// PublishRequest asks whether a connection may publish data to a channel.
type PublishRequest struct {
	Base
	User    string          `json:"user"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data,omitempty"`
	Meta    json.RawMessage `json:"meta,omitempty"`
}

// PublishResult is an accepted publication; a non-empty Data replaces the client's.
type PublishResult struct {
	Data        json.RawMessage
	SkipHistory bool
	Tags        map[string]string
}

// SubRefreshRequest asks whether a subscription may live on.
type SubRefreshRequest struct {
	Base
	User    string          `json:"user"`
	Channel string          `json:"channel"`
	Meta    json.RawMessage `json:"meta,omitempty"`
}

// SubRefreshResult extends (or expires) a subscription.
type SubRefreshResult struct {
	Expired  bool
	ExpireAt int64
	Info     json.RawMessage
}

// RPCRequest carries a client rpc command.
type RPCRequest struct {
	Base
	User   string          `json:"user"`
	Method string          `json:"method,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
	Meta   json.RawMessage `json:"meta,omitempty"`
}

// RPCResult is the answer to an rpc command.
type RPCResult struct {
	Data json.RawMessage
}

// ErrorReply is the backend's refusal, sent to the client as a protocol error.
type ErrorReply struct {
	Code      uint32 `json:"code"`
	Message   string `json:"message"`
	Temporary bool   `json:"temporary,omitempty"`
}

// DisconnectReply is the backend's order to close the connection.
type DisconnectReply struct {
	Code   uint32 `json:"code"`
	Reason string `json:"reason"`
}

// Proxy calls one backend endpoint. It is safe for concurrent use.
type Proxy struct {
	name       string
	setting    string // configuration path, for hints
	caFile     string
	endpoint   string // the URL requests go to
	shown      string // the endpoint without credentials or query, for details and logs
	timeout    time.Duration
	client     *http.Client
	log        *slog.Logger
	httpAllow  map[string]bool // lower-case header names
	emuAllow   map[string]bool
	cookies    map[string]bool // cookie names (case-sensitive)
	static     http.Header
	transforms map[int]StatusTransform

	sem       chan struct{}
	saturated atomic.Bool
	br        breaker

	warnMu sync.Mutex
	warned map[string]struct{}

	metrics *metrics.Metrics
}

// New validates c, applies the defaults and returns the proxy.
func New(c Config) (*Proxy, error) {
	u, err := url.Parse(strings.TrimSpace(c.Endpoint))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the message would repeat the URL, which may carry credentials
		}
		return nil, fmt.Errorf("endpoint is not a URL: %v", err)
	}
	switch u.Scheme {
	case "http", "https":
	case "grpc":
		return nil, fmt.Errorf("endpoint %s: grpc:// proxies are not supported; use an http:// or https:// endpoint", redactURL(u))
	default:
		return nil, fmt.Errorf("endpoint %q: the scheme must be http or https", redactURL(u))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("endpoint %q has no host", redactURL(u))
	}
	if c.Timeout < 0 || c.MaxConcurrent < 0 || c.BreakerFailures < 0 || c.BreakerCooldown < 0 {
		return nil, errors.New("timeout, max_concurrent, breaker failures and cool-down must not be negative")
	}
	p := &Proxy{
		name: c.Name, setting: c.Setting, caFile: c.CAFile, endpoint: u.String(), shown: redactURL(u), timeout: c.Timeout,
		client: c.Client, log: c.Logger, warned: map[string]struct{}{}, metrics: c.Metrics,
		transforms: map[int]StatusTransform{},
	}
	if p.name == "" {
		p.name = "proxy"
	}
	if p.setting == "" {
		p.setting = "the " + p.name + " proxy"
	}
	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("proxy", p.name, "endpoint", p.shown)
	max := c.MaxConcurrent
	if max == 0 {
		max = DefaultMaxConcurrent
	}
	p.sem = make(chan struct{}, max)
	p.br = breaker{threshold: c.BreakerFailures, cooldown: c.BreakerCooldown, now: time.Now}
	if p.br.threshold == 0 {
		p.br.threshold = DefaultBreakerFailures
	}
	if p.br.cooldown == 0 {
		p.br.cooldown = DefaultBreakerCooldown
	}
	if p.httpAllow, err = allowlist("http_headers", c.HTTPHeaders); err != nil {
		return nil, err
	}
	if p.emuAllow, err = allowlist("emulated_headers", c.EmulatedHeaders); err != nil {
		return nil, err
	}
	if len(c.Cookies) > 0 {
		p.cookies = map[string]bool{}
		for _, name := range c.Cookies {
			p.cookies[name] = true
		}
	}
	p.static = http.Header{}
	for k, v := range c.StaticHeaders {
		if err := checkHeaderName("static_headers", k); err != nil {
			return nil, err
		}
		if !validHeaderValue(v) {
			return nil, fmt.Errorf("static_headers: the value of %q has a control character", k)
		}
		p.static.Set(k, v)
	}
	for _, t := range c.StatusTransforms {
		if t.StatusCode < 300 || t.StatusCode > 599 {
			return nil, fmt.Errorf("status_to_code_transforms: status %d is not a non-2xx HTTP status (300-599)", t.StatusCode)
		}
		if (t.ToError == nil) == (t.ToDisconnect == nil) {
			return nil, fmt.Errorf("status_to_code_transforms: status %d needs exactly one of to_error and to_disconnect", t.StatusCode)
		}
		if t.ToError != nil && (t.ToError.Code < 100 || t.ToError.Code > 1999) {
			return nil, fmt.Errorf("status_to_code_transforms: status %d: error code %d is outside 100-1999 (applications use 400-1999)", t.StatusCode, t.ToError.Code)
		}
		if t.ToDisconnect != nil && (t.ToDisconnect.Code < 4000 || t.ToDisconnect.Code > 4999) {
			return nil, fmt.Errorf("status_to_code_transforms: status %d: disconnect code %d is outside 4000-4999", t.StatusCode, t.ToDisconnect.Code)
		}
		if _, dup := p.transforms[t.StatusCode]; dup {
			return nil, fmt.Errorf("status_to_code_transforms: status %d is mapped twice", t.StatusCode)
		}
		p.transforms[t.StatusCode] = t
	}
	if p.client == nil {
		if p.client, err = newClient(c.CAFile, max); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// newClient is a proxy's default client: it trusts caFile's CAs too, keeps
// maxIdle connections to the backend, and follows no redirect.
func newClient(caFile string, maxIdle int) (*http.Client, error) {
	tr, err := NewTransport(caFile)
	if err != nil {
		return nil, err
	}
	tr.MaxIdleConnsPerHost = maxIdle
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}, nil
}

// NewTransport returns the HTTP transport of a proxy: Go's defaults, trusting
// the CA certificates of the PEM file caFile besides the system's when set.
// (The system's roots are read at start from the usual places, or from the
// files named by SSL_CERT_FILE and SSL_CERT_DIR.)
func NewTransport(caFile string) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile == "" {
		return tr, nil
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// Name returns the proxy's name as given in its Config.
func (p *Proxy) Name() string { return p.name }

// Endpoint returns the endpoint without credentials or query, as logs show it.
func (p *Proxy) Endpoint() string { return p.shown }

// Timeout returns the proxy's request timeout.
func (p *Proxy) Timeout() time.Duration { return p.timeout }

// Close releases idle connections.
func (p *Proxy) Close() { p.client.CloseIdleConnections() }

// Temporary reports whether the failure may go away on its own, so the
// client should retry with backoff: a timeout, an unreachable backend, the
// concurrency limit, an open circuit, and a 5xx answer of the backend.
func Temporary(r *auth.Reason) bool {
	if r == nil {
		return false
	}
	switch r.Code {
	case auth.ProxyTimeout, auth.ProxyUnreachable, auth.ProxyOverloaded, auth.ProxyCircuitOpen:
		return true
	case auth.ProxyHTTPStatus:
		return strings.HasPrefix(r.Detail, "backend answered 5")
	}
	return false
}

// outcome is a checked top-level answer: exactly one of result, error, disconnect.
type outcome struct {
	result json.RawMessage
	err    *ErrorReply
	disc   *DisconnectReply
}

// Connect asks the backend whether a client that presented no token may
// connect. Exactly one of the result, the error, the disconnect or the
// reason is non-nil. An empty user in the result is ProxyEmptyUser unless
// allowAnonymous.
func (p *Proxy) Connect(ctx context.Context, req *ConnectRequest, h Headers, allowAnonymous bool) (_ *ConnectResult, errReply *ErrorReply, disc *DisconnectReply, refused *auth.Reason) {
	defer p.observe("connect", time.Now(), &errReply, &disc, &refused)
	d := p.decoder("connect")
	out, r := p.call(ctx, d, req, h, "")
	if r != nil {
		return nil, nil, nil, r
	}
	if out.err != nil || out.disc != nil {
		return nil, out.err, out.disc, nil
	}
	res := &ConnectResult{}
	if r := d.object("result", out.result, []spec{
		{key: "user", typ: tString, dst: &res.User, hint: `send the user ID as a JSON string, e.g. "user":"56"`},
		{key: "expire_at", typ: tUnix, dst: &res.ExpireAt},
		{key: "info", typ: tAny, dst: &res.Info},
		{key: "data", typ: tAny, dst: &res.Data},
		{key: "channels", typ: tStrings, dst: &res.Channels},
		{key: "subs", typ: tSubs, dst: &res.Subs},
		{key: "meta", typ: tObject, dst: &res.Meta},
		{key: "b64info", typ: tBinary}, {key: "b64data", typ: tBinary},
		{key: "caps", typ: tIgnored}, {key: "labels", typ: tIgnored},
	}); r != nil {
		return nil, nil, nil, p.refuse(r)
	}
	if res.User == "" {
		if !allowAnonymous {
			return nil, nil, nil, p.refuse(reason(auth.ProxyEmptyUser,
				"connect proxy result has an empty user; anonymous connections are not allowed",
				`answer {"result":{"user":"<user ID>"}} for a known user, or {"error":{...}}/{"disconnect":{...}} to refuse; set client.allow_anonymous_connect_without_token only if anonymous connections are intended`))
		}
		p.log.Info("connect proxy accepted an anonymous connection (the result has an empty user)")
	}
	return res, nil, nil, nil
}

// Refresh asks the backend whether a connection may live on. Error and
// disconnect answers are not honoured for refresh (as in Centrifugo): they
// are logged and returned as a ProxyBadResponse reason, like any failure,
// after which the caller retries later.
func (p *Proxy) Refresh(ctx context.Context, req *RefreshRequest, h Headers) (_ *RefreshResult, refused *auth.Reason) {
	defer p.observe("refresh", time.Now(), nil, nil, &refused)
	d := p.decoder("refresh")
	out, r := p.call(ctx, d, req, h, "")
	if r != nil {
		return nil, r
	}
	if r := p.resultOnly(d, out); r != nil {
		return nil, r
	}
	res := &RefreshResult{}
	if r := d.object("result", out.result, []spec{
		{key: "expired", typ: tBool, dst: &res.Expired},
		{key: "expire_at", typ: tUnix, dst: &res.ExpireAt},
		{key: "info", typ: tAny, dst: &res.Info},
		{key: "meta", typ: tObject, dst: &res.Meta},
		{key: "b64info", typ: tBinary},
	}); r != nil {
		return nil, p.refuse(r)
	}
	return res, nil
}

// Subscribe asks the backend whether a connection may subscribe to a channel.
func (p *Proxy) Subscribe(ctx context.Context, req *SubscribeRequest, h Headers) (_ *SubscribeResult, errReply *ErrorReply, disc *DisconnectReply, refused *auth.Reason) {
	defer p.observe("subscribe", time.Now(), &errReply, &disc, &refused)
	d := p.decoder("subscribe")
	out, r := p.call(ctx, d, req, h, req.Token)
	if r != nil {
		return nil, nil, nil, r
	}
	if out.err != nil || out.disc != nil {
		return nil, out.err, out.disc, nil
	}
	res := &SubscribeResult{}
	if r := d.object("result", out.result, []spec{
		{key: "info", typ: tAny, dst: &res.Info},
		{key: "data", typ: tAny, dst: &res.Data},
		{key: "override", typ: tObject, dst: &res.Override},
		{key: "expire_at", typ: tUnix, dst: &res.ExpireAt},
		{key: "b64info", typ: tBinary}, {key: "b64data", typ: tBinary},
		{key: "allow", typ: tIgnored}, {key: "server_tags_filter", typ: tIgnored},
	}); r != nil {
		return nil, nil, nil, p.refuse(r)
	}
	return res, nil, nil, nil
}

// Publish asks the backend whether a connection may publish; its data, when
// set, replaces the client's.
func (p *Proxy) Publish(ctx context.Context, req *PublishRequest, h Headers) (_ *PublishResult, errReply *ErrorReply, disc *DisconnectReply, refused *auth.Reason) {
	defer p.observe("publish", time.Now(), &errReply, &disc, &refused)
	d := p.decoder("publish")
	out, r := p.call(ctx, d, req, h, "")
	if r != nil {
		return nil, nil, nil, r
	}
	if out.err != nil || out.disc != nil {
		return nil, out.err, out.disc, nil
	}
	res := &PublishResult{}
	if r := d.object("result", out.result, []spec{
		{key: "data", typ: tAny, dst: &res.Data},
		{key: "skip_history", typ: tBool, dst: &res.SkipHistory},
		{key: "tags", typ: tStringMap, dst: &res.Tags},
		{key: "b64data", typ: tBinary},
		{key: "idempotency_key", typ: tIgnored}, {key: "delta", typ: tIgnored},
		{key: "version", typ: tIgnored}, {key: "version_epoch", typ: tIgnored},
	}); r != nil {
		return nil, nil, nil, p.refuse(r)
	}
	return res, nil, nil, nil
}

// SubRefresh asks the backend whether a subscription may live on. Error and
// disconnect answers are not honoured (see Refresh).
func (p *Proxy) SubRefresh(ctx context.Context, req *SubRefreshRequest, h Headers) (_ *SubRefreshResult, refused *auth.Reason) {
	defer p.observe("sub_refresh", time.Now(), nil, nil, &refused)
	d := p.decoder("sub_refresh")
	out, r := p.call(ctx, d, req, h, "")
	if r != nil {
		return nil, r
	}
	if r := p.resultOnly(d, out); r != nil {
		return nil, r
	}
	res := &SubRefreshResult{}
	if r := d.object("result", out.result, []spec{
		{key: "expired", typ: tBool, dst: &res.Expired},
		{key: "expire_at", typ: tUnix, dst: &res.ExpireAt},
		{key: "info", typ: tAny, dst: &res.Info},
		{key: "b64info", typ: tBinary},
	}); r != nil {
		return nil, p.refuse(r)
	}
	return res, nil
}

// RPC passes a client rpc command to the backend.
func (p *Proxy) RPC(ctx context.Context, req *RPCRequest, h Headers) (_ *RPCResult, errReply *ErrorReply, disc *DisconnectReply, refused *auth.Reason) {
	defer p.observe("rpc", time.Now(), &errReply, &disc, &refused)
	d := p.decoder("rpc")
	out, r := p.call(ctx, d, req, h, "")
	if r != nil {
		return nil, nil, nil, r
	}
	if out.err != nil || out.disc != nil {
		return nil, out.err, out.disc, nil
	}
	res := &RPCResult{}
	if r := d.object("result", out.result, []spec{
		{key: "data", typ: tAny, dst: &res.Data},
		{key: "b64data", typ: tBinary},
	}); r != nil {
		return nil, nil, nil, p.refuse(r)
	}
	return res, nil, nil, nil
}

// resultOnly refuses an error or disconnect answer of a proxy that may only
// answer a result (refresh, sub_refresh).
func (p *Proxy) resultOnly(d *decoder, out *outcome) *auth.Reason {
	var what string
	switch {
	case out.disc != nil:
		what = fmt.Sprintf("disconnect %d %q", out.disc.Code, printable([]byte(out.disc.Reason), 40, d.secrets))
	case out.err != nil:
		what = fmt.Sprintf("error %d %q", out.err.Code, printable([]byte(out.err.Message), 40, d.secrets))
	default:
		return nil
	}
	r := reason(auth.ProxyBadResponse,
		fmt.Sprintf("%s proxy answered %s; a %s proxy may only answer a result, so it is ignored", d.method, what, d.method),
		`answer {"result":{"expired":true}} to end it, or {"result":{"expire_at":<unix seconds>}} to extend it`)
	kind := "error"
	if out.disc != nil {
		kind = "disconnect"
	}
	d.warnOnce(d.method+" answered "+kind, fmt.Sprintf("%s proxy answered a %s, which is ignored: %s proxies may only answer a result (logged once)", d.method, kind, d.method))
	return r
}

// observe counts a call that started at start, by its outcome: ok, the
// backend's own error or disconnect, or the reason it was refused. Calls
// refused before reaching the backend (overload, open circuit) are not timed.
func (p *Proxy) observe(call string, start time.Time, errReply **ErrorReply, disc **DisconnectReply, refused **auth.Reason) {
	if p.metrics == nil {
		return
	}
	outcome, reached := "ok", true
	switch {
	case *refused != nil:
		code := (*refused).Code
		outcome, reached = string(code), code != auth.ProxyOverloaded && code != auth.ProxyCircuitOpen
	case errReply != nil && *errReply != nil:
		outcome = "error"
	case disc != nil && *disc != nil:
		outcome = "disconnect"
	}
	p.metrics.ProxyCall(p.name, call, outcome, time.Since(start), reached)
}

// refuse logs a refusal at debug level (the caller logs it for real) and returns it.
func (p *Proxy) refuse(r *auth.Reason) *auth.Reason {
	p.log.Debug("proxy refusal", "reason", string(r.Code), "detail", r.Detail)
	return r
}

// logDecision logs a backend's error or disconnect answer with its code
// and text (secrets of the request redacted): the caller turns it into the
// client's error, and the operator sees why the backend refused.
func (p *Proxy) logDecision(d *decoder, out *outcome) {
	switch {
	case out == nil:
	case out.err != nil:
		p.log.Info("backend refused", "method", d.method, "code", out.err.Code,
			"message", printable([]byte(out.err.Message), 120, d.secrets), "temporary", out.err.Temporary)
	case out.disc != nil:
		p.log.Info("backend disconnected the client", "method", d.method, "code", out.disc.Code,
			"reason", printable([]byte(out.disc.Reason), 120, d.secrets))
	}
}

// reason builds a Reason with a bounded one-line detail.
func reason(code auth.Code, detail, hint string) *auth.Reason {
	return &auth.Reason{Code: code, Detail: oneLine(detail, maxDetail), Hint: hint}
}

// call sends req and returns the checked top-level answer.
func (p *Proxy) call(ctx context.Context, d *decoder, req any, h Headers, token string) (*outcome, *auth.Reason) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, p.refuse(reason(auth.ProxyBadJSON,
			fmt.Sprintf("could not encode the %s request as JSON (%s); the backend was not called", d.method, errText(err)),
			"the client's data must be valid JSON"))
	}
	select {
	case p.sem <- struct{}{}:
	default:
		if p.saturated.CompareAndSwap(false, true) {
			p.log.Warn("proxy concurrency limit reached; calls over it are refused (temporary) until requests finish", "max_concurrent", cap(p.sem))
		}
		return nil, p.refuse(reason(auth.ProxyOverloaded,
			fmt.Sprintf("%d requests to backend %s are already in flight (max_concurrent %d)", cap(p.sem), p.shown, cap(p.sem)),
			"raise max_concurrent, or make the backend answer faster"))
	}
	defer func() {
		<-p.sem
		// Hysteresis: "again" only once the load has halved, so a backend at
		// the limit does not flood the log with state changes.
		if p.saturated.Load() && len(p.sem) <= cap(p.sem)/2 && p.saturated.CompareAndSwap(true, false) {
			p.log.Info("proxy accepts calls again: requests in flight fell to half of max_concurrent", "max_concurrent", cap(p.sem))
		}
	}()

	trial, r := p.br.allow(p.shown)
	if r != nil {
		return nil, p.refuse(r)
	}
	if trial {
		p.log.Info("circuit half-open: sending one trial call to the backend")
	}
	out, r, verdict := p.roundTrip(ctx, d, body, h, token)
	p.logDecision(d, out)
	switch p.br.record(trial, verdict) {
	case opened:
		p.log.Warn("circuit opened: the backend failed repeatedly; calls are refused until the cool-down ends",
			"failures", p.br.threshold, "cooldown", p.br.cooldown.String())
	case reopened:
		p.log.Warn("circuit re-opened: the trial call failed", "cooldown", p.br.cooldown.String())
	case closed:
		p.log.Info("circuit closed: the trial call succeeded; calls flow again")
	}
	if r != nil {
		return nil, p.refuse(r)
	}
	return out, nil
}

// roundTrip does the HTTP exchange and checks the top-level answer. The
// verdict tells the breaker whether the backend failed.
func (p *Proxy) roundTrip(parent context.Context, d *decoder, body []byte, h Headers, token string) (*outcome, *auth.Reason, verdict) {
	hdr, secrets := p.headers(h)
	if token != "" {
		secrets = append(secrets, token)
	}
	d.secrets = secrets
	ctx, cancel := context.WithTimeout(parent, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, reason(auth.ProxyUnreachable, fmt.Sprintf("backend %s: cannot build the request: %s", p.shown, errText(err)),
			"check the endpoint URL"), neutral
	}
	req.Header = hdr
	resp, err := p.client.Do(req)
	if err != nil {
		r, v := p.transportReason(parent, err)
		return nil, r, v
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		v := success
		if resp.StatusCode >= 500 {
			v = failure
		}
		if t, ok := p.transforms[resp.StatusCode]; ok {
			p.log.Debug("backend status mapped by status_to_code_transforms", "status", resp.StatusCode)
			return &outcome{err: cloneErr(t.ToError), disc: cloneDisc(t.ToDisconnect)}, nil, v
		}
		snip, _ := io.ReadAll(io.LimitReader(resp.Body, errBodyRead))
		return nil, p.statusReason(resp, snip, secrets), v
	}

	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		r, v := p.transportReason(parent, err)
		return nil, r, v
	}
	if len(data) > MaxBodySize {
		return nil, reason(auth.ProxyBadResponse,
			fmt.Sprintf("backend %s answered a body larger than the 1 MiB limit (%d bytes)", p.shown, MaxBodySize),
			"answer less: a proxy response is a decision plus small info/data"), success
	}
	out, r := d.top(data, resp.Header.Get("Content-Type"), resp.StatusCode)
	return out, r, success
}

func cloneErr(e *ErrorReply) *ErrorReply {
	if e == nil {
		return nil
	}
	c := *e
	return &c
}

func cloneDisc(d *DisconnectReply) *DisconnectReply {
	if d == nil {
		return nil
	}
	c := *d
	return &c
}

// statusReason explains a non-2xx answer.
func (p *Proxy) statusReason(resp *http.Response, body []byte, secrets []string) *auth.Reason {
	status := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	status = strings.TrimSpace(status)
	detail := "backend answered " + status
	if s := printable(body, snippetLen, secrets); s != "" {
		detail += ": " + s
	} else {
		detail += " (empty body)"
	}
	var hint string
	switch c := resp.StatusCode; {
	case c == 401 || c == 403:
		hint = `map it with status_to_code_transforms, or answer 200 with {"error":{...}} or {"disconnect":{...}}`
	case c == 404 || c == 405:
		hint = "check the endpoint's path and that the backend accepts POST there"
	case c >= 300 && c < 400:
		hint = "the backend redirects"
		if loc, err := resp.Location(); err == nil {
			hint += " to " + redactURL(loc)
		}
		hint += "; configure the final URL as the endpoint (redirects are not followed)"
	case c == 429:
		hint = "the backend rate-limits Herald; raise its limit or lower max_concurrent"
	case c >= 500:
		hint = "the backend failed; check its logs (5xx answers count toward the circuit breaker)"
	default:
		hint = `answer 200 with {"result":{...}}, {"error":{...}} or {"disconnect":{...}}, or map the status with status_to_code_transforms`
	}
	return reason(auth.ProxyHTTPStatus, detail, hint)
}

// Helpers shared by the files of the package.

func errText(err error) string { return oneLine(err.Error(), 120) }
