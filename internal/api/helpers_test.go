package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// waitTimeout bounds every wait for a push, a close or a condition.
const waitTimeout = 5 * time.Second

var httpClient = &http.Client{Timeout: 20 * time.Second}

// testConfig is testutil.Config plus namespaces:
//   - chat:  presence and history, clients may subscribe;
//   - plain: neither presence nor history, clients may subscribe;
//   - small: history of two publications.
func testConfig() *config.Config {
	cfg := testutil.Config()
	cfg.NodeName = "node-a"
	cfg.Channel.Namespaces = []config.Namespace{
		{Name: "chat", NamespaceOptions: config.NamespaceOptions{
			Presence: true, HistorySize: 10, HistoryTTL: config.Duration(time.Minute),
			AllowSubscribeForClient: true, AllowPresenceForClient: true, AllowHistoryForClient: true,
		}},
		{Name: "plain", NamespaceOptions: config.NamespaceOptions{AllowSubscribeForClient: true}},
		{Name: "small", NamespaceOptions: config.NamespaceOptions{
			HistorySize: 2, HistoryTTL: config.Duration(time.Minute), AllowSubscribeForClient: true,
		}},
	}
	return cfg
}

// --- raw HTTP helpers ---

type request struct {
	method  string            // HTTP method; POST when empty
	path    string            // /api/info when empty
	query   string            // raw query without "?"
	body    string            // request body
	bodyR   io.Reader         // used instead of body when set (unknown length: chunked)
	headers map[string]string // "Content-Type" defaults to application/json; "" means none
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d: body %q is not a JSON object: %v", r.status, r.body, err)
	}
	return m
}

func withKey(h map[string]string) map[string]string {
	out := map[string]string{"X-API-Key": testutil.APIKey}
	for k, v := range h {
		out[k] = v
	}
	return out
}

func send(t *testing.T, srv *testutil.Server, r request) response {
	t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	path := r.path
	if path == "" {
		path = "/api/info"
	}
	url := "http://" + srv.Addr + path
	if r.query != "" {
		url += "?" + r.query
	}
	var body io.Reader = strings.NewReader(r.body)
	if r.bodyR != nil {
		body = r.bodyR
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.bodyR != nil {
		req.ContentLength = -1
	}
	ct, set := r.headers["Content-Type"]
	if !set {
		ct = "application/json"
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range r.headers {
		if k != "Content-Type" {
			req.Header.Set(k, v)
		}
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// call POSTs body (a raw JSON string, or a value to marshal) to /api/<method>
// with the key, requires HTTP 200 and returns the decoded body.
func call(t *testing.T, srv *testutil.Server, method string, body any) map[string]any {
	t.Helper()
	raw, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		raw = string(b)
	}
	r := send(t, srv, request{path: "/api/" + method, body: raw, headers: withKey(nil)})
	if r.status != http.StatusOK {
		t.Fatalf("api %s %s: status %d, body %s", method, raw, r.status, r.body)
	}
	return r.object(t)
}

// result calls the API and requires a result object.
func result(t *testing.T, srv *testutil.Server, method string, body any) map[string]any {
	t.Helper()
	m := call(t, srv, method, body)
	res, ok := m["result"].(map[string]any)
	if !ok || m["error"] != nil {
		t.Fatalf("api %s %v: want a result, got %v", method, body, m)
	}
	return res
}

// apiError calls the API and requires an error; it returns code and message.
func apiError(t *testing.T, srv *testutil.Server, method string, body any) (int, string) {
	t.Helper()
	m := call(t, srv, method, body)
	if _, ok := m["result"]; ok {
		t.Fatalf("api %s %v: want an error, got %v", method, body, m)
	}
	code := testutil.ErrorCode(m)
	if code == 0 {
		t.Fatalf("api %s %v: no error code in %v", method, body, m)
	}
	return code, testutil.ErrorMessage(m)
}

func num(t *testing.T, v any) float64 {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	return f
}

func compactJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventually polls cond until it holds, failing after waitTimeout.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s; last: %s", what, waitTimeout, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// --- WebSocket helpers ---

// connect dials and connects as user ("" = anonymous, without a token) and
// returns the client and its client id.
func connect(t *testing.T, srv *testutil.Server, user string) (*testutil.Client, string) {
	t.Helper()
	c := srv.Dial(t, nil)
	token := ""
	if user != "" {
		token = testutil.UserToken(t, user)
	}
	res := c.Connect(token)
	id, _ := res["client"].(string)
	if id == "" {
		t.Fatalf("connect result has no client id: %v", res)
	}
	return c, id
}

func clientSubscribe(t *testing.T, c *testutil.Client, channel string) {
	t.Helper()
	r := c.Call("subscribe", map[string]any{"channel": channel})
	if _, ok := r["subscribe"].(map[string]any); !ok {
		t.Fatalf("subscribe %s: %v", channel, r)
	}
}

// alive checks that the connection still answers commands.
func alive(t *testing.T, c *testutil.Client, channel string) {
	t.Helper()
	clientSubscribe(t, c, channel)
}

// expectPub waits for the next push and requires a publication on channel.
func expectPub(t *testing.T, c *testutil.Client, channel string) map[string]any {
	t.Helper()
	p := c.WaitPush(waitTimeout)
	pub, ok := p["pub"].(map[string]any)
	if !ok || p["channel"] != channel {
		t.Fatalf("want a publication on %q, got push %v", channel, p)
	}
	return pub
}

// --- authentication ---
