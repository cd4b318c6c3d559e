package centrifuge_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

const wait = 3 * time.Second

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func TestConnectResultAndPublicationDelivery(t *testing.T) {
	srv := testutil.Start(t, nil)
	c := srv.Dial(t, nil)
	res := c.Connect(testutil.UserToken(t, "42"))
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(res["client"].(string)) {
		t.Errorf("client id %v is not a UUID", res["client"])
	}
	if res["version"] != "test" || num(res["ping"]) != 25 || res["pong"] != true {
		t.Errorf("connect result = %v, want version, ping 25 and pong true", res)
	}
	if res["expires"] != true || num(res["ttl"]) < 3590 || num(res["ttl"]) > 3600 {
		t.Errorf("expires/ttl = %v/%v, want true and ~3600", res["expires"], res["ttl"])
	}
	sub := c.Call("subscribe", map[string]any{"channel": "news"})
	if _, ok := sub["subscribe"]; !ok {
		t.Fatalf("subscribe reply = %v", sub)
	}
	status, body := srv.API(t, "publish", map[string]any{"channel": "news", "data": map[string]any{"text": "hi"}})
	if status != 200 || body["result"] == nil {
		t.Fatalf("publish: %d %v", status, body)
	}
	p := c.WaitPush(wait)
	pub := p["pub"].(map[string]any)
	if p["channel"] != "news" || pub["data"].(map[string]any)["text"] != "hi" || num(pub["offset"]) != 1 {
		t.Errorf("push = %v", p)
	}
	if _, has := pub["info"]; has {
		t.Errorf("API publication must carry no client info: %v", pub)
	}
}

func TestExactReplyBytes(t *testing.T) {
	srv := testutil.Start(t, nil)
	c := srv.Dial(t, nil)
	// connect and subscribe batched in one frame, as the SDKs send them.
	c.Send(fmt.Sprintf(`{"id":1,"connect":{"token":%q,"name":"js","version":"5.8.0"}}`+"\n"+`{"id":2,"subscribe":{"channel":"room","flag":1,"delta":"fossil","tf":{}}}`+"\n", testutil.UserToken(t, "u")))
	if m := c.Next(wait); num(m["id"]) != 1 {
		t.Fatalf("first reply %v", m)
	}
	l, err := c.ReadLine(wait)
	if err != nil || l != `{"id":2,"subscribe":{}}` {
		t.Fatalf("subscribe reply = %q, %v; want exactly {\"id\":2,\"subscribe\":{}}", l, err)
	}
	c.Send(`{"id":3,"unsubscribe":{"channel":"room"}}`)
	if l, _ := c.ReadLine(wait); l != `{"id":3,"unsubscribe":{}}` {
		t.Fatalf("unsubscribe reply = %q", l)
	}
	c.Send(`{"id":4,"publish":{"channel":"room","data":{"a" :  1,` + "\t\r" + `"b":[1, 2]}}}`)
	if l, _ := c.ReadLine(wait); l != `{"id":4,"publish":{}}` {
		t.Fatalf("publish reply = %q", l)
	}
	c.Send(`{"id":5,"history":{"channel":"room","limit":-1}}`)
	l, _ = c.ReadLine(wait)
	if !strings.Contains(l, `"data":{"a":1,"b":[1,2]}`) {
		t.Fatalf("history reply %q: publication data must be compacted (no raw newline)", l)
	}
	if !strings.Contains(l, `"info":{"user":"u","client":"`) {
		t.Fatalf("history reply %q: client publication must carry info", l)
	}
}

func TestProtocolViolationsDisconnect3501(t *testing.T) {
	tok := testutil.UserToken(t, "u")
	connect := fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, tok)
	cases := []struct {
		name    string
		frames  []string
		reason  string
		connect bool
	}{
		{"command before connect", []string{`{"id":1,"subscribe":{"channel":"a"}}`}, "first command must be connect", false},
		{"empty frame", []string{``}, "empty frame", false},
		{"malformed JSON", []string{`{"id":1,"connect":`}, "undecodable frame", false},
		{"connect with id 0", []string{`{"connect":{}}`}, "id must be > 0", false},
		{"second connect", []string{connect, connect}, "already authenticated", false},
		{"subscribe with id 0", []string{connect, `{"subscribe":{"channel":"a"}}`}, "id must be > 0", false},
		{"unknown command", []string{connect, `{"id":2,"frobnicate":{}}`}, "no known request field", false},
		{"ping command", []string{connect, `{"id":2,"ping":{}}`}, "ping command", false},
		{"pong without ping", []string{connect, `{}`}, "pong without a ping", false},
		{"publish data not JSON", []string{connect, `{"id":2,"publish":{"channel":"a","data":nope}}`}, "undecodable", false},
		{"blank line inside batch", []string{connect + "\n\n" + `{"id":2,"presence":{"channel":"a"}}`}, "undecodable", false},
	}
	srv := testutil.Start(t, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := srv.Dial(t, nil)
			for _, f := range tc.frames {
				c.Send(f)
			}
			code, reason := c.ExpectClose(wait)
			if code != 3501 || !strings.Contains(reason, tc.reason) {
				t.Fatalf("close = %d %q, want 3501 containing %q", code, reason, tc.reason)
			}
		})
	}
}

func TestCommandAfterConnectErrorIs3501(t *testing.T) {
	srv := testutil.Start(t, nil)
	c := srv.Dial(t, nil)
	expired := testutil.Token(t, map[string]any{"sub": "u", "exp": time.Now().Add(-time.Minute).Unix()})
	r := c.Call("connect", map[string]any{"token": expired})
	if testutil.ErrorCode(r) != 109 || !strings.Contains(testutil.ErrorMessage(r), "token expired") {
		t.Fatalf("connect with expired token = %v, want error 109", r)
	}
	c.Send(`{"id":2,"subscribe":{"channel":"a"}}`)
	if code, reason := c.ExpectClose(wait); code != 3501 || !strings.Contains(reason, "after a connect error") {
		t.Fatalf("close = %d %q", code, reason)
	}
}

func TestSendIs3508AndRPCIs108(t *testing.T) {
	srv := testutil.Start(t, nil)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	r := c.Call("rpc", map[string]any{"method": "getPrice", "data": map[string]any{}})
	if testutil.ErrorCode(r) != 108 {
		t.Fatalf("rpc = %v, want error 108", r)
	}
	c.Send(`{"send":{"data":{"x":1}}}`)
	if code, _ := c.ExpectClose(wait); code != 3508 {
		t.Fatalf("send closed with %d, want 3508", code)
	}
}

func TestStaleConnectionIs3502(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.StaleCloseDelay = config.Duration(300 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	start := time.Now()
	code, reason := c.ExpectClose(wait)
	if code != 3502 || !strings.Contains(reason, "stale") {
		t.Fatalf("close = %d %q, want 3502 stale", code, reason)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("closed after %s, before the stale delay", d)
	}
}

func TestPingPong(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.PingInterval = config.Duration(400 * time.Millisecond)
	cfg.Client.PongTimeout = config.Duration(200 * time.Millisecond)
	srv := testutil.Start(t, cfg)

	t.Run("answered pings keep the connection", func(t *testing.T) {
		c := srv.Dial(t, nil)
		res := c.Connect(testutil.UserToken(t, "u"))
		if num(res["ping"]) != 1 || res["pong"] != true {
			t.Fatalf("connect result %v: sub-second interval must round up to ping 1", res)
		}
		start := time.Now()
		for i := 0; i < 3; i++ {
			l, err := c.ReadLine(time.Second)
			if err != nil || l != "{}" {
				t.Fatalf("ping %d: %q %v", i, l, err)
			}
			if i == 0 {
				if d := time.Since(start); d < 150*time.Millisecond || d > 600*time.Millisecond {
					t.Errorf("first ping after %s, want within [interval/2, interval]", d)
				}
			}
			c.Send("{}")
		}
	})
	t.Run("missing pong is 3012", func(t *testing.T) {
		c := srv.Dial(t, nil)
		c.Connect(testutil.UserToken(t, "u"))
		if code, _ := c.ExpectClose(2 * time.Second); code != 3012 {
			t.Fatalf("close code %d, want 3012", code)
		}
		if c.Pings != 1 {
			t.Fatalf("saw %d pings before the close, want 1", c.Pings)
		}
	})
}

func TestMessageSizeLimitIs1009(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.MessageSizeLimit = 2048
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	big := strings.Repeat("x", 4096)
	c.Send(`{"id":2,"publish":{"channel":"a","data":"` + big + `"}}`)
	if code, _ := c.ExpectClose(wait); code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want 1009", code)
	}
}

func TestAllowedOrigins(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.AllowedOrigins = []string{"https://*.example.com"}
	srv := testutil.Start(t, cfg)
	ok := srv.Dial(t, http.Header{"Origin": {"https://app.example.com"}})
	ok.Connect(testutil.UserToken(t, "u"))
	srv.Dial(t, nil).Connect(testutil.UserToken(t, "u")) // no Origin: not checked

	_, resp, err := websocket.DefaultDialer.Dial(srv.WSURL(), http.Header{"Origin": {"https://evil.io"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial from a foreign origin: err=%v resp=%v, want 403", err, resp)
	}
	if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), `"error":"origin_not_allowed"`) || !strings.Contains(string(body), "https://evil.io") {
		t.Fatalf("403 body %s must name the reason and the origin", body)
	}
	logs := srv.Logs.String()
	if !strings.Contains(logs, "origin=https://evil.io") || !strings.Contains(logs, "client.allowed_origins") || !strings.Contains(logs, "reason=origin_not_allowed") {
		t.Fatalf("log must name the refused origin and the setting:\n%s", logs)
	}

	empty := testutil.Config()
	srv2 := testutil.Start(t, empty)
	_, resp, err = websocket.DefaultDialer.Dial(srv2.WSURL(), http.Header{"Origin": {"http://localhost:3000"}})
	if err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("empty allowed_origins must refuse a browser origin")
	}
	if !strings.Contains(srv2.Logs.String(), "client.allowed_origins is empty") {
		t.Fatalf("log must say the list is empty:\n%s", srv2.Logs.String())
	}
}

func TestVersionFlagIsIgnored(t *testing.T) {
	srv := testutil.Start(t, nil)
	// The migration flag of older clients is ignored, not rejected.
	d := websocket.Dialer{}
	conn, _, err := d.Dial(srv.WSURL()+"?cf_protocol_version=v2", http.Header{"Sec-WebSocket-Protocol": {"centrifuge-json"}})
	if err != nil {
		t.Fatalf("cf_protocol_version=v2 with centrifuge-json must be accepted: %v", err)
	}
	if conn.Subprotocol() != "centrifuge-json" {
		t.Errorf("subprotocol %q, want centrifuge-json", conn.Subprotocol())
	}
	conn.Close()
}

func TestConnectionTokenRefusals(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name   string
		mutate func(*config.Config)
		token  string
		code   int // close code, or error code when errReply
		reply  bool
		reason string
	}{
		{"no token, anonymous off", nil, "", 3501, false, "no token in connect.token"},
		{"wrong secret", nil, signWith(t, "another-secret", map[string]any{"sub": "u"}), 3500, false, "signature_invalid"},
		{"garbage", nil, "not-a-jwt", 3500, false, "token_malformed"},
		{"alg none", nil, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1In0.", 3500, false, "alg_not_allowed"},
		{"sub is a number", nil, testutil.Token(t, map[string]any{"sub": 42}), 3500, false, "sub must be a string, got number"},
		{"subscription token as connection token", nil, testutil.Token(t, map[string]any{"sub": "u", "channel": "x"}), 3500, false, "looks like a subscription token"},
		{"expired", nil, testutil.Token(t, map[string]any{"sub": "u", "exp": now.Add(-time.Minute).Unix()}), 109, true, "token expired"},
		{"not yet valid", nil, testutil.Token(t, map[string]any{"sub": "u", "nbf": now.Add(time.Hour).Unix()}), 109, true, "nbf"},
		{"expire_at in the past", nil, testutil.Token(t, map[string]any{"sub": "u", "expire_at": now.Add(-time.Minute).Unix()}), 110, true, "expired"},
		{"anonymous token disallowed", func(c *config.Config) { c.Client.DisallowAnonymousConnectionTokens = true }, testutil.Token(t, map[string]any{"sub": ""}), 3507, false, "anonymous_token_refused"},
		{"unknown namespace in channels", nil, testutil.Token(t, map[string]any{"sub": "u", "channels": []string{"nope:x"}}), 102, true, "unknown namespace"},
		{"dev mode still verifies", func(c *config.Config) { c.Dev = true }, signWith(t, "another-secret", map[string]any{"sub": "u"}), 3500, false, "signature"},
		{"dev mode still checks exp", func(c *config.Config) { c.Dev = true }, testutil.Token(t, map[string]any{"sub": "u", "exp": now.Add(-time.Minute).Unix()}), 109, true, "token expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testutil.Config()
			if tc.mutate != nil {
				tc.mutate(cfg)
			}
			srv := testutil.Start(t, cfg)
			c := srv.Dial(t, nil)
			c.Send(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, tc.token))
			if tc.reply {
				r := c.WaitReply(1)
				if testutil.ErrorCode(r) != tc.code || !strings.Contains(testutil.ErrorMessage(r), tc.reason) {
					t.Fatalf("reply %v, want error %d containing %q", r, tc.code, tc.reason)
				}
				return
			}
			code, reason := c.ExpectClose(wait)
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Fatalf("close %d %q, want %d containing %q", code, reason, tc.code, tc.reason)
			}
			if len(reason) > 123 {
				t.Fatalf("close reason is %d bytes, over the 123-byte limit", len(reason))
			}
			if tc.token != "" && strings.Contains(srv.Logs.String(), tc.token) {
				t.Fatalf("the token appears in the log")
			}
			if !strings.Contains(srv.Logs.String(), "connection refused") {
				t.Fatalf("refusal not logged:\n%s", srv.Logs.String())
			}
		})
	}
}

func TestAnonymousAndDevConnections(t *testing.T) {
	cfg := testutil.Config()
	cfg.Dev = true
	cfg.Channel.WithoutNamespace = config.NamespaceOptions{Presence: true}
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	res := c.Connect("")
	if res["expires"] != nil {
		t.Errorf("anonymous connection must not expire: %v", res)
	}
	// Dev mode allows every channel operation without any allow_* flag.
	for _, m := range []string{"subscribe", "publish", "presence", "presence_stats"} {
		params := map[string]any{"channel": "open"}
		if m == "publish" {
			params["data"] = map[string]any{"x": 1}
		}
		if r := c.Call(m, params); r["error"] != nil {
			t.Errorf("%s in dev mode: %v", m, r)
		}
	}
	// $ channels still need a token in dev mode.
	if r := c.Call("subscribe", map[string]any{"channel": "$secret"}); testutil.ErrorCode(r) != 103 {
		t.Errorf("private channel in dev mode = %v, want 103", r)
	}
}

func TestSubscribePermissionsAndLimits(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.ChannelLimit = 3
	cfg.Channel.MaxLength = 40
	cfg.Channel.Namespaces = []config.Namespace{
		{Name: "locked"},
		{Name: "personal", NamespaceOptions: config.NamespaceOptions{AllowUserLimitedChannels: true}},
		{Name: "ids", NamespaceOptions: config.NamespaceOptions{AllowSubscribeForClient: true, ChannelRegex: `^[0-9]+$`}},
	}
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "17"))
	cases := []struct {
		channel string
		code    int
		msg     string
	}{
		{"locked:room", 103, `namespace "locked": allow_subscribe_for_client is false`},
		{"nope:room", 102, `unknown namespace "nope"`},
		{"caf\u00e9", 107, "non-ASCII"},
		{strings.Repeat("a", 41), 107, "channel.max_length"},
		{"ids:abc", 107, "channel_regex"},
		{"$private", 103, "needs a subscription token"},
		{"personal:#18", 103, `does not list user "17"`},
		{"personal:#17,18", 0, ""},
		{"ids:42", 0, ""},
		{"free", 0, ""},
		{"free", 105, "already subscribed"},
		{"another", 106, "channel_limit is 3"},
	}
	for _, tc := range cases {
		r := c.Call("subscribe", map[string]any{"channel": tc.channel})
		if got := testutil.ErrorCode(r); got != tc.code || !strings.Contains(testutil.ErrorMessage(r), tc.msg) {
			t.Errorf("subscribe %q = %v, want code %d with %q", tc.channel, r, tc.code, tc.msg)
		}
	}
	if !strings.Contains(srv.Logs.String(), "reason=channel_not_permitted") {
		t.Errorf("denials must be logged with their reason")
	}
}

func TestSubscriptionTokens(t *testing.T) {
	cfg := testutil.Config()
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	client := c.Connect(testutil.UserToken(t, "alice"))["client"].(string)

	good := testutil.Token(t, map[string]any{"sub": "alice", "channel": "$room", "client": client,
		"info": map[string]any{"role": "admin"}, "data": map[string]any{"welcome": true}, "exp": time.Now().Add(time.Hour).Unix()})
	r := c.Call("subscribe", map[string]any{"channel": "$room", "token": good})
	res, _ := r["subscribe"].(map[string]any)
	if res == nil || res["expires"] != true || res["data"].(map[string]any)["welcome"] != true {
		t.Fatalf("subscribe with token = %v", r)
	}
	// chan_info from the token appears in presence.
	p := c.Call("presence", map[string]any{"channel": "$room"})
	entry := p["presence"].(map[string]any)["presence"].(map[string]any)[client].(map[string]any)
	if entry["user"] != "alice" || entry["chan_info"].(map[string]any)["role"] != "admin" {
		t.Fatalf("presence entry = %v", entry)
	}
	expired := testutil.Token(t, map[string]any{"sub": "alice", "channel": "$a", "exp": time.Now().Add(-time.Minute).Unix()})
	if r := c.Call("subscribe", map[string]any{"channel": "$a", "token": expired}); testutil.ErrorCode(r) != 109 {
		t.Errorf("expired subscription token = %v, want 109", r)
	}
	forged := signWith(t, "other", map[string]any{"sub": "alice", "channel": "$b"})
	if r := c.Call("subscribe", map[string]any{"channel": "$b", "token": forged}); testutil.ErrorCode(r) != 103 || !strings.Contains(testutil.ErrorMessage(r), "signature_invalid") {
		t.Errorf("forged subscription token = %v, want 103 naming signature_invalid", r)
	}
	// A token for another user kills the connection (3500), naming both users.
	other := testutil.Token(t, map[string]any{"sub": "bob", "channel": "$c"})
	c.Send(fmt.Sprintf(`{"id":99,"subscribe":{"channel":"$c","token":%q}}`, other))
	code, reason := c.ExpectClose(wait)
	if code != 3500 || !strings.Contains(reason, `"bob"`) || !strings.Contains(reason, `"alice"`) {
		t.Fatalf("close %d %q, want 3500 naming both users", code, reason)
	}

	t.Run("opt-in 103 instead of 3500", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Client.SubscriptionTokenMismatchError = true
		srv := testutil.Start(t, cfg)
		c := srv.Dial(t, nil)
		c.Connect(testutil.UserToken(t, "alice"))
		wrongChannel := testutil.Token(t, map[string]any{"sub": "alice", "channel": "$x"})
		r := c.Call("subscribe", map[string]any{"channel": "$y", "token": wrongChannel})
		if testutil.ErrorCode(r) != 103 || !strings.Contains(testutil.ErrorMessage(r), "subscription_token_mismatch") {
			t.Fatalf("reply %v", r)
		}
	})
}

func TestPublishPermissions(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.AllowAnonymousConnectWithoutToken = true
	cfg.Channel.Namespaces = []config.Namespace{
		{Name: "subs", NamespaceOptions: config.NamespaceOptions{AllowSubscribeForClient: true, AllowPublishForSubscriber: true}},
		{Name: "ro", NamespaceOptions: config.NamespaceOptions{AllowSubscribeForClient: true}},
	}
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	data := map[string]any{"x": 1}
	if r := c.Call("publish", map[string]any{"channel": "ro:a", "data": data}); testutil.ErrorCode(r) != 103 {
		t.Errorf("publish to read-only namespace = %v", r)
	}
	if r := c.Call("publish", map[string]any{"channel": "subs:a", "data": data}); testutil.ErrorCode(r) != 103 {
		t.Errorf("publish by a non-subscriber = %v", r)
	}
	c.Call("subscribe", map[string]any{"channel": "subs:a"})
	if r := c.Call("publish", map[string]any{"channel": "subs:a", "data": data}); r["error"] != nil {
		t.Errorf("publish by a subscriber = %v", r)
	}
	if r := c.Call("publish", map[string]any{"channel": "a"}); testutil.ErrorCode(r) != 107 {
		t.Errorf("publish without data = %v, want 107", r)
	}
	anon := srv.Dial(t, nil)
	anon.Connect("")
	r := anon.Call("publish", map[string]any{"channel": "a", "data": data})
	if testutil.ErrorCode(r) != 103 || !strings.Contains(testutil.ErrorMessage(r), "allow_publish_for_anonymous") {
		t.Errorf("anonymous publish = %v, want 103 naming allow_publish_for_anonymous", r)
	}
}

func TestHistoryCommand(t *testing.T) {
	cfg := testutil.Config()
	cfg.Channel.Namespaces = []config.Namespace{{Name: "nohist", NamespaceOptions: config.NamespaceOptions{AllowHistoryForClient: true}}}
	srv := testutil.Start(t, cfg)
	var epoch string
	for i := 1; i <= 5; i++ {
		_, body := srv.API(t, "publish", map[string]any{"channel": "h", "data": map[string]any{"n": i}})
		epoch = body["result"].(map[string]any)["epoch"].(string)
	}
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	offsets := func(r map[string]any) []int {
		h := r["history"].(map[string]any)
		var out []int
		pubs, _ := h["publications"].([]any)
		for _, p := range pubs {
			out = append(out, num(p.(map[string]any)["offset"]))
		}
		return out
	}
	cases := []struct {
		params map[string]any
		want   string
		code   int
	}{
		{map[string]any{"limit": 0}, "[]", 0},
		{map[string]any{"limit": -1}, "[1 2 3 4 5]", 0},
		{map[string]any{"limit": 2}, "[1 2]", 0},
		{map[string]any{"limit": 2, "reverse": true}, "[5 4]", 0},
		{map[string]any{"limit": -1, "since": map[string]any{"offset": 3, "epoch": epoch}}, "[4 5]", 0},
		{map[string]any{"limit": -1, "since": map[string]any{"offset": 3, "epoch": "wrong"}}, "", 112},
		{map[string]any{"limit": -2}, "", 107},
	}
	for _, tc := range cases {
		tc.params["channel"] = "h"
		r := c.Call("history", tc.params)
		if tc.code != 0 {
			if testutil.ErrorCode(r) != tc.code {
				t.Errorf("history %v = %v, want %d", tc.params, r, tc.code)
			}
			continue
		}
		if got := fmt.Sprint(offsets(r)); got != tc.want {
			t.Errorf("history %v offsets = %s, want %s", tc.params, got, tc.want)
		}
		h := r["history"].(map[string]any)
		if h["epoch"] != epoch || num(h["offset"]) != 5 {
			t.Errorf("history position = %v", h)
		}
	}
	if r := c.Call("history", map[string]any{"channel": "nohist:x", "limit": 1}); testutil.ErrorCode(r) != 108 {
		t.Errorf("history off = %v, want 108", r)
	}
}

func TestPresenceAndJoinLeave(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.AllowAnonymousConnectWithoutToken = true
	cfg.Channel.WithoutNamespace.AllowSubscribeForAnonymous = true
	cfg.Channel.WithoutNamespace.AllowPresenceForAnonymous = true
	cfg.Channel.Namespaces = []config.Namespace{{Name: "quiet", NamespaceOptions: config.NamespaceOptions{AllowSubscribeForClient: true, AllowPresenceForClient: true}}}
	srv := testutil.Start(t, cfg)

	watcher := srv.Dial(t, nil)
	watcher.Connect(testutil.Token(t, map[string]any{"sub": "w", "info": map[string]any{"name": "Watcher"}}))
	watcher.Call("subscribe", map[string]any{"channel": "room", "join_leave": true})
	if j := watcher.WaitPush(wait); j["join"] == nil {
		t.Fatalf("expected own join push, got %v", j)
	}

	anon := srv.Dial(t, nil)
	anonID := anon.Connect("")["client"].(string)
	anon.Call("subscribe", map[string]any{"channel": "room"})
	j := watcher.WaitPush(wait)
	info := j["join"].(map[string]any)["info"].(map[string]any)
	if j["channel"] != "room" || info["client"] != anonID {
		t.Fatalf("join push = %v", j)
	}
	if _, hasUser := info["user"]; hasUser {
		t.Errorf("anonymous user must be omitted (empty string): %v", info)
	}
	st := anon.Call("presence_stats", map[string]any{"channel": "room"})["presence_stats"].(map[string]any)
	if num(st["num_clients"]) != 2 || num(st["num_users"]) != 2 {
		t.Errorf("presence_stats = %v, want 2 clients and 2 users (anonymous counts as one)", st)
	}
	p := watcher.Call("presence", map[string]any{"channel": "room"})["presence"].(map[string]any)["presence"].(map[string]any)
	if len(p) != 2 {
		t.Fatalf("presence = %v", p)
	}
	for _, e := range p {
		e := e.(map[string]any)
		if e["user"] == "w" && e["conn_info"].(map[string]any)["name"] != "Watcher" {
			t.Errorf("conn_info from token info missing: %v", e)
		}
	}
	anon.Call("unsubscribe", map[string]any{"channel": "room"})
	if l := watcher.WaitPush(wait); l["leave"] == nil {
		t.Fatalf("expected leave push, got %v", l)
	}
	if r := watcher.Call("presence", map[string]any{"channel": "quiet:x"}); testutil.ErrorCode(r) != 108 {
		t.Errorf("presence off = %v, want 108", r)
	}
}

func signWith(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	tok, err := auth.SignHS256(secret, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestReasonsWithoutAKey covers the refusals that happen before any key is
// tried: the client-visible close and the log line.
func TestReasonsWithoutAKey(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*config.Config)
		token  string
		code   string
	}{
		{"token_too_large", nil, strings.Repeat("a", 20000), "token_too_large"},
		{"keys_not_configured", func(c *config.Config) { c.Client.Token.HMACSecretKey = "" }, testutil.UserToken(t, "u"), "keys_not_configured"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testutil.Config()
			if tc.mutate != nil {
				tc.mutate(cfg)
			}
			srv := testutil.Start(t, cfg)
			c := srv.Dial(t, nil)
			c.Send(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, tc.token))
			code, reason := c.ExpectClose(wait)
			if code != 3500 || !strings.HasPrefix(reason, "invalid token: "+tc.code) {
				t.Fatalf("close %d %q, want 3500 invalid token: %s", code, reason, tc.code)
			}
			if !strings.Contains(srv.Logs.String(), "reason="+tc.code) {
				t.Fatalf("log lacks reason=%s:\n%s", tc.code, srv.Logs.String())
			}
		})
	}
}
