package config

import (
	"net/url"
	"strings"
	"time"
)

// Broker chooses what connects the nodes of a Herald cluster.
type Broker struct {
	Type    string      `yaml:"type" doc:"memory (one node), redis or nats"`
	AtStart string      `yaml:"at_start" doc:"when the broker is unreachable at start: wait (serve at once with /health 503, refuse publications, log every 5s until it answers) or exit (non-zero, after a few seconds)"`
	Redis   RedisBroker `yaml:"redis"`
	NATS    NATSBroker  `yaml:"nats"`
}

// RedisBroker holds the Redis connection (broker.type redis, or the store
// of broker.type nats with broker.nats.store redis).
type RedisBroker struct {
	Address            string   `yaml:"address" doc:"host:port, redis://[user@]host:port[/db], rediss:// (TLS), unix:///path, redis+sentinel://host:26379?sentinel_master_name=NAME[&addr=host2:26379] or redis+cluster://host:port[?addr=host2:port]; put the password in broker.redis.password"`
	User               string   `yaml:"user" doc:"ACL user name"`
	Password           string   `yaml:"password" doc:"password (of the ACL user, or requirepass)" secret:"true"`
	DB                 int      `yaml:"db" doc:"database number (not on a cluster)"`
	TLS                bool     `yaml:"tls" doc:"use TLS with a host:port address (rediss:// always does)"`
	TLSCAFile          string   `yaml:"tls_ca_file" doc:"PEM file of the CA that signed the Redis server's certificate"`
	TLSServerName      string   `yaml:"tls_server_name" doc:"name to verify in the server's certificate (default: the address's host)"`
	TLSSkipVerify      bool     `yaml:"tls_skip_verify" doc:"accept any server certificate (testing only)"`
	SentinelMasterName string   `yaml:"sentinel_master_name" doc:"name of the master the sentinels watch (or sentinel_master_name in the address)"`
	SentinelUser       string   `yaml:"sentinel_user" doc:"ACL user for the sentinels"`
	SentinelPassword   string   `yaml:"sentinel_password" doc:"password for the sentinels" secret:"true"`
	Prefix             string   `yaml:"prefix" doc:"start of every key and PUB/SUB channel, so several Herald clusters can share one Redis"`
	Partitions         int      `yaml:"partitions" doc:"PUB/SUB connections (and cluster hash slots) channels are spread over; the same on every node (it is part of the key names)"`
	ConnectTimeout     Duration `yaml:"connect_timeout" doc:"how long one dial to Redis may take"`
	IOTimeout          Duration `yaml:"io_timeout" doc:"how long one Redis command may take before it fails as temporary"`
	PresenceTTL        Duration `yaml:"presence_ttl" doc:"how long a presence entry lives unless its node refreshes it"`
}

// NATSBroker holds the NATS connection (broker.type nats).
type NATSBroker struct {
	URL              string   `yaml:"url" doc:"nats:// or tls:// URL of the NATS server; several, comma-separated"`
	Prefix           string   `yaml:"prefix" doc:"start of every subject"`
	User             string   `yaml:"user" doc:"NATS user"`
	Password         string   `yaml:"password" doc:"password of the NATS user" secret:"true"`
	Token            string   `yaml:"token" doc:"NATS authentication token" secret:"true"`
	CredsFile        string   `yaml:"creds_file" doc:"NATS credentials file (JWT and NKey seed)"`
	TLSCAFile        string   `yaml:"tls_ca_file" doc:"PEM file of the CA that signed the NATS server's certificate"`
	ConnectTimeout   Duration `yaml:"connect_timeout" doc:"how long one dial to NATS may take"`
	SubscribeTimeout Duration `yaml:"subscribe_timeout" doc:"how long NATS may take to confirm a subscription"`
	Store            string   `yaml:"store" doc:"where history, the Mercure index and presence live: node (each node its own; no recovery across nodes) or redis (broker.redis, shared)"`
}

func defaultBroker() Broker {
	return Broker{
		Type:    "memory",
		AtStart: "wait",
		Redis: RedisBroker{
			Address:        "127.0.0.1:6379",
			Prefix:         "herald",
			Partitions:     16,
			ConnectTimeout: Duration(time.Second),
			IOTimeout:      Duration(4 * time.Second),
			PresenceTTL:    Duration(60 * time.Second),
		},
		NATS: NATSBroker{
			URL:              "nats://127.0.0.1:4222",
			Prefix:           "herald",
			ConnectTimeout:   Duration(time.Second),
			SubscribeTimeout: Duration(4 * time.Second),
			Store:            "node",
		},
	}
}

// UsesRedis reports whether the configured broker talks to Redis.
func (b *Broker) UsesRedis() bool {
	return b.Type == "redis" || (b.Type == "nats" && b.NATS.Store == "redis")
}

func (b *Broker) validate() Problems {
	var ps Problems
	add := func(key, msg string) { ps = append(ps, Problem{Key: key, Msg: msg}) }
	switch b.Type {
	case "memory", "redis", "nats":
	default:
		add("broker.type", "must be one of memory, redis, nats (got \""+b.Type+"\")")
	}
	if b.AtStart != "wait" && b.AtStart != "exit" {
		add("broker.at_start", "must be wait or exit (got \""+b.AtStart+"\")")
	}
	if b.Type == "nats" {
		n := &b.NATS
		if n.Store != "node" && n.Store != "redis" {
			add("broker.nats.store", "must be node or redis (got \""+n.Store+"\")")
		}
		for _, u := range strings.Split(n.URL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || pu.Host == "" || (pu.Scheme != "nats" && pu.Scheme != "tls") {
				add("broker.nats.url", "each URL must be nats://host:port or tls://host:port")
				break
			}
		}
		if n.Prefix == "" || strings.ContainsAny(n.Prefix, " \t*>") || strings.HasPrefix(n.Prefix, ".") || strings.HasSuffix(n.Prefix, ".") {
			add("broker.nats.prefix", "must be a NATS subject without wildcards, spaces or a leading or trailing dot")
		}
		if n.ConnectTimeout <= 0 || n.SubscribeTimeout <= 0 {
			add("broker.nats", "connect_timeout and subscribe_timeout must be more than 0")
		}
	}
	if b.UsesRedis() {
		r := &b.Redis
		if strings.TrimSpace(r.Address) == "" {
			add("broker.redis.address", "is required with a Redis broker or store")
		} else if strings.Contains(r.Address, "://") {
			u, err := url.Parse(r.Address)
			switch {
			case err != nil:
				add("broker.redis.address", "is not a valid URL")
			case !oneOfScheme(u.Scheme):
				add("broker.redis.address", "scheme \""+u.Scheme+"\" must be one of redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster, rediss+cluster, unix")
			}
		}
		if r.Prefix == "" || strings.ContainsAny(r.Prefix, "{}") {
			add("broker.redis.prefix", "must be non-empty and have no { or } (they would change the keys' hash slots)")
		}
		if r.Partitions < 1 || r.Partitions > 16384 {
			add("broker.redis.partitions", "must be from 1 to 16384")
		}
		if r.ConnectTimeout <= 0 || r.IOTimeout <= 0 {
			add("broker.redis", "connect_timeout and io_timeout must be more than 0")
		}
		if r.PresenceTTL < Duration(time.Second) {
			add("broker.redis.presence_ttl", "must be at least 1s")
		}
	}
	return ps
}

func oneOfScheme(s string) bool {
	switch s {
	case "redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster", "unix", "valkey", "valkeys":
		return true
	}
	return false
}
