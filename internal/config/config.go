package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is the whole server configuration. Field tags give the key names used in
// files; environment variables are HERALD_ followed by the upper-cased key path
// joined with underscores (client.token.hmac_secret_key ->
// HERALD_CLIENT_TOKEN_HMAC_SECRET_KEY).
type Config struct {
	// Listen is the address of the HTTP server (WebSocket, API, health).
	Listen string `yaml:"listen" doc:"address the HTTP server listens on"`
	// Dev relaxes permissions for development: anonymous connections are allowed
	// and every client may subscribe, publish and read history and presence on any
	// channel. Token verification is never relaxed.
	Dev bool `yaml:"dev" doc:"development permissions (anonymous allowed, all channel operations allowed)"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `yaml:"log_level" doc:"debug, info, warn or error"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format" doc:"text or json"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout Duration `yaml:"shutdown_timeout" doc:"how long graceful shutdown may take"`
	// NodeName names this node in the API info method.
	NodeName string `yaml:"node_name" doc:"name of this node in the API info result"`
	// NodeID names this node in messages between nodes.
	NodeID string `yaml:"node_id" doc:"id of this node (unique per node): in messages between nodes, the API info result, and every log line with a redis or nats broker; empty = a random id at each start"`

	HTTP    HTTP    `yaml:"http"`
	Client  Client  `yaml:"client"`
	HTTPAPI HTTPAPI `yaml:"http_api"`
	Channel Channel `yaml:"channel"`
	RPC     RPC     `yaml:"rpc"`
	// Proxies are named proxies that namespaces and RPC namespaces refer to.
	Proxies []NamedProxy `yaml:"proxies" doc:"named proxies, referred to by *_proxy_name options"`
	Admin   Admin        `yaml:"admin"`
	Metrics Metrics      `yaml:"metrics"`
	Mercure Mercure      `yaml:"mercure"`
	// NATSCallout is the NATS auth callout service.
	NATSCallout NATSCallout `yaml:"nats_callout"`
	Broker      Broker      `yaml:"broker"`
	// ActionCable is the Action Cable / AnyCable front door.
	ActionCable ActionCable `yaml:"actioncable"`
	// Transports are the Centrifugo transports beside the WebSocket
	// (http_stream, sse, emulation, uni_*), as top-level keys.
	Transports `yaml:",inline"`
}

// HTTP holds the timeouts and limits of HTTP connections before they are
// upgraded: every request to /api, /auth/ticket, /health, /debug/ and Mercure
// publications, and idle keep-alive connections. WebSocket connections and
// Mercure event streams, once upgraded, have their own rules.
type HTTP struct {
	ReadHeaderTimeout    Duration `yaml:"read_header_timeout" doc:"longest time to receive a request's line and headers (also before a WebSocket or Mercure upgrade)"`
	ReadTimeout          Duration `yaml:"read_timeout" doc:"longest time to receive a whole request, body included; a request that stops sending is closed after it; 0 = no limit"`
	WriteTimeout         Duration `yaml:"write_timeout" doc:"longest time from the end of a request's headers to the end of its response (a /debug/pprof profile must be shorter); WebSocket and Mercure streams are not cut; 0 = no limit"`
	IdleTimeout          Duration `yaml:"idle_timeout" doc:"how long a keep-alive connection may wait for its next request before it is closed"`
	MaxPendingConns      int      `yaml:"max_pending_conns" doc:"connections not upgraded to a WebSocket or an event stream (reading a request, being answered or idle) at most; more are answered 503 and closed; 0 = no limit"`
	MaxPendingConnsPerIP int      `yaml:"max_pending_conns_per_ip" doc:"the same limit per client IP address; 0 = none (behind a proxy every client has its address)"`
}

// Admin holds the options of the operator endpoints: /debug/, /metrics on
// the main listener, and the admin web page.
type Admin struct {
	Key string `yaml:"key" doc:"key for the operator endpoints: /debug/, /metrics on the main listener and the admin page (X-Admin-Key or Authorization: Bearer); empty disables them" secret:"true"`
	// Enabled serves the admin web page under /admin.
	Enabled    bool     `yaml:"enabled" doc:"serve the admin web page at /admin (overview, live refusals, token explainer, channels, publish); needs admin.key"`
	SessionTTL Duration `yaml:"session_ttl" doc:"how long an admin page login lasts before the key is asked again"`
}

// Metrics holds the Prometheus endpoint.
type Metrics struct {
	Enabled bool   `yaml:"enabled" doc:"serve Prometheus metrics at /metrics: on the main listener behind admin.key (open with dev), or on metrics.listen"`
	Listen  string `yaml:"listen" doc:"address of a listener of its own for /metrics, without a key (keep it private, e.g. 127.0.0.1:9100); empty = the main listener"`
}

// Client holds the options of client connections.
type Client struct {
	AllowedOrigins                    []string `yaml:"allowed_origins" doc:"glob patterns of allowed Origin headers; empty refuses every request with an Origin header"`
	AllowAnonymousConnectWithoutToken bool     `yaml:"allow_anonymous_connect_without_token" doc:"accept connections without a token as anonymous"`
	DisallowAnonymousConnectionTokens bool     `yaml:"disallow_anonymous_connection_tokens" doc:"refuse tokens with an empty sub (disconnect 3507)"`
	Token                             Token    `yaml:"token"`
	// SubscriptionToken, when enabled, verifies subscription tokens with
	// their own keys and claim rules instead of client.token's.
	SubscriptionToken SubscriptionToken `yaml:"subscription_token"`

	// Proxy holds the connect proxy: the team's backend decides connections
	// that present no token.
	Proxy ClientProxies `yaml:"proxy"`
	// Callout is the signed auth callout: when enabled it decides every connection.
	Callout Callout `yaml:"callout"`

	TokenSources    []string `yaml:"token_sources" doc:"where a connection may present its token, in order: connect, header, subprotocol, cookie, query, ticket"`
	TokenCookie     string   `yaml:"token_cookie" doc:"name of the cookie that carries a token (source cookie)"`
	TokenQueryParam string   `yaml:"token_query_param" doc:"name of the URL query parameter that carries a token (source query); its value is redacted from logs"`
	TicketTTL       Duration `yaml:"ticket_ttl" doc:"how long a one-time connection ticket from POST /auth/ticket stays valid"`
	ReasonDetail    string   `yaml:"reason_detail" doc:"what clients see of a refusal: code (the reason code only) or full (code, detail and hint); empty = full with --dev, code otherwise"`

	PingInterval         Duration `yaml:"ping_interval" doc:"server ping interval; 0 disables pings"`
	PongTimeout          Duration `yaml:"pong_timeout" doc:"time to wait for a pong before disconnect 3012"`
	StaleCloseDelay      Duration `yaml:"stale_close_delay" doc:"time to wait for the connect command before disconnect 3502"`
	ExpiredCloseDelay    Duration `yaml:"expired_close_delay" doc:"grace after connection expiry before disconnect 3005"`
	ExpiredSubCloseDelay Duration `yaml:"expired_sub_close_delay" doc:"grace after subscription expiry before unsubscribe 2501"`

	ChannelLimit        int `yaml:"channel_limit" doc:"subscriptions per connection (error 106)"`
	UserConnectionLimit int `yaml:"user_connection_limit" doc:"connections per user on this node, 0 = unlimited (disconnect 3504)"`
	CommandRateLimit    int `yaml:"command_rate_limit" doc:"commands per second one connection may send on average, 0 = unlimited (error 111 over it)"`
	CommandBurst        int `yaml:"command_burst" doc:"commands a connection may send at once above the rate (connect plus resubscribes after a reconnect)"`
	QueueMaxSize        int `yaml:"queue_max_size" doc:"bytes queued for one connection before disconnect 3008"`
	// WriteLag trades latency for CPU under load: see the writer pool in
	// internal/centrifuge.
	WriteLag                       Duration `yaml:"write_lag" doc:"how long a connection with queued messages may wait for a writer before another writer starts; longer joins more messages into each write under load (less CPU), shorter lowers latency; 0 = every writer works when anything waits"`
	MessageSizeLimit               int      `yaml:"message_size_limit" doc:"largest WebSocket message a client may send (close 1009)"`
	HistoryMaxPublicationLimit     int      `yaml:"history_max_publication_limit" doc:"cap of publications in one client history reply"`
	RecoveryMaxPublicationLimit    int      `yaml:"recovery_max_publication_limit" doc:"cap of publications recovered on resubscribe"`
	ConnectionInfoMaxSize          int      `yaml:"connection_info_max_size" doc:"largest info/data JSON accepted from a token"`
	SubscriptionTokenMismatchError bool     `yaml:"subscription_token_mismatch_error" doc:"answer error 103 instead of disconnect 3500 on a subscription token for another user, channel or client"`
}

// Token holds the keys and claim rules tokens are verified with.
type Token struct {
	HMACSecretKey                   string `yaml:"hmac_secret_key" doc:"HMAC secret for HS256/HS384/HS512 tokens" secret:"true"`
	HMACPreviousSecretKey           string `yaml:"hmac_previous_secret_key" doc:"the previous HMAC secret, still accepted during a rotation" secret:"true"`
	HMACPreviousSecretKeyValidUntil int64  `yaml:"hmac_previous_secret_key_valid_until" doc:"unix time after which the previous HMAC secret is refused; 0 = until removed"`
	Keys                            []Key  `yaml:"keys" doc:"verification keys, each pinned to one algorithm"`

	TokenRules `yaml:",inline"`

	Leeway      Duration `yaml:"leeway" doc:"clock-skew leeway for exp, nbf and iat"`
	MaxLifetime Duration `yaml:"max_lifetime" doc:"refuse tokens issued (iat) longer ago than this; 0 = no limit"`
	Audience    []string `yaml:"audience" doc:"accepted aud values; empty = aud not checked"`
	Issuer      []string `yaml:"issuer" doc:"accepted iss values; empty = iss not checked"`
	UserClaim   string   `yaml:"user_claim" doc:"claim holding the user id: a name (sub, https://example.com/uid) or a dotted path (user.id)"`
	InfoClaim   string   `yaml:"info_claim" doc:"claim (name or dotted path) whose JSON becomes the connection info"`
	MetaClaim   string   `yaml:"meta_claim" doc:"claim (name or dotted path) whose JSON becomes the connection meta"`
}

// TokenRules are the header and exp rules of one kind of token (client,
// subscription, Mercure publisher and subscriber tokens).
type TokenRules struct {
	Typ                   []string `yaml:"typ" doc:"accepted typ header values, e.g. [at+jwt] (explicit typing, RFC 8725); empty = typ not checked"`
	RequireExp            bool     `yaml:"require_exp" doc:"refuse tokens without exp (exp_required)"`
	MaxLifetimeWithoutExp Duration `yaml:"max_lifetime_without_exp" doc:"a token without exp expires this long after its iat, and the connection or stream ends then (one with neither is refused); 0 = such tokens never expire"`
}

// ClientProxies are the proxies of the connection lifecycle.
type ClientProxies struct {
	Connect Proxy `yaml:"connect"`
	// ConnectMode says when the connect proxy is asked.
	ConnectMode string `yaml:"connect_mode" doc:"when the connect proxy is asked: no_token (only clients without a token, as Centrifugo does) or always (also after a token is verified: the token says who, the backend decides)"`
	// Refresh extends expiring connections server-side (no client refresh).
	Refresh Proxy `yaml:"refresh"`
}

// Proxy is one backend endpoint Herald asks for decisions (Centrifugo's
// proxy protocol over HTTP with JSON).
type Proxy struct {
	Enabled          bool              `yaml:"enabled" doc:"call this proxy"`
	Endpoint         string            `yaml:"endpoint" doc:"http:// or https:// URL of the backend"`
	Timeout          Duration          `yaml:"timeout" doc:"how long to wait for the backend"`
	HTTPHeaders      []string          `yaml:"http_headers" doc:"headers of the client's upgrade request to forward (e.g. Cookie, Authorization)"`
	EmulatedHeaders  []string          `yaml:"emulated_headers" doc:"headers the client sent in its connect message to forward (untrusted)"`
	Cookies          []string          `yaml:"cookies" doc:"cookies of the client's upgrade request to forward (only these, in a Cookie header)"`
	StaticHeaders    []string          `yaml:"static_headers" doc:"headers added to every request, as \"Name: value\""`
	StatusTransforms []StatusTransform `yaml:"status_to_code_transforms" doc:"map backend HTTP statuses to protocol errors or disconnects"`
	MaxConcurrent    int               `yaml:"max_concurrent" doc:"requests in flight at most; more are refused at once (temporary)"`
	BreakerFailures  int               `yaml:"breaker_failures" doc:"consecutive failures (timeout, unreachable, 5xx) that pause calls to the backend"`
	BreakerCooldown  Duration          `yaml:"breaker_cooldown" doc:"how long calls pause before one trial call"`
	CAFile           string            `yaml:"ca_file" doc:"PEM bundle of CA certificates trusted for an https endpoint, besides the system's (SSL_CERT_FILE replaces the system's)"`
}

// StatusTransform turns a backend HTTP status into an error or a disconnect.
type StatusTransform struct {
	StatusCode       int    `yaml:"status_code" doc:"the backend's HTTP status"`
	ErrorCode        int    `yaml:"error_code" doc:"answer the client with this error code"`
	ErrorMessage     string `yaml:"error_message" doc:"the error's message"`
	ErrorTemporary   bool   `yaml:"error_temporary" doc:"mark the error temporary (the client retries)"`
	DisconnectCode   int    `yaml:"disconnect_code" doc:"or close the connection with this code (4000-4999)"`
	DisconnectReason string `yaml:"disconnect_reason" doc:"the close reason"`
}

// Callout configures the signed auth callout.
type Callout struct {
	Enabled       bool     `yaml:"enabled" doc:"let the callout service decide every connection (fail closed)"`
	Endpoint      string   `yaml:"endpoint" doc:"http:// or https:// URL of the callout service"`
	Timeout       Duration `yaml:"timeout" doc:"how long to wait for the callout service"`
	SigningSecret string   `yaml:"signing_secret" doc:"HS256 secret Herald signs its callout requests with" secret:"true"`
	ResponseKeys  []Key    `yaml:"response_keys" doc:"keys the callout service signs its answers with (alg pinned, as client.token.keys)"`
	IncludeTokens bool     `yaml:"include_tokens" doc:"put the tokens the client presented in the request"`
	HTTPHeaders   []string `yaml:"http_headers" doc:"upgrade-request headers to include in the request"`
}

// SubscriptionToken holds separate verification settings for subscription tokens.
type SubscriptionToken struct {
	Enabled bool `yaml:"enabled" doc:"verify subscription tokens with the settings below instead of client.token"`
	Token   `yaml:",inline"`
}

// Key is one configured verification key. Exactly one of secret, value,
// env, file and jwks_url gives its material.
type Key struct {
	Kid             string   `yaml:"kid" doc:"key id; tokens naming a kid use only the key with that kid"`
	Alg             string   `yaml:"alg" doc:"the one algorithm this key verifies: HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA"`
	Secret          string   `yaml:"secret" doc:"an HMAC secret, inline" secret:"true"`
	Value           string   `yaml:"value" doc:"a public key inline: PEM, certificate, JWK or JWKS"`
	Env             string   `yaml:"env" doc:"name of an environment variable holding the secret or public key"`
	File            string   `yaml:"file" doc:"path of a file holding the secret or public key (PEM, certificate, JWK or JWKS); reloaded when it changes"`
	JWKSURL         string   `yaml:"jwks_url" doc:"URL of a JWKS endpoint, cached and refreshed in the background"`
	RefreshInterval Duration `yaml:"refresh_interval" doc:"how often a JWKS endpoint is fetched again"`
	MinRefetch      Duration `yaml:"min_refetch" doc:"shortest time between two fetches of a JWKS endpoint for tokens naming an unknown kid (default 30s); a key published meanwhile is fetched when it ends"`
	ValidUntil      int64    `yaml:"valid_until" doc:"unix time after which this key is refused; 0 = no limit"`
}

// HTTPAPI holds the server API options.
type HTTPAPI struct {
	Key      string `yaml:"key" doc:"API key for /api (X-API-Key or Authorization: apikey)" secret:"true"`
	Insecure bool   `yaml:"insecure" doc:"serve /api without a key (only behind a trusted network)"`
	// MaxBroadcastChannels bounds one broadcast: each channel is a publication.
	MaxBroadcastChannels int `yaml:"max_broadcast_channels" doc:"most channels one broadcast may name (error 107 above it)"`
}

// Channel holds channel naming and namespace options.
type Channel struct {
	MaxLength        int              `yaml:"max_length" doc:"longest channel name (error 107)"`
	Proxy            ChannelProxies   `yaml:"proxy" doc:"backend proxies for channel operations, enabled per namespace"`
	WithoutNamespace NamespaceOptions `yaml:"without_namespace" doc:"options for channels without a namespace"`
	Namespaces       []Namespace      `yaml:"namespaces" doc:"named channel namespaces (ns:channel)"`
}

// ChannelProxies are the proxies of channel operations.
type ChannelProxies struct {
	Subscribe  Proxy `yaml:"subscribe"`
	Publish    Proxy `yaml:"publish"`
	SubRefresh Proxy `yaml:"sub_refresh"`
}

// NamedProxy is a proxy that options refer to by name.
type NamedProxy struct {
	Name  string `yaml:"name" doc:"the proxy's name"`
	Proxy `yaml:",inline"`
}

// RPC holds the RPC proxies.
type RPC struct {
	Proxy      Proxy          `yaml:"proxy" doc:"backend that answers client rpc commands"`
	Namespaces []RPCNamespace `yaml:"namespaces" doc:"RPC method namespaces (ns:method), each answered by a named proxy"`
}

// RPCNamespace sends the methods "name:..." to a named proxy.
type RPCNamespace struct {
	Name      string `yaml:"name" doc:"the method namespace (the part before :)"`
	ProxyName string `yaml:"proxy_name" doc:"the named proxy (top-level proxies) that answers it"`
}

// Namespace is a named set of channel options.
type Namespace struct {
	Name             string `yaml:"name" doc:"namespace name, matching ^[-a-zA-Z0-9_]{2,}$"`
	NamespaceOptions `yaml:",inline"`
}

// NamespaceOptions are the options a channel gets from its namespace.
type NamespaceOptions struct {
	Presence           bool     `yaml:"presence" doc:"keep presence for channels"`
	JoinLeave          bool     `yaml:"join_leave" doc:"send join/leave pushes to subscribers that ask for them"`
	ForcePushJoinLeave bool     `yaml:"force_push_join_leave" doc:"send join/leave pushes to every subscriber"`
	HistorySize        int      `yaml:"history_size" doc:"publications kept per channel (history needs size and ttl)"`
	HistoryTTL         Duration `yaml:"history_ttl" doc:"how long publications are kept"`
	HistoryMetaTTL     Duration `yaml:"history_meta_ttl" doc:"how long a channel stream position is kept without publications"`
	HistoryMaxBytes    int      `yaml:"history_max_bytes" doc:"bound on the bytes a channel's history holds (0: size and ttl only); the oldest publications go first"`
	ForceRecovery      bool     `yaml:"force_recovery" doc:"recovery on for every subscription"`
	AllowRecovery      bool     `yaml:"allow_recovery" doc:"clients may ask for recovery without history permission"`
	ForcePositioning   bool     `yaml:"force_positioning" doc:"positioning on for every subscription"`
	AllowPositioning   bool     `yaml:"allow_positioning" doc:"clients may ask for positioning without history permission"`

	AllowSubscribeForClient    bool `yaml:"allow_subscribe_for_client" doc:"any authenticated connection may subscribe"`
	AllowSubscribeForAnonymous bool `yaml:"allow_subscribe_for_anonymous" doc:"anonymous connections may subscribe too"`
	AllowPublishForClient      bool `yaml:"allow_publish_for_client" doc:"any authenticated connection may publish"`
	AllowPublishForSubscriber  bool `yaml:"allow_publish_for_subscriber" doc:"subscribers may publish"`
	AllowPublishForAnonymous   bool `yaml:"allow_publish_for_anonymous" doc:"anonymous connections may publish too"`
	AllowHistoryForClient      bool `yaml:"allow_history_for_client" doc:"any authenticated connection may read history"`
	AllowHistoryForSubscriber  bool `yaml:"allow_history_for_subscriber" doc:"subscribers may read history"`
	AllowHistoryForAnonymous   bool `yaml:"allow_history_for_anonymous" doc:"anonymous connections may read history too"`
	AllowPresenceForClient     bool `yaml:"allow_presence_for_client" doc:"any authenticated connection may read presence"`
	AllowPresenceForSubscriber bool `yaml:"allow_presence_for_subscriber" doc:"subscribers may read presence"`
	AllowPresenceForAnonymous  bool `yaml:"allow_presence_for_anonymous" doc:"anonymous connections may read presence too"`

	AllowUserLimitedChannels bool     `yaml:"allow_user_limited_channels" doc:"allow #user-limited channels"`
	SubscribeProxyEnabled    bool     `yaml:"subscribe_proxy_enabled" doc:"ask channel.proxy.subscribe about subscriptions without a token"`
	PublishProxyEnabled      bool     `yaml:"publish_proxy_enabled" doc:"ask channel.proxy.publish about client publications (its answer decides)"`
	SubRefreshProxyEnabled   bool     `yaml:"sub_refresh_proxy_enabled" doc:"let channel.proxy.sub_refresh extend expiring subscriptions server-side"`
	SubscribeProxyName       string   `yaml:"subscribe_proxy_name" doc:"ask this named proxy (top-level proxies) about subscriptions instead of channel.proxy.subscribe"`
	PublishProxyName         string   `yaml:"publish_proxy_name" doc:"ask this named proxy about client publications instead of channel.proxy.publish"`
	ChannelRegex             string   `yaml:"channel_regex" doc:"regular expression the channel name (after ns:) must match"`
	AllowedDeltaTypes        []string `yaml:"allowed_delta_types" doc:"delta compression subscribers may ask for: [fossil] lets them receive publications after the first as fossil deltas"`
}

// FullReasons reports whether clients see a refusal's detail and hint, or
// only its code: client.reason_detail, by default full with --dev and the
// code only otherwise.
func (c *Config) FullReasons() bool {
	switch c.Client.ReasonDetail {
	case "full":
		return true
	case "code":
		return false
	}
	return c.Dev
}

// HistoryEnabled reports whether channels of the namespace keep history.
func (o *NamespaceOptions) HistoryEnabled() bool {
	return o.HistorySize > 0 && o.HistoryTTL > 0
}

// Duration is a time.Duration that reads from "25s"-style strings or from a
// number of seconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration the way it is written in files.
func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration reads "25s", "1m30s", "1.5" (seconds) or "0".
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("negative duration %q", s)
		}
		return Duration(d), nil
	}
	if isNumber(s) {
		secs, err := strconv.ParseFloat(s, 64)
		if err == nil {
			if secs < 0 {
				return 0, fmt.Errorf("negative duration %q", s)
			}
			return Duration(secs * float64(time.Second)), nil
		}
	}
	return 0, fmt.Errorf("%q is not a duration (use forms like 25s, 1m30s or 500ms)", s)
}

func isNumber(s string) bool {
	dot := false
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && !dot:
			dot = true
		case (c == '-' || c == '+') && i == 0:
		default:
			return false
		}
	}
	return s != ""
}

// Default returns the embedded defaults: the reference values of the
// Centrifugo protocol for every timing and limit.
func Default() *Config {
	return &Config{
		Listen:          "127.0.0.1:8000",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: Duration(10 * time.Second),
		HTTP: HTTP{
			ReadHeaderTimeout: Duration(10 * time.Second),
			ReadTimeout:       Duration(30 * time.Second),
			WriteTimeout:      Duration(60 * time.Second),
			IdleTimeout:       Duration(60 * time.Second),
			MaxPendingConns:   10000,
		},
		Admin: Admin{SessionTTL: Duration(12 * time.Hour)},
		Client: Client{
			PingInterval:                Duration(25 * time.Second),
			PongTimeout:                 Duration(8 * time.Second),
			StaleCloseDelay:             Duration(10 * time.Second),
			ExpiredCloseDelay:           Duration(25 * time.Second),
			ExpiredSubCloseDelay:        Duration(25 * time.Second),
			ChannelLimit:                128,
			CommandRateLimit:            100,
			CommandBurst:                300,
			QueueMaxSize:                1 << 20,
			WriteLag:                    Duration(10 * time.Millisecond),
			MessageSizeLimit:            65536,
			HistoryMaxPublicationLimit:  300,
			RecoveryMaxPublicationLimit: 300,
			ConnectionInfoMaxSize:       16384,
			TokenSources:                []string{"connect", "header", "subprotocol", "ticket"},
			TokenCookie:                 "herald_token",
			TokenQueryParam:             "token",
			TicketTTL:                   Duration(10 * time.Second),
			Token: Token{
				Leeway:    Duration(5 * time.Second),
				UserClaim: "sub",
				InfoClaim: "info",
				MetaClaim: "meta",
			},
		},
		HTTPAPI: HTTPAPI{MaxBroadcastChannels: 1000},
		Channel: Channel{
			MaxLength: 255,
		},
		Mercure:     defaultMercure(),
		NATSCallout: defaultNATSCallout(),
		Broker:      defaultBroker(),
		ActionCable: defaultActionCable(),
		Transports:  defaultTransports(),
	}
}

// ApplyDevDefaults makes an otherwise unconfigured server useful for
// development: channels without a namespace keep presence and a short history,
// and browsers on localhost may connect. Explicit settings are kept.
func (c *Config) ApplyDevDefaults() {
	wn := &c.Channel.WithoutNamespace
	if !wn.Presence && wn.HistorySize == 0 && wn.HistoryTTL == 0 {
		wn.Presence = true
		wn.JoinLeave = true
		wn.HistorySize = 100
		wn.HistoryTTL = Duration(5 * time.Minute)
	}
	if len(c.Client.AllowedOrigins) == 0 {
		c.Client.AllowedOrigins = []string{"http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*",
			"http://localhost", "http://127.0.0.1"}
	}
	c.applyMercureDevDefaults()
	c.applyActionCableDevDefaults()
	c.applyTransportDevDefaults()
}
