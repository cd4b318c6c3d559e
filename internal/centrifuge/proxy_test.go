package centrifuge_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// backend is a test backend that answers proxy calls with a fixed body and
// records what it was sent.
type backend struct {
	*httptest.Server
	mu      sync.Mutex
	status  int
	body    string
	delay   time.Duration
	got     []map[string]any
	headers []http.Header
}

func newBackend(t *testing.T, status int, body string) *backend {
	b := &backend{status: status, body: body}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		b.mu.Lock()
		b.got = append(b.got, m)
		b.headers = append(b.headers, r.Header.Clone())
		status, body, delay := b.status, b.body, b.delay
		b.mu.Unlock()
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) last() (map[string]any, http.Header) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) == 0 {
		return nil, nil
	}
	return b.got[len(b.got)-1], b.headers[len(b.headers)-1]
}

func proxyConfig(endpoint string) config.Proxy {
	return config.Proxy{Enabled: true, Endpoint: endpoint, Timeout: config.Duration(300 * time.Millisecond),
		HTTPHeaders: []string{"Cookie", "Authorization"}, EmulatedHeaders: []string{"X-App-Session"}}
}

func TestConnectProxyDecides(t *testing.T) {
	be := newBackend(t, 200, `{"result":{"user":"56","info":{"name":"Alex"},"data":{"welcome":true},"channels":["news"]}}`)
	cfg := testutil.Config()
	cfg.Client.Proxy.Connect = proxyConfig(be.URL)
	srv := testutil.Start(t, cfg)

	c := srv.Dial(t, http.Header{"Cookie": {"session=abc"}, "X-Other": {"not forwarded"}})
	c.Send(`{"id":1,"connect":{"name":"js","data":{"from":"client"},"headers":{"X-App-Session":"s1","X-Evil":"e"}}}`)
	res := c.WaitReply(1)["connect"].(map[string]any)
	if res["data"].(map[string]any)["welcome"] != true || res["subs"].(map[string]any)["news"] == nil {
		t.Fatalf("connect result %v: want the backend's data and its server-side channel", res)
	}
	req, hdr := be.last()
	if req["transport"] != "websocket" || req["protocol"] != "json" || req["encoding"] != "json" || req["name"] != "js" ||
		req["data"].(map[string]any)["from"] != "client" {
		t.Fatalf("proxy request %v", req)
	}
	// The backend is told the id the client then gets.
	if id, _ := res["client"].(string); id == "" || req["client"] != id {
		t.Fatalf("proxy request client %v, connect result client %v: want the same id", req["client"], res["client"])
	}
	if hdr.Get("Cookie") != "session=abc" || hdr.Get("X-App-Session") != "s1" || hdr.Get("X-Other") != "" || hdr.Get("X-Evil") != "" {
		t.Fatalf("forwarded headers %v: only allowlisted ones", hdr)
	}
	if hdr.Get("X-Herald-Emulated-Headers") != "X-App-Session" {
		t.Fatalf("emulated headers must be marked: %v", hdr)
	}
	if hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", hdr.Get("Content-Type"))
	}
	// The user from the proxy is the connection's user.
	c.Call("subscribe", map[string]any{"channel": "room"})
	p := c.Call("presence", map[string]any{"channel": "room"})["presence"].(map[string]any)["presence"].(map[string]any)
	for _, e := range p {
		if e.(map[string]any)["user"] != "56" || e.(map[string]any)["conn_info"].(map[string]any)["name"] != "Alex" {
			t.Fatalf("presence %v", e)
		}
	}
	// A client with a token does not go through the proxy.
	calls := len(be.got)
	srv.Dial(t, nil).Connect(testutil.UserToken(t, "u"))
	if len(be.got) != calls {
		t.Fatalf("the connect proxy was called although the client sent a token")
	}
}

func TestConnectProxyAnswersAndFailures(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		delay  time.Duration
		// want: close code, or reply error code
		close     int
		errCode   int
		temporary bool
		text      string
	}{
		{"error answer", 200, `{"error":{"code":1000,"message":"custom"}}`, 0, 0, 1000, false, "custom"},
		{"disconnect answer", 200, `{"disconnect":{"code":4501,"reason":"go away"}}`, 0, 4501, 0, false, "go away"},
		{"wrapped result", 200, `{"data":{"result":{"user":"1"}}}`, 0, 0, 101, false, "proxy_bad_response"},
		{"no known key", 200, `{"user":"56"}`, 0, 0, 101, false, "proxy_bad_response"},
		{"empty user", 200, `{"result":{"user":""}}`, 0, 0, 101, false, "proxy_empty_user"},
		{"user a number", 200, `{"result":{"user":56}}`, 0, 0, 101, false, "proxy_bad_response"},
		{"html page", 200, `<html>oops</html>`, 0, 0, 101, false, "proxy_bad_json"},
		{"403", 403, `{"detail":"nope"}`, 0, 0, 101, false, "proxy_http_status"},
		{"500", 500, `boom`, 0, 0, 100, true, "proxy_http_status"},
		{"slow", 200, `{"result":{"user":"1"}}`, time.Second, 0, 100, true, "proxy_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend(t, tc.status, tc.body)
			be.delay = tc.delay
			cfg := testutil.Config()
			cfg.Client.Proxy.Connect = proxyConfig(be.URL)
			srv := testutil.Start(t, cfg)
			c := srv.Dial(t, nil)
			c.Send(`{"id":1,"connect":{}}`)
			// The backend's own answer is passed through, and logged as
			// proxy_denied with its code.
			if strings.HasPrefix(tc.body, `{"error"`) || strings.HasPrefix(tc.body, `{"disconnect"`) {
				defer func() {
					waitFor(t, func() bool {
						return strings.Contains(srv.Logs.String(), "reason="+string(auth.ProxyDenied)) && strings.Contains(srv.Logs.String(), fmt.Sprint(tc.close+tc.errCode))
					}, "the backend's refusal logged as proxy_denied with its code")
				}()
			}
			if tc.close != 0 {
				code, reason := c.ExpectClose(wait)
				if code != tc.close || !strings.Contains(reason, tc.text) {
					t.Fatalf("close %d %q, want %d with %q", code, reason, tc.close, tc.text)
				}
				return
			}
			r := c.WaitReply(1)
			e, _ := r["error"].(map[string]any)
			if testutil.ErrorCode(r) != tc.errCode || !strings.Contains(testutil.ErrorMessage(r), tc.text) || (e["temporary"] == true) != tc.temporary {
				t.Fatalf("reply %v, want error %d (temporary %v) with %q", r, tc.errCode, tc.temporary, tc.text)
			}
			if strings.HasPrefix(tc.text, "proxy_") && !strings.Contains(srv.Logs.String(), "reason="+tc.text) {
				t.Fatalf("log lacks reason=%s:\n%s", tc.text, srv.Logs.String())
			}
		})
	}
}

func TestUnreachableConnectProxyIsTemporary(t *testing.T) {
	be := newBackend(t, 200, `{}`)
	url := be.URL
	be.Close()
	cfg := testutil.Config()
	cfg.Client.Proxy.Connect = proxyConfig(url)
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Send(`{"id":1,"connect":{}}`)
	r := c.WaitReply(1)
	if testutil.ErrorCode(r) != 100 || r["error"].(map[string]any)["temporary"] != true || !strings.Contains(testutil.ErrorMessage(r), "proxy_unreachable") {
		t.Fatalf("reply %v, want temporary 100 proxy_unreachable", r)
	}
}

func TestSubscribePublishAndRPCProxies(t *testing.T) {
	sub := newBackend(t, 200, `{"result":{"info":{"role":"guest"},"data":{"motd":"hi"}}}`)
	pub := newBackend(t, 200, `{"result":{"data":{"text":"rewritten"}}}`)
	rpc := newBackend(t, 200, `{"result":{"data":{"price":42}}}`)
	cfg := testutil.Config()
	cfg.Channel.Proxy.Subscribe = proxyConfig(sub.URL)
	cfg.Channel.Proxy.Publish = proxyConfig(pub.URL)
	cfg.RPC.Proxy = proxyConfig(rpc.URL)
	cfg.Channel.Namespaces = []config.Namespace{{Name: "px", NamespaceOptions: config.NamespaceOptions{
		SubscribeProxyEnabled: true, PublishProxyEnabled: true, Presence: true, AllowPresenceForSubscriber: true}}}
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	id := c.Connect(testutil.UserToken(t, "u7"))["client"].(string)

	r := c.Call("subscribe", map[string]any{"channel": "px:room", "data": map[string]any{"ask": 1}})["subscribe"].(map[string]any)
	if r["data"].(map[string]any)["motd"] != "hi" {
		t.Fatalf("subscribe result %v: want the proxy's data", r)
	}
	req, _ := sub.last()
	if req["user"] != "u7" || req["channel"] != "px:room" || req["client"] != id || req["data"].(map[string]any)["ask"] == nil {
		t.Fatalf("subscribe proxy request %v", req)
	}
	p := c.Call("presence", map[string]any{"channel": "px:room"})["presence"].(map[string]any)["presence"].(map[string]any)[id].(map[string]any)
	if p["chan_info"].(map[string]any)["role"] != "guest" {
		t.Fatalf("chan_info from the proxy missing: %v", p)
	}
	// The publish proxy decides (no allow_publish_* flag is set) and rewrites the data.
	if r := c.Call("publish", map[string]any{"channel": "px:room", "data": map[string]any{"text": "original"}}); r["error"] != nil {
		t.Fatalf("publish: %v", r)
	}
	push := c.WaitPush(wait)
	if push["pub"].(map[string]any)["data"].(map[string]any)["text"] != "rewritten" {
		t.Fatalf("publication %v: want the proxy's data", push)
	}
	// RPC round trip.
	rr := c.Call("rpc", map[string]any{"method": "getPrice", "data": map[string]any{"sku": "x"}})
	if rr["rpc"].(map[string]any)["data"].(map[string]any)["price"] != float64(42) {
		t.Fatalf("rpc reply %v", rr)
	}
	req, _ = rpc.last()
	if req["method"] != "getPrice" || req["user"] != "u7" {
		t.Fatalf("rpc proxy request %v", req)
	}
	// A refusal from the subscribe proxy is passed on as is.
	sub.mu.Lock()
	sub.body = `{"error":{"code":403,"message":"permission denied"}}`
	sub.mu.Unlock()
	if r := c.Call("subscribe", map[string]any{"channel": "px:other"}); testutil.ErrorCode(r) != 403 {
		t.Fatalf("subscribe refused by the proxy: %v", r)
	}
}

// TestAuthorizationForwardedToTheConnectProxyIsNotAToken: when the connect
// proxy forwards Authorization, the header carries the app's credentials for
// the backend, and Herald does not read it as a token.
func TestAuthorizationForwardedToTheConnectProxyIsNotAToken(t *testing.T) {
	be := newBackend(t, 200, `{"result":{"user":"from-backend"}}`)
	cfg := testutil.Config()
	cfg.Client.Proxy.Connect = proxyConfig(be.URL) // forwards Cookie and Authorization
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, http.Header{"Authorization": {"Bearer opaque-app-session"}})
	c.Connect("")
	_, hdr := be.last()
	if hdr.Get("Authorization") != "Bearer opaque-app-session" {
		t.Fatalf("Authorization not forwarded: %v", hdr)
	}
	if strings.Contains(srv.Logs.String(), "opaque-app-session") {
		t.Fatalf("the forwarded credential appears in the log")
	}
}

func TestRefreshProxyExtendsOrExpiresConnections(t *testing.T) {
	be := newBackend(t, 200, fmt.Sprintf(`{"result":{"expire_at":%d}}`, time.Now().Add(time.Hour).Unix()))
	cfg := testutil.Config()
	cfg.Client.Proxy.Refresh = proxyConfig(be.URL)
	cfg.Client.ExpiredCloseDelay = config.Duration(300 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	tok := testutil.Token(t, map[string]any{"sub": "r1", "exp": time.Now().Add(time.Second).Unix(), "meta": map[string]any{"plan": "pro"}})

	c := srv.Dial(t, nil)
	res := c.Connect(tok)
	if res["expires"] != nil || res["ttl"] != nil {
		t.Fatalf("connect result %v: with a refresh proxy the client must not be asked to refresh", res)
	}
	// Past the token's expiry and the grace: the proxy extended the connection.
	time.Sleep(2500 * time.Millisecond)
	c.Call("presence_stats", map[string]any{"channel": "x"})
	req, _ := be.last()
	if req == nil || req["user"] != "r1" || req["meta"].(map[string]any)["plan"] != "pro" {
		t.Fatalf("refresh proxy request %v", req)
	}
	// A client refresh command is a protocol violation here.
	c.Send(`{"id":9,"refresh":{"token":"x"}}`)
	if code, reason := c.ExpectClose(wait); code != 3501 || !strings.Contains(reason, "server-side refresh") {
		t.Fatalf("close %d %q, want 3501", code, reason)
	}

	// The backend says the connection has expired: 3005.
	be.mu.Lock()
	be.body = `{"result":{"expired":true}}`
	be.mu.Unlock()
	c2 := srv.Dial(t, nil)
	c2.Connect(testutil.Token(t, map[string]any{"sub": "r2", "exp": time.Now().Add(time.Second).Unix()}))
	if code, _ := c2.ExpectClose(4 * time.Second); code != 3005 {
		t.Fatalf("close %d, want 3005", code)
	}
}

func TestConnectProxyAfterVerifiedToken(t *testing.T) {
	be := newBackend(t, 200, `{"result":{"channels":["team:7"],"info":{"team":7}}}`)
	cfg := testutil.Config()
	cfg.Client.Proxy.Connect = proxyConfig(be.URL)
	cfg.Client.Proxy.ConnectMode = "always"
	cfg.Channel.Namespaces = []config.Namespace{{Name: "team", NamespaceOptions: config.NamespaceOptions{AllowSubscribeForClient: true}}}
	srv := testutil.Start(t, cfg)

	c := srv.Dial(t, nil)
	res := c.Connect(testutil.Token(t, map[string]any{"sub": "u9", "meta": map[string]any{"org": "acme"}}))
	if res["subs"].(map[string]any)["team:7"] == nil {
		t.Fatalf("connect result %v: want the backend's channel", res)
	}
	req, _ := be.last()
	if req["user"] != "u9" || req["meta"].(map[string]any)["org"] != "acme" {
		t.Fatalf("proxy request %v: want the token's user and meta", req)
	}
	// A bad token never reaches the backend.
	calls := len(be.got)
	bad := srv.Dial(t, nil)
	bad.Send(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, signWith(t, "other", map[string]any{"sub": "u9"})))
	if code, _ := bad.ExpectClose(wait); code != 3500 || len(be.got) != calls {
		t.Fatalf("bad token: close %d, backend calls %d -> %d", code, calls, len(be.got))
	}
	// The backend may not change who the client is.
	be.mu.Lock()
	be.body = `{"result":{"user":"someone-else"}}`
	be.mu.Unlock()
	c2 := srv.Dial(t, nil)
	c2.Send(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, testutil.UserToken(t, "u9")))
	if r := c2.WaitReply(1); testutil.ErrorCode(r) != 101 || !strings.Contains(testutil.ErrorMessage(r), "differs from the token's user") {
		t.Fatalf("reply %v", r)
	}
}

func TestSubRefreshProxy(t *testing.T) {
	sub := newBackend(t, 200, fmt.Sprintf(`{"result":{"expire_at":%d}}`, time.Now().Add(time.Second).Unix()))
	ref := newBackend(t, 200, fmt.Sprintf(`{"result":{"expire_at":%d}}`, time.Now().Add(time.Hour).Unix()))
	cfg := testutil.Config()
	cfg.Channel.Proxy.Subscribe = proxyConfig(sub.URL)
	cfg.Channel.Proxy.SubRefresh = proxyConfig(ref.URL)
	cfg.Client.ExpiredSubCloseDelay = config.Duration(200 * time.Millisecond)
	cfg.Channel.Namespaces = []config.Namespace{{Name: "sr", NamespaceOptions: config.NamespaceOptions{SubscribeProxyEnabled: true, SubRefreshProxyEnabled: true}}}
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	r := c.Call("subscribe", map[string]any{"channel": "sr:a"})["subscribe"].(map[string]any)
	if r["expires"] != nil {
		t.Fatalf("subscribe result %v: the sub_refresh proxy refreshes, not the client", r)
	}
	time.Sleep(2 * time.Second)
	c.Call("presence_stats", map[string]any{"channel": "x"})
	if len(c.Pushes) != 0 {
		t.Fatalf("the refreshed subscription ended: %v", c.Pushes)
	}
	if req, _ := ref.last(); req == nil || req["channel"] != "sr:a" || req["user"] != "u" {
		t.Fatalf("sub_refresh request %v", req)
	}
	// The backend ends the next subscription: unsubscribe 2501.
	sub.mu.Lock()
	sub.body = fmt.Sprintf(`{"result":{"expire_at":%d}}`, time.Now().Add(time.Second).Unix())
	sub.mu.Unlock()
	ref.mu.Lock()
	ref.body = `{"result":{"expired":true}}`
	ref.mu.Unlock()
	c.Call("subscribe", map[string]any{"channel": "sr:b"})
	p := c.WaitPush(4 * time.Second)
	if p["channel"] != "sr:b" || num(p["unsubscribe"].(map[string]any)["code"]) != 2501 {
		t.Fatalf("push %v, want unsubscribe 2501 on sr:b", p)
	}
}

func TestNamedProxiesAndRPCNamespaces(t *testing.T) {
	billing := newBackend(t, 200, `{"result":{"data":{"from":"billing"}}}`)
	gate := newBackend(t, 200, `{"result":{}}`)
	cfg := testutil.Config()
	cfg.Proxies = []config.NamedProxy{{Name: "billing", Proxy: proxyConfig(billing.URL)}, {Name: "gate", Proxy: proxyConfig(gate.URL)}}
	cfg.RPC.Namespaces = []config.RPCNamespace{{Name: "billing", ProxyName: "billing"}}
	cfg.Channel.Namespaces = []config.Namespace{{Name: "vip", NamespaceOptions: config.NamespaceOptions{SubscribeProxyName: "gate"}}}
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	if r := c.Call("subscribe", map[string]any{"channel": "vip:lounge"}); r["error"] != nil {
		t.Fatalf("subscribe through the named proxy: %v", r)
	}
	if req, _ := gate.last(); req == nil || req["channel"] != "vip:lounge" {
		t.Fatalf("the named proxy was not asked: %v", req)
	}
	r := c.Call("rpc", map[string]any{"method": "billing:invoice", "data": map[string]any{}})
	if r["rpc"].(map[string]any)["data"].(map[string]any)["from"] != "billing" {
		t.Fatalf("rpc to the billing namespace: %v", r)
	}
	if r := c.Call("rpc", map[string]any{"method": "shop:buy"}); testutil.ErrorCode(r) != 104 {
		t.Fatalf("rpc to an unconfigured namespace: %v, want 104", r)
	}
	if r := c.Call("rpc", map[string]any{"method": "plain"}); testutil.ErrorCode(r) != 104 {
		t.Fatalf("rpc without a namespace and without rpc.proxy: %v, want 104", r)
	}
}

func TestConnectProxyForwardsOnlyAllowlistedCookies(t *testing.T) {
	be := newBackend(t, 200, `{"result":{"user":"c1"}}`)
	cfg := testutil.Config()
	cfg.Client.Proxy.Connect = config.Proxy{Enabled: true, Endpoint: be.URL, Cookies: []string{"session"}}
	srv := testutil.Start(t, cfg)
	srv.Dial(t, http.Header{"Cookie": {"tracking=t1; session=s1; theme=dark"}}).Connect("")
	if _, hdr := be.last(); hdr.Get("Cookie") != "session=s1" {
		t.Fatalf("Cookie %q, want only session=s1", hdr.Get("Cookie"))
	}
}
