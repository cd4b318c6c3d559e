package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Options configure the Redis broker.
type Options struct {
	// Address is host:port, redis://[user:pass@]host:port[/db],
	// rediss://… (TLS), unix:///path/to/socket,
	// redis+sentinel://[user:pass@]host:26379?sentinel_master_name=NAME[&addr=host2:26379…]
	// (rediss+sentinel:// for TLS) or redis+cluster://host:port[?addr=host2:port…]
	// (rediss+cluster://).
	Address string
	// User and Password authenticate with Redis (ACL user, or the
	// requirepass password with an empty user). They override the URL's.
	User     string
	Password string
	DB       int // database number (standalone and Sentinel only)
	// TLS turns TLS on for host:port addresses too; TLSCAFile adds a CA to
	// verify the server with; TLSServerName overrides the name checked.
	TLS           bool
	TLSCAFile     string
	TLSServerName string
	TLSSkipVerify bool
	// SentinelMasterName, SentinelUser and SentinelPassword override the
	// URL's sentinel_master_name, sentinel_user and sentinel_password.
	SentinelMasterName string
	SentinelUser       string
	SentinelPassword   string

	// Prefix starts every key and PUB/SUB channel, so several Herald
	// clusters can share one Redis.
	Prefix string
	// Partitions spreads channels over this many PUB/SUB connections and,
	// on Redis Cluster, over as many hash slots. Every node of a Herald
	// cluster must use the same value: it is part of the key names.
	Partitions int
	// ConnectTimeout bounds a dial; IOTimeout bounds each command.
	ConnectTimeout time.Duration
	IOTimeout      time.Duration
	// PresenceTTL is how long a presence entry lives without a refresh.
	PresenceTTL time.Duration
}

// Defaults for options left zero.
const (
	DefaultPrefix         = "herald"
	DefaultPartitions     = 16
	DefaultConnectTimeout = time.Second
	DefaultIOTimeout      = 4 * time.Second
	DefaultPresenceTTL    = 60 * time.Second
)

func (o *Options) withDefaults() Options {
	c := *o
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.IOTimeout <= 0 {
		c.IOTimeout = DefaultIOTimeout
	}
	if c.PresenceTTL <= 0 {
		c.PresenceTTL = DefaultPresenceTTL
	}
	return c
}

// topology is how the address reaches Redis.
type topology int

const (
	topoStandalone topology = iota
	topoSentinel
	topoCluster
)

func (t topology) String() string {
	switch t {
	case topoSentinel:
		return "sentinel"
	case topoCluster:
		return "cluster"
	}
	return "standalone"
}

// clientOption turns Options into the client's options. Its errors say
// which part of the address is wrong; they never contain a password.
func (o *Options) clientOption() (rueidis.ClientOption, topology, error) {
	var opt rueidis.ClientOption
	addr := strings.TrimSpace(o.Address)
	if addr == "" {
		return opt, 0, fmt.Errorf("redis address is empty (use host:port or redis://host:port)")
	}
	topo := topoStandalone
	useTLS := o.TLS
	q := url.Values{}
	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return opt, 0, fmt.Errorf("redis address %q is not host:port or a redis:// URL", addr)
		}
		opt.InitAddress = []string{addr}
	} else {
		u, err := url.Parse(addr)
		if err != nil {
			return opt, 0, fmt.Errorf("redis address is not a valid URL: %v", redactErr(err))
		}
		q = u.Query()
		switch u.Scheme {
		case "redis", "valkey":
		case "rediss", "valkeys":
			useTLS = true
		case "redis+sentinel":
			topo = topoSentinel
		case "rediss+sentinel":
			topo, useTLS = topoSentinel, true
		case "redis+cluster":
			topo = topoCluster
		case "rediss+cluster":
			topo, useTLS = topoCluster, true
		case "unix":
			path := u.Path
			opt.InitAddress = []string{path}
			opt.DialCtxFn = func(ctx context.Context, s string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
				return d.DialContext(ctx, "unix", s)
			}
		default:
			return opt, 0, fmt.Errorf("redis address scheme %q is not one of redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster, rediss+cluster, unix", u.Scheme)
		}
		if u.Scheme != "unix" {
			host := u.Host
			if host == "" {
				return opt, 0, fmt.Errorf("redis address has no host")
			}
			if _, _, err := net.SplitHostPort(host); err != nil {
				port := "6379"
				if topo == topoSentinel {
					port = "26379"
				}
				host = net.JoinHostPort(strings.Trim(host, "[]"), port)
			}
			opt.InitAddress = append([]string{host}, q["addr"]...)
			if p := strings.Trim(u.Path, "/"); p != "" {
				db, err := strconv.Atoi(p)
				if err != nil {
					return opt, 0, fmt.Errorf("redis address path %q is not a database number", u.Path)
				}
				opt.SelectDB = db
			}
		}
		if u.User != nil {
			opt.Username = u.User.Username()
			opt.Password, _ = u.User.Password()
		}
		if v := q.Get("db"); v != "" {
			db, err := strconv.Atoi(v)
			if err != nil {
				return opt, 0, fmt.Errorf("redis address: db=%q is not a number", v)
			}
			opt.SelectDB = db
		}
	}
	if o.User != "" {
		opt.Username = o.User
	}
	if o.Password != "" {
		opt.Password = o.Password
	}
	if o.DB != 0 {
		opt.SelectDB = o.DB
	}
	if topo == topoCluster && opt.SelectDB != 0 {
		return opt, 0, fmt.Errorf("redis cluster has only database 0 (got db %d)", opt.SelectDB)
	}
	if topo == topoSentinel {
		opt.Sentinel.MasterSet = firstNonEmpty(o.SentinelMasterName, q.Get("sentinel_master_name"))
		if opt.Sentinel.MasterSet == "" {
			return opt, 0, fmt.Errorf("redis+sentinel address needs sentinel_master_name (in the URL's query or broker.redis.sentinel_master_name)")
		}
		opt.Sentinel.Username = firstNonEmpty(o.SentinelUser, q.Get("sentinel_user"))
		opt.Sentinel.Password = firstNonEmpty(o.SentinelPassword, q.Get("sentinel_password"))
		// Reconcile with the sentinels every few seconds besides their
		// +switch-master events: one missed event must not bind the
		// node to a demoted master.
		opt.Sentinel.TopologyRefreshInterval = 2 * time.Second
		opt.Sentinel.Dialer.Timeout = o.ConnectTimeout
	}
	if useTLS {
		tc, err := o.tlsConfig(opt.InitAddress[0])
		if err != nil {
			return opt, 0, err
		}
		opt.TLSConfig = tc
		if topo == topoSentinel {
			// The sentinels are reached with TLS too (a known gap of
			// other servers: sentinel connections without TLS).
			opt.Sentinel.TLSConfig = tc.Clone()
		}
	}
	opt.Dialer.Timeout = o.ConnectTimeout
	opt.Dialer.KeepAlive = 15 * time.Second
	opt.ConnWriteTimeout = o.IOTimeout
	opt.DisableCache = true
	// One auto-pipelined connection carries every command: concurrent
	// publications go out together in one write and come back in one read
	// (less CPU on both sides than several connections), and the watch
	// loop's ping finds it dead after a Redis restart before a publication
	// does.
	opt.PipelineMultiplex = -1
	opt.ClientName = "herald"
	if topo == topoStandalone {
		opt.ForceSingleClient = true
	}
	opt.ClusterOption.ShardsRefreshInterval = 5 * time.Second
	return opt, topo, nil
}

func (o *Options) tlsConfig(firstAddr string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.TLSSkipVerify}
	if host, _, err := net.SplitHostPort(firstAddr); err == nil {
		tc.ServerName = host
	}
	if o.TLSServerName != "" {
		tc.ServerName = o.TLSServerName
	}
	if o.TLSCAFile != "" {
		pem, err := os.ReadFile(o.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("redis TLS CA file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis TLS CA file %s holds no PEM certificate", o.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Validate checks the address and options without connecting.
func (o *Options) Validate() error {
	c := o.withDefaults()
	_, _, err := c.clientOption()
	return err
}

// RedactAddress returns the address with any password replaced, for logs.
func RedactAddress(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || !strings.Contains(addr, "://") {
		return addr
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "redacted")
		}
	}
	q := u.Query()
	if q.Has("sentinel_password") {
		q.Set("sentinel_password", "redacted")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactErr drops the text of a URL parse error, which quotes the whole
// URL (password included).
func redactErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return "malformed URL"
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
