package centrifuge_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

const (
	calloutRequestSecret = "herald-signs-callout-requests-with-this"
	calloutAnswerSecret  = "the-callout-service-signs-answers-with-this"
)

// calloutService verifies Herald's signed request and answers with whatever
// answer() builds from the request's claims.
type calloutService struct {
	*httptest.Server
	mu       sync.Mutex
	answer   func(req jwt.MapClaims) string
	requests []jwt.MapClaims
	delay    time.Duration
}

func newCalloutService(t *testing.T) *calloutService {
	cs := &calloutService{}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		claims := jwt.MapClaims{}
		if _, err := jwt.ParseWithClaims(string(body), claims, func(*jwt.Token) (any, error) { return []byte(calloutRequestSecret), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("herald-callout")); err != nil {
			t.Errorf("Herald's callout request does not verify: %v", err)
			w.WriteHeader(400)
			return
		}
		cs.mu.Lock()
		cs.requests = append(cs.requests, claims)
		answer, delay := cs.answer, cs.delay
		cs.mu.Unlock()
		time.Sleep(delay)
		io.WriteString(w, answer(claims))
	}))
	t.Cleanup(cs.Close)
	return cs
}

func signAnswer(secret string, claims jwt.MapClaims) string {
	s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	return s
}

// good answers for the request's node and nonce.
func good(extra jwt.MapClaims) func(req jwt.MapClaims) string {
	return func(req jwt.MapClaims) string {
		c := jwt.MapClaims{"aud": req["iss"], "nonce": req["nonce"], "exp": time.Now().Add(time.Minute).Unix(), "user": "cu1",
			"grants": map[string]any{"subscribe": []string{"team:*"}, "publish": []string{"team:chat"}}}
		for k, v := range extra {
			c[k] = v
		}
		return signAnswer(calloutAnswerSecret, c)
	}
}

func calloutServer(t *testing.T, cs *calloutService) *testutil.Server {
	cfg := testutil.Config()
	cfg.Client.Callout = config.Callout{Enabled: true, Endpoint: cs.URL, Timeout: config.Duration(300 * time.Millisecond),
		SigningSecret: calloutRequestSecret, IncludeTokens: true, HTTPHeaders: []string{"X-Tenant"},
		ResponseKeys: []config.Key{{Alg: "HS256", Secret: calloutAnswerSecret}}}
	cfg.Channel.Namespaces = []config.Namespace{{Name: "team"}}
	return testutil.Start(t, cfg)
}

func TestCalloutAuthorizesWithGrants(t *testing.T) {
	cs := newCalloutService(t)
	cs.answer = good(nil)
	srv := calloutServer(t, cs)
	c := srv.Dial(t, http.Header{"X-Tenant": {"acme"}})
	c.Connect("opaque-session-token")
	req := cs.requests[0]
	if req["nonce"] == "" || req["transport"] != "websocket" || req["headers"].(map[string]any)["X-Tenant"] != "acme" ||
		req["tokens"].(map[string]any)["connect.token"] != "opaque-session-token" {
		t.Fatalf("callout request %v", req)
	}
	// Grants decide, whatever the namespace's allow_* flags say (team has none).
	if r := c.Call("subscribe", map[string]any{"channel": "team:ops"}); r["error"] != nil {
		t.Fatalf("granted subscribe refused: %v", r)
	}
	if r := c.Call("publish", map[string]any{"channel": "team:ops", "data": map[string]any{}}); testutil.ErrorCode(r) != 103 {
		t.Fatalf("publish outside the grants: %v", r)
	}
	if r := c.Call("subscribe", map[string]any{"channel": "other"}); testutil.ErrorCode(r) != 103 || !strings.Contains(testutil.ErrorMessage(r), "grants") {
		t.Fatalf("subscribe outside the grants: %v", r)
	}
}

func TestCalloutRefusals(t *testing.T) {
	stale := ""
	cases := []struct {
		name      string
		answer    func(req jwt.MapClaims) string
		delay     time.Duration
		code      int
		temporary bool
		reason    string
	}{
		{"plain JSON", func(jwt.MapClaims) string { return `{"user":"x"}` }, 0, 101, false, "callout_unsigned"},
		{"alg none", func(req jwt.MapClaims) string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"aud": req["iss"], "nonce": req["nonce"], "user": "x"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}, 0, 101, false, "callout_unsigned"},
		{"another key", func(req jwt.MapClaims) string {
			return signAnswer("not-the-configured-answer-key", jwt.MapClaims{"aud": req["iss"], "nonce": req["nonce"], "exp": time.Now().Add(time.Minute).Unix(), "user": "x"})
		}, 0, 101, false, "callout_bad_signature"},
		{"expired", good(jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()}), 0, 101, false, "callout_expired"},
		{"another node", good(jwt.MapClaims{"aud": "some-other-node"}), 0, 101, false, "callout_wrong_audience"},
		{"replayed answer", func(req jwt.MapClaims) string {
			if stale == "" {
				stale = good(nil)(req)
			}
			return stale // the first answer, served again for a new nonce
		}, 0, 101, false, "callout_replay"},
		{"denied", good(jwt.MapClaims{"deny": "account suspended"}), 0, 101, false, "callout_denied"},
		{"no user", func(req jwt.MapClaims) string {
			return signAnswer(calloutAnswerSecret, jwt.MapClaims{"aud": req["iss"], "nonce": req["nonce"], "exp": time.Now().Add(time.Minute).Unix()})
		}, 0, 101, false, "callout_bad_response"},
		{"slow", good(nil), time.Second, 100, true, "callout_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCalloutService(t)
			cs.answer, cs.delay = tc.answer, tc.delay
			srv := calloutServer(t, cs)
			if tc.name == "replayed answer" {
				srv.Dial(t, nil).Connect("first-attempt") // a fresh answer for the first nonce
			}
			c := srv.Dial(t, nil)
			c.Send(`{"id":1,"connect":{"token":"second-attempt"}}`)
			r := c.WaitReply(1)
			e, _ := r["error"].(map[string]any)
			if testutil.ErrorCode(r) != tc.code || (e["temporary"] == true) != tc.temporary || !strings.Contains(testutil.ErrorMessage(r), tc.reason) {
				t.Fatalf("reply %v, want %d (temporary %v) with %s", r, tc.code, tc.temporary, tc.reason)
			}
			if !strings.Contains(srv.Logs.String(), "reason="+tc.reason) {
				t.Fatalf("log lacks reason=%s", tc.reason)
			}
		})
	}
}
