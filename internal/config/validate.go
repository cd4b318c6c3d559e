package config

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MaxHistorySize is the largest history_size a namespace may have.
const MaxHistorySize = 100000

// namespaceNameRE is what namespace names must match.
var namespaceNameRE = regexp.MustCompile(`^[-a-zA-Z0-9_]{2,}$`)

// Validate checks the values of c against each other and against their
// allowed ranges and returns every problem found, each naming its key path,
// or nil when c is valid.
func (c *Config) Validate() Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}

	oneOf := func(key, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		add(key, "must be one of %s (got %q)", strings.Join(allowed, ", "), v)
	}
	oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error")
	oneOf("log_format", c.LogFormat, "text", "json")

	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "must be host:port, like 127.0.0.1:8000 or :8000 (got %q)", c.Listen)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		add("listen", "port %q must be a number from 0 to 65535", port)
	}

	atLeast := func(key string, v, lo int) {
		if v < lo {
			add(key, "must be at least %d (got %d)", lo, v)
		}
	}
	ps = append(ps, c.HTTP.validate()...)
	atLeast("http_api.max_broadcast_channels", c.HTTPAPI.MaxBroadcastChannels, 1)
	cl := &c.Client
	atLeast("client.channel_limit", cl.ChannelLimit, 1)
	atLeast("client.queue_max_size", cl.QueueMaxSize, 1024)
	atLeast("client.message_size_limit", cl.MessageSizeLimit, 1024)
	atLeast("client.history_max_publication_limit", cl.HistoryMaxPublicationLimit, 1)
	atLeast("client.recovery_max_publication_limit", cl.RecoveryMaxPublicationLimit, 1)
	atLeast("client.connection_info_max_size", cl.ConnectionInfoMaxSize, 0)
	atLeast("client.user_connection_limit", cl.UserConnectionLimit, 0)
	atLeast("client.command_rate_limit", cl.CommandRateLimit, 0)
	if cl.CommandRateLimit > 0 && cl.CommandBurst < cl.ChannelLimit+1 {
		add("client.command_burst", "(%d) must be at least client.channel_limit + 1 (%d), or reconnecting clients that resubscribe would be refused", cl.CommandBurst, cl.ChannelLimit+1)
	}
	if cl.PingInterval > 0 && cl.PongTimeout <= 0 {
		add("client.pong_timeout", "must be set when pings are on (client.ping_interval %s)", cl.PingInterval)
	}
	if cl.WriteLag < 0 || cl.WriteLag > Duration(time.Second) {
		add("client.write_lag", "must be from 0 to 1s (got %s); it bounds how long queued messages wait under load", cl.WriteLag)
	}
	if cl.StaleCloseDelay <= 0 {
		add("client.stale_close_delay", "must be more than 0 (connections that never send connect must be closed)")
	}
	if ml := c.Channel.MaxLength; ml < 1 || ml > 65535 {
		add("channel.max_length", "must be from 1 to 65535 (got %d)", ml)
	}

	if cl.PingInterval > 0 && cl.PongTimeout >= cl.PingInterval {
		add("client.pong_timeout", "(%s) must be less than client.ping_interval (%s); set client.ping_interval to 0 to disable pings",
			cl.PongTimeout, cl.PingInterval)
	}

	for i, o := range cl.AllowedOrigins {
		if strings.TrimSpace(o) == "" {
			add(fmt.Sprintf("client.allowed_origins[%d]", i), "must not be empty")
		}
	}

	ps = append(ps, cl.validateAuth()...)
	ps = append(ps, c.validateOperations()...)
	ps = append(ps, c.Mercure.validate()...)
	ps = append(ps, c.NATSCallout.validate()...)
	ps = append(ps, c.Broker.validate()...)
	if c.ActionCable.Enabled {
		ps = append(ps, c.ActionCable.validate(c)...)
	}
	ps = append(ps, c.Transports.validate()...)
	ps = append(ps, cl.Proxy.Connect.validate("client.proxy.connect")...)
	ps = append(ps, cl.Proxy.Refresh.validate("client.proxy.refresh")...)
	if co := &cl.Callout; co.Enabled {
		if !strings.HasPrefix(co.Endpoint, "http://") && !strings.HasPrefix(co.Endpoint, "https://") {
			ps = append(ps, Problem{Key: "client.callout.endpoint", Msg: "must be an http:// or https:// URL"})
		}
		if co.SigningSecret == "" {
			ps = append(ps, Problem{Key: "client.callout.signing_secret", Msg: "is required: Herald signs its requests"})
		}
		if len(co.ResponseKeys) == 0 {
			ps = append(ps, Problem{Key: "client.callout.response_keys", Msg: "is required: answers must be signed"})
		}
		for i, k := range co.ResponseKeys {
			if k.JWKSURL != "" {
				ps = append(ps, Problem{Key: fmt.Sprintf("client.callout.response_keys[%d].jwks_url", i), Msg: "is not supported for callout answers; give the key itself"})
			}
		}
	}
	if cl.Proxy.ConnectMode != "" {
		oneOf("client.proxy.connect_mode", cl.Proxy.ConnectMode, "no_token", "always")
	}
	ps = append(ps, c.Channel.Proxy.Subscribe.validate("channel.proxy.subscribe")...)
	ps = append(ps, c.Channel.Proxy.Publish.validate("channel.proxy.publish")...)
	ps = append(ps, c.Channel.Proxy.SubRefresh.validate("channel.proxy.sub_refresh")...)
	ps = append(ps, c.RPC.Proxy.validate("rpc.proxy")...)
	named := map[string]bool{}
	for i := range c.Proxies {
		np := &c.Proxies[i]
		path := fmt.Sprintf("proxies[%d]", i)
		switch {
		case np.Name == "":
			ps = append(ps, Problem{Key: path + ".name", Msg: "is required"})
		case named[np.Name]:
			ps = append(ps, Problem{Key: path + ".name", Msg: fmt.Sprintf("%q is used twice", np.Name)})
		}
		named[np.Name] = true
		px := np.Proxy
		px.Enabled = true // a named proxy exists to be used
		ps = append(ps, px.validate(path)...)
	}
	refer := func(key, name string) {
		if name != "" && !named[name] {
			ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf("names proxy %q, which is not in proxies", name)})
		}
	}
	for i, rn := range c.RPC.Namespaces {
		path := fmt.Sprintf("rpc.namespaces[%d]", i)
		if rn.Name == "" {
			ps = append(ps, Problem{Key: path + ".name", Msg: "is required"})
		}
		if rn.ProxyName == "" {
			ps = append(ps, Problem{Key: path + ".proxy_name", Msg: "is required"})
		}
		refer(path+".proxy_name", rn.ProxyName)
	}
	nsProxy := func(path string, o *NamespaceOptions) {
		refer(path+".subscribe_proxy_name", o.SubscribeProxyName)
		refer(path+".publish_proxy_name", o.PublishProxyName)
		if o.SubscribeProxyEnabled && !c.Channel.Proxy.Subscribe.Enabled {
			ps = append(ps, Problem{Key: path + ".subscribe_proxy_enabled", Msg: "needs channel.proxy.subscribe to be enabled"})
		}
		if o.SubRefreshProxyEnabled && !c.Channel.Proxy.SubRefresh.Enabled {
			ps = append(ps, Problem{Key: path + ".sub_refresh_proxy_enabled", Msg: "needs channel.proxy.sub_refresh to be enabled"})
		}
		if o.PublishProxyEnabled && !c.Channel.Proxy.Publish.Enabled {
			ps = append(ps, Problem{Key: path + ".publish_proxy_enabled", Msg: "needs channel.proxy.publish to be enabled"})
		}
	}
	nsProxy("channel.without_namespace", &c.Channel.WithoutNamespace)
	for i := range c.Channel.Namespaces {
		nsProxy(fmt.Sprintf("channel.namespaces[%d]", i), &c.Channel.Namespaces[i].NamespaceOptions)
	}
	ps = append(ps, c.Channel.WithoutNamespace.validate("channel.without_namespace")...)
	firstByName := map[string]int{}
	for i := range c.Channel.Namespaces {
		ns := &c.Channel.Namespaces[i]
		path := fmt.Sprintf("channel.namespaces[%d]", i)
		switch {
		case ns.Name == "":
			add(path+".name", "is required")
		case !namespaceNameRE.MatchString(ns.Name):
			add(path+".name", "%q is not a valid namespace name (use 2 or more letters, digits, - or _)", ns.Name)
		default:
			if first, dup := firstByName[ns.Name]; dup {
				add(path+".name", "%q duplicates the name of channel.namespaces[%d]", ns.Name, first)
			} else {
				firstByName[ns.Name] = i
			}
		}
		ps = append(ps, ns.NamespaceOptions.validate(path)...)
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// validate checks the HTTP timeouts and limits.
func (h *HTTP) validate() Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: "http." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if h.ReadHeaderTimeout <= 0 {
		add("read_header_timeout", "must be more than 0: a client that never finishes its headers would hold its connection forever")
	}
	if h.IdleTimeout <= 0 {
		add("idle_timeout", "must be more than 0: idle keep-alive connections would be held forever")
	}
	if h.ReadTimeout > 0 && h.ReadTimeout < h.ReadHeaderTimeout {
		add("read_timeout", "(%s) must be at least http.read_header_timeout (%s), or 0 for no limit", h.ReadTimeout, h.ReadHeaderTimeout)
	}
	if h.MaxPendingConns < 0 {
		add("max_pending_conns", "must not be negative (0 = no limit)")
	}
	if h.MaxPendingConnsPerIP < 0 {
		add("max_pending_conns_per_ip", "must not be negative (0 = no limit)")
	}
	return ps
}

// validate checks one set of namespace options at key path path.
func (o *NamespaceOptions) validate(path string) Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: path + "." + key, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case o.HistorySize < 0:
		add("history_size", "must not be negative (got %d)", o.HistorySize)
	case o.HistorySize > MaxHistorySize:
		add("history_size", "must be at most %d (got %d)", MaxHistorySize, o.HistorySize)
	case o.HistorySize > 0 && o.HistoryTTL <= 0:
		add("history_ttl", "must be set when history_size is set (history needs both)")
	case o.HistorySize == 0 && o.HistoryTTL > 0:
		add("history_size", "must be set when history_ttl is set (history needs both)")
	}
	if !o.HistoryEnabled() {
		for _, opt := range []struct {
			on   bool
			name string
		}{{o.ForceRecovery, "force_recovery"}, {o.AllowRecovery, "allow_recovery"}, {o.ForcePositioning, "force_positioning"}, {o.AllowPositioning, "allow_positioning"}} {
			if opt.on {
				add(opt.name, "needs history: set history_size and history_ttl too")
			}
		}
	}
	if o.ForcePushJoinLeave && !o.JoinLeave {
		add("force_push_join_leave", "has no effect without join_leave: true")
	}
	for _, d := range o.AllowedDeltaTypes {
		if d != "fossil" {
			add("allowed_delta_types", "%q is not a delta type Herald knows (fossil is the only one)", d)
		}
	}
	if o.ChannelRegex != "" {
		if _, err := regexp.Compile(o.ChannelRegex); err != nil {
			add("channel_regex", "does not compile: %v", err)
		}
	}
	return ps
}

// tokenSourceNames are the names client.token_sources accepts.
var tokenSourceNames = []string{"connect", "header", "subprotocol", "cookie", "query", "ticket"}

// keyAlgs are the algorithms a configured key may be pinned to.
var keyAlgs = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func oneOf(s string, list []string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validateAuth checks the token sources, keys and claim rules.
func (cl *Client) validateAuth() Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	seen := map[string]bool{}
	for i, s := range cl.TokenSources {
		key := fmt.Sprintf("client.token_sources[%d]", i)
		switch {
		case !oneOf(s, tokenSourceNames):
			add(key, "%q is not a token source (use %s)", s, strings.Join(tokenSourceNames, ", "))
		case seen[s]:
			add(key, "%q is listed twice", s)
		}
		seen[s] = true
	}
	if seen["cookie"] && cl.TokenCookie == "" {
		add("client.token_cookie", "must name the cookie when token_sources has cookie")
	}
	if seen["query"] && cl.TokenQueryParam == "" {
		add("client.token_query_param", "must name the parameter when token_sources has query")
	}
	if seen["ticket"] && cl.TicketTTL <= 0 {
		add("client.ticket_ttl", "must be more than 0 when token_sources has ticket")
	}
	if cl.TicketTTL > Duration(5*time.Minute) {
		add("client.ticket_ttl", "(%s) must be at most 5m: tickets travel in URLs and must be short-lived", cl.TicketTTL)
	}
	if !oneOf(cl.ReasonDetail, []string{"", "code", "full"}) {
		add("client.reason_detail", "must be code or full (got %q)", cl.ReasonDetail)
	}
	ps = append(ps, cl.Token.validate("client.token")...)
	if cl.SubscriptionToken.Enabled {
		ps = append(ps, cl.SubscriptionToken.Token.validate("client.subscription_token")...)
	}
	return ps
}

func (t *Token) validate(path string) Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: path + "." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if t.HMACPreviousSecretKeyValidUntil != 0 && t.HMACPreviousSecretKey == "" {
		add("hmac_previous_secret_key_valid_until", "is set but hmac_previous_secret_key is empty")
	}
	if t.HMACPreviousSecretKeyValidUntil < 0 {
		add("hmac_previous_secret_key_valid_until", "must be a unix time in seconds")
	}
	if t.Leeway > Duration(5*time.Minute) {
		add("leeway", "(%s) must be at most 5m", t.Leeway)
	}
	for i, a := range t.Audience {
		if a == "" {
			add(fmt.Sprintf("audience[%d]", i), "must not be empty")
		}
	}
	for i, a := range t.Issuer {
		if a == "" {
			add(fmt.Sprintf("issuer[%d]", i), "must not be empty")
		}
	}
	if t.UserClaim == "" {
		add("user_claim", "must name a claim (sub by default)")
	}
	ps = append(ps, t.TokenRules.validate(path)...)
	for _, p := range validateKeys(t.Keys) {
		p.Key = path + "." + p.Key
		ps = append(ps, p)
	}
	return ps
}

// validate checks the typ list and the exp rules of one kind of token at
// key path path.
func (r *TokenRules) validate(path string) Problems {
	var ps Problems
	for i, t := range r.Typ {
		if strings.TrimSpace(t) == "" {
			ps = append(ps, Problem{Key: fmt.Sprintf("%s.typ[%d]", path, i), Msg: "must not be empty"})
		}
	}
	if r.RequireExp && r.MaxLifetimeWithoutExp > 0 {
		ps = append(ps, Problem{Key: path + ".max_lifetime_without_exp", Msg: "has no effect with require_exp: tokens without exp are refused; unset one of them"})
	}
	return ps
}

// validateKeys checks configured keys; problem keys are relative ("keys[0].alg").
func validateKeys(keys []Key) Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for i, k := range keys {
		kp := fmt.Sprintf("keys[%d]", i)
		n := 0
		for _, set := range []bool{k.Secret != "", k.Value != "", k.Env != "", k.File != "", k.JWKSURL != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			add(kp, "needs exactly one of secret, value, env, file and jwks_url (got %d)", n)
		}
		if k.Alg != "" && !oneOf(k.Alg, keyAlgs) {
			add(kp+".alg", "%q is not a supported algorithm (use %s)", k.Alg, strings.Join(keyAlgs, ", "))
		}
		if k.Alg == "" && k.Secret != "" {
			add(kp+".alg", "is required for an HMAC secret (HS256, HS384 or HS512)")
		}
		if k.Secret != "" && k.Alg != "" && !strings.HasPrefix(k.Alg, "HS") {
			add(kp+".alg", "%s cannot verify with an HMAC secret; a secret needs HS256, HS384 or HS512", k.Alg)
		}
		if k.JWKSURL != "" && !strings.HasPrefix(k.JWKSURL, "https://") && !strings.HasPrefix(k.JWKSURL, "http://") {
			add(kp+".jwks_url", "must be an http:// or https:// URL")
		}
		if k.RefreshInterval != 0 && k.JWKSURL == "" {
			add(kp+".refresh_interval", "applies to jwks_url keys only")
		}
		if k.MinRefetch != 0 && k.JWKSURL == "" {
			add(kp+".min_refetch", "applies to jwks_url keys only")
		}
		if k.ValidUntil < 0 {
			add(kp+".valid_until", "must be a unix time in seconds")
		}
	}
	return ps
}

// validate checks one proxy's settings at key path path.
func (p *Proxy) validate(path string) Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: path + "." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if !p.Enabled {
		return nil
	}
	switch {
	case p.Endpoint == "":
		add("endpoint", "is required when the proxy is enabled")
	case !strings.HasPrefix(p.Endpoint, "http://") && !strings.HasPrefix(p.Endpoint, "https://"):
		add("endpoint", "%q must be an http:// or https:// URL (gRPC proxies are not supported yet)", p.Endpoint)
	}
	if p.Timeout < 0 {
		add("timeout", "must not be negative")
	}
	if p.MaxConcurrent < 0 {
		add("max_concurrent", "must not be negative")
	}
	if p.BreakerFailures < 0 {
		add("breaker_failures", "must not be negative")
	}
	if p.BreakerCooldown < 0 {
		add("breaker_cooldown", "must not be negative")
	}
	for i, h := range p.StaticHeaders {
		if name, _, ok := strings.Cut(h, ":"); !ok || strings.TrimSpace(name) == "" {
			add(fmt.Sprintf("static_headers[%d]", i), "must be \"Name: value\"")
		}
	}
	for i, t := range p.StatusTransforms {
		kp := fmt.Sprintf("status_to_code_transforms[%d]", i)
		if t.StatusCode < 100 || t.StatusCode > 599 {
			add(kp+".status_code", "must be an HTTP status (got %d)", t.StatusCode)
		}
		switch {
		case (t.ErrorCode != 0) == (t.DisconnectCode != 0):
			add(kp, "needs exactly one of error_code and disconnect_code")
		case t.ErrorCode != 0 && (t.ErrorCode < 100 || t.ErrorCode > 1999):
			add(kp+".error_code", "must be from 100 to 1999 (got %d)", t.ErrorCode)
		case t.DisconnectCode != 0 && (t.DisconnectCode < 4000 || t.DisconnectCode > 4999):
			add(kp+".disconnect_code", "must be from 4000 to 4999 (got %d)", t.DisconnectCode)
		}
	}
	return ps
}
