package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Mercure holds the options of the Mercure (draft-07) front door at
// /.well-known/mercure: SSE subscriptions and form publications.
type Mercure struct {
	Enabled    bool        `yaml:"enabled" doc:"serve the Mercure hub (GET subscriptions, POST publications)"`
	Path       string      `yaml:"path" doc:"URL path of the hub"`
	Publisher  MercureKeys `yaml:"publisher" doc:"keys that verify publisher tokens"`
	Subscriber MercureKeys `yaml:"subscriber" doc:"keys that verify subscriber tokens"`
	Anonymous  bool        `yaml:"anonymous" doc:"allow subscribers without a token (they receive public updates only)"`
	CookieName string      `yaml:"cookie_name" doc:"name of the cookie that carries a Mercure token"`
	Leeway     Duration    `yaml:"leeway" doc:"clock-skew leeway for exp and nbf of Mercure tokens"`

	PublishOrigins []string `yaml:"publish_origins" doc:"origins allowed to publish with a cookie-carried token: exact origins, * or wildcards like https://*.example.com"`
	CORSOrigins    []string `yaml:"cors_origins" doc:"origins allowed by CORS: scheme://host[:port], * or null"`

	Heartbeat       Duration `yaml:"heartbeat" doc:"interval of the SSE keep-alive comment; 0 disables it"`
	WriteTimeout    Duration `yaml:"write_timeout" doc:"longest life of a subscription stream (closed at a random 80-100 % of it); 0 = no limit"`
	DispatchTimeout Duration `yaml:"dispatch_timeout" doc:"how long writing updates to one subscriber may take before it is dropped; 0 = no limit"`
	SubscriberQueue int      `yaml:"subscriber_queue" doc:"updates queued for one subscriber before it is dropped as too slow (client.queue_max_size bounds their bytes too)"`

	HistorySize     int      `yaml:"history_size" doc:"updates kept for reconnection (Last-Event-ID): the index of publications of every door that Mercure subscribers replay from; 0 keeps none"`
	HistoryTTL      Duration `yaml:"history_ttl" doc:"how long updates are kept for reconnection; 0 = as long as history_size allows"`
	HistoryMaxBytes int      `yaml:"history_max_bytes" doc:"bound on the bytes of the updates kept for reconnection (one copy each, shared with channel history); the oldest go first"`
	MaxTopics       int      `yaml:"max_topics" doc:"most topic parameters in one subscription or publication"`
	MaxBodySize     int      `yaml:"max_body_size" doc:"largest publication body in bytes (413 above it)"`
	TopicCacheSize  int      `yaml:"topic_cache_size" doc:"selector/topic match results cached; 0 disables the cache"`
	Subscriptions   bool     `yaml:"subscriptions" doc:"publish subscription events and serve the subscriptions API under <path>/subscriptions"`
}

// MercureKeys are the verification keys of one Mercure role (publisher or
// subscriber). secret with alg is the common case; keys adds PEM, JWK, JWKS
// and further secrets, each pinned to its algorithm.
type MercureKeys struct {
	Secret string `yaml:"secret" doc:"HMAC secret (the reference hub's publisher_jwt / subscriber_jwt key)" secret:"true"`
	Alg    string `yaml:"alg" doc:"the one algorithm the secret verifies: HS256, HS384 or HS512"`
	Keys   []Key  `yaml:"keys" doc:"further verification keys, each pinned to one algorithm (as client.token.keys)"`

	TokenRules `yaml:",inline"`
}

// Configured reports whether the role has any key.
func (k *MercureKeys) Configured() bool { return k.Secret != "" || len(k.Keys) > 0 }

func defaultMercure() Mercure {
	return Mercure{
		Enabled:         true,
		Path:            "/.well-known/mercure",
		Publisher:       MercureKeys{Alg: "HS256"},
		Subscriber:      MercureKeys{Alg: "HS256"},
		CookieName:      "mercureAuthorization",
		Heartbeat:       Duration(40 * time.Second),
		WriteTimeout:    Duration(600 * time.Second),
		DispatchTimeout: Duration(5 * time.Second),
		SubscriberQueue: 1000,
		HistorySize:     1000,
		HistoryTTL:      Duration(time.Hour),
		HistoryMaxBytes: 64 << 20,
		MaxTopics:       1000,
		MaxBodySize:     1 << 20,
		TopicCacheSize:  100000,
	}
}

// applyMercureDevDefaults lets anyone subscribe to public updates, pages on
// any origin read streams (CORS) and pages on localhost publish with a cookie.
func (c *Config) applyMercureDevDefaults() {
	m := &c.Mercure
	local := []string{"http://localhost:*", "http://127.0.0.1:*", "http://localhost", "http://127.0.0.1"}
	if len(m.PublishOrigins) == 0 {
		m.PublishOrigins = local
	}
	if len(m.CORSOrigins) == 0 {
		m.CORSOrigins = []string{"*"} // pages on any local port may subscribe
	}
	m.Anonymous = true
}

// validate checks the Mercure options.
func (m *Mercure) validate() Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: "mercure." + key, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case !strings.HasPrefix(m.Path, "/") || m.Path == "/" || strings.HasSuffix(m.Path, "/"):
		add("path", "must be a path like /.well-known/mercure: starting with /, not ending with / (got %q)", m.Path)
	case m.Path == "/api" || m.Path == "/health" || m.Path == "/connection/websocket" || m.Path == "/auth/ticket" ||
		strings.HasPrefix(m.Path, "/api/") || strings.HasPrefix(m.Path, "/debug/") || strings.HasPrefix(m.Path, "/connection/websocket/"):
		add("path", "%q is taken by another Herald endpoint", m.Path)
	}
	for _, role := range []struct {
		name string
		k    *MercureKeys
	}{{"publisher", &m.Publisher}, {"subscriber", &m.Subscriber}} {
		if role.k.Secret != "" && role.k.Alg != "HS256" && role.k.Alg != "HS384" && role.k.Alg != "HS512" {
			add(role.name+".alg", "a secret verifies HS256, HS384 or HS512, not %q; put PEM or JWK keys in %s.keys with their alg", role.k.Alg, role.name)
		}
		for _, p := range validateKeys(role.k.Keys) {
			p.Key = "mercure." + role.name + "." + p.Key
			ps = append(ps, p)
		}
		ps = append(ps, role.k.TokenRules.validate("mercure."+role.name)...)
	}
	if m.CookieName == "" {
		add("cookie_name", "must not be empty (the reference name is mercureAuthorization)")
	}
	for i, o := range m.CORSOrigins {
		if msg := checkCORSOrigin(o); msg != "" {
			add(fmt.Sprintf("cors_origins[%d]", i), "%s", msg)
		}
	}
	for i, o := range m.PublishOrigins {
		if o == "" {
			add(fmt.Sprintf("publish_origins[%d]", i), "must not be empty")
		} else if o != "*" && !strings.Contains(o, "://") {
			add(fmt.Sprintf("publish_origins[%d]", i), "%q has no scheme; write it as https://%s", o, o)
		} else if strings.HasSuffix(o, "/") {
			add(fmt.Sprintf("publish_origins[%d]", i), "%q ends with /; an origin has no path (write %s)", o, strings.TrimRight(o, "/"))
		}
	}
	atLeast := func(key string, v, lo int) {
		if v < lo {
			add(key, "must be at least %d (got %d)", lo, v)
		}
	}
	atLeast("subscriber_queue", m.SubscriberQueue, 1)
	atLeast("history_size", m.HistorySize, 0)
	atLeast("history_max_bytes", m.HistoryMaxBytes, 0)
	atLeast("max_topics", m.MaxTopics, 1)
	atLeast("max_body_size", m.MaxBodySize, 1024)
	atLeast("topic_cache_size", m.TopicCacheSize, 0)
	return ps
}

// checkCORSOrigin accepts *, null and scheme://host[:port]; it returns why
// anything else is refused.
func checkCORSOrigin(o string) string {
	if o == "*" || o == "null" {
		return ""
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Sprintf("%q is not an origin: write scheme://host[:port], like https://example.com", o)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Sprintf("%q is not an origin: an origin has no path, query or user (write %s://%s)", o, u.Scheme, u.Host)
	}
	return ""
}

// MercureEnv lists the reference Mercure hub's key variables that Herald
// reads, to ease migration: the key (an HMAC secret, or PEM key text when
// the alg is not HS*) and its algorithm (HS256 when unset).
var MercureEnv = []string{"MERCURE_PUBLISHER_JWT_KEY", "MERCURE_PUBLISHER_JWT_ALG", "MERCURE_SUBSCRIBER_JWT_KEY", "MERCURE_SUBSCRIBER_JWT_ALG"}

// loadMercureEnv applies MERCURE_{PUBLISHER,SUBSCRIBER}_JWT_{KEY,ALG}.
func (l *loader) loadMercureEnv(env []string) {
	vals := map[string]string{}
	for _, kv := range env {
		if name, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "MERCURE_") {
			vals[name] = val
		}
	}
	for _, role := range []struct {
		prefix string
		path   string
		keys   *MercureKeys
	}{{"MERCURE_PUBLISHER_JWT_", "mercure.publisher", &l.cfg.Mercure.Publisher}, {"MERCURE_SUBSCRIBER_JWT_", "mercure.subscriber", &l.cfg.Mercure.Subscriber}} {
		key, alg := vals[role.prefix+"KEY"], vals[role.prefix+"ALG"]
		where := whereEnvVar + role.prefix + "KEY"
		if key == "" {
			if alg != "" {
				l.add(whereEnvVar+role.prefix+"ALG", role.path, "is set but "+role.prefix+"KEY is not")
			}
			continue
		}
		if alg == "" {
			alg = "HS256"
		}
		if strings.HasPrefix(alg, "HS") {
			role.keys.Secret, role.keys.Alg = key, alg
			l.setOrigin(role.path+".secret", where)
			l.setOrigin(role.path+".alg", where)
			continue
		}
		role.keys.Keys = append(role.keys.Keys, Key{Alg: alg, Value: key})
		l.setOrigin(role.path+".keys", where)
	}
}
