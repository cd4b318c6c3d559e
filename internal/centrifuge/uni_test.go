package centrifuge_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/testutil"
)

func channelsToken(t testing.TB, user string, exp time.Duration, channels ...string) string {
	return testutil.Token(t, map[string]any{"sub": user, "exp": time.Now().Add(exp).Unix(), "channels": channels})
}

func connectRequest(token string) string {
	b, _ := json.Marshal(map[string]any{"token": token})
	return string(b)
}

// uniWS reads bare pushes from a uni_websocket connection.
type uniWS struct {
	t    testing.TB
	conn *websocket.Conn
}

func dialUni(t testing.TB, srv *testutil.Server, query string) *uniWS {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr+"/connection/uni_websocket"+query, nil)
	if err != nil {
		t.Fatalf("dial uni_websocket: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &uniWS{t: t, conn: conn}
}

// next returns the next push that has key, skipping {} pings; a close
// frame is returned as an error.
func (u *uniWS) next(key string) (map[string]any, error) {
	for {
		_ = u.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := u.conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			u.t.Fatalf("uni frame %q: %v", b, err)
		}
		if _, ok := m[key]; ok {
			return m, nil
		}
	}
}

// Clients without an SDK receive the publications of their token's
// channels as bare pushes, on every unidirectional transport.
func TestUnidirectionalTransports(t *testing.T) {
	srv := testutil.Start(t, transportsConfig())
	token := channelsToken(t, "uni", time.Hour, "news")
	check := func(t *testing.T, next func(string) map[string]any) {
		c := next("connect")["connect"].(map[string]any)
		if c["client"] == "" || c["session"] == "" || c["pong"] != nil || c["node"] != nil {
			t.Fatalf("connect push %v", c)
		}
		if _, ok := c["subs"].(map[string]any)["news"]; !ok {
			t.Fatalf("connect push lacks the token's channel: %v", c)
		}
		if err := srv.HubPublish("news", []byte(`{"n":7}`)); err != nil {
			t.Fatal(err)
		}
		p := next("pub")
		if p["channel"] != "news" || p["pub"].(map[string]any)["data"].(map[string]any)["n"].(float64) != 7 {
			t.Fatalf("publication push %v", p)
		}
	}
	t.Run("uni_websocket first message", func(t *testing.T) {
		u := dialUni(t, srv, "")
		if err := u.conn.WriteMessage(websocket.TextMessage, []byte(connectRequest(token))); err != nil {
			t.Fatal(err)
		}
		check(t, func(k string) map[string]any { m, err := u.next(k); mustNot(t, err); return m })
	})
	t.Run("uni_websocket cf_connect", func(t *testing.T) {
		u := dialUni(t, srv, "?cf_connect="+url.QueryEscape(connectRequest(token)))
		check(t, func(k string) map[string]any { m, err := u.next(k); mustNot(t, err); return m })
		// A server disconnect is a push, then the close frame with the code.
		srv.API(t, "disconnect", map[string]any{"user": "uni"})
		if m, err := u.next("disconnect"); err != nil || m["disconnect"].(map[string]any)["code"].(float64) != 3503 {
			t.Fatalf("disconnect push %v %v", m, err)
		}
		_, err := u.next("x")
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 3503 {
			t.Fatalf("close %v, want 3503", err)
		}
	})
	t.Run("uni_sse GET", func(t *testing.T) {
		st := openStream(t, srv, http.MethodGet, "/connection/uni_sse?cf_connect="+url.QueryEscape(connectRequest(token)), "", nil)
		check(t, st.nextWith)
	})
	t.Run("uni_sse POST", func(t *testing.T) {
		st := openStream(t, srv, http.MethodPost, "/connection/uni_sse", "application/json", []byte(connectRequest(token)))
		check(t, st.nextWith)
	})
	t.Run("uni_http_stream", func(t *testing.T) {
		st := openStream(t, srv, http.MethodPost, "/connection/uni_http_stream", "application/json", []byte(connectRequest(token)))
		check(t, st.nextWith)
		srv.API(t, "disconnect", map[string]any{"user": "uni", "disconnect": map[string]any{"code": 4001, "reason": "bye"}})
		if d := st.nextWith("disconnect")["disconnect"].(map[string]any); d["code"].(float64) != 4001 || d["reason"] != "bye" {
			t.Fatalf("disconnect %v", d)
		}
		st.ended(5 * time.Second)
	})
}

func mustNot(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A refused unidirectional connect is a disconnect push with the mapped code.
func TestUnidirectionalConnectRefusals(t *testing.T) {
	srv := testutil.Start(t, transportsConfig())
	expired := testutil.Token(t, map[string]any{"sub": "u", "exp": time.Now().Add(-time.Hour).Unix()})
	cases := []struct {
		name, token string
		code        float64
	}{
		{"expired token", expired, 3005},
		{"invalid token", "not-a-jwt", 3500},
		{"no credentials", "", 3501},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := openStream(t, srv, http.MethodPost, "/connection/uni_http_stream", "application/json", []byte(connectRequest(tc.token)))
			d := st.nextWith("disconnect")["disconnect"].(map[string]any)
			if d["code"].(float64) != tc.code {
				t.Fatalf("disconnect %v, want %v", d, tc.code)
			}
			st.ended(5 * time.Second)
		})
	}
	// Bad connect requests are refused before the stream starts.
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/connection/uni_http_stream", "{"},
		{http.MethodGet, "/connection/uni_sse?cf_connect=%7B", ""},
		{http.MethodGet, "/connection/uni_websocket?cf_connect=%7B", ""},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+srv.Addr+tc.path, strings.NewReader(tc.body))
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "bad_connect_request") {
			t.Fatalf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, b)
		}
	}
	// A first uni_websocket message that is not a connect request: 3501.
	u := dialUni(t, srv, "")
	_ = u.conn.WriteMessage(websocket.TextMessage, []byte("nope"))
	_, err := u.next("connect")
	for err == nil {
		_, err = u.next("connect")
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 3501 {
		t.Fatalf("close %v, want 3501", err)
	}
}

// Unidirectional clients get {} pings, and a refresh of the server API is
// pushed to them (they cannot refresh themselves).
func TestUnidirectionalPingsAndRefresh(t *testing.T) {
	cfg := transportsConfig()
	cfg.Client.PingInterval = 200 * 1e6
	cfg.Client.PongTimeout = 100 * 1e6
	srv := testutil.Start(t, cfg)
	st := openStream(t, srv, http.MethodGet, "/connection/uni_sse?cf_connect="+url.QueryEscape(connectRequest(channelsToken(t, "r", time.Hour))), "", nil)
	st.nextWith("connect")
	for i := 0; i < 3; i++ {
		if m := st.next(2 * time.Second); len(m) != 0 {
			t.Fatalf("ping %d: %v, want {}", i, m)
		}
	}
	expireAt := time.Now().Add(2 * time.Hour).Unix()
	if status, body := srv.API(t, "refresh", map[string]any{"user": "r", "expire_at": expireAt}); status != 200 {
		t.Fatalf("refresh %d %v", status, body)
	}
	if r := st.nextWith("refresh")["refresh"].(map[string]any); r["expires"] != true || r["ttl"].(float64) < 7000 {
		t.Fatalf("refresh push %v", r)
	}
}
