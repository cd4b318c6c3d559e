package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/testutil"
)

// pushData returns the data of a publication push on channel, as raw JSON.
func pushData(t *testing.T, c *testutil.Client, channel string) string {
	t.Helper()
	push := c.WaitPush(5 * time.Second)
	pub, _ := push["pub"].(map[string]any)
	if push["channel"] != channel || pub == nil {
		t.Fatalf("push %v, want a publication on %s", push, channel)
	}
	b, _ := json.Marshal(pub["data"])
	return string(b)
}

// One channel, every door: a publication through the server API and an
// update through Mercure reach a Centrifugo subscriber and a Mercure
// subscriber of the same channel, and both are kept in one stream that
// Centrifugo history and Mercure's Last-Event-ID read.
func TestOnePublicationReachesEveryDoor(t *testing.T) {
	srv := testutil.Start(t, nil)
	ws := srv.Dial(t, nil)
	ws.Connect(testutil.UserToken(t, "u"))
	ws.Call("subscribe", map[string]any{"channel": "news"})
	// Publications made through another door are private to Mercure
	// subscribers: the token must allow the channel.
	sse := subscribeOK(t, srv, topics("news"), mbearer(testutil.SubscriberToken(t, "news")))

	// Server API → both, the JSON as the event data.
	if st, res := srv.API(t, "publish", map[string]any{"channel": "news", "data": map[string]any{"text": "from the api"}}); st != 200 || res["error"] != nil {
		t.Fatalf("api publish: %d %v", st, res)
	}
	if got := pushData(t, ws, "news"); got != `{"text":"from the api"}` {
		t.Fatalf("centrifuge got %s", got)
	}
	apiEvent := sse.Next(sseWait)
	if apiEvent.Data != `{"text":"from the api"}` || apiEvent.ID == "" {
		t.Fatalf("mercure got %+v", apiEvent)
	}

	// Mercure POST → both: JSON byte for byte (key order and spacing
	// kept), text as a JSON string.
	const update = `{"z":1, "a":[2, 3], "s":"é"}`
	srv.Publish(t, url.Values{"topic": {"news"}, "data": {update}})
	if line, err := ws.ReadLine(5 * time.Second); err != nil || !strings.Contains(line, `"data":`+update) {
		t.Fatalf("centrifuge got %s (%v), want the update's JSON byte for byte", line, err)
	}
	if ev := sse.Next(sseWait); ev.Data != update {
		t.Fatalf("mercure got %+v", ev)
	}
	srv.Publish(t, url.Values{"topic": {"news"}, "data": {"plain text\nover two lines"}})
	if got := pushData(t, ws, "news"); got != `"plain text\nover two lines"` {
		t.Fatalf("centrifuge got %s for a text update", got)
	}
	if ev := sse.Next(sseWait); ev.Data != "plain text\nover two lines" {
		t.Fatalf("mercure got %+v", ev)
	}

	// One stream: the channel's history holds all three, in order.
	st, res := srv.API(t, "history", map[string]any{"channel": "news", "limit": -1})
	result, _ := res["result"].(map[string]any)
	pubs, _ := result["publications"].([]any)
	if st != 200 || len(pubs) != 3 {
		t.Fatalf("history: %d %v", st, res)
	}
	// A Mercure subscriber that reconnects after the first event replays the
	// other two from the same publications.
	replay := subscribeOK(t, srv, topics("news"), http.Header{
		"Authorization": {"Bearer " + testutil.SubscriberToken(t, "news")}, "Last-Event-ID": {apiEvent.ID}})
	if ev := replay.Next(sseWait); ev.Data != update {
		t.Fatalf("first replayed %+v", ev)
	}
	if ev := replay.Next(sseWait); ev.Data != "plain text\nover two lines" {
		t.Fatalf("second replayed %+v", ev)
	}
	// A Centrifugo client that recovers from before them gets them too.
	epoch, _ := result["epoch"].(string)
	rc := srv.Dial(t, nil)
	rc.Connect(testutil.UserToken(t, "u"))
	r := rc.Call("subscribe", map[string]any{"channel": "news", "recoverable": true, "recover": true, "offset": 1, "epoch": epoch})
	sub, _ := r["subscribe"].(map[string]any)
	rp, _ := sub["publications"].([]any)
	if sub["recovered"] != true || len(rp) != 2 {
		t.Fatalf("recovery: %v", r)
	}
}

// A URI topic is a channel of its own namespace, not a namespace named after
// its scheme: the server API publishes to it, and a Mercure subscriber with
// a template selector receives it.
func TestURITopicIsOneChannel(t *testing.T) {
	srv := testutil.Start(t, nil)
	sse := subscribeOK(t, srv, topics("https://example.com/books/{id}"), mbearer(testutil.SubscriberToken(t, "https://example.com/books/{id}")))
	st, res := srv.API(t, "publish", map[string]any{"channel": "https://example.com/books/1", "data": map[string]any{"title": "Dune"}})
	if st != 200 || res["error"] != nil {
		t.Fatalf("api publish to a URI channel: %d %v", st, res)
	}
	if ev := sse.Next(sseWait); ev.Data != `{"title":"Dune"}` {
		t.Fatalf("mercure got %+v", ev)
	}
	// An anonymous Mercure subscriber does not receive publications made
	// through other doors: they are private to Mercure subscribers.
	cfg := testutil.Config()
	cfg.Mercure.Anonymous = true
	anon := testutil.Start(t, cfg)
	a := subscribeOK(t, anon, topics("*"), nil)
	anon.API(t, "publish", map[string]any{"channel": "news", "data": 1})
	anon.Publish(t, url.Values{"topic": {"news"}, "data": {"public"}})
	if ev := a.Next(sseWait); ev.Data != "public" {
		t.Fatalf("anonymous subscriber got %+v, want only the public Mercure update", ev)
	}
}

// Why an update did not arrive: at debug level each publication that topic
// subscribers could match is logged with how many received it and which
// were skipped because their token does not allow a private update.
func TestMercureUpdateTrace(t *testing.T) {
	srv := testutil.Start(t, nil)
	subscribeOK(t, srv, topics("a"), mbearer(testutil.SubscriberToken(t, "other-topic")))
	srv.Publish(t, url.Values{"topic": {"a"}, "data": {"x"}, "private": {"on"}, "id": {"trace-me"}})
	deadline := time.Now().Add(3 * time.Second)
	for {
		logs := srv.Logs.String()
		i := strings.Index(logs, "id=trace-me")
		if i >= 0 {
			line := logs[strings.LastIndex(logs[:i], "\n")+1:]
			line = line[:strings.Index(line, "\n")]
			if !strings.Contains(line, "delivered_to=0") || !strings.Contains(line, "skipped_private=[urn:uuid:") {
				t.Fatalf("trace line %q", line)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no trace of the private update")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
