package centrifuge_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/testutil"
)

// Bytes that are not UTF-8 never reach a text frame: clients must fail such
// a connection (RFC 6455), so one bad publication would disconnect every
// subscriber of its channel, again at each recovery from history. Every
// entrance refuses them and names the first bad byte.
func TestInvalidUTF8IsRefusedAtEveryEntrance(t *testing.T) {
	srv := testutil.Start(t, nil)
	sub := srv.Dial(t, nil)
	sub.Connect(testutil.UserToken(t, "reader"))
	sub.Call("subscribe", map[string]any{"channel": "news"})

	// A client publication: error 107.
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "writer"))
	c.Send("{\"id\":7,\"publish\":{\"channel\":\"news\",\"data\":{\"t\":\"ok\xffno\"}}}")
	r := c.WaitReply(7)
	if testutil.ErrorCode(r) != 107 || !strings.Contains(testutil.ErrorMessage(r), "not valid UTF-8 (first invalid byte at offset 8)") {
		t.Fatalf("client publish: %v", r)
	}

	// The server API: error 107 naming the offset in the data.
	res := rawAPI(t, srv, "publish", "{\"channel\":\"news\",\"data\":{\"t\":\"\xc3\x28\"}}")
	e, _ := res["error"].(map[string]any)
	if e == nil || e["code"] != 107.0 || !strings.Contains(e["message"].(string), "offset 6") {
		t.Fatalf("api publish: %v", res)
	}

	// Mercure: 400.
	st, text, _ := srv.MercurePost(t, http.Header{"Authorization": {"Bearer " + testutil.PublisherToken(t, "*")}},
		url.Values{"topic": {"news"}, "data": {"bad \xff byte"}})
	if st != http.StatusBadRequest || !strings.Contains(text, "offset 4") {
		t.Fatalf("mercure publish: %d %s", st, text)
	}

	// Connection info from a token: claim_invalid.
	tok := testutil.Token(t, map[string]any{"sub": "u", "info": json.RawMessage("{\"n\":\"\xff\"}")})
	bad := srv.Dial(t, nil)
	bad.Send(`{"id":1,"connect":{"token":"` + tok + `"}}`)
	if code, reason := bad.ExpectClose(wait); code != 3500 || !strings.Contains(reason, string(auth.ClaimInvalid)) {
		t.Fatalf("token info: close %d %q", code, reason)
	}

	// Nothing of it reached the subscriber.
	if _, err := sub.ReadLine(200 * wait / 1000); err == nil {
		t.Fatal("the subscriber received something")
	}
}

// A connect proxy answer that is not UTF-8 is a bad answer, explained.
func TestProxyAnswerNotUTF8(t *testing.T) {
	be := newBackend(t, 200, "{\"result\":{\"user\":\"1\",\"info\":{\"n\":\"\xff\"}}}")
	cfg := testutil.Config()
	cfg.Client.Proxy.Connect = proxyConfig(be.URL)
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Send(`{"id":1,"connect":{}}`)
	r := c.WaitReply(1)
	if testutil.ErrorCode(r) != 101 || !strings.Contains(testutil.ErrorMessage(r), "not valid UTF-8") {
		t.Fatalf("reply %v", r)
	}
}

// rawAPI posts body as it is (json.Marshal would mend invalid UTF-8).
func rawAPI(t *testing.T, srv *testutil.Server, method, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Addr+"/api/"+method, strings.NewReader(body))
	req.Header.Set("X-API-Key", testutil.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&res)
	return res
}
