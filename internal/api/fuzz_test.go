package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/testutil"
)

// FuzzAPIBody: whatever method name and body a caller with the key sends,
// the API answers JSON with 200 (a result or a protocol error), 400, 404,
// 413 or 415, never panics and never fails with an internal error (100):
// bad input gets a specific error. Checked against a real server.
func FuzzAPIBody(f *testing.F) {
	for _, s := range [][2]string{
		{"publish", `{"channel":"news","data":{"text":"hi"}}`},
		{"broadcast", `{"channels":["a","b"],"data":1,"tags":{"k":"v"}}`},
		{"subscribe", `{"user":"u","channel":"c","client":"x"}`},
		{"unsubscribe", `{"user":"u","channel":"c"}`},
		{"disconnect", `{"user":"u","disconnect":{"code":4000,"reason":"x"}}`},
		{"refresh", `{"user":"u","expire_at":1}`},
		{"presence", `{"channel":"chat:x"}`},
		{"presence_stats", `{"channel":"chat:x"}`},
		{"history", `{"channel":"chat:x","limit":-1,"since":{"offset":1,"epoch":"e"},"reverse":true}`},
		{"history_remove", `{"channel":"chat:x"}`},
		{"channels", `{"pattern":"*"}`},
		{"info", `{}`},
		{"send", `{"user":"u","data":[1]}`},
		{"revoke_token", `{"uid":"jti","expire_at":1}`},
		{"invalidate_user_tokens", `{"user":"u","issued_before":1}`},
		{"batch", `{"commands":[{"publish":{"channel":"a","data":1}},{"nope":{}}]}`},
		{"publish", `{"channel":"a","data":"\ud800"}`},
		{"publish", `{"channel":"a","data":1e400}`},
		{"nope", `[]`},
		{"publish", `{"channel":"","data":{}`},
	} {
		f.Add(s[0], s[1])
	}
	cfg := testConfig()
	cfg.LogLevel = "error"
	wn := &cfg.Channel.WithoutNamespace // no history: fuzzed channel names are many
	wn.HistorySize, wn.HistoryTTL, wn.Presence, wn.JoinLeave = 0, 0, false, false
	srv := testutil.Start(f, cfg)
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, method, body string) {
		if method == "." || method == ".." {
			return // /api/.. is another path, not a method of the API
		}
		req, err := http.NewRequest(http.MethodPost, "http://"+srv.Addr+"/api/"+url.PathEscape(method), bytes.NewBufferString(body))
		if err != nil {
			return // not a URL the client can send
		}
		req.Header.Set("X-API-Key", testutil.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST /api/%s: %v", method, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out map[string]json.RawMessage
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("/api/%s %q: status %d, body %q is not a JSON object", method, body, resp.StatusCode, raw)
		}
		switch resp.StatusCode {
		case 200, 400, 404, 413, 415:
		default:
			t.Fatalf("/api/%s %q: status %d %s", method, body, resp.StatusCode, raw)
		}
		if e, ok := out["error"]; ok && resp.StatusCode == 200 {
			var pe struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if json.Unmarshal(e, &pe) != nil || pe.Code < 101 || pe.Code > 113 || pe.Message == "" {
				t.Fatalf("/api/%s %q: error %s is not a protocol error other than 100 with a message", method, body, e)
			}
		}
		if bytes.Contains(raw, []byte(`"code":100,`)) {
			t.Fatalf("/api/%s %q: an internal error on input: %s", method, body, raw)
		}
	})
}
