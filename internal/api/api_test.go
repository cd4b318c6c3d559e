package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/api"
	"github.com/heraldhub/herald/internal/testutil"
)

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
