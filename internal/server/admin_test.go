package server_test

// Tests of the admin web page (/admin): who gets in, the session cookie,
// cross-site posts, the live refusal feed, the token explainer and the
// publish form, over real sockets.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

func adminConfig() *config.Config {
	cfg := metricsConfig()
	cfg.Admin.Enabled = true
	return cfg
}

// noRedirect is a client that shows redirects instead of following them.
func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func adminGet(t *testing.T, c *http.Client, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func adminPost(t *testing.T, c *http.Client, u string, form url.Values, origin string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login logs in through the form and returns a client holding the session.
func login(t *testing.T, srv *testutil.Server) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	base := "http://" + srv.Addr
	resp, _ := adminPost(t, c, base+"/admin/login", url.Values{"key": {adminKey}, "next": {"/admin/channels"}}, base)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/channels" {
		t.Fatalf("login: HTTP %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return c, base
}

func TestAdminPageRefusesAMissingOrWrongKey(t *testing.T) {
	srv := testutil.Start(t, adminConfig())
	base := "http://" + srv.Addr
	c := noRedirect(nil)

	// No key: a browser goes to the login form, a script gets 401.
	resp, _ := adminGet(t, c, base+"/admin/", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/login") {
		t.Fatalf("no key: HTTP %d to %q, want the login form", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := adminGet(t, c, base+"/admin/api/overview", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key, API: HTTP %d, want 401", resp.StatusCode)
	}
	// A wrong key, in a header or in the form.
	resp, body := adminGet(t, c, base+"/admin/", http.Header{"X-Admin-Key": {"wrong"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "admin_key_wrong") {
		t.Fatalf("wrong key: HTTP %d %s", resp.StatusCode, body)
	}
	resp, body = adminPost(t, c, base+"/admin/login", url.Values{"key": {"wrong"}}, base)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "wrong admin key") || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("wrong key in the form: HTTP %d, cookie %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	// The right key in a header.
	resp, body = adminGet(t, c, base+"/admin/", http.Header{"Authorization": {"Bearer " + adminKey}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Connections by front door") {
		t.Fatalf("right key: HTTP %d", resp.StatusCode)
	}
	// Both wrong keys are refusals like any other.
	var wrong int
	for _, r := range srv.Verifier().Refusals.Recent() {
		if r.Code == "admin_key_wrong" && r.Transport == "admin" {
			wrong++
		}
	}
	if wrong != 2 {
		t.Fatalf("admin_key_wrong refusals recorded: %d, want 2", wrong)
	}
	// Off unless enabled.
	off := testutil.Start(t, metricsConfig())
	if resp, _ := adminGet(t, c, "http://"+off.Addr+"/admin/", http.Header{"X-Admin-Key": {adminKey}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("admin.enabled off: HTTP %d, want 404", resp.StatusCode)
	}
}

func TestAdminLoginKeepsASessionCookie(t *testing.T) {
	srv := testutil.Start(t, adminConfig())
	base := "http://" + srv.Addr
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	resp, _ := adminPost(t, c, base+"/admin/login", url.Values{"key": {adminKey}, "next": {"https://evil.example/"}}, base)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
		t.Fatalf("login: HTTP %d to %q (an outside next must not be followed)", resp.StatusCode, resp.Header.Get("Location"))
	}
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"herald_admin=", "HttpOnly", "SameSite=Strict", "Path=/admin/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, adminKey) {
		t.Fatalf("the cookie carries the key: %q", sc)
	}
	resp, body := adminGet(t, c, base+"/admin/", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Overview") {
		t.Fatalf("with the session: HTTP %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	// A post from another site is refused even with the cookie.
	if resp, _ := adminPost(t, c, base+"/admin/publish", url.Values{"channel": {"x"}, "data": {"{}"}}, "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site post: HTTP %d, want 403", resp.StatusCode)
	}
	if resp, _ := adminPost(t, c, base+"/admin/login", url.Values{"key": {adminKey}}, "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site login: HTTP %d, want 403", resp.StatusCode)
	}
	// Logging out ends the session.
	if resp, _ := adminPost(t, c, base+"/admin/logout", nil, base); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: HTTP %d", resp.StatusCode)
	}
	u, _ := url.Parse(base + "/admin/")
	jar.SetCookies(u, []*http.Cookie{{Name: "herald_admin", Value: strings.TrimPrefix(strings.Split(sc, ";")[0], "herald_admin=")}})
	if resp, _ := adminGet(t, c, base+"/admin/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout the old cookie still works: HTTP %d", resp.StatusCode)
	}
}

func TestAdminLoginIsRateLimited(t *testing.T) {
	srv := testutil.Start(t, adminConfig())
	base := "http://" + srv.Addr
	c := noRedirect(nil)
	for i := range 10 {
		if resp, _ := adminPost(t, c, base+"/admin/login", url.Values{"key": {"guess"}}, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: HTTP %d", i, resp.StatusCode)
		}
	}
	resp, _ := adminPost(t, c, base+"/admin/login", url.Values{"key": {adminKey}}, "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 10 wrong keys: HTTP %d, want 429 with Retry-After", resp.StatusCode)
	}
}

// The live feed sends a refusal within a second of a bad connection
// attempt: code, detail, hint, door, source and address, and never the token.
func TestAdminRefusalFeedIsLive(t *testing.T) {
	cfg := adminConfig()
	// The feed outlives the timeouts of ordinary requests.
	cfg.HTTP.ReadHeaderTimeout = config.Duration(300 * time.Millisecond)
	cfg.HTTP.ReadTimeout = config.Duration(300 * time.Millisecond)
	cfg.HTTP.WriteTimeout = config.Duration(300 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.Addr+"/admin/api/refusals", nil)
	req.Header.Set("X-Admin-Key", adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("feed: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for l := range lines { // the recent refusals (none), then the live marker
		if l == ": live" {
			break
		}
	}
	<-time.After(time.Second) // past the read and write timeouts
	tok := testutil.Token(t, map[string]any{"sub": "bob", "exp": time.Now().Add(-time.Hour).Unix()})
	start := time.Now()
	c := srv.Dial(t, nil)
	c.Send(`{"id":1,"connect":{"token":"` + tok + `"}}`)
	var data string
	for data == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("feed ended")
			}
			if strings.HasPrefix(l, "data: ") {
				data = strings.TrimPrefix(l, "data: ")
			}
		case <-time.After(time.Second - time.Since(start)):
			t.Fatal("no refusal in the feed within a second")
		}
	}
	var item map[string]any
	if err := json.Unmarshal([]byte(data), &item); err != nil {
		t.Fatal(err)
	}
	if item["code"] != "token_expired" || item["door"] != "centrifugo" || item["token_source"] != "connect.token" ||
		item["detail"] == "" || item["hint"] == "" || !strings.HasPrefix(item["remote_addr"].(string), "127.0.0.1:") {
		t.Fatalf("feed item %s", data)
	}
	if strings.Contains(data, tok) || strings.Contains(data, strings.Split(tok, ".")[2]) {
		t.Fatalf("the feed shows the token: %s", data)
	}
}

func TestAdminExplainsATokenWithoutShowingIt(t *testing.T) {
	srv := testutil.Start(t, adminConfig())
	c, base := login(t, srv)
	good := testutil.UserToken(t, "carol")
	resp, body := adminPost(t, c, base+"/admin/explain", url.Values{"token": {good}}, base)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "verdict: accepted") || !strings.Contains(body, "PASS  signature") {
		t.Fatalf("explain a good token: HTTP %d\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, good) {
		t.Fatal("the page shows the token back")
	}
	fp := srv.Verifier().Keys().Keys()[0].Fingerprint
	if !strings.Contains(body, fp) {
		t.Fatalf("the page does not list key %s", fp)
	}
	expired := testutil.Token(t, map[string]any{"sub": "carol", "exp": time.Now().Add(-time.Hour).Unix()})
	_, body = adminPost(t, c, base+"/admin/explain", url.Values{"token": {expired}}, base)
	if !strings.Contains(body, "token_expired") || !strings.Contains(body, "verdict: refused") {
		t.Fatalf("explain an expired token:\n%s", body)
	}
}

func TestAdminPublishFormReachesASubscriber(t *testing.T) {
	srv := testutil.Start(t, adminConfig())
	ws := srv.Dial(t, nil)
	ws.Connect(testutil.UserToken(t, "dave"))
	ws.Call("subscribe", map[string]any{"channel": "news"})
	c, base := login(t, srv)

	_, body := adminGet(t, c, base+"/admin/channel?name=news", nil)
	if !strings.Contains(body, "dave") || !strings.Contains(body, "centrifugo") {
		t.Fatalf("channel view does not list the subscriber:\n%s", body)
	}
	resp, _ := adminPost(t, c, base+"/admin/publish", url.Values{"channel": {"news"}, "data": {"{\n  \"text\": \"from the admin page\"\n}"}}, base)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "published=") {
		t.Fatalf("publish: HTTP %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := pushData(t, ws, "news"); got != `{"text":"from the admin page"}` {
		t.Fatalf("subscriber got %s", got)
	}
	_, body = adminGet(t, c, base+resp.Header.Get("Location"), nil)
	if !strings.Contains(body, "Published at offset 1") || !strings.Contains(body, "from the admin page") {
		t.Fatalf("channel view after publishing:\n%s", body)
	}
	// Data that is not JSON is refused with the reason.
	resp, _ = adminPost(t, c, base+"/admin/publish", url.Values{"channel": {"news"}, "data": {"not json"}}, base)
	if !strings.Contains(resp.Header.Get("Location"), "error=") {
		t.Fatalf("non-JSON data: redirected to %q", resp.Header.Get("Location"))
	}
}
