package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ActionCable holds the options of the Action Cable / AnyCable front door:
// the WebSocket endpoint that Rails clients (@rails/actioncable,
// @anycable/web, Turbo Streams) connect to, the AnyCable broadcast endpoint,
// and the RPC to a Rails application running anycable-rails.
type ActionCable struct {
	Enabled      bool     `yaml:"enabled" doc:"serve Action Cable and AnyCable clients at path, and broadcast.path (on with --dev)"`
	Path         string   `yaml:"path" doc:"URL path of the Action Cable WebSocket endpoint"`
	Subprotocols []string `yaml:"subprotocols" doc:"WebSocket subprotocols Herald negotiates: actioncable-v1-json (Rails clients) and actioncable-v1-ext-json (AnyCable's extended protocol: session restore, history, presence, whisper)"`
	PingInterval Duration `yaml:"ping_interval" doc:"interval of the ping message; Rails clients reconnect after 6s without one, so keep it at 3s unless every client is configured otherwise"`
	PongTimeout  Duration `yaml:"pong_timeout" doc:"on the extended protocol, disconnect (reason no_pong) a client that sent no pong for this long; 0 = pongs are not required"`
	Anonymous    bool     `yaml:"anonymous" doc:"accept connections that present no token and have no RPC to ask as anonymous (AnyCable --noauth); on with --dev"`
	// UserIdentifier names the connection identifier that is Herald's user.
	UserIdentifier string   `yaml:"user_identifier" doc:"connection identifier (a key of the identifiers JSON, e.g. user_id) whose value is the Herald user; empty = the only identifier when there is one, else the whole identifiers string"`
	SessionsTTL    Duration `yaml:"sessions_ttl" doc:"how long the session of a disconnected extended-protocol client can be restored with its sid; 0 disables restore"`
	MaxIdentifier  int      `yaml:"max_identifier" doc:"longest subscription identifier a client may send, in bytes"`
	// Secret is AnyCable's application secret, from which AnyCable derives
	// the keys below when they are not set.
	Secret    string               `yaml:"secret" doc:"AnyCable's application secret (ANYCABLE_SECRET): when set, the JWT secret, the streams secret, the broadcast key and the RPC secret default to what AnyCable derives from it" secret:"true"`
	JWT       ActionCableJWT       `yaml:"jwt"`
	Streams   ActionCableStreams   `yaml:"streams"`
	Turbo     ActionCableTurbo     `yaml:"turbo"`
	Broadcast ActionCableBroadcast `yaml:"broadcast"`
	RPC       ActionCableRPC       `yaml:"rpc"`
}

// ActionCableJWT holds AnyCable's JWT identification: tokens with the
// connection identifiers in their ext claim.
type ActionCableJWT struct {
	Param                    string   `yaml:"param" doc:"URL query parameter (and header X-<param>) that carries an AnyCable token; the anycable-token.<jwt> subprotocol works too"`
	Secret                   string   `yaml:"secret" doc:"HMAC secret AnyCable tokens are signed with (AnyCable jwt_secret); empty = actioncable.secret, else the keys of client.token" secret:"true"`
	PreviousSecret           string   `yaml:"previous_secret" doc:"the previous HMAC secret, still accepted during a rotation" secret:"true"`
	PreviousSecretValidUntil int64    `yaml:"previous_secret_valid_until" doc:"unix time after which the previous secret is refused; 0 = until removed"`
	Keys                     []Key    `yaml:"keys" doc:"further verification keys of AnyCable tokens, each pinned to one algorithm (as client.token.keys)"`
	Leeway                   Duration `yaml:"leeway" doc:"clock-skew leeway for exp and nbf of AnyCable tokens"`
	Enforce                  bool     `yaml:"enforce" doc:"refuse connections without a token (AnyCable enforce_jwt): no RPC connect, no anonymous"`
}

// ActionCableStreams holds the streams Herald serves without the app: the
// $pubsub channel with signed or public stream names.
type ActionCableStreams struct {
	PubSubChannel string `yaml:"pubsub_channel" doc:"the reserved channel of stream names ($pubsub)"`
	Secret        string `yaml:"secret" doc:"key that verifies signed stream names, used as raw bytes (AnyCable streams_secret); empty = actioncable.secret" secret:"true"`
	Public        bool   `yaml:"public" doc:"allow unsigned stream names ({channel: $pubsub, stream_name}) for every connection (AnyCable public_streams); without it the namespace's allow_subscribe_* options decide (and --dev allows all)"`
	Whisper       bool   `yaml:"whisper" doc:"allow whisper on signed streams (public streams always allow it)"`
	Presence      bool   `yaml:"presence" doc:"allow client presence on signed streams (public streams always allow it)"`
}

// ActionCableTurbo holds the verification of Turbo Streams' signed stream
// names (Turbo::StreamsChannel).
type ActionCableTurbo struct {
	VerifierKey   string `yaml:"verifier_key" doc:"Rails config.turbo.signed_stream_verifier_key, used as raw bytes (AnyCable turbo_streams_secret)" secret:"true"`
	SecretKeyBase string `yaml:"secret_key_base" doc:"the app's secret_key_base: the verifier key is derived from it as Rails does (PBKDF2, salt turbo/signed_stream_verifier_key, 1000 iterations, 64 bytes)" secret:"true"`
	KeyDigest     string `yaml:"key_digest" doc:"hash of that derivation: sha256 (Rails 7.0+ defaults) or sha1 (apps on older defaults, key_generator_hash_digest_class)"`
}

// ActionCableBroadcast holds AnyCable's HTTP broadcast endpoint.
type ActionCableBroadcast struct {
	Path string `yaml:"path" doc:"URL path of AnyCable's HTTP broadcast endpoint (POST); empty disables it"`
	Key  string `yaml:"key" doc:"key of the broadcast endpoint (Authorization: Bearer or X-API-Key); empty = derived from actioncable.secret as AnyCable does, else http_api.key" secret:"true"`
}

// ActionCableRPC holds AnyCable's RPC over HTTP to the Rails application.
type ActionCableRPC struct {
	Endpoint       string   `yaml:"endpoint" doc:"base URL of the app's AnyCable HTTP RPC (anycable-rails with http_rpc: true), e.g. http://localhost:3000/_anycable; empty = no RPC"`
	Secret         string   `yaml:"secret" doc:"bearer secret of RPC requests (AnyCable http_rpc_secret); empty = derived from actioncable.secret as AnyCable does, else none" secret:"true"`
	Timeout        Duration `yaml:"timeout" doc:"how long one RPC call may take, retries of an unreachable app included"`
	Concurrency    int      `yaml:"concurrency" doc:"RPC calls in flight at most; more wait (within the timeout)"`
	Headers        []string `yaml:"headers" doc:"request headers of the upgrade forwarded to the app (lower case)"`
	Cookies        []string `yaml:"cookies" doc:"cookies forwarded to the app; empty = all"`
	DisconnectMode string   `yaml:"disconnect_mode" doc:"when the app is told about a closed connection: auto (when the app identified it or ran one of its channels), always or never"`
}

func defaultActionCable() ActionCable {
	return ActionCable{
		Path:          "/cable",
		Subprotocols:  []string{"actioncable-v1-ext-json", "actioncable-v1-json"},
		PingInterval:  Duration(3 * time.Second),
		SessionsTTL:   Duration(5 * time.Minute),
		MaxIdentifier: 4096,
		JWT:           ActionCableJWT{Param: "jid", Leeway: Duration(5 * time.Second)},
		Streams:       ActionCableStreams{PubSubChannel: "$pubsub"},
		Turbo:         ActionCableTurbo{KeyDigest: "sha256"},
		Broadcast:     ActionCableBroadcast{Path: "/_broadcast"},
		RPC: ActionCableRPC{Timeout: Duration(3 * time.Second), Concurrency: 28, Headers: []string{"cookie"},
			DisconnectMode: "auto"},
	}
}

// ActionCableSubprotocols are the subprotocols the front door speaks.
var ActionCableSubprotocols = []string{"actioncable-v1-ext-json", "actioncable-v1-json"}

// takenPath reports whether p is served by another Herald endpoint.
func takenPath(p string) bool {
	return p == "/api" || p == "/health" || p == "/connection/websocket" || p == "/auth/ticket" ||
		strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/debug/") || strings.HasPrefix(p, "/connection/websocket/")
}

// validate checks the Action Cable options.
func (a *ActionCable) validate(c *Config) Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: "actioncable." + key, Msg: fmt.Sprintf(format, args...)})
	}
	checkPath := func(key, p string) {
		switch {
		case !strings.HasPrefix(p, "/") || p == "/" || strings.HasSuffix(p, "/"):
			add(key, "must be a path like /cable: starting with /, not ending with / (got %q)", p)
		case takenPath(p) || (c.Mercure.Enabled && (p == c.Mercure.Path || strings.HasPrefix(p, c.Mercure.Path+"/"))):
			add(key, "%q is taken by another Herald endpoint", p)
		}
	}
	checkPath("path", a.Path)
	if a.Broadcast.Path != "" {
		checkPath("broadcast.path", a.Broadcast.Path)
		if a.Broadcast.Path == a.Path {
			add("broadcast.path", "must differ from actioncable.path (%q)", a.Path)
		}
	}
	if len(a.Subprotocols) == 0 {
		add("subprotocols", "must name at least one of %s", strings.Join(ActionCableSubprotocols, ", "))
	}
	for i, p := range a.Subprotocols {
		if !oneOf(p, ActionCableSubprotocols) {
			add(fmt.Sprintf("subprotocols[%d]", i), "%q is not supported; use %s (msgpack and protobuf are AnyCable Pro formats)", p, strings.Join(ActionCableSubprotocols, " or "))
		}
	}
	if a.PingInterval <= 0 {
		add("ping_interval", "must be more than 0: Rails clients reconnect when they see no ping for 6s")
	}
	if a.PongTimeout < 0 {
		add("pong_timeout", "must not be negative")
	}
	if a.MaxIdentifier < 64 {
		add("max_identifier", "must be at least 64 bytes (got %d)", a.MaxIdentifier)
	}
	if !validParam(a.JWT.Param) {
		add("jwt.param", "must be a non-empty name of letters, digits, - and _ (got %q); the header is X-<param>", a.JWT.Param)
	}
	for _, p := range validateKeys(a.JWT.Keys) {
		p.Key = "actioncable.jwt." + p.Key
		ps = append(ps, p)
	}
	if a.JWT.PreviousSecret != "" && a.JWT.Secret == "" {
		add("jwt.previous_secret", "is set but jwt.secret is not: a rotation needs the current secret too")
	}
	if !strings.HasPrefix(a.Streams.PubSubChannel, "$") && a.Streams.PubSubChannel != "" {
		add("streams.pubsub_channel", "should start with $ so that no Ruby channel class can have its name (got %q)", a.Streams.PubSubChannel)
	}
	if a.Streams.PubSubChannel == "" {
		add("streams.pubsub_channel", "must not be empty (AnyCable's is $pubsub)")
	}
	if a.Turbo.VerifierKey != "" && a.Turbo.SecretKeyBase != "" {
		add("turbo.secret_key_base", "set either turbo.verifier_key or turbo.secret_key_base, not both")
	}
	if !oneOf(a.Turbo.KeyDigest, []string{"sha256", "sha1"}) {
		add("turbo.key_digest", "must be sha256 or sha1 (got %q)", a.Turbo.KeyDigest)
	}
	ps = append(ps, a.RPC.validate()...)
	return ps
}

func (r *ActionCableRPC) validate() Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: "actioncable.rpc." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if r.Endpoint != "" {
		u, err := url.Parse(r.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			add("endpoint", "must be an http:// or https:// URL such as http://localhost:3000/_anycable (gRPC RPC is not supported: set http_rpc: true in the app's config/anycable.yml)")
		case u.RawQuery != "" || u.Fragment != "":
			add("endpoint", "must have no query or fragment: Herald appends /connect, /command and /disconnect")
		}
	}
	if r.Timeout <= 0 {
		add("timeout", "must be more than 0")
	}
	if r.Concurrency < 1 {
		add("concurrency", "must be at least 1 (got %d)", r.Concurrency)
	}
	for i, h := range r.Headers {
		if !validParam(h) {
			add(fmt.Sprintf("headers[%d]", i), "%q is not a header name", h)
		}
	}
	if !oneOf(r.DisconnectMode, []string{"auto", "always", "never"}) {
		add("disconnect_mode", "must be auto, always or never (got %q)", r.DisconnectMode)
	}
	return ps
}

// validParam reports whether s is a non-empty name of letters, digits, - and _.
func validParam(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// applyActionCableDevDefaults turns the front door on and lets anonymous
// clients connect.
func (c *Config) applyActionCableDevDefaults() {
	c.ActionCable.Enabled = true
	c.ActionCable.Anonymous = true
}
