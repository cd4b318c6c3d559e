package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateDefaultsAreValid(t *testing.T) {
	if ps := Default().Validate(); ps != nil {
		t.Errorf("defaults: unexpected problems:\n%v", ps)
	}
	dev := Default()
	dev.Dev = true
	dev.ApplyDevDefaults()
	if ps := dev.Validate(); ps != nil {
		t.Errorf("dev defaults: unexpected problems:\n%v", ps)
	}
}

func TestValidate(t *testing.T) {
	ns := func(name string, opts NamespaceOptions) Namespace {
		return Namespace{Name: name, NamespaceOptions: opts}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // problems as "key: msg"; nil means valid
	}{
		// Log settings.
		{"log_level ok", func(c *Config) { c.LogLevel = "debug" }, nil},
		{"log_level bad", func(c *Config) { c.LogLevel = "verbose" }, []string{`log_level: must be one of debug, info, warn, error (got "verbose")`}},
		{"log_level case", func(c *Config) { c.LogLevel = "INFO" }, []string{`log_level: must be one of debug, info, warn, error (got "INFO")`}},
		{"log_format ok", func(c *Config) { c.LogFormat = "json" }, nil},
		{"log_format bad", func(c *Config) { c.LogFormat = "xml" }, []string{`log_format: must be one of text, json (got "xml")`}},

		// Listen address.
		{"listen any host", func(c *Config) { c.Listen = ":8000" }, nil},
		{"listen ipv6", func(c *Config) { c.Listen = "[::1]:0" }, nil},
		{"listen max port", func(c *Config) { c.Listen = "localhost:65535" }, nil},
		{"listen no port", func(c *Config) { c.Listen = "localhost" }, []string{`listen: must be host:port, like 127.0.0.1:8000 or :8000 (got "localhost")`}},
		{"listen empty", func(c *Config) { c.Listen = "" }, []string{`listen: must be host:port, like 127.0.0.1:8000 or :8000 (got "")`}},
		{"listen named port", func(c *Config) { c.Listen = "localhost:http" }, []string{`listen: port "http" must be a number from 0 to 65535`}},
		{"listen port too big", func(c *Config) { c.Listen = ":65536" }, []string{`listen: port "65536" must be a number from 0 to 65535`}},
		{"listen empty port", func(c *Config) { c.Listen = "localhost:" }, []string{`listen: port "" must be a number from 0 to 65535`}},
		{"listen negative port", func(c *Config) { c.Listen = ":-1" }, []string{`listen: port "-1" must be a number from 0 to 65535`}},

		// Metrics and the admin page.
		{"metrics on the main listener with the admin key", func(c *Config) { c.Metrics.Enabled, c.Admin.Key = true, "k" }, nil},
		{"metrics open in dev", func(c *Config) { c.Metrics.Enabled, c.Dev = true, true }, nil},
		{"metrics on a listener of their own", func(c *Config) { c.Metrics.Enabled, c.Metrics.Listen = true, "127.0.0.1:9100" }, nil},
		{"metrics without a key", func(c *Config) { c.Metrics.Enabled = true },
			[]string{"metrics.enabled: /metrics on the main listener is behind admin.key, which is empty: set admin.key, or metrics.listen for a listener of its own"}},
		{"metrics.listen without enabled", func(c *Config) { c.Metrics.Listen = "127.0.0.1:9100" },
			[]string{"metrics.listen: is set but metrics.enabled is false: set metrics.enabled: true to serve /metrics there"}},
		{"metrics.listen bad", func(c *Config) { c.Metrics.Enabled, c.Metrics.Listen = true, "9100" },
			[]string{`metrics.listen: must be host:port, like 127.0.0.1:9100 (got "9100")`}},
		{"metrics.listen is listen", func(c *Config) { c.Metrics.Enabled, c.Metrics.Listen = true, c.Listen },
			[]string{"metrics.listen: must differ from listen (127.0.0.1:8000); leave it empty to serve /metrics on the main listener"}},
		{"admin page without a key", func(c *Config) { c.Admin.Enabled = true },
			[]string{"admin.enabled: the admin page needs admin.key (HERALD_ADMIN_KEY): its login form asks for it"}},
		{"admin session too short", func(c *Config) { c.Admin.SessionTTL = Duration(time.Second) },
			[]string{"admin.session_ttl: must be from 1m to 720h (got 1s)"}},

		// Limits.
		{"channel_limit 1", func(c *Config) { c.Client.ChannelLimit = 1 }, nil},
		{"channel_limit 0", func(c *Config) { c.Client.ChannelLimit = 0 }, []string{"client.channel_limit: must be at least 1 (got 0)"}},
		{"queue_max_size 1024", func(c *Config) { c.Client.QueueMaxSize = 1024 }, nil},
		{"queue_max_size small", func(c *Config) { c.Client.QueueMaxSize = 1023 }, []string{"client.queue_max_size: must be at least 1024 (got 1023)"}},
		{"write_lag 0", func(c *Config) { c.Client.WriteLag = 0 }, nil},
		{"write_lag negative", func(c *Config) { c.Client.WriteLag = Duration(-time.Millisecond) }, []string{"client.write_lag: must be from 0 to 1s (got -1ms); it bounds how long queued messages wait under load"}},
		{"write_lag too long", func(c *Config) { c.Client.WriteLag = Duration(2 * time.Second) }, []string{"client.write_lag: must be from 0 to 1s (got 2s); it bounds how long queued messages wait under load"}},
		{"message_size_limit small", func(c *Config) { c.Client.MessageSizeLimit = 10 }, []string{"client.message_size_limit: must be at least 1024 (got 10)"}},
		{"history_max_publication_limit 0", func(c *Config) { c.Client.HistoryMaxPublicationLimit = 0 }, []string{"client.history_max_publication_limit: must be at least 1 (got 0)"}},
		{"recovery_max_publication_limit 0", func(c *Config) { c.Client.RecoveryMaxPublicationLimit = 0 }, []string{"client.recovery_max_publication_limit: must be at least 1 (got 0)"}},
		{"connection_info_max_size 0", func(c *Config) { c.Client.ConnectionInfoMaxSize = 0 }, nil},
		{"connection_info_max_size negative", func(c *Config) { c.Client.ConnectionInfoMaxSize = -1 }, []string{"client.connection_info_max_size: must be at least 0 (got -1)"}},
		{"max_length 65535", func(c *Config) { c.Channel.MaxLength = 65535 }, nil},
		{"max_length 0", func(c *Config) { c.Channel.MaxLength = 0 }, []string{"channel.max_length: must be from 1 to 65535 (got 0)"}},
		{"max_length too big", func(c *Config) { c.Channel.MaxLength = 65536 }, []string{"channel.max_length: must be from 1 to 65535 (got 65536)"}},

		// Pings.
		{"pong equals ping", func(c *Config) { c.Client.PongTimeout = c.Client.PingInterval }, []string{
			"client.pong_timeout: (25s) must be less than client.ping_interval (25s); set client.ping_interval to 0 to disable pings",
		}},
		{"pong above ping", func(c *Config) { c.Client.PingInterval = Duration(5 * time.Second) }, []string{
			"client.pong_timeout: (8s) must be less than client.ping_interval (5s); set client.ping_interval to 0 to disable pings",
		}},
		{"pings off", func(c *Config) { c.Client.PingInterval = 0; c.Client.PongTimeout = Duration(time.Hour) }, nil},

		// Origins.
		{"origins ok", func(c *Config) { c.Client.AllowedOrigins = []string{"https://*.example.com", "*"} }, nil},
		{"origin empty", func(c *Config) { c.Client.AllowedOrigins = []string{"https://a", "", "  "} }, []string{
			"client.allowed_origins[1]: must not be empty",
			"client.allowed_origins[2]: must not be empty",
		}},

		// Namespaces.
		{"namespace names ok", func(c *Config) {
			c.Channel.Namespaces = []Namespace{ns("ab", NamespaceOptions{}), ns("A-b_9", NamespaceOptions{})}
		}, nil},
		{"namespace name empty", func(c *Config) { c.Channel.Namespaces = []Namespace{ns("", NamespaceOptions{})} }, []string{
			"channel.namespaces[0].name: is required",
		}},
		{"namespace name short", func(c *Config) { c.Channel.Namespaces = []Namespace{ns("a", NamespaceOptions{})} }, []string{
			`channel.namespaces[0].name: "a" is not a valid namespace name (use 2 or more letters, digits, - or _)`,
		}},
		{"namespace name chars", func(c *Config) { c.Channel.Namespaces = []Namespace{ns("chat:room", NamespaceOptions{})} }, []string{
			`channel.namespaces[0].name: "chat:room" is not a valid namespace name (use 2 or more letters, digits, - or _)`,
		}},
		{"namespace duplicate", func(c *Config) {
			c.Channel.Namespaces = []Namespace{ns("chat", NamespaceOptions{}), ns("news", NamespaceOptions{}), ns("chat", NamespaceOptions{})}
		}, []string{`channel.namespaces[2].name: "chat" duplicates the name of channel.namespaces[0]`}},

		// Channel regex.
		{"regex ok", func(c *Config) { c.Channel.WithoutNamespace.ChannelRegex = `^[a-z]+$` }, nil},
		{"regex bad without namespace", func(c *Config) { c.Channel.WithoutNamespace.ChannelRegex = `(a` }, []string{
			"channel.without_namespace.channel_regex: does not compile: error parsing regexp: missing closing ): `(a`",
		}},
		{"regex bad in namespace", func(c *Config) {
			c.Channel.Namespaces = []Namespace{ns("chat", NamespaceOptions{ChannelRegex: `[z-a]`})}
		}, []string{"channel.namespaces[0].channel_regex: does not compile: error parsing regexp: invalid character class range: `z-a`"}},

		// History.
		{"history both", func(c *Config) {
			c.Channel.WithoutNamespace.HistorySize = 10
			c.Channel.WithoutNamespace.HistoryTTL = Duration(time.Minute)
		}, nil},
		{"history size without ttl", func(c *Config) { c.Channel.WithoutNamespace.HistorySize = 10 }, []string{
			"channel.without_namespace.history_ttl: must be set when history_size is set (history needs both)",
		}},
		{"history ttl without size", func(c *Config) {
			c.Channel.Namespaces = []Namespace{ns("chat", NamespaceOptions{HistoryTTL: Duration(time.Minute)})}
		}, []string{"channel.namespaces[0].history_size: must be set when history_ttl is set (history needs both)"}},
		{"history size max", func(c *Config) {
			c.Channel.WithoutNamespace.HistorySize = MaxHistorySize
			c.Channel.WithoutNamespace.HistoryTTL = Duration(time.Minute)
		}, nil},
		{"history size too big", func(c *Config) {
			c.Channel.WithoutNamespace.HistorySize = MaxHistorySize + 1
			c.Channel.WithoutNamespace.HistoryTTL = Duration(time.Minute)
		}, []string{"channel.without_namespace.history_size: must be at most 100000 (got 100001)"}},
		{"history size negative", func(c *Config) { c.Channel.WithoutNamespace.HistorySize = -1 }, []string{
			"channel.without_namespace.history_size: must not be negative (got -1)",
		}},

		{"recovery without history", func(c *Config) {
			c.Channel.Namespaces = []Namespace{ns("chat", NamespaceOptions{ForceRecovery: true, AllowPositioning: true})}
		}, []string{
			"channel.namespaces[0].force_recovery: needs history: set history_size and history_ttl too",
			"channel.namespaces[0].allow_positioning: needs history: set history_size and history_ttl too",
		}},
		{"force push join leave without join leave", func(c *Config) { c.Channel.WithoutNamespace.ForcePushJoinLeave = true }, []string{
			"channel.without_namespace.force_push_join_leave: has no effect without join_leave: true",
		}},
		{"negative user connection limit", func(c *Config) { c.Client.UserConnectionLimit = -1 }, []string{
			"client.user_connection_limit: must be at least 0 (got -1)",
		}},
		{"pings without pong timeout", func(c *Config) { c.Client.PongTimeout = 0 }, []string{
			"client.pong_timeout: must be set when pings are on (client.ping_interval 25s)",
		}},
		{"no stale delay", func(c *Config) { c.Client.StaleCloseDelay = 0 }, []string{
			"client.stale_close_delay: must be more than 0 (connections that never send connect must be closed)",
		}},

		// Things that are allowed.
		{"anonymous permissions alone", func(c *Config) {
			c.Channel.WithoutNamespace.AllowSubscribeForAnonymous = true
			c.Channel.WithoutNamespace.AllowPublishForAnonymous = true
			c.Channel.WithoutNamespace.AllowHistoryForAnonymous = true
			c.Channel.WithoutNamespace.AllowPresenceForAnonymous = true
		}, nil},
		{"no api key and not insecure", func(c *Config) { c.HTTPAPI.Key = ""; c.HTTPAPI.Insecure = false }, nil},

		// Several at once.
		{"several problems", func(c *Config) {
			c.LogLevel = "x"
			c.Client.ChannelLimit = 0
			c.Channel.Namespaces = []Namespace{ns("a", NamespaceOptions{HistorySize: 5})}
		}, []string{
			`log_level: must be one of debug, info, warn, error (got "x")`,
			"client.channel_limit: must be at least 1 (got 0)",
			`channel.namespaces[0].name: "a" is not a valid namespace name (use 2 or more letters, digits, - or _)`,
			"channel.namespaces[0].history_ttl: must be set when history_size is set (history needs both)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(c)
			var got []string
			for _, p := range c.Validate() {
				if p.Where != "" {
					t.Errorf("Validate set Where %q", p.Where)
				}
				if p.Key == "" {
					t.Errorf("problem %q names no key", p.Msg)
				}
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateNeverShowsSecrets(t *testing.T) {
	c := Default()
	c.HTTPAPI.Key = "api-s3cr3t"
	c.Client.Token.HMACSecretKey = "hmac-s3cr3t"
	c.LogLevel = "bad"
	c.Listen = "bad"
	if ps := c.Validate(); strings.Contains(ps.Error(), "s3cr3t") {
		t.Errorf("Validate shows a secret:\n%v", ps)
	}
}

func TestValidateProxies(t *testing.T) {
	c := Default()
	c.Client.Proxy.Connect = Proxy{Enabled: true, Endpoint: "grpc://backend:9000", StaticHeaders: []string{"NoColon"},
		StatusTransforms: []StatusTransform{{StatusCode: 403, ErrorCode: 5000}, {StatusCode: 42, DisconnectCode: 4500}, {StatusCode: 401}}}
	c.Channel.WithoutNamespace.SubscribeProxyEnabled = true
	var got []string
	for _, p := range c.Validate() {
		got = append(got, p.String())
	}
	want := []string{
		`client.proxy.connect.endpoint: "grpc://backend:9000" must be an http:// or https:// URL (gRPC proxies are not supported yet)`,
		`client.proxy.connect.static_headers[0]: must be "Name: value"`,
		"client.proxy.connect.status_to_code_transforms[0].error_code: must be from 100 to 1999 (got 5000)",
		"client.proxy.connect.status_to_code_transforms[1].status_code: must be an HTTP status (got 42)",
		"client.proxy.connect.status_to_code_transforms[2]: needs exactly one of error_code and disconnect_code",
		"channel.without_namespace.subscribe_proxy_enabled: needs channel.proxy.subscribe to be enabled",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestValidateNamedProxies(t *testing.T) {
	c := Default()
	c.Proxies = []NamedProxy{{Name: "a", Proxy: Proxy{Endpoint: "http://x"}}, {Name: "a", Proxy: Proxy{Endpoint: "ftp://x"}}}
	c.RPC.Namespaces = []RPCNamespace{{Name: "billing", ProxyName: "nope"}}
	c.Channel.WithoutNamespace.PublishProxyName = "ghost"
	var got []string
	for _, p := range c.Validate() {
		got = append(got, p.String())
	}
	want := []string{
		`proxies[1].name: "a" is used twice`,
		`proxies[1].endpoint: "ftp://x" must be an http:// or https:// URL (gRPC proxies are not supported yet)`,
		`rpc.namespaces[0].proxy_name: names proxy "nope", which is not in proxies`,
		`channel.without_namespace.publish_proxy_name: names proxy "ghost", which is not in proxies`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
