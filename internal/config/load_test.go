package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeFile writes content to a file named name in a fresh temporary
// directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// problemsOf returns the Problems in err (nil for a nil error).
func problemsOf(t *testing.T, err error) Problems {
	t.Helper()
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, want Problems: %v", err, err)
	}
	return ps
}

// lines renders problems one per element, with the file path prefix (when
// given) removed so that expectations read like "herald.yaml:3: ...".
func lines(ps Problems, path string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		s := p.String()
		if path != "" {
			s = strings.Replace(s, path, "herald.yaml", 1)
		}
		out[i] = s
	}
	return out
}

func mustLoad(t *testing.T, src Source) *Config {
	t.Helper()
	cfg, err := Load(src)
	if err != nil {
		t.Fatalf("Load: unexpected problems:\n%v", err)
	}
	if cfg == nil {
		t.Fatal("Load returned a nil Config without error")
	}
	return cfg
}

func TestPrecedence(t *testing.T) {
	file := "listen: \"10.0.0.1:1000\"\nclient:\n  channel_limit: 10\n  ping_interval: 10s\n"
	tests := []struct {
		name         string
		file         bool
		env          []string
		flags        map[string]string
		listen       string
		channelLimit int
		pingInterval time.Duration
	}{
		{name: "defaults", listen: "127.0.0.1:8000", channelLimit: 128, pingInterval: 25 * time.Second},
		{name: "file over default", file: true, listen: "10.0.0.1:1000", channelLimit: 10, pingInterval: 10 * time.Second},
		{
			name: "env over file", file: true,
			env:    []string{"HERALD_LISTEN=10.0.0.2:2000", "HERALD_CLIENT_CHANNEL_LIMIT=20"},
			listen: "10.0.0.2:2000", channelLimit: 20, pingInterval: 10 * time.Second,
		},
		{
			name: "flag over env and file", file: true,
			env:    []string{"HERALD_LISTEN=10.0.0.2:2000", "HERALD_CLIENT_CHANNEL_LIMIT=20"},
			flags:  map[string]string{"listen": "10.0.0.3:3000", "client.ping_interval": "30s"},
			listen: "10.0.0.3:3000", channelLimit: 20, pingInterval: 30 * time.Second,
		},
		{
			name:   "flag over default without file",
			env:    []string{"HERALD_CLIENT_CHANNEL_LIMIT=20"},
			flags:  map[string]string{"client.channel_limit": "30"},
			listen: "127.0.0.1:8000", channelLimit: 30, pingInterval: 25 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Source{Env: tt.env, Flags: tt.flags}
			if tt.file {
				src.File = writeFile(t, "herald.yaml", file)
			}
			cfg := mustLoad(t, src)
			if cfg.Listen != tt.listen {
				t.Errorf("listen = %q, want %q", cfg.Listen, tt.listen)
			}
			if cfg.Client.ChannelLimit != tt.channelLimit {
				t.Errorf("client.channel_limit = %d, want %d", cfg.Client.ChannelLimit, tt.channelLimit)
			}
			if cfg.Client.PingInterval.D() != tt.pingInterval {
				t.Errorf("client.ping_interval = %s, want %s", cfg.Client.PingInterval, tt.pingInterval)
			}
		})
	}
}

// TestFileProblems checks the exact message of problems found in files.
func TestFileProblems(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		// Unknown keys.
		{"top-level typo", "listn: x\n", []string{`herald.yaml:1: unknown key "listn"; did you mean "listen"?`}},
		{"top-level typo of a group", "chanels:\n  max_length: 5\n", []string{`herald.yaml:1: unknown key "chanels"; did you mean "channel"?`}},
		{"top-level no suggestion", "listen: \":1\"\nbogus_thing: 1\n", []string{`herald.yaml:2: unknown key "bogus_thing"`}},
		{"a key of an earlier version", "mercure:\n  write_lag: 10ms\n", []string{`herald.yaml:2: mercure: key "write_lag" is no longer used: every door's connections share one writer pool now; set client.write_lag`}},
		{"top-level key of another level", "ping_interval: 5s\n", []string{`herald.yaml:1: unknown key "ping_interval"; did you mean "client.ping_interval"?`}},
		{"case and separators", "Log-Level: info\n", []string{`herald.yaml:1: unknown key "Log-Level"; did you mean "log_level"?`}},
		{"nested typo", "client:\n  ping_intervall: 5s\n", []string{`herald.yaml:2: client: unknown key "ping_intervall"; did you mean "ping_interval"?`}},
		{"nested no suggestion", "client:\n  token:\n    xyzzy: 1\n", []string{`herald.yaml:3: client.token: unknown key "xyzzy"`}},
		{
			"namespace typo",
			"channel:\n  namespaces:\n    - name: chat\n    - name: news\n      histroy_size: 10\n",
			[]string{`herald.yaml:5: channel.namespaces[1]: unknown key "histroy_size"; did you mean "history_size"?`},
		},
		{
			"namespace no suggestion",
			"channel:\n  namespaces:\n    - name: chat\n      qqq: 1\n",
			[]string{`herald.yaml:4: channel.namespaces[0]: unknown key "qqq"`},
		},
		// Type errors.
		{"int", "client:\n  channel_limit: lots\n", []string{`herald.yaml:2: client.channel_limit: value "lots" is not an integer`}},
		{"int fraction", "client:\n  channel_limit: 1.5\n", []string{`herald.yaml:2: client.channel_limit: value "1.5" is not an integer (fractions are not allowed)`}},
		{"int out of range", "client:\n  channel_limit: 99999999999999999999\n", []string{`herald.yaml:2: client.channel_limit: value "99999999999999999999" is out of range for an integer`}},
		{"int given a list", "client:\n  channel_limit: [1]\n", []string{`herald.yaml:2: client.channel_limit: expected an integer, got a list`}},
		{"bool", "channel:\n  without_namespace:\n    presence: yes please\n", []string{`herald.yaml:3: channel.without_namespace.presence: value "yes please" is not a boolean (true or false)`}},
		{"bool yes is not YAML 1.2 true", "dev: yes\n", []string{`herald.yaml:1: dev: value "yes" is not a boolean (true or false)`}},
		{"duration", "client:\n  ping_interval: soon\n", []string{`herald.yaml:2: client.ping_interval: value "soon" is not a duration (use forms like 25s, 1m30s or 500ms)`}},
		{"negative duration", "shutdown_timeout: -5s\n", []string{`herald.yaml:1: shutdown_timeout: value "-5s" is negative (durations must be 0 or more)`}},
		{"duration out of range", "shutdown_timeout: 99999999999999999999\n", []string{`herald.yaml:1: shutdown_timeout: value "99999999999999999999" is out of range for a duration`}},
		{"string given a map", "listen:\n  host: x\n", []string{`herald.yaml:2: listen: expected a string, got a map`}},
		{"list where a map is expected", "client:\n  - a\n", []string{`herald.yaml:2: client: expected a map of keys, got a list`}},
		{"value where a map is expected", "http_api: nope\n", []string{`herald.yaml:1: http_api: expected a map of keys, got a single value`}},
		{"value where a list is expected", "client:\n  allowed_origins: http://x\n", []string{`herald.yaml:2: client.allowed_origins: expected a list of strings, got a single value`}},
		{"map in a list of strings", "client:\n  allowed_origins:\n    - a\n    - {b: c}\n", []string{`herald.yaml:4: client.allowed_origins[1]: expected a string, got a map`}},
		{"map where namespaces are expected", "channel:\n  namespaces:\n    name: chat\n", []string{`herald.yaml:3: channel.namespaces: expected a list of maps, got a map`}},
		{"value in namespaces", "channel:\n  namespaces:\n    - chat\n", []string{`herald.yaml:3: channel.namespaces[0]: expected a map of keys, got a single value`}},
		{
			"bad value inside a namespace",
			"channel:\n  namespaces:\n    - name: chat\n    - name: news\n      history_size: lots\n      history_ttl: 10s\n",
			[]string{`herald.yaml:5: channel.namespaces[1].history_size: value "lots" is not an integer`},
		},
		// Structure.
		{"top level list", "- a\n- b\n", []string{`herald.yaml:1: the top level must be a map of keys, got a list`}},
		{"top level value", "hello\n", []string{`herald.yaml:1: the top level must be a map of keys, got a single value`}},
		{"duplicate key", "dev: true\nlog_level: info\ndev: false\n", []string{`herald.yaml:3: key "dev" is set twice (first on line 1); keep one`}},
		{"syntax error on the first line", "a: [1, 2\n", []string{`herald.yaml:2: cannot parse YAML: did not find expected ',' or ']'`}},
		{"scanner error", "dev: true\nlisten: \"abc\n", []string{`herald.yaml:2: cannot parse YAML: found unexpected end of stream`}},
		{"bad indentation", "client:\n  channel_limit: 1\n ping_interval: 2\n", []string{`herald.yaml:3: cannot parse YAML: did not find expected key`}},
		{"syntax error", "client:\n  allowed_origins: [a\n", []string{`herald.yaml:2: cannot parse YAML: did not find expected ',' or ']'`}},
		{"json syntax error", "{\"listen\": \":1\",\n \"dev\": [true}\n", []string{`herald.yaml:2: cannot parse JSON: did not find expected ',' or ']'`}},
		{"two documents", "dev: true\n---\ndev: false\n", []string{`herald.yaml:2: the file holds more than one YAML document; put every setting in the first`}},
		{"complex key", "? [a]\n: 1\n", []string{`herald.yaml:1: keys must be plain names, not a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "herald.yaml", tt.content)
			cfg, err := Load(Source{File: path})
			if cfg != nil {
				t.Error("Load returned a Config along with problems")
			}
			got := lines(problemsOf(t, err), path)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestNoSuggestionWhenFar(t *testing.T) {
	for _, key := range []string{"bogus_thing", "zz", "x", "totally_unrelated_setting"} {
		path := writeFile(t, "herald.yaml", key+": 1\n")
		_, err := Load(Source{File: path})
		msg := err.Error()
		if !strings.Contains(msg, `unknown key "`+key+`"`) || strings.Contains(msg, "did you mean") {
			t.Errorf("key %q: got %q, want an unknown key problem without suggestion", key, msg)
		}
	}
}

// TestFileValueForms checks the accepted ways of writing values.
func TestFileValueForms(t *testing.T) {
	tests := []struct {
		name    string
		content string
		check   func(*Config) bool
	}{
		{"duration string", "client:\n  ping_interval: 1m30s\n", func(c *Config) bool { return c.Client.PingInterval.D() == 90*time.Second }},
		{"duration seconds", "client:\n  ping_interval: 30\n", func(c *Config) bool { return c.Client.PingInterval.D() == 30*time.Second }},
		{"duration fractional seconds", "client:\n  pong_timeout: 1.5\n", func(c *Config) bool { return c.Client.PongTimeout.D() == 1500*time.Millisecond }},
		{"duration zero disables", "client:\n  ping_interval: 0\n", func(c *Config) bool { return c.Client.PingInterval == 0 }},
		{"bool true", "dev: true\n", func(c *Config) bool { return c.Dev }},
		{"bool True", "dev: True\n", func(c *Config) bool { return c.Dev }},
		{"bool quoted", "dev: \"true\"\n", func(c *Config) bool { return c.Dev }},
		{"int hex", "client:\n  channel_limit: 0x10\n", func(c *Config) bool { return c.Client.ChannelLimit == 16 }},
		{"int exponent", "client:\n  queue_max_size: 2e6\n", func(c *Config) bool { return c.Client.QueueMaxSize == 2000000 }},
		{"int quoted", "client:\n  channel_limit: \"64\"\n", func(c *Config) bool { return c.Client.ChannelLimit == 64 }},
		{"string from a number", "node_name: 42\n", func(c *Config) bool { return c.NodeName == "42" }},
		{"null keeps default", "client:\n  channel_limit:\nlisten: ~\n", func(c *Config) bool { return c.Client.ChannelLimit == 128 && c.Listen == "127.0.0.1:8000" }},
		{"flow list", "client:\n  allowed_origins: [\"http://a\", \"http://b\"]\n", func(c *Config) bool {
			return reflect.DeepEqual(c.Client.AllowedOrigins, []string{"http://a", "http://b"})
		}},
		{"aliases and merge keys", "channel:\n  without_namespace: &base\n    presence: true\n    history_size: 10\n    history_ttl: 1m\n  namespaces:\n    - <<: *base\n      name: chat\n      history_size: 20\n", func(c *Config) bool {
			ns := c.Channel.Namespaces
			return len(ns) == 1 && ns[0].Name == "chat" && ns[0].Presence && ns[0].HistorySize == 20 && ns[0].HistoryTTL.D() == time.Minute
		}},
		{"byte order mark", "\xef\xbb\xbfdev: true\n", func(c *Config) bool { return c.Dev }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, Source{File: writeFile(t, "herald.yaml", tt.content)})
			if !tt.check(cfg) {
				t.Errorf("unexpected config from %q:\n%s", tt.content, cfg.Redacted())
			}
		})
	}
}

func TestEmptyFile(t *testing.T) {
	for _, content := range []string{"", "\n\n", "# just a comment\n", "---\n", "~\n"} {
		cfg := mustLoad(t, Source{File: writeFile(t, "herald.yaml", content)})
		if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("file %q: config differs from defaults:\n%s", content, cfg.Redacted())
		}
	}
}

func TestJSONFile(t *testing.T) {
	content := `{
	"listen": ":9000",
	"dev": true,
	"client": {
		"allowed_origins": ["https://example.com"],
		"ping_interval": "20s",
		"pong_timeout": 5,
		"channel_limit": 64,
		"token": {"hmac_secret_key": "k"}
	},
	"channel": {
		"namespaces": [{"name": "chat", "presence": true, "history_size": 10, "history_ttl": "1m"}]
	}
}`
	cfg := mustLoad(t, Source{File: writeFile(t, "herald.json", content)})
	want := Default()
	want.Listen = ":9000"
	want.Dev = true
	want.Client.AllowedOrigins = []string{"https://example.com"}
	want.Client.PingInterval = Duration(20 * time.Second)
	want.Client.PongTimeout = Duration(5 * time.Second)
	want.Client.ChannelLimit = 64
	want.Client.Token.HMACSecretKey = "k"
	want.Channel.Namespaces = []Namespace{{Name: "chat", NamespaceOptions: NamespaceOptions{
		Presence: true, HistorySize: 10, HistoryTTL: Duration(time.Minute),
	}}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got\n%s\nwant\n%s", cfg.Redacted(), want.Redacted())
	}

	bad := writeFile(t, "herald.json", `{"client": {"chanel_limit": "x", "ping_interval": true}}`)
	got := lines(problemsOf(t, func() error { _, err := Load(Source{File: bad}); return err }()), bad)
	wantProblems := []string{
		`herald.yaml:1: client: unknown key "chanel_limit"; did you mean "channel_limit"?`,
		`herald.yaml:1: client.ping_interval: value "true" is not a duration (use forms like 25s, 1m30s or 500ms)`,
	}
	if !reflect.DeepEqual(got, wantProblems) {
		t.Errorf("problems:\n got %q\nwant %q", got, wantProblems)
	}
}

func TestFileNotReadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(Source{File: missing})
	if got, want := err.Error(), missing+": configuration file does not exist"; got != want {
		t.Errorf("missing file: got %q, want %q", got, want)
	}
	dir := t.TempDir()
	_, err = Load(Source{File: dir})
	if got := err.Error(); !strings.HasPrefix(got, dir+": cannot read configuration file: ") {
		t.Errorf("directory: got %q", got)
	}
}

func TestLineNumbers(t *testing.T) {
	content := `# Herald configuration
listen: ":8000"

client:
  channel_limit: 0        # line 5: validation problem, located by origin
  ping_interval: 10s
  pong_timeout: 20s       # line 7: must be less than ping_interval
  allowed_origins:
    - http://a
    - ""                  # line 10: empty origin
channel:
  namespaces:
    - name: chat          # line 13
      history_size: 5     # line 14: needs history_ttl
    - name: chat          # line 15: duplicate
      bogus: 1            # line 16: unknown key
`
	path := writeFile(t, "herald.yaml", content)
	_, err := Load(Source{File: path})
	got := lines(problemsOf(t, err), path)
	want := []string{
		`herald.yaml:16: channel.namespaces[1]: unknown key "bogus"`,
		`herald.yaml:5: client.channel_limit: must be at least 1 (got 0)`,
		`herald.yaml:7: client.pong_timeout: (20s) must be less than client.ping_interval (10s); set client.ping_interval to 0 to disable pings`,
		`herald.yaml:10: client.allowed_origins[1]: must not be empty`,
		`herald.yaml:15: channel.namespaces[1].name: "chat" duplicates the name of channel.namespaces[0]`,
		`herald.yaml:13: channel.namespaces[0].history_ttl: must be set when history_size is set (history needs both)`,
	}
	// Order: decoding problems first, then validation in key order; compare
	// as a set of lines but keep the first one first.
	if !sameLines(got, want) || got[0] != want[0] {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

func sameLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestMultipleProblems(t *testing.T) {
	path := writeFile(t, "herald.yaml", "listn: x\nclient:\n  channel_limit: lots\n  ping_interval: soon\nlog_level: loud\n")
	_, err := Load(Source{
		File:  path,
		Env:   []string{"HERALD_DEV=maybe", "HERALD_LISTN=1"},
		Flags: map[string]string{"client.queue_max_size": "big", "lisen": "x"},
	})
	got := lines(problemsOf(t, err), path)
	want := []string{
		`herald.yaml:1: unknown key "listn"; did you mean "listen"?`,
		`herald.yaml:3: client.channel_limit: value "lots" is not an integer`,
		`herald.yaml:4: client.ping_interval: value "soon" is not a duration (use forms like 25s, 1m30s or 500ms)`,
		`environment variable HERALD_DEV: dev: value "maybe" is not a boolean (true or false)`,
		`unknown environment variable HERALD_LISTN; did you mean HERALD_LISTEN?`,
		`command line: client.queue_max_size: value "big" is not an integer`,
		`command line: unknown key "lisen"; did you mean "listen"?`,
		`herald.yaml:5: log_level: must be one of debug, info, warn, error (got "loud")`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
	if joined := err.Error(); joined != strings.Join(lines(problemsOf(t, err), ""), "\n") {
		t.Errorf("Error() is not the problems joined by newlines: %q", joined)
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		check func(*Config) bool
	}{
		{"comma list", []string{"HERALD_CLIENT_ALLOWED_ORIGINS=http://a, http://b ,http://c"}, func(c *Config) bool {
			return reflect.DeepEqual(c.Client.AllowedOrigins, []string{"http://a", "http://b", "http://c"})
		}},
		{"json list", []string{`HERALD_CLIENT_ALLOWED_ORIGINS=["http://a,b", "http://c"]`}, func(c *Config) bool {
			return reflect.DeepEqual(c.Client.AllowedOrigins, []string{"http://a,b", "http://c"})
		}},
		{"single item", []string{"HERALD_CLIENT_ALLOWED_ORIGINS=http://a"}, func(c *Config) bool {
			return reflect.DeepEqual(c.Client.AllowedOrigins, []string{"http://a"})
		}},
		{"empty list", []string{"HERALD_CLIENT_ALLOWED_ORIGINS="}, func(c *Config) bool { return len(c.Client.AllowedOrigins) == 0 }},
		{"empty json list", []string{"HERALD_CLIENT_ALLOWED_ORIGINS=[]"}, func(c *Config) bool { return len(c.Client.AllowedOrigins) == 0 }},
		{"nested bool", []string{"HERALD_CHANNEL_WITHOUT_NAMESPACE_PRESENCE=TRUE"}, func(c *Config) bool { return c.Channel.WithoutNamespace.Presence }},
		{"secret", []string{"HERALD_CLIENT_TOKEN_HMAC_SECRET_KEY=s3cr3t"}, func(c *Config) bool { return c.Client.Token.HMACSecretKey == "s3cr3t" }},
		{"value with =", []string{"HERALD_HTTP_API_KEY=a=b"}, func(c *Config) bool { return c.HTTPAPI.Key == "a=b" }},
		{"last definition wins", []string{"HERALD_NODE_NAME=a", "HERALD_NODE_NAME=b"}, func(c *Config) bool { return c.NodeName == "b" }},
		{"other variables ignored", []string{"PATH=/bin", "HOME=/root", "herald_listen=x", "NOEQUALS", "HERALD_CONFIG=/etc/herald.yaml"}, func(c *Config) bool {
			return reflect.DeepEqual(c, Default())
		}},
		{"namespaces json", []string{`HERALD_CHANNEL_NAMESPACES=[{"name":"chat","presence":true,"history_size":10,"history_ttl":"30s"},{"name":"news","allow_subscribe_for_client":true}]`}, func(c *Config) bool {
			ns := c.Channel.Namespaces
			return len(ns) == 2 && ns[0].Name == "chat" && ns[0].Presence && ns[0].HistorySize == 10 &&
				ns[0].HistoryTTL.D() == 30*time.Second && ns[1].Name == "news" && ns[1].AllowSubscribeForClient
		}},
		{"namespaces empty", []string{"HERALD_CHANNEL_NAMESPACES="}, func(c *Config) bool { return len(c.Channel.Namespaces) == 0 }},
		{"mercure reference variables", []string{"MERCURE_PUBLISHER_JWT_KEY=pubsecret", "MERCURE_SUBSCRIBER_JWT_KEY=-----BEGIN PUBLIC KEY-----", "MERCURE_SUBSCRIBER_JWT_ALG=RS256"}, func(c *Config) bool {
			m := c.Mercure
			return m.Publisher.Secret == "pubsecret" && m.Publisher.Alg == "HS256" && m.Subscriber.Secret == "" &&
				len(m.Subscriber.Keys) == 1 && m.Subscriber.Keys[0].Alg == "RS256" && m.Subscriber.Keys[0].Value == "-----BEGIN PUBLIC KEY-----"
		}},
		{"HERALD_ beats MERCURE_", []string{"MERCURE_PUBLISHER_JWT_KEY=a", "MERCURE_PUBLISHER_JWT_ALG=HS512", "HERALD_MERCURE_PUBLISHER_SECRET=b"}, func(c *Config) bool {
			return c.Mercure.Publisher.Secret == "b" && c.Mercure.Publisher.Alg == "HS512"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, Source{Env: tt.env})
			if !tt.check(cfg) {
				t.Errorf("unexpected config from %q:\n%s", tt.env, cfg.Redacted())
			}
		})
	}
}

func TestEnvNamespacesReplaceFile(t *testing.T) {
	path := writeFile(t, "herald.yaml", "channel:\n  namespaces:\n    - name: one\n    - name: two\n")
	cfg := mustLoad(t, Source{File: path, Env: []string{`HERALD_CHANNEL_NAMESPACES=[{"name":"three"}]`}})
	if len(cfg.Channel.Namespaces) != 1 || cfg.Channel.Namespaces[0].Name != "three" {
		t.Errorf("namespaces = %+v, want only three", cfg.Channel.Namespaces)
	}
}

func TestEnvProblems(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"unknown with suggestion", []string{"HERALD_LISTN=:1"}, []string{"unknown environment variable HERALD_LISTN; did you mean HERALD_LISTEN?"}},
		{"unknown nested with suggestion", []string{"HERALD_CLIENT_PING_INTERVALL=1s"}, []string{"unknown environment variable HERALD_CLIENT_PING_INTERVALL; did you mean HERALD_CLIENT_PING_INTERVAL?"}},
		{"unknown without suggestion", []string{"HERALD_WHATEVER_THIS_IS=1"}, []string{"unknown environment variable HERALD_WHATEVER_THIS_IS"}},
		{"group is not a variable", []string{"HERALD_CLIENT=1"}, []string{"unknown environment variable HERALD_CLIENT"}},
		{"bad int", []string{"HERALD_CLIENT_CHANNEL_LIMIT=lots"}, []string{`environment variable HERALD_CLIENT_CHANNEL_LIMIT: client.channel_limit: value "lots" is not an integer`}},
		{"empty int", []string{"HERALD_CLIENT_CHANNEL_LIMIT="}, []string{`environment variable HERALD_CLIENT_CHANNEL_LIMIT: client.channel_limit: value "" is not an integer`}},
		{"bad bool", []string{"HERALD_CHANNEL_WITHOUT_NAMESPACE_PRESENCE=yes please"}, []string{`environment variable HERALD_CHANNEL_WITHOUT_NAMESPACE_PRESENCE: channel.without_namespace.presence: value "yes please" is not a boolean (true or false)`}},
		{"bad duration", []string{"HERALD_CLIENT_PING_INTERVAL=soon"}, []string{`environment variable HERALD_CLIENT_PING_INTERVAL: client.ping_interval: value "soon" is not a duration (use forms like 25s, 1m30s or 500ms)`}},
		{"bad json list", []string{`HERALD_CLIENT_ALLOWED_ORIGINS=[1, 2]`}, []string{`environment variable HERALD_CLIENT_ALLOWED_ORIGINS: client.allowed_origins: value "[1, 2]" is not a list of strings (use a JSON array like ["a","b"] or a comma-separated list)`}},
		{"namespaces not an array", []string{`HERALD_CHANNEL_NAMESPACES={"name":"chat"}`}, []string{`environment variable HERALD_CHANNEL_NAMESPACES: channel.namespaces: value must be a JSON array of objects, like [{"name":"chat","presence":true}]`}},
		{"namespaces bad json", []string{`HERALD_CHANNEL_NAMESPACES=[{"name":"chat"`}, []string{`environment variable HERALD_CHANNEL_NAMESPACES: channel.namespaces: value must be a JSON array of objects, like [{"name":"chat","presence":true}]; cannot parse it: did not find expected ',' or '}'`}},
		{"namespaces unknown key", []string{`HERALD_CHANNEL_NAMESPACES=[{"name":"chat","presense":true}]`}, []string{`environment variable HERALD_CHANNEL_NAMESPACES: channel.namespaces[0]: unknown key "presense"; did you mean "presence"?`}},
		{"namespaces bad value", []string{`HERALD_CHANNEL_NAMESPACES=[{"name":"chat"},{"name":"news","history_size":"lots"}]`}, []string{`environment variable HERALD_CHANNEL_NAMESPACES: channel.namespaces[1].history_size: value "lots" is not an integer`}},
		{"namespaces validation located", []string{`HERALD_CHANNEL_NAMESPACES=[{"name":"x"}]`}, []string{`environment variable HERALD_CHANNEL_NAMESPACES: channel.namespaces[0].name: "x" is not a valid namespace name (use 2 or more letters, digits, - or _)`}},
		{"validation located", []string{"HERALD_LOG_FORMAT=xml"}, []string{`environment variable HERALD_LOG_FORMAT: log_format: must be one of text, json (got "xml")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Source{Env: tt.env})
			got := lines(problemsOf(t, err), "")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	cfg := mustLoad(t, Source{Flags: map[string]string{
		"dev":                                    "true",
		"http_api.key":                           "k",
		"client.token.hmac_secret_key":           "h",
		"client.allowed_origins":                 "http://a,http://b",
		"channel.namespaces":                     `[{"name":"chat"}]`,
		"channel.without_namespace.history_size": "5",
		"channel.without_namespace.history_ttl":  "60",
	}})
	if !cfg.Dev || cfg.HTTPAPI.Key != "k" || cfg.Client.Token.HMACSecretKey != "h" ||
		len(cfg.Client.AllowedOrigins) != 2 || len(cfg.Channel.Namespaces) != 1 ||
		cfg.Channel.WithoutNamespace.HistorySize != 5 || cfg.Channel.WithoutNamespace.HistoryTTL.D() != time.Minute {
		t.Errorf("unexpected config:\n%s", cfg.Redacted())
	}

	tests := []struct {
		name  string
		flags map[string]string
		want  []string
	}{
		{"unknown with suggestion", map[string]string{"client.ping_intervl": "1s"}, []string{`command line: unknown key "client.ping_intervl"; did you mean "client.ping_interval"?`}},
		{"unknown without suggestion", map[string]string{"nothing.like.this": "1"}, []string{`command line: unknown key "nothing.like.this"`}},
		{"group", map[string]string{"client": "1"}, []string{`command line: client: is a group of keys, not a value; set one of its keys instead`}},
		{"list element", map[string]string{"channel.namespaces[0].name": "x"}, []string{`command line: channel.namespaces[0].name: cannot set one element; set channel.namespaces as a whole to a JSON array`}},
		{"bad value", map[string]string{"dev": ""}, []string{`command line: dev: value "" is not a boolean (true or false)`}},
		{"validation located", map[string]string{"listen": "nowhere"}, []string{`command line: listen: must be host:port, like 127.0.0.1:8000 or :8000 (got "nowhere")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Source{Flags: tt.flags})
			got := lines(problemsOf(t, err), "")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestSecretsNeverShown feeds secret values, in every wrong shape, through
// every source and checks that no problem message contains them.
func TestSecretsNeverShown(t *testing.T) {
	const secret = "s3cr3t-VALUE"
	files := []string{
		"client:\n  token:\n    hmac_secret_key: {" + secret + ": " + secret + "}\n",
		"client:\n  token:\n    hmac_secret_key: [" + secret + "]\n",
		"client:\n  token: " + secret + "\n",
		"client:\n  token:\n    hmac_secret_key:\n      nested: " + secret + "\n",
		"http_api: " + secret + "\n",
		"http_api:\n  key: [" + secret + "]\n  kye: " + secret + "\n",
		"http_api:\n  key: a\n  key: " + secret + "\n",
		"client:\n  token:\n    hmac_secret_kye: " + secret + "\n",
		"hmac_secret_key: " + secret + "\n",
		"client:\n  token:\n    hmac_secret_key: \"" + secret + "\n", // unterminated
	}
	for i, content := range files {
		path := writeFile(t, "herald.yaml", content)
		_, err := Load(Source{File: path})
		if err == nil {
			t.Errorf("file %d: expected problems", i)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("file %d: problem shows the secret:\n%v", i, err)
		}
	}
	_, err := Load(Source{
		Env: []string{
			"HERALD_CLIENT_TOKEN_HMAC_SECRET_KY=" + secret,
			"HERALD_HTTP_API_KEYS=" + secret,
		},
		Flags: map[string]string{"http_api.kee": secret, "client.token": secret},
	})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("env/flags: problem shows the secret or no problem:\n%v", err)
	}

	// Whatever the type of a secret key, a bad value is shown redacted.
	for _, k := range []kind{kindBool, kindInt, kindDuration} {
		f := field{key: "k", kind: k, secret: true, typ: map[kind]reflect.Type{
			kindBool: reflect.TypeFor[bool](), kindInt: reflect.TypeFor[int](), kindDuration: durationType,
		}[k]}
		_, msg := parseText(f, secret)
		if msg == "" || strings.Contains(msg, secret) || !strings.Contains(msg, redacted) {
			t.Errorf("kind %v: message %q should redact the value", k, msg)
		}
	}
}

func TestCheckFile(t *testing.T) {
	valid := writeFile(t, "herald.yaml", "listen: \":8000\"\nhttp_api:\n  key: k\nchannel:\n  namespaces:\n    - name: chat\n      presence: true\n")
	if ps := CheckFile(valid); ps != nil {
		t.Errorf("valid file: unexpected problems:\n%v", ps)
	}
	empty := writeFile(t, "herald.yaml", "")
	if ps := CheckFile(empty); ps != nil {
		t.Errorf("empty file: unexpected problems:\n%v", ps)
	}
	invalid := writeFile(t, "herald.yaml", "listen: nowhere\nclient:\n  channel_limit: lots\n")
	got := lines(CheckFile(invalid), invalid)
	want := []string{
		`herald.yaml:3: client.channel_limit: value "lots" is not an integer`,
		`herald.yaml:1: listen: must be host:port, like 127.0.0.1:8000 or :8000 (got "nowhere")`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("invalid file:\n got %q\nwant %q", got, want)
	}
	t.Setenv("HERALD_LISTEN", "bad")
	if ps := CheckFile(valid); ps != nil {
		t.Errorf("CheckFile must ignore the environment, got:\n%v", ps)
	}
	if ps := CheckFile(filepath.Join(t.TempDir(), "missing.yaml")); len(ps) != 1 || !strings.Contains(ps[0].Msg, "does not exist") {
		t.Errorf("missing file: got %v", ps)
	}
	if ps := CheckFile(""); len(ps) != 1 {
		t.Errorf("no file: got %v", ps)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Where: "herald.yaml:3", Msg: `unknown key "chanels"; did you mean "channels"?`}, `herald.yaml:3: unknown key "chanels"; did you mean "channels"?`},
		{Problem{Where: "herald.yaml:7", Key: "client.channel_limit", Msg: `value "lots" is not an integer`}, `herald.yaml:7: client.channel_limit: value "lots" is not an integer`},
		{Problem{Key: "log_level", Msg: "bad"}, "log_level: bad"},
		{Problem{Msg: "two\nlines"}, "two lines"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	ps := Problems{tests[0].p, tests[1].p}
	if got, want := ps.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if _, err := Load(Source{}); err != nil {
		t.Errorf("no problems must give a nil error, got %#v", err)
	}
}

func TestRedacted(t *testing.T) {
	cfg := Default()
	cfg.Client.Token.HMACSecretKey = "hmac-s3cr3t"
	cfg.HTTPAPI.Key = "api-s3cr3t"
	out := cfg.Redacted()
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("Redacted shows a secret:\n%s", out)
	}
	for _, want := range []string{"hmac_secret_key: <redacted>", "key: <redacted>", "ping_interval: 25s", "listen: 127.0.0.1:8000"} {
		if !strings.Contains(out, want) {
			t.Errorf("Redacted lacks %q:\n%s", want, out)
		}
	}
	if out := Default().Redacted(); !strings.Contains(out, `hmac_secret_key: ""`) {
		t.Errorf("an empty secret should stay empty:\n%s", out)
	}
}

// TestRedactedRoundTrip checks that the rendering loads back to the same
// configuration (secrets aside).
func TestRedactedRoundTrip(t *testing.T) {
	cfg := Default()
	cfg.Listen = ":8000"
	cfg.Dev = true
	cfg.NodeName = "true"
	cfg.Client.AllowedOrigins = []string{"http://localhost:*", "*"}
	cfg.Client.PongTimeout = Duration(1500 * time.Millisecond)
	cfg.Channel.WithoutNamespace.ChannelRegex = `^[a-z]+: #x$`
	cfg.Channel.Namespaces = []Namespace{
		{Name: "chat", NamespaceOptions: NamespaceOptions{Presence: true, HistorySize: 10, HistoryTTL: Duration(time.Hour)}},
		{Name: "news"},
	}
	back := mustLoad(t, Source{File: writeFile(t, "herald.yaml", cfg.Redacted())})
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip differs:\n got\n%s\nwant\n%s", back.Redacted(), cfg.Redacted())
	}
}

func TestEnvName(t *testing.T) {
	tests := map[string]string{
		"listen":                             "HERALD_LISTEN",
		"http_api.key":                       "HERALD_HTTP_API_KEY",
		"client.token.hmac_secret_key":       "HERALD_CLIENT_TOKEN_HMAC_SECRET_KEY",
		"channel.without_namespace.presence": "HERALD_CHANNEL_WITHOUT_NAMESPACE_PRESENCE",
		"channel.namespaces":                 "HERALD_CHANNEL_NAMESPACES",
		"channel.namespaces[].name":          "",
	}
	for path, want := range tests {
		if got := EnvName(path); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestNoPanicOnOddInput throws odd documents at Load.
func TestNoPanicOnOddInput(t *testing.T) {
	inputs := []string{
		"\x00\x01", "[", "{", "}", ":", "- - -", "&a [*a]", "a: &a {b: *a}",
		"client: &c {token: *c}", "<<: 5", "<<: [1, 2]", "channel:\n  namespaces: [~, [], {}, 1]\n",
		"client:\n  allowed_origins: [~, 1, true]\n", "!!binary aGVsbG8=", "? \n", "dev: !!int 1",
	}
	for _, in := range inputs {
		path := writeFile(t, "herald.yaml", in)
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("input %q: panic: %v", in, r)
				}
			}()
			_, _ = Load(Source{File: path})
			_, _ = Load(Source{Env: []string{"HERALD_CHANNEL_NAMESPACES=" + in, "HERALD_CLIENT_ALLOWED_ORIGINS=" + in}})
		}()
	}
}
