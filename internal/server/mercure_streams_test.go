package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

func TestMercureReconnection(t *testing.T) {
	srv := testutil.Start(t, nil)
	sub := testutil.SubscriberToken(t, "https://example.com/mine/{id}")
	for _, f := range []url.Values{
		{"topic": {"https://example.com/a/1"}, "id": {"e1"}},
		{"topic": {"https://example.com/mine/1"}, "id": {"secret-1"}, "private": {"on"}},
		{"topic": {"https://example.com/other/1"}, "id": {"other-1"}, "private": {"on"}},
		{"topic": {"https://example.com/a/2"}, "id": {"e2"}},
		{"topic": {"https://example.com/a/3"}, "id": {"e1"}}, // duplicate id: e1 means its first occurrence
	} {
		srv.Publish(t, f)
	}
	sel := url.Values{"topic": {"https://example.com/a/{n}", "https://example.com/mine/{id}", "https://example.com/other/{id}"}}
	ids := func(s *testutil.SSE, n int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, s.Next(sseWait).ID)
		}
		return out
	}
	with := func(name, value string) url.Values {
		q := url.Values{}
		for k, v := range sel {
			q[k] = v
		}
		q.Set(name, value)
		return q
	}
	// header beats every query parameter
	s := subscribeOK(t, srv, with("lastEventID", "e2"), http.Header{"Last-Event-ID": {"e1"}, "Authorization": {"Bearer " + sub}})
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "e1" {
		t.Errorf("Last-Event-ID response header %q, want e1", got)
	}
	if got := strings.Join(ids(s, 3), ","); got != "secret-1,e2,e1" {
		t.Errorf("replay after e1: %s (other-1 is private to someone else)", got)
	}
	// live continues after the replay, without a duplicate
	srv.Publish(t, url.Values{"topic": {"https://example.com/a/4"}, "id": {"e4"}})
	if got := s.Next(sseWait).ID; got != "e4" {
		t.Errorf("live after replay: %s", got)
	}
	s.Close()
	hdr := http.Header{"Authorization": {"Bearer " + sub}}
	// each query parameter alone, then the precedence between them
	for _, name := range []string{"lastEventID", "Last-Event-ID", "last_event_id"} {
		s := subscribeOK(t, srv, with(name, "e2"), hdr)
		if h := s.Resp.Header.Get("Last-Event-ID"); h != "e2" {
			t.Errorf("%s=e2: header %q", name, h)
		}
		if got := strings.Join(ids(s, 2), ","); got != "e1,e4" {
			t.Errorf("%s=e2: replay %s", name, got)
		}
		s.Close()
	}
	q := with("lastEventID", "e2")
	q.Set("Last-Event-ID", "secret-1")
	q.Set("last_event_id", "secret-1")
	s = subscribeOK(t, srv, q, hdr)
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "e2" {
		t.Errorf("lastEventID must win over the legacy names: %q", got)
	}
	s.Close()
	// earliest: the whole retained history, filtered
	s = subscribeOK(t, srv, with("lastEventID", "earliest"), hdr)
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "earliest" {
		t.Errorf("earliest: header %q", got)
	}
	if got := strings.Join(ids(s, 5), ","); got != "e1,secret-1,e2,e1,e4" {
		t.Errorf("earliest replay: %s", got)
	}
	s.Close()
	// unknown id: earliest in the header, no replay, then live
	s = subscribeOK(t, srv, with("lastEventID", "nope"), hdr)
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "earliest" {
		t.Errorf("unknown id: header %q, want earliest", got)
	}
	srv.Publish(t, url.Values{"topic": {"https://example.com/a/5"}, "id": {"e5"}})
	if got := s.Next(sseWait).ID; got != "e5" {
		t.Errorf("unknown id: first event %s, want the live e5 only", got)
	}
	s.Close()
}

func TestMercureReplayNeverLeaksPrivate(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Anonymous = true
	srv := testutil.Start(t, cfg)
	srv.Publish(t, url.Values{"topic": {"t"}, "id": {"secret"}, "private": {"on"}})
	srv.Publish(t, url.Values{"topic": {"t"}, "id": {"public"}})
	q := url.Values{"topic": {"t"}, "lastEventID": {"earliest"}}
	s := subscribeOK(t, srv, q, nil)
	if got := s.Next(sseWait).ID; got != "public" {
		t.Fatalf("anonymous replay: %s", got)
	}
	// an unknown id never reveals the latest (private) id
	q.Set("lastEventID", "unknown")
	s = subscribeOK(t, srv, q, nil)
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "earliest" {
		t.Fatalf("header %q", got)
	}
}

// TestMercureNoGapNoDuplicate publishes while subscribers reconnect: every
// subscriber sees each update after its last event id exactly once, in order.
func TestMercureNoGapNoDuplicate(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Anonymous = true
	srv := testutil.Start(t, cfg)
	const n = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		tok := testutil.PublisherToken(t, "*")
		for i := 0; i < n; i++ {
			st, body, _ := srv.MercurePost(t, mbearer(tok), url.Values{"topic": {"seq"}, "id": {fmt.Sprint(i)}})
			if st != 200 {
				t.Errorf("publish %d: %d %s", i, st, body)
				return
			}
		}
	}()
	last := "earliest"
	next := 0
	for next < n {
		s := subscribeOK(t, srv, url.Values{"topic": {"seq"}, "lastEventID": {last}}, nil)
		for k := 0; k < 7 && next < n; k++ {
			ev := s.Next(sseWait)
			if ev.ID != fmt.Sprint(next) {
				t.Fatalf("got id %s, want %d (last event id was %s)", ev.ID, next, last)
			}
			last = ev.ID
			next++
		}
		s.Close()
	}
	<-done
}

func TestMercureHeartbeat(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Heartbeat = config.Duration(100 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	s := subscribeOK(t, srv, topics("a"), mbearer(testutil.SubscriberToken(t)))
	start := time.Now()
	for i := 0; i < 2; i++ {
		if l, ok := s.Line(2 * time.Second); !ok || l != ":" {
			t.Fatalf("heartbeat %d: %q %v", i, l, ok)
		}
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("two heartbeats in %s: too early for a 100ms interval", el)
	}
}

func TestMercureCloseAtTokenExpiry(t *testing.T) {
	srv := testutil.Start(t, nil)
	tok := testutil.SignMercure(t, testutil.MercureSubscriberSecret, map[string]any{"exp": time.Now().Add(2 * time.Second).Unix()})
	s := subscribeOK(t, srv, topics("a"), mbearer(tok))
	start := time.Now()
	if !s.Ended(5 * time.Second) {
		t.Fatal("the stream outlived its token")
	}
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Fatalf("closed after %s, the token expired within 2s", el)
	}
	if !strings.Contains(srv.Logs.String(), "subscription closed because its token expires") {
		t.Error("the close is logged with its reason")
	}
}

func TestMercureWriteTimeoutLifetime(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.WriteTimeout = config.Duration(500 * time.Millisecond)
	cfg.Mercure.DispatchTimeout = config.Duration(100 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	s := subscribeOK(t, srv, topics("a"), mbearer(testutil.SubscriberToken(t)))
	start := time.Now()
	if !s.Ended(3 * time.Second) {
		t.Fatal("the stream outlived write_timeout")
	}
	// 80-100 % of 500ms, minus 100ms
	if el := time.Since(start); el < 250*time.Millisecond || el > 1500*time.Millisecond {
		t.Fatalf("closed after %s", el)
	}
}

// stalledSubscriber opens a stream and never reads it: the socket buffers
// fill and writes to it block.
func stalledSubscriber(t *testing.T, srv *testutil.Server) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.MercureURL()+"?topic=a", nil)
	req.Header.Set("Authorization", "Bearer "+testutil.SubscriberToken(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(err, resp)
	}
	t.Cleanup(func() { resp.Body.Close() })
}

// publishUntilLogged publishes 64 KiB updates until the log shows want,
// then waits until the hub has forgotten the subscriber.
func publishUntilLogged(t *testing.T, srv *testutil.Server, want string) {
	t.Helper()
	tok := testutil.PublisherToken(t, "*")
	data := strings.Repeat("x", 64<<10)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(srv.Logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("a subscriber that does not read was never dropped with %q", want)
		}
		st, body, _ := srv.MercurePost(t, mbearer(tok), url.Values{"topic": {"a"}, "data": {data}})
		if st != 200 {
			t.Fatalf("publish: %d %s", st, body)
		}
	}
	for srv.MercureSubscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the dropped subscriber is still registered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMercureSlowSubscriberDroppedWhenQueueFull(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.SubscriberQueue = 2
	cfg.Mercure.DispatchTimeout = 0 // only the queue bound can drop it
	srv := testutil.Start(t, cfg)
	stalledSubscriber(t, srv)
	publishUntilLogged(t, srv, "mercure: subscriber dropped: it did not keep up and its queue of updates is full")
}

func TestMercureSlowSubscriberDroppedAfterDispatchTimeout(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.DispatchTimeout = config.Duration(200 * time.Millisecond)
	cfg.Client.QueueMaxSize = 256 << 20 // only the write deadline can drop it
	srv := testutil.Start(t, cfg)
	stalledSubscriber(t, srv)
	publishUntilLogged(t, srv, "mercure: subscriber dropped: writing to it took longer than dispatch_timeout")
	if strings.Contains(srv.Logs.String(), "queue of updates is full") {
		t.Fatal("dropped for its queue, not for the write deadline")
	}
}

func TestMercureShutdownEndsStreams(t *testing.T) {
	srv := testutil.Start(t, nil)
	s := subscribeOK(t, srv, topics("a"), mbearer(testutil.SubscriberToken(t)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Shutdown(context.Background())
	}()
	if !s.Ended(3 * time.Second) {
		t.Fatal("shutdown left the stream open")
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("shutdown did not finish")
	}
}

func TestMercureDisabled(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Enabled = false
	srv := testutil.Start(t, cfg)
	resp, err := http.Get(srv.MercureURL() + "?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("%d", resp.StatusCode)
	}
}
