package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/api"
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

func TestAuthentication(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	const wrongKey = "wrong-key-7c1f9e2a"

	cases := []struct {
		name      string
		headers   map[string]string
		query     string
		status    int
		errorCode string   // refusal "error" for 401
		hint      []string // substrings of the hint
	}{
		{name: "X-API-Key", headers: map[string]string{"X-API-Key": testutil.APIKey}, status: 200},
		{name: "missing key", status: 401, errorCode: "api_key_missing", hint: []string{"X-API-Key"}},
		{name: "wrong X-API-Key", headers: map[string]string{"X-API-Key": wrongKey}, status: 401, errorCode: "api_key_wrong"},
		{name: "wrong key prefix of right key", headers: map[string]string{"X-API-Key": testutil.APIKey[:len(testutil.APIKey)-1]}, status: 401, errorCode: "api_key_wrong"},
		{name: "right key with suffix", headers: map[string]string{"X-API-Key": testutil.APIKey + "x"}, status: 401, errorCode: "api_key_wrong"},
		{name: "Authorization apikey", headers: map[string]string{"Authorization": "apikey " + testutil.APIKey}, status: 200},
		{name: "Authorization APIKEY", headers: map[string]string{"Authorization": "APIKEY " + testutil.APIKey}, status: 200},
		{name: "Authorization ApiKey", headers: map[string]string{"Authorization": "ApiKey " + testutil.APIKey}, status: 200},
		{name: "Authorization apikey wrong", headers: map[string]string{"Authorization": "apikey " + wrongKey}, status: 401, errorCode: "api_key_wrong"},
		{name: "Authorization apikey without key", headers: map[string]string{"Authorization": "apikey"}, status: 401, errorCode: "api_key_missing"},
		{name: "query api_key", query: "api_key=" + testutil.APIKey, status: 200},
		{name: "query api_key wrong", query: "api_key=" + wrongKey, status: 401, errorCode: "api_key_wrong"},
		{name: "Bearer", headers: map[string]string{"Authorization": "Bearer " + testutil.APIKey}, status: 401, errorCode: "api_key_missing", hint: []string{"X-API-Key", "Bearer"}},
		{name: "bearer lower case", headers: map[string]string{"Authorization": "bearer " + testutil.APIKey}, status: 401, errorCode: "api_key_missing", hint: []string{"X-API-Key", "Bearer"}},
		{name: "Basic", headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, status: 401, errorCode: "api_key_missing"},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				headers := map[string]string{}
				for k, v := range tc.headers {
					headers[k] = v
				}
				r := send(t, srv, request{path: "/api/info", query: tc.query, body: `{}`, headers: headers})
				if r.status != tc.status {
					t.Fatalf("status %d, want %d; body %s", r.status, tc.status, r.body)
				}
				body := r.object(t)
				if tc.status == 200 {
					if _, ok := body["result"].(map[string]any); !ok {
						t.Fatalf("want a result, got %s", r.body)
					}
					return
				}
				if got := r.header.Get("WWW-Authenticate"); got == "" {
					t.Errorf("401 without a WWW-Authenticate header")
				}
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
				if body["error"] != tc.errorCode {
					t.Errorf("error %v, want %q; body %s", body["error"], tc.errorCode, r.body)
				}
				if d, _ := body["detail"].(string); d == "" {
					t.Errorf("refusal without a detail: %s", r.body)
				}
				for _, want := range tc.hint {
					if h, _ := body["hint"].(string); !strings.Contains(h, want) {
						t.Errorf("hint %q does not mention %q", h, want)
					}
				}
				for _, secret := range []string{testutil.APIKey, wrongKey} {
					if bytes.Contains(r.body, []byte(secret)) {
						t.Errorf("response body echoes a key: %s", r.body)
					}
				}
			})
		}
	})

	logs := srv.Logs.String()
	if !strings.Contains(logs, "api request refused") {
		t.Errorf("refusals were not logged; log:\n%s", logs)
	}
	for _, secret := range []string{testutil.APIKey, wrongKey, testutil.APIKey[:len(testutil.APIKey)-1]} {
		if strings.Contains(logs, secret) {
			t.Errorf("server log contains the key %q:\n%s", secret, logs)
		}
	}
}

func TestAuthenticationKeyNotConfigured(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.HTTPAPI.Key = ""
	cfg.HTTPAPI.Insecure = false
	srv := testutil.Start(t, cfg)
	cases := []struct {
		name    string
		headers map[string]string
		query   string
	}{
		{name: "no key"},
		{name: "X-API-Key", headers: map[string]string{"X-API-Key": testutil.APIKey}},
		{name: "empty X-API-Key", headers: map[string]string{"X-API-Key": ""}},
		{name: "Authorization apikey", headers: map[string]string{"Authorization": "apikey " + testutil.APIKey}},
		{name: "query", query: "api_key=" + testutil.APIKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := send(t, srv, request{path: "/api/publish", query: tc.query, body: `{"channel":"a","data":1}`, headers: tc.headers})
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401; body %s", r.status, r.body)
			}
			body := r.object(t)
			if body["error"] != "api_key_not_configured" {
				t.Errorf("error %v, want api_key_not_configured", body["error"])
			}
			if h, _ := body["hint"].(string); !strings.Contains(h, "http_api.key") {
				t.Errorf("hint %q does not name http_api.key", h)
			}
			if r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without a WWW-Authenticate header")
			}
		})
	}
}

func TestAuthenticationInsecure(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.HTTPAPI.Key = ""
	cfg.HTTPAPI.Insecure = true
	srv := testutil.Start(t, cfg)
	cases := []struct {
		name    string
		headers map[string]string
	}{
		{name: "no key"},
		{name: "any key", headers: map[string]string{"X-API-Key": "whatever"}},
		{name: "bearer", headers: map[string]string{"Authorization": "Bearer x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := send(t, srv, request{path: "/api/publish", body: `{"channel":"ins","data":{"a":1}}`, headers: tc.headers})
			if r.status != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", r.status, r.body)
			}
			if _, ok := r.object(t)["result"].(map[string]any); !ok {
				t.Fatalf("want a result, got %s", r.body)
			}
		})
	}
}

// --- HTTP method, path, content type, body ---

func TestHTTPMethodsAndPaths(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	t.Run("non-POST is 405 with Allow: POST", func(t *testing.T) {
		t.Parallel()
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			r := send(t, srv, request{method: m, path: "/api/publish", headers: withKey(nil)})
			if r.status != http.StatusMethodNotAllowed {
				t.Errorf("%s: status %d, want 405; body %s", m, r.status, r.body)
				continue
			}
			if got := r.header.Get("Allow"); got != http.MethodPost {
				t.Errorf("%s: Allow %q, want POST", m, got)
			}
			if e := r.object(t)["error"]; e != "method_not_allowed" {
				t.Errorf("%s: error %v, want method_not_allowed", m, e)
			}
		}
	})
	cases := []struct {
		path string
		name string // method name the message must quote
	}{
		{"/api/nope", "nope"},
		{"/api/Publish", "Publish"},
		{"/api/map_publish", "map_publish"},
		{"/api/publish/extra", "publish/extra"},
	}
	for _, tc := range cases {
		t.Run("unknown method "+tc.path, func(t *testing.T) {
			t.Parallel()
			r := send(t, srv, request{path: tc.path, body: `{}`, headers: withKey(nil)})
			if r.status != http.StatusNotFound {
				t.Fatalf("status %d, want 404; body %s", r.status, r.body)
			}
			body := r.object(t)
			if code := testutil.ErrorCode(body); code != 104 {
				t.Errorf("error code %d, want 104; body %s", code, r.body)
			}
			if msg := testutil.ErrorMessage(body); !strings.Contains(msg, fmt.Sprintf("%q", tc.name)) {
				t.Errorf("message %q does not name %q", msg, tc.name)
			}
		})
	}
}

func TestContentTypes(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	cases := []struct {
		ct     string
		status int
	}{
		{"application/json", 200},
		{"application/json; charset=utf-8", 200},
		{"Application/JSON", 200},
		{"", 200},
		{"application/x-www-form-urlencoded", 200}, // curl -d default
		{"text/plain", 200},
		{"application/xml", 415},
		{"multipart/form-data; boundary=xyz", 415},
		{"text/html", 415},
		{"not a/media type;;", 415},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%q", tc.ct), func(t *testing.T) {
			t.Parallel()
			r := send(t, srv, request{path: "/api/publish", body: `{"channel":"ct","data":{"x":1}}`,
				headers: withKey(map[string]string{"Content-Type": tc.ct})})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.status, r.body)
			}
			body := r.object(t)
			if tc.status == 200 {
				res, ok := body["result"].(map[string]any)
				if !ok || num(t, res["offset"]) < 1 {
					t.Fatalf("want a publish result, got %s", r.body)
				}
				return
			}
			if body["error"] != "unsupported_content_type" {
				t.Errorf("error %v, want unsupported_content_type", body["error"])
			}
			if mt := strings.SplitN(tc.ct, ";", 2)[0]; tc.ct != "not a/media type;;" {
				if d, _ := body["detail"].(string); !strings.Contains(d, mt) {
					t.Errorf("detail %q does not name %q", d, mt)
				}
			}
		})
	}
}

func TestBodies(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	pad := func(n int) string {
		// A valid JSON object of exactly n bytes.
		const head, tail = `{"channel":"big","data":"`, `"}`
		return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
	}
	cases := []struct {
		name   string
		path   string
		body   string
		bodyR  func() io.Reader
		status int
		refuse string // refusal "error" for non-200
		detail string // substring of the refusal detail
		check  func(t *testing.T, body map[string]any)
	}{
		{name: "not JSON", path: "/api/publish", body: `channel=a&data=b`, status: 400, refuse: "bad_request", detail: "not valid JSON"},
		{name: "truncated JSON", path: "/api/publish", body: `{"channel":"a","data":`, status: 400, refuse: "bad_request", detail: "not valid JSON"},
		{name: "two JSON values", path: "/api/publish", body: `{}{}`, status: 400, refuse: "bad_request", detail: "not valid JSON"},
		{name: "over MaxBodySize", path: "/api/publish", body: pad(api.MaxBodySize + 1), status: 413, refuse: "body_too_large", detail: fmt.Sprint(api.MaxBodySize)},
		{name: "over MaxBodySize chunked", path: "/api/publish", bodyR: func() io.Reader {
			return io.MultiReader(strings.NewReader(pad(api.MaxBodySize + 100)))
		}, status: 413, refuse: "body_too_large"},
		{name: "exactly MaxBodySize", path: "/api/publish", body: pad(api.MaxBodySize), status: 200, check: func(t *testing.T, body map[string]any) {
			if res, ok := body["result"].(map[string]any); !ok || num(t, res["offset"]) < 1 {
				t.Errorf("want a publish result, got %v", body)
			}
		}},
		{name: "empty body is {} (info)", path: "/api/info", body: ``, status: 200, check: func(t *testing.T, body map[string]any) {
			res, _ := body["result"].(map[string]any)
			if nodes, _ := res["nodes"].([]any); len(nodes) != 1 {
				t.Errorf("want one node, got %v", body)
			}
		}},
		{name: "whitespace body is {} (channels)", path: "/api/channels", body: " \n\t ", status: 200, check: func(t *testing.T, body map[string]any) {
			res, _ := body["result"].(map[string]any)
			if _, ok := res["channels"].(map[string]any); !ok {
				t.Errorf("want channels, got %v", body)
			}
		}},
		{name: "empty body is {} (publish needs a channel)", path: "/api/publish", body: ``, status: 200, check: func(t *testing.T, body map[string]any) {
			if code := testutil.ErrorCode(body); code != 107 {
				t.Errorf("error code %d, want 107; body %v", code, body)
			}
			if msg := testutil.ErrorMessage(body); !strings.Contains(msg, "channel") {
				t.Errorf("message %q does not mention channel", msg)
			}
		}},
		{name: "JSON array instead of object", path: "/api/publish", body: `[1,2]`, status: 200, check: func(t *testing.T, body map[string]any) {
			if code := testutil.ErrorCode(body); code != 107 {
				t.Errorf("error code %d, want 107; body %v", code, body)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := request{path: tc.path, body: tc.body, headers: withKey(nil)}
			if tc.bodyR != nil {
				req.bodyR = tc.bodyR()
			}
			r := send(t, srv, req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %.300s", r.status, tc.status, r.body)
			}
			body := r.object(t)
			if tc.refuse != "" {
				if body["error"] != tc.refuse {
					t.Errorf("error %v, want %q", body["error"], tc.refuse)
				}
				if d, _ := body["detail"].(string); !strings.Contains(d, tc.detail) {
					t.Errorf("detail %q does not contain %q", d, tc.detail)
				}
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
}

// --- publish ---

func TestPublish(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	cases := []struct {
		name  string
		body  string
		code  int    // 0: success
		msg   string // substring of the error message
		check func(t *testing.T, res map[string]any)
	}{
		{name: "history on gives offset and epoch", body: `{"channel":"news","data":{"text":"hi"}}`, check: func(t *testing.T, res map[string]any) {
			if num(t, res["offset"]) != 1 {
				t.Errorf("offset %v, want 1", res["offset"])
			}
			if e, _ := res["epoch"].(string); e == "" {
				t.Errorf("no epoch in %v", res)
			}
		}},
		{name: "namespace with history", body: `{"channel":"chat:room","data":{"text":"hi"}}`, check: func(t *testing.T, res map[string]any) {
			if num(t, res["offset"]) != 1 || res["epoch"] == "" {
				t.Errorf("want offset 1 and an epoch, got %v", res)
			}
		}},
		{name: "history off gives empty result", body: `{"channel":"plain:x","data":{"text":"hi"}}`, check: func(t *testing.T, res map[string]any) {
			if len(res) != 0 {
				t.Errorf("want {}, got %v", res)
			}
		}},
		{name: "skip_history gives empty result", body: `{"channel":"skipped","data":{"text":"hi"},"skip_history":true}`, check: func(t *testing.T, res map[string]any) {
			if len(res) != 0 {
				t.Errorf("want {}, got %v", res)
			}
		}},
		{name: "string data", body: `{"channel":"scalar","data":"hello"}`},
		{name: "zero data", body: `{"channel":"scalar0","data":0}`},
		{name: "false data", body: `{"channel":"scalarf","data":false}`},
		{name: "array data", body: `{"channel":"arr","data":[]}`},
		{name: "data and b64data", body: `{"channel":"both","data":{"a":1},"b64data":"aGk="}`},
		{name: "tags", body: `{"channel":"tagged","data":{},"tags":{"k":"v"}}`},
		{name: "channel of max_length", body: fmt.Sprintf(`{"channel":%q,"data":1}`, strings.Repeat("a", 255))},
		{name: "private channel", body: `{"channel":"$secret","data":1}`},
		{name: "unknown namespace", body: `{"channel":"nope:x","data":{}}`, code: 102, msg: "nope"},
		{name: "unknown namespace of private channel", body: `{"channel":"$nope:x","data":{}}`, code: 102, msg: "nope"},
		{name: "empty channel", body: `{"channel":"","data":{}}`, code: 107, msg: "channel"},
		{name: "missing channel", body: `{"data":{}}`, code: 107, msg: "channel"},
		{name: "non-ASCII channel", body: `{"channel":"новости","data":{}}`, code: 107, msg: "non-ASCII"},
		{name: "control byte in channel", body: `{"channel":"a\tb","data":{}}`, code: 107},
		{name: "channel longer than max_length", body: fmt.Sprintf(`{"channel":%q,"data":1}`, strings.Repeat("a", 256)), code: 107, msg: "max_length"},
		{name: "missing data", body: `{"channel":"news"}`, code: 107, msg: "data"},
		{name: "null data", body: `{"channel":"news","data":null}`, code: 107, msg: "data"},
		{name: "b64data only", body: `{"channel":"bin","b64data":"aGVsbG8="}`},
		{name: "b64data that is not base64", body: `{"channel":"news","b64data":"not base64!"}`, code: 107, msg: "b64data"},
		{name: "channel of wrong type", body: `{"channel":5,"data":{}}`, code: 107, msg: `"channel"`},
		{name: "skip_history of wrong type", body: `{"channel":"news","data":{},"skip_history":"yes"}`, code: 107, msg: `"skip_history"`},
		{name: "tags of wrong type", body: `{"channel":"news","data":{},"tags":["a"]}`, code: 107, msg: "tags"},
		{name: "tag value of wrong type", body: `{"channel":"news","data":{},"tags":{"k":1}}`, code: 107, msg: "tags"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.code != 0 {
				code, msg := apiError(t, srv, "publish", tc.body)
				if code != tc.code {
					t.Fatalf("code %d (%s), want %d", code, msg, tc.code)
				}
				if !strings.Contains(msg, tc.msg) {
					t.Errorf("message %q does not contain %q", msg, tc.msg)
				}
				return
			}
			res := result(t, srv, "publish", tc.body)
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}

	t.Run("offsets grow within one epoch", func(t *testing.T) {
		t.Parallel()
		var epoch string
		for i := 1; i <= 3; i++ {
			res := result(t, srv, "publish", `{"channel":"seq","data":{}}`)
			if got := num(t, res["offset"]); got != float64(i) {
				t.Fatalf("publish %d: offset %v", i, got)
			}
			if i == 1 {
				epoch, _ = res["epoch"].(string)
			} else if res["epoch"] != epoch {
				t.Fatalf("epoch changed from %q to %v", epoch, res["epoch"])
			}
		}
	})
	t.Run("skip_history keeps the publication out of history", func(t *testing.T) {
		t.Parallel()
		result(t, srv, "publish", `{"channel":"skip2","data":{"n":1}}`)
		result(t, srv, "publish", `{"channel":"skip2","data":{"n":2},"skip_history":true}`)
		h := result(t, srv, "history", `{"channel":"skip2","limit":-1}`)
		pubs, _ := h["publications"].([]any)
		if len(pubs) != 1 || num(t, h["offset"]) != 1 {
			t.Fatalf("want only the first publication at offset 1, got %v", h)
		}
	})
}

func TestPublishDelivery(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	c, _ := connect(t, srv, "reader")
	clientSubscribe(t, c, "feed")

	body := "{\"channel\":\"feed\",\n \"data\": {\n\t\"a\" : 1,\n  \"b\": [ 1,\n 2 ],\n  \"s\": \"line1\\nline2 ü\"\n },\n \"tags\": {\"k\": \"v\", \"x\": \"y z\"}\n}"
	res := result(t, srv, "publish", body)
	offset := num(t, res["offset"])

	// Read raw lines: a raw newline inside data would split the JSON object.
	var line string
	deadline := time.Now().Add(waitTimeout)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no publication line")
		}
		l, err := c.ReadLine(time.Until(deadline))
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if l == "{}" { // ping
			continue
		}
		line = l
		break
	}
	var msg struct {
		Push struct {
			Channel string `json:"channel"`
			Pub     struct {
				Data   json.RawMessage   `json:"data"`
				Offset float64           `json:"offset"`
				Tags   map[string]string `json:"tags"`
			} `json:"pub"`
		} `json:"push"`
	}
	if err := json.Unmarshal([]byte(line), &msg); err != nil {
		t.Fatalf("line %q is not one JSON object (raw newline in data?): %v", line, err)
	}
	const want = `{"a":1,"b":[1,2],"s":"line1\nline2 ü"}`
	if got := string(msg.Push.Pub.Data); got != want {
		t.Errorf("delivered data %s, want compacted %s", got, want)
	}
	if !strings.Contains(line, `"data":`+want) {
		t.Errorf("line %q does not carry the compacted data", line)
	}
	if msg.Push.Channel != "feed" || msg.Push.Pub.Offset != offset {
		t.Errorf("push channel %q offset %v, want feed %v", msg.Push.Channel, msg.Push.Pub.Offset, offset)
	}
	if !reflect.DeepEqual(msg.Push.Pub.Tags, map[string]string{"k": "v", "x": "y z"}) {
		t.Errorf("tags %v", msg.Push.Pub.Tags)
	}

	// History stores the compacted data too.
	h := result(t, srv, "history", `{"channel":"feed","limit":-1}`)
	pubs, _ := h["publications"].([]any)
	if len(pubs) != 1 {
		t.Fatalf("history %v", h)
	}
	p := pubs[0].(map[string]any)
	if got := compactJSON(t, p["data"]); got != want {
		t.Errorf("history data %s, want %s", got, want)
	}
	if !reflect.DeepEqual(p["tags"], map[string]any{"k": "v", "x": "y z"}) {
		t.Errorf("history tags %v", p["tags"])
	}

	// Without history the publication is delivered too, without an offset.
	clientSubscribe(t, c, "plain:feed")
	result(t, srv, "publish", `{"channel":"plain:feed","data":{"n":2}}`)
	pub := expectPub(t, c, "plain:feed")
	if _, ok := pub["offset"]; ok {
		t.Errorf("publication without history has an offset: %v", pub)
	}
	if compactJSON(t, pub["data"]) != `{"n":2}` {
		t.Errorf("data %v", pub["data"])
	}
}

// --- broadcast ---

func TestBroadcast(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	t.Run("responses in order with per-channel errors", func(t *testing.T) {
		t.Parallel()
		c, _ := connect(t, srv, "bc")
		clientSubscribe(t, c, "b1")
		clientSubscribe(t, c, "b2")
		res := result(t, srv, "broadcast", `{"channels":["b1","nope:x","b2","","plain:b3"],"data":{"v":1},"tags":{"t":"1"}}`)
		resp, _ := res["responses"].([]any)
		if len(resp) != 5 {
			t.Fatalf("want 5 responses, got %v", res)
		}
		wantErr := []int{0, 102, 0, 107, 0}
		for i, r := range resp {
			m := r.(map[string]any)
			if code := testutil.ErrorCode(m); code != wantErr[i] {
				t.Errorf("response %d: error code %d, want %d (%v)", i, code, wantErr[i], m)
			}
			if wantErr[i] == 0 {
				if _, ok := m["result"].(map[string]any); !ok {
					t.Errorf("response %d: no result: %v", i, m)
				}
			} else if _, ok := m["result"]; ok {
				t.Errorf("response %d: error with a result: %v", i, m)
			}
		}
		if r0 := resp[0].(map[string]any)["result"].(map[string]any); num(t, r0["offset"]) != 1 || r0["epoch"] == "" {
			t.Errorf("b1 result %v, want offset 1 and an epoch", r0)
		}
		if r4 := resp[4].(map[string]any)["result"].(map[string]any); len(r4) != 0 {
			t.Errorf("plain:b3 result %v, want {}", r4)
		}
		for _, ch := range []string{"b1", "b2"} {
			pub := expectPub(t, c, ch)
			if compactJSON(t, pub["data"]) != `{"v":1}` || !reflect.DeepEqual(pub["tags"], map[string]any{"t": "1"}) {
				t.Errorf("%s: publication %v", ch, pub)
			}
		}
	})

	errCases := []struct {
		name string
		body string
		msg  string
	}{
		{"empty channels", `{"channels":[],"data":{}}`, "channels"},
		{"missing channels", `{"data":{}}`, "channels"},
		{"channels of wrong type", `{"channels":"b1","data":{}}`, `"channels"`},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, msg := apiError(t, srv, "broadcast", tc.body)
			if code != 107 {
				t.Fatalf("code %d (%s), want 107", code, msg)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not contain %q", msg, tc.msg)
			}
		})
	}
}

// --- server-side subscribe / unsubscribe / disconnect / refresh ---

func TestServerSubscribe(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	t.Run("subscribe push then publications", func(t *testing.T) {
		t.Parallel()
		alice, _ := connect(t, srv, "alice")
		bob, _ := connect(t, srv, "bob")
		clientSubscribe(t, bob, "bobs")

		res := result(t, srv, "subscribe", `{"user":"alice","channel":"chat:news","info":{"role":"reader"}}`)
		if len(res) != 0 {
			t.Errorf("subscribe result %v, want {}", res)
		}
		p := alice.WaitPush(waitTimeout)
		if p["channel"] != "chat:news" {
			t.Fatalf("push %v, want channel chat:news", p)
		}
		if _, ok := p["subscribe"].(map[string]any); !ok {
			t.Fatalf("push %v is not a subscribe push", p)
		}
		result(t, srv, "publish", `{"channel":"chat:news","data":{"n":1}}`)
		pub := expectPub(t, alice, "chat:news")
		if compactJSON(t, pub["data"]) != `{"n":1}` {
			t.Errorf("data %v", pub["data"])
		}
		// The channel info given to subscribe appears in presence.
		eventually(t, "presence with chan_info", func() (bool, string) {
			pr := result(t, srv, "presence", `{"channel":"chat:news"}`)
			m, _ := pr["presence"].(map[string]any)
			for _, v := range m {
				e := v.(map[string]any)
				if e["user"] == "alice" && compactJSON(t, e["chan_info"]) == `{"role":"reader"}` {
					return true, ""
				}
			}
			return false, compactJSON(t, pr)
		})
		// Bob was not subscribed: his next push is from his own channel.
		result(t, srv, "publish", `{"channel":"bobs","data":{"n":2}}`)
		expectPub(t, bob, "bobs")
		// Subscribing again is harmless.
		result(t, srv, "subscribe", `{"user":"alice","channel":"chat:news"}`)
	})

	t.Run("client targets one connection", func(t *testing.T) {
		t.Parallel()
		c1, id1 := connect(t, srv, "carol")
		c2, _ := connect(t, srv, "carol")
		clientSubscribe(t, c2, "carol2")
		result(t, srv, "subscribe", map[string]any{"user": "carol", "client": id1, "channel": "carolx"})
		if p := c1.WaitPush(waitTimeout); p["channel"] != "carolx" || p["subscribe"] == nil {
			t.Fatalf("c1 push %v", p)
		}
		result(t, srv, "publish", `{"channel":"carolx","data":1}`)
		expectPub(t, c1, "carolx")
		result(t, srv, "publish", `{"channel":"carol2","data":2}`)
		expectPub(t, c2, "carol2") // c2 got neither the subscribe push nor carolx
	})

	t.Run("user without connections", func(t *testing.T) {
		t.Parallel()
		if res := result(t, srv, "subscribe", `{"user":"nobody","channel":"x"}`); len(res) != 0 {
			t.Errorf("result %v, want {}", res)
		}
	})

	errCases := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"unknown namespace", `{"user":"alice","channel":"nope:x"}`, 102, "nope"},
		{"empty channel", `{"user":"alice","channel":""}`, 107, "channel"},
		{"non-ASCII channel", `{"user":"alice","channel":"ü"}`, 107, ""},
		{"user of wrong type", `{"user":1,"channel":"x"}`, 107, `"user"`},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, msg := apiError(t, srv, "subscribe", tc.body)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("got %d %q, want %d containing %q", code, msg, tc.code, tc.msg)
			}
		})
	}
}

func TestServerUnsubscribe(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	c, id := connect(t, srv, "dave")
	clientSubscribe(t, c, "chat:room")
	clientSubscribe(t, c, "other")
	eventually(t, "dave in presence", func() (bool, string) {
		st := result(t, srv, "presence_stats", `{"channel":"chat:room"}`)
		return num(t, st["num_clients"]) == 1, compactJSON(t, st)
	})

	if res := result(t, srv, "unsubscribe", `{"user":"dave","channel":"chat:room"}`); len(res) != 0 {
		t.Errorf("result %v, want {}", res)
	}
	p := c.WaitPush(waitTimeout)
	u, ok := p["unsubscribe"].(map[string]any)
	if !ok || p["channel"] != "chat:room" {
		t.Fatalf("push %v, want an unsubscribe push for chat:room", p)
	}
	if num(t, u["code"]) != 2000 {
		t.Errorf("unsubscribe code %v, want 2000", u["code"])
	}
	// No more publications from chat:room; other still flows.
	result(t, srv, "publish", `{"channel":"chat:room","data":1}`)
	result(t, srv, "publish", `{"channel":"other","data":2}`)
	expectPub(t, c, "other")
	eventually(t, "dave left presence", func() (bool, string) {
		pr := result(t, srv, "presence", `{"channel":"chat:room"}`)
		m, _ := pr["presence"].(map[string]any)
		_, still := m[id]
		return !still, compactJSON(t, pr)
	})
	// Unsubscribing again, or from a channel never subscribed, is harmless.
	result(t, srv, "unsubscribe", `{"user":"dave","channel":"chat:room"}`)
	if code, _ := apiError(t, srv, "unsubscribe", `{"user":"dave","channel":"nope:x"}`); code != 102 {
		t.Errorf("unknown namespace: code %d, want 102", code)
	}
	if code, _ := apiError(t, srv, "unsubscribe", `{"user":"dave","channel":""}`); code != 107 {
		t.Errorf("empty channel: code %d, want 107", code)
	}
	// The client can subscribe again.
	clientSubscribe(t, c, "chat:room")
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	type conn struct {
		c  *testutil.Client
		id string
	}
	cases := []struct {
		name string
		// body builds the request from the user's two connections.
		body func(user string, conns []conn) any
		code int // API error code; 0: success
		// closed: per connection, the expected close code (0: stays connected).
		closed     []int
		reason     string // expected close reason of closed connections
		errMessage string
	}{
		{name: "default 3503", body: func(u string, _ []conn) any { return map[string]any{"user": u} },
			closed: []int{3503, 3503}, reason: "force disconnect"},
		{name: "custom 4000 x", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 4000, "reason": "x"}}
		}, closed: []int{4000, 4000}, reason: "x"},
		{name: "custom terminal 4500", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 4500, "reason": "bye"}}
		}, closed: []int{4500, 4500}, reason: "bye"},
		{name: "one client", body: func(u string, cs []conn) any {
			return map[string]any{"user": u, "client": cs[1].id}
		}, closed: []int{0, 3503}, reason: "force disconnect"},
		{name: "whitelist keeps a client", body: func(u string, cs []conn) any {
			return map[string]any{"user": u, "whitelist": []string{cs[0].id}}
		}, closed: []int{0, 3503}, reason: "force disconnect"},
		{name: "code 1000 out of range", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 1000, "reason": "x"}}
		}, code: 107, closed: []int{0, 0}, errMessage: "1000"},
		{name: "code 5000 out of range", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 5000, "reason": "x"}}
		}, code: 107, closed: []int{0, 0}, errMessage: "5000"},
		{name: "code 2999 out of range", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 2999}}
		}, code: 107, closed: []int{0, 0}, errMessage: "2999"},
		{name: "reason over 123 bytes", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 4000, "reason": strings.Repeat("r", 124)}}
		}, code: 107, closed: []int{0, 0}, errMessage: "123"},
		{name: "whitelist of wrong type", body: func(u string, _ []conn) any {
			return fmt.Sprintf(`{"user":%q,"whitelist":"abc"}`, u)
		}, code: 107, closed: []int{0, 0}, errMessage: `"whitelist"`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user := fmt.Sprintf("disc-%d", i)
			var conns []conn
			for range 2 {
				c, id := connect(t, srv, user)
				conns = append(conns, conn{c, id})
			}
			bystander, _ := connect(t, srv, user+"-other")

			body := tc.body(user, conns)
			if tc.code != 0 {
				code, msg := apiError(t, srv, "disconnect", body)
				if code != tc.code || !strings.Contains(msg, tc.errMessage) {
					t.Fatalf("got %d %q, want %d containing %q", code, msg, tc.code, tc.errMessage)
				}
			} else if res := result(t, srv, "disconnect", body); len(res) != 0 {
				t.Errorf("result %v, want {}", res)
			}
			for j, want := range tc.closed {
				if want == 0 {
					continue
				}
				code, reason := conns[j].c.ExpectClose(waitTimeout)
				if code != want || reason != tc.reason {
					t.Errorf("connection %d closed with %d %q, want %d %q", j, code, reason, want, tc.reason)
				}
			}
			for j, want := range tc.closed {
				if want == 0 {
					alive(t, conns[j].c, "alive")
				}
			}
			alive(t, bystander, "alive")
		})
	}

	t.Run("user without connections", func(t *testing.T) {
		t.Parallel()
		if res := result(t, srv, "disconnect", `{"user":"ghost"}`); len(res) != 0 {
			t.Errorf("result %v, want {}", res)
		}
	})
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	t.Run("expired closes with 3005", func(t *testing.T) {
		t.Parallel()
		c, _ := connect(t, srv, "erin")
		other, _ := connect(t, srv, "erin-other")
		if res := result(t, srv, "refresh", `{"user":"erin","expired":true}`); len(res) != 0 {
			t.Errorf("result %v, want {}", res)
		}
		if code, _ := c.ExpectClose(waitTimeout); code != 3005 {
			t.Errorf("close code %d, want 3005", code)
		}
		alive(t, other, "alive")
	})
	t.Run("expire_at in the future keeps the connection", func(t *testing.T) {
		t.Parallel()
		c, _ := connect(t, srv, "frank")
		result(t, srv, "refresh", map[string]any{"user": "frank", "expire_at": time.Now().Add(time.Hour).Unix(), "info": map[string]any{"v": 2}})
		alive(t, c, "alive")
	})
	t.Run("expired of wrong type", func(t *testing.T) {
		t.Parallel()
		code, msg := apiError(t, srv, "refresh", `{"user":"frank","expired":"yes"}`)
		if code != 107 || !strings.Contains(msg, `"expired"`) {
			t.Errorf("got %d %q, want 107 naming expired", code, msg)
		}
	})
}

// --- presence ---

func TestPresence(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	c1 := srv.Dial(t, nil)
	id1, _ := c1.Connect(testutil.Token(t, map[string]any{
		"sub": "alice", "exp": time.Now().Add(time.Hour).Unix(), "info": map[string]any{"name": "Alice"},
	}))["client"].(string)
	clientSubscribe(t, c1, "chat:p")

	eventually(t, "alice in presence", func() (bool, string) {
		pr := result(t, srv, "presence", `{"channel":"chat:p"}`)
		m, _ := pr["presence"].(map[string]any)
		e, _ := m[id1].(map[string]any)
		return len(m) == 1 && e["user"] == "alice" && e["client"] == id1 &&
			compactJSON(t, e["conn_info"]) == `{"name":"Alice"}`, compactJSON(t, pr)
	})
	stats := func(want string) {
		t.Helper()
		eventually(t, "presence_stats "+want, func() (bool, string) {
			got := compactJSON(t, result(t, srv, "presence_stats", `{"channel":"chat:p"}`))
			return got == want, got
		})
	}
	stats(`{"num_clients":1,"num_users":1}`)

	c2, _ := connect(t, srv, "alice")
	clientSubscribe(t, c2, "chat:p")
	stats(`{"num_clients":2,"num_users":1}`)

	c3, _ := connect(t, srv, "bob")
	clientSubscribe(t, c3, "chat:p")
	stats(`{"num_clients":3,"num_users":2}`)

	result(t, srv, "disconnect", `{"user":"bob"}`)
	c3.ExpectClose(waitTimeout)
	stats(`{"num_clients":2,"num_users":1}`)

	cases := []struct {
		name, body string
		code       int
	}{
		{name: "presence off", body: `{"channel":"plain:p"}`, code: 108},
		{name: "unknown namespace", body: `{"channel":"nope:p"}`, code: 102},
		{name: "empty channel", body: `{"channel":""}`, code: 107},
		{name: "channel of wrong type", body: `{"channel":1}`, code: 107},
	}
	for _, tc := range cases {
		for _, m := range []string{"presence", "presence_stats"} {
			t.Run(m+" "+tc.name, func(t *testing.T) {
				t.Parallel()
				if code, msg := apiError(t, srv, m, tc.body); code != tc.code {
					t.Errorf("code %d (%s), want %d", code, msg, tc.code)
				}
			})
		}
	}
	t.Run("channel without subscribers", func(t *testing.T) {
		t.Parallel()
		if got := compactJSON(t, result(t, srv, "presence", `{"channel":"chat:empty"}`)); got != `{"presence":{}}` {
			t.Errorf("presence %s", got)
		}
		if got := compactJSON(t, result(t, srv, "presence_stats", `{"channel":"chat:empty"}`)); got != `{"num_clients":0,"num_users":0}` {
			t.Errorf("presence_stats %s", got)
		}
	})
}

func TestPresenceAnonymous(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Client.AllowAnonymousConnectWithoutToken = true
	cfg.Channel.WithoutNamespace.AllowSubscribeForAnonymous = true
	srv := testutil.Start(t, cfg)

	stats := func(want string) {
		t.Helper()
		eventually(t, "presence_stats "+want, func() (bool, string) {
			got := compactJSON(t, result(t, srv, "presence_stats", `{"channel":"lobby"}`))
			return got == want, got
		})
	}
	a1, id := connect(t, srv, "")
	clientSubscribe(t, a1, "lobby")
	stats(`{"num_clients":1,"num_users":1}`)
	pr := result(t, srv, "presence", `{"channel":"lobby"}`)
	m, _ := pr["presence"].(map[string]any)
	if e, _ := m[id].(map[string]any); len(m) != 1 || e["client"] != id || (e["user"] != nil && e["user"] != "") {
		t.Errorf("presence %v, want one anonymous entry for %s", pr, id)
	}

	a2, _ := connect(t, srv, "")
	clientSubscribe(t, a2, "lobby")
	stats(`{"num_clients":2,"num_users":1}`)

	u, _ := connect(t, srv, "named")
	clientSubscribe(t, u, "lobby")
	stats(`{"num_clients":3,"num_users":2}`)
}

// --- history ---

func TestHistory(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	var epoch string
	for i := 1; i <= 5; i++ {
		res := result(t, srv, "publish", fmt.Sprintf(`{"channel":"h","data":{"n":%d},"tags":{"i":"%d"}}`, i, i))
		epoch, _ = res["epoch"].(string)
	}
	for i := 1; i <= 5; i++ {
		result(t, srv, "publish", fmt.Sprintf(`{"channel":"small:h","data":{"n":%d}}`, i))
	}
	smallEpoch, _ := result(t, srv, "history", `{"channel":"small:h"}`)["epoch"].(string)

	cases := []struct {
		name    string
		body    string
		code    int    // error code; 0: success
		msg     string // substring of the error message
		offsets []int  // expected publication offsets; nil: no publications key
		top     int    // expected stream offset
	}{
		{name: "limit 0 is the position only", body: `{"channel":"h","limit":0}`, top: 5},
		{name: "no limit is the position only", body: `{"channel":"h"}`, top: 5},
		{name: "limit -1 is all", body: `{"channel":"h","limit":-1}`, offsets: []int{1, 2, 3, 4, 5}, top: 5},
		{name: "limit 2 is the oldest two", body: `{"channel":"h","limit":2}`, offsets: []int{1, 2}, top: 5},
		{name: "limit over the count", body: `{"channel":"h","limit":100}`, offsets: []int{1, 2, 3, 4, 5}, top: 5},
		{name: "reverse all", body: `{"channel":"h","limit":-1,"reverse":true}`, offsets: []int{5, 4, 3, 2, 1}, top: 5},
		{name: "reverse limit 2 is the newest two", body: `{"channel":"h","limit":2,"reverse":true}`, offsets: []int{5, 4}, top: 5},
		{name: "since", body: fmt.Sprintf(`{"channel":"h","limit":-1,"since":{"offset":2,"epoch":%q}}`, epoch), offsets: []int{3, 4, 5}, top: 5},
		{name: "since with limit", body: fmt.Sprintf(`{"channel":"h","limit":1,"since":{"offset":2,"epoch":%q}}`, epoch), offsets: []int{3}, top: 5},
		{name: "since the top", body: fmt.Sprintf(`{"channel":"h","limit":-1,"since":{"offset":5,"epoch":%q}}`, epoch), top: 5},
		{name: "since 0", body: fmt.Sprintf(`{"channel":"h","limit":-1,"since":{"offset":0,"epoch":%q}}`, epoch), offsets: []int{1, 2, 3, 4, 5}, top: 5},
		{name: "since reverse", body: fmt.Sprintf(`{"channel":"h","limit":-1,"reverse":true,"since":{"offset":3,"epoch":%q}}`, epoch), offsets: []int{2, 1}, top: 5},
		{name: "since with a wrong epoch", body: `{"channel":"h","limit":-1,"since":{"offset":2,"epoch":"wrong"}}`, code: 112, msg: "epoch"},
		{name: "since with a wrong epoch and limit 0", body: `{"channel":"h","limit":0,"since":{"offset":2,"epoch":"wrong"}}`, code: 112},
		{name: "since beyond the top", body: fmt.Sprintf(`{"channel":"h","limit":-1,"since":{"offset":9,"epoch":%q}}`, epoch), code: 112},
		{name: "limit -2", body: `{"channel":"h","limit":-2}`, code: 107, msg: "limit"},
		{name: "limit of wrong type", body: `{"channel":"h","limit":"all"}`, code: 107, msg: `"limit"`},
		{name: "since of wrong type", body: `{"channel":"h","since":5}`, code: 107, msg: "since"},
		{name: "history off", body: `{"channel":"plain:h","limit":-1}`, code: 108, msg: "history"},
		{name: "unknown namespace", body: `{"channel":"nope:h"}`, code: 102},
		{name: "empty channel", body: `{"channel":""}`, code: 107},
		{name: "never published", body: `{"channel":"fresh","limit":-1}`, top: 0},
		{name: "evicted: only the newest history_size", body: `{"channel":"small:h","limit":-1}`, offsets: []int{4, 5}, top: 5},
		{name: "since an evicted position", body: fmt.Sprintf(`{"channel":"small:h","limit":-1,"since":{"offset":1,"epoch":%q}}`, smallEpoch), code: 112},
		{name: "since a kept position", body: fmt.Sprintf(`{"channel":"small:h","limit":-1,"since":{"offset":3,"epoch":%q}}`, smallEpoch), offsets: []int{4, 5}, top: 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.code != 0 {
				code, msg := apiError(t, srv, "history", tc.body)
				if code != tc.code || !strings.Contains(msg, tc.msg) {
					t.Fatalf("got %d %q, want %d containing %q", code, msg, tc.code, tc.msg)
				}
				return
			}
			res := result(t, srv, "history", tc.body)
			if got := num(t, res["offset"]); got != float64(tc.top) {
				t.Errorf("offset %v, want %d", got, tc.top)
			}
			if e, _ := res["epoch"].(string); e == "" {
				t.Errorf("no epoch in %v", res)
			}
			raw, has := res["publications"]
			if tc.offsets == nil {
				if has {
					t.Errorf("want no publications key, got %v", raw)
				}
				return
			}
			pubs, _ := raw.([]any)
			var got []int
			for _, p := range pubs {
				pm := p.(map[string]any)
				off := int(num(t, pm["offset"]))
				got = append(got, off)
				if d := compactJSON(t, pm["data"]); d != fmt.Sprintf(`{"n":%d}`, off) {
					t.Errorf("publication %d data %s", off, d)
				}
			}
			if !reflect.DeepEqual(got, tc.offsets) {
				t.Errorf("offsets %v, want %v", got, tc.offsets)
			}
		})
	}
	t.Run("epoch is the publish epoch and tags are kept", func(t *testing.T) {
		t.Parallel()
		res := result(t, srv, "history", `{"channel":"h","limit":1}`)
		if res["epoch"] != epoch {
			t.Errorf("epoch %v, want %q", res["epoch"], epoch)
		}
		p := res["publications"].([]any)[0].(map[string]any)
		if !reflect.DeepEqual(p["tags"], map[string]any{"i": "1"}) {
			t.Errorf("tags %v", p["tags"])
		}
	})
}

func TestHistoryRemove(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	var epoch string
	for i := 1; i <= 3; i++ {
		epoch, _ = result(t, srv, "publish", fmt.Sprintf(`{"channel":"chat:hr","data":{"n":%d}}`, i))["epoch"].(string)
	}
	if res := result(t, srv, "history_remove", `{"channel":"chat:hr"}`); len(res) != 0 {
		t.Errorf("history_remove result %v, want {}", res)
	}
	h := result(t, srv, "history", `{"channel":"chat:hr","limit":-1}`)
	if _, has := h["publications"]; has {
		t.Errorf("publications remain: %v", h)
	}
	if num(t, h["offset"]) != 3 || h["epoch"] != epoch {
		t.Errorf("position %v/%v, want 3/%s", h["offset"], h["epoch"], epoch)
	}
	res := result(t, srv, "publish", `{"channel":"chat:hr","data":{"n":4}}`)
	if num(t, res["offset"]) != 4 || res["epoch"] != epoch {
		t.Errorf("publish after remove: %v, want offset 4 epoch %s", res, epoch)
	}
	h = result(t, srv, "history", `{"channel":"chat:hr","limit":-1}`)
	if pubs, _ := h["publications"].([]any); len(pubs) != 1 {
		t.Errorf("history after publish: %v", h)
	}
	// Removing the history of a channel that never had one is fine.
	result(t, srv, "history_remove", `{"channel":"never"}`)
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"channel":"nope:x"}`, 102},
		{`{"channel":""}`, 107},
		{`{"channel":[]}`, 107},
	} {
		if code, msg := apiError(t, srv, "history_remove", tc.body); code != tc.code {
			t.Errorf("%s: code %d (%s), want %d", tc.body, code, msg, tc.code)
		}
	}
}

// --- channels, info ---

func TestChannelsAndInfo(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	c1, _ := connect(t, srv, "u1")
	c2, _ := connect(t, srv, "u2")
	clientSubscribe(t, c1, "chat:1")
	clientSubscribe(t, c1, "chat:2")
	clientSubscribe(t, c2, "chat:1")
	clientSubscribe(t, c2, "news")
	result(t, srv, "publish", `{"channel":"lonely","data":1}`) // no subscribers: not listed

	channels := func(pattern string) string {
		t.Helper()
		res := result(t, srv, "channels", map[string]any{"pattern": pattern})
		m, ok := res["channels"].(map[string]any)
		if !ok {
			t.Fatalf("no channels map: %v", res)
		}
		return compactJSON(t, m)
	}
	cases := []struct{ pattern, want string }{
		{"", `{"chat:1":{"num_clients":2},"chat:2":{"num_clients":1},"news":{"num_clients":1}}`},
		{"*", `{"chat:1":{"num_clients":2},"chat:2":{"num_clients":1},"news":{"num_clients":1}}`},
		{"chat:*", `{"chat:1":{"num_clients":2},"chat:2":{"num_clients":1}}`},
		{"*:1", `{"chat:1":{"num_clients":2}}`},
		{"news", `{"news":{"num_clients":1}}`},
		{"nomatch*", `{}`},
	}
	for _, tc := range cases {
		eventually(t, fmt.Sprintf("channels %q", tc.pattern), func() (bool, string) {
			got := channels(tc.pattern)
			return got == tc.want, got
		})
	}

	node := func() map[string]any {
		t.Helper()
		res := result(t, srv, "info", `{}`)
		nodes, _ := res["nodes"].([]any)
		if len(nodes) != 1 {
			t.Fatalf("want one node, got %v", res)
		}
		return nodes[0].(map[string]any)
	}
	n := node()
	if uid, _ := n["uid"].(string); uid == "" {
		t.Errorf("no uid: %v", n)
	}
	if n["name"] != "node-a" || n["version"] != "test" {
		t.Errorf("name/version %v/%v, want node-a/test", n["name"], n["version"])
	}
	if up := num(t, n["uptime"]); up < 0 {
		t.Errorf("uptime %v", up)
	}
	counts := func(n map[string]any) string {
		keys := []string{"num_clients", "num_users", "num_channels", "num_subs"}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, n[k]))
		}
		return strings.Join(parts, " ")
	}
	const want = "num_channels=3 num_clients=2 num_subs=4 num_users=2"
	eventually(t, "info counters", func() (bool, string) {
		got := counts(node())
		return got == want, got
	})

	// A client that goes away is no longer counted.
	result(t, srv, "disconnect", `{"user":"u2"}`)
	c2.ExpectClose(waitTimeout)
	eventually(t, "channels after disconnect", func() (bool, string) {
		got := channels("")
		return got == `{"chat:1":{"num_clients":1},"chat:2":{"num_clients":1}}`, got
	})
	const wantAfter = "num_channels=2 num_clients=1 num_subs=2 num_users=1"
	eventually(t, "info counters after disconnect", func() (bool, string) {
		got := counts(node())
		return got == wantAfter, got
	})
	if code, _ := apiError(t, srv, "channels", `{"pattern":1}`); code != 107 {
		t.Errorf("pattern of wrong type: code %d, want 107", code)
	}
}

// --- batch ---

func TestBatch(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	t.Run("mixed commands in order", func(t *testing.T) {
		t.Parallel()
		m := call(t, srv, "batch", `{"commands":[
			{"publish":{"channel":"bt","data":{"n":1}}},
			{"history":{"channel":"bt","limit":-1}},
			{"nope":{}},
			{"publish":{"channel":"bt","data":1},"history":{"channel":"bt"}},
			{},
			{"publish":{"channel":"nope:x","data":1}},
			{"publish":{"channel":"bt","data":{"n":2}}},
			{"presence_stats":{"channel":"bt"}},
			{"info":{}}
		]}`)
		if _, ok := m["result"]; ok {
			t.Errorf("batch reply is wrapped in result: %v", m)
		}
		replies, _ := m["replies"].([]any)
		if len(replies) != 9 {
			t.Fatalf("want 9 replies, got %v", m)
		}
		want := []struct {
			key  string // method key of a success
			code int    // error code
			msg  string
		}{
			{key: "publish"}, {key: "history"}, {code: 104, msg: "nope"}, {code: 107}, {code: 107},
			{code: 102}, {key: "publish"}, {key: "presence_stats"}, {key: "info"},
		}
		for i, w := range want {
			r := replies[i].(map[string]any)
			if len(r) != 1 {
				t.Errorf("reply %d has %d keys: %v", i, len(r), r)
			}
			if w.code != 0 {
				if code := testutil.ErrorCode(r); code != w.code || !strings.Contains(testutil.ErrorMessage(r), w.msg) {
					t.Errorf("reply %d: %v, want error %d containing %q", i, r, w.code, w.msg)
				}
				continue
			}
			if _, ok := r[w.key].(map[string]any); !ok {
				t.Errorf("reply %d: %v, want a %q reply", i, r, w.key)
			}
		}
		if off := num(t, replies[0].(map[string]any)["publish"].(map[string]any)["offset"]); off != 1 {
			t.Errorf("first publish offset %v, want 1", off)
		}
		// The history ran after the first publish and before the second.
		h := replies[1].(map[string]any)["history"].(map[string]any)
		if pubs, _ := h["publications"].([]any); len(pubs) != 1 {
			t.Errorf("history in batch: %v", h)
		}
		if off := num(t, replies[6].(map[string]any)["publish"].(map[string]any)["offset"]); off != 2 {
			t.Errorf("second publish offset %v, want 2", off)
		}
	})
	t.Run("empty commands", func(t *testing.T) {
		t.Parallel()
		m := call(t, srv, "batch", `{"commands":[]}`)
		if r, ok := m["replies"].([]any); !ok || len(r) != 0 {
			t.Errorf("want empty replies, got %v", m)
		}
	})
	t.Run("commands of wrong type", func(t *testing.T) {
		t.Parallel()
		m := call(t, srv, "batch", `{"commands":{"publish":{}}}`)
		if code := testutil.ErrorCode(m); code != 107 || !strings.Contains(testutil.ErrorMessage(m), "commands") {
			t.Errorf("want error 107 naming commands, got %v", m)
		}
	})
	t.Run("errors stay in replies in transport mode", func(t *testing.T) {
		t.Parallel()
		r := send(t, srv, request{path: "/api/batch", body: `{"commands":[{"publish":{"channel":"nope:x","data":1}}]}`,
			headers: withKey(map[string]string{"X-Centrifugo-Error-Mode": "transport"})})
		if r.status != 200 {
			t.Fatalf("status %d, body %s", r.status, r.body)
		}
		replies, _ := r.object(t)["replies"].([]any)
		if len(replies) != 1 || testutil.ErrorCode(replies[0].(map[string]any)) != 102 {
			t.Errorf("replies %v", replies)
		}
	})
}

// --- transport error mode ---

func TestTransportErrorMode(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	cases := []struct {
		name   string
		path   string
		body   string
		header string // header name; X-Centrifugo-Error-Mode when empty
		value  string // header value; "transport" when empty
		status int
		code   int // 0: success
	}{
		{name: "102 unknown channel", path: "/api/publish", body: `{"channel":"nope:x","data":1}`, status: 404, code: 102},
		{name: "107 bad request", path: "/api/publish", body: `{"channel":"","data":1}`, status: 400, code: 107},
		{name: "107 wrong field type", path: "/api/publish", body: `{"channel":5,"data":1}`, status: 400, code: 107},
		{name: "108 history off", path: "/api/history", body: `{"channel":"plain:x"}`, status: 400, code: 108},
		{name: "108 presence off", path: "/api/presence", body: `{"channel":"plain:x"}`, status: 400, code: 108},
		{name: "112 unrecoverable", path: "/api/history", body: `{"channel":"t","limit":-1,"since":{"offset":0,"epoch":"bogus"}}`, status: 416, code: 112},
		{name: "104 unknown method", path: "/api/nope", body: `{}`, status: 404, code: 104},
		{name: "X-Herald-Error-Mode", path: "/api/publish", body: `{"channel":"nope:x","data":1}`, header: "X-Herald-Error-Mode", status: 404, code: 102},
		{name: "header value case", path: "/api/publish", body: `{"channel":"","data":1}`, value: "Transport", status: 400, code: 107},
		{name: "success", path: "/api/publish", body: `{"channel":"t","data":1}`, status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			header, value := tc.header, tc.value
			if header == "" {
				header = "X-Centrifugo-Error-Mode"
			}
			if value == "" {
				value = "transport"
			}
			r := send(t, srv, request{path: tc.path, body: tc.body, headers: withKey(map[string]string{header: value})})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.status, r.body)
			}
			body := r.object(t)
			if tc.code == 0 {
				if _, ok := body["result"].(map[string]any); !ok {
					t.Errorf("want a result, got %s", r.body)
				}
				return
			}
			if _, wrapped := body["error"]; wrapped {
				t.Errorf("transport-mode body is wrapped in error: %s", r.body)
			}
			code, _ := body["code"].(float64)
			msg, _ := body["message"].(string)
			if int(code) != tc.code || msg == "" {
				t.Errorf("body %s, want {\"code\":%d,\"message\":...}", r.body, tc.code)
			}
		})
	}
	t.Run("default mode answers errors with 200", func(t *testing.T) {
		t.Parallel()
		for _, tc := range cases {
			if tc.code == 0 || tc.code == 104 || tc.header != "" {
				continue
			}
			m := call(t, srv, strings.TrimPrefix(tc.path, "/api/"), tc.body)
			if code := testutil.ErrorCode(m); code != tc.code {
				t.Errorf("%s: error %v, want code %d", tc.name, m, tc.code)
			}
		}
	})
}
