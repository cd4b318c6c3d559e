package centrifuge_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

func publishN(t *testing.T, srv *testutil.Server, channel string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if st, body := srv.API(t, "publish", map[string]any{"channel": channel, "data": map[string]any{"n": i}}); st != 200 || body["error"] != nil {
			t.Fatalf("publish: %d %v", st, body)
		}
	}
}

func TestRecoveryOnResubscribe(t *testing.T) {
	cfg := testutil.Config()
	cfg.Channel.Namespaces = []config.Namespace{{Name: "small", NamespaceOptions: config.NamespaceOptions{
		AllowSubscribeForClient: true, HistorySize: 2, HistoryTTL: config.Duration(time.Minute), ForceRecovery: true}}}
	srv := testutil.Start(t, cfg)
	tok := testutil.UserToken(t, "u")

	c := srv.Dial(t, nil)
	c.Connect(tok)
	r := c.Call("subscribe", map[string]any{"channel": "room", "recoverable": true})["subscribe"].(map[string]any)
	if r["recoverable"] != true || r["positioned"] != true || r["epoch"] == "" {
		t.Fatalf("subscribe result %v, want recoverable, positioned and an epoch", r)
	}
	publishN(t, srv, "room", 1, 2)
	for i := 1; i <= 2; i++ {
		c.WaitPush(wait)
	}
	epoch := r["epoch"].(string)
	c.Conn.Close()

	publishN(t, srv, "room", 3, 5) // missed while away
	c2 := srv.Dial(t, nil)
	c2.Connect(tok)
	res := c2.Call("subscribe", map[string]any{"channel": "room", "recover": true, "offset": 2, "epoch": epoch, "recoverable": true})["subscribe"].(map[string]any)
	if res["recovered"] != true || res["was_recovering"] != true || num(res["offset"]) != 2 {
		t.Fatalf("recovery result %v, want recovered, was_recovering and the requested offset 2", res)
	}
	pubs := res["publications"].([]any)
	if len(pubs) != 3 || num(pubs[0].(map[string]any)["offset"]) != 3 || num(pubs[2].(map[string]any)["offset"]) != 5 {
		t.Fatalf("recovered publications %v, want offsets 3..5", pubs)
	}
	// Live publications continue after the recovered ones.
	publishN(t, srv, "room", 6, 6)
	if p := c2.WaitPush(wait); num(p["pub"].(map[string]any)["offset"]) != 6 {
		t.Fatalf("live push after recovery %v", p)
	}

	t.Run("wrong epoch is not recovered", func(t *testing.T) {
		c := srv.Dial(t, nil)
		c.Connect(tok)
		res := c.Call("subscribe", map[string]any{"channel": "room", "recover": true, "offset": 2, "epoch": "other", "recoverable": true})["subscribe"].(map[string]any)
		if res["recovered"] == true || res["was_recovering"] != true || num(res["offset"]) != 6 || res["publications"] != nil {
			t.Fatalf("result %v, want recovered false at the top offset 6 with no publications", res)
		}
	})
	t.Run("gap larger than history is not recovered, never partially", func(t *testing.T) {
		publishN(t, srv, "small:x", 1, 1)
		c := srv.Dial(t, nil)
		c.Connect(tok)
		first := c.Call("subscribe", map[string]any{"channel": "small:x"})["subscribe"].(map[string]any)
		epoch := first["epoch"].(string)
		c.Call("unsubscribe", map[string]any{"channel": "small:x"})
		publishN(t, srv, "small:x", 2, 5) // 4 missed, history keeps 2
		res := c.Call("subscribe", map[string]any{"channel": "small:x", "recover": true, "offset": 1, "epoch": epoch})["subscribe"].(map[string]any)
		if res["recovered"] == true || res["publications"] != nil || num(res["offset"]) != 5 {
			t.Fatalf("result %v, want recovered false, no publications, offset 5", res)
		}
		c.Call("unsubscribe", map[string]any{"channel": "small:x"})
		r := c.Call("subscribe", map[string]any{"channel": "small:x", "recover": true, "offset": 1, "epoch": epoch, "flag": 2})
		if testutil.ErrorCode(r) != 112 {
			t.Fatalf("flag 2 (reject unrecovered) = %v, want error 112", r)
		}
	})
}

// TestNoLossUnderConcurrentPublishing subscribes while publishers are busy
// and checks that every acknowledged publication arrives exactly once, in order.
func TestNoLossUnderConcurrentPublishing(t *testing.T) {
	srv := testutil.Start(t, nil)
	const publishers, each = 4, 50
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				if err := srv.HubPublish("busy", []byte(`{"x":1}`)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	close(start)
	time.Sleep(time.Millisecond)
	res := c.Call("subscribe", map[string]any{"channel": "busy", "recoverable": true})["subscribe"].(map[string]any)
	wg.Wait()
	last := num(res["offset"])
	total := publishers * each
	for last < total {
		p := c.WaitPush(wait)
		off := num(p["pub"].(map[string]any)["offset"])
		if off != last+1 {
			t.Fatalf("offset %d after %d: lost or duplicated", off, last)
		}
		last = off
	}
}

func TestConnectionRefreshFlow(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.ExpiredCloseDelay = config.Duration(500 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	short := func(user string, d time.Duration) string {
		return testutil.Token(t, map[string]any{"sub": user, "exp": time.Now().Add(d).Unix()})
	}

	t.Run("not refreshed: 3005 after the grace period", func(t *testing.T) {
		c := srv.Dial(t, nil)
		res := c.Connect(short("u", time.Second))
		if res["expires"] != true || num(res["ttl"]) < 1 || num(res["ttl"]) > 2 {
			t.Fatalf("connect result %v", res)
		}
		start := time.Now()
		code, _ := c.ExpectClose(4 * time.Second)
		if code != 3005 {
			t.Fatalf("close %d, want 3005", code)
		}
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Fatalf("closed after %s: the grace period was not applied", d)
		}
	})
	t.Run("refreshed: stays connected", func(t *testing.T) {
		c := srv.Dial(t, nil)
		c.Connect(short("u", time.Second))
		r := c.Call("refresh", map[string]any{"token": short("u", time.Hour)})["refresh"].(map[string]any)
		if r["expires"] != true || num(r["ttl"]) < 3590 {
			t.Fatalf("refresh result %v", r)
		}
		if _, err := c.ReadLine(2500 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("expected silence (no close) after refresh, got %v", err)
		}
	})
	refusals := []struct {
		name, token, reason string
		code                int
	}{
		{"expired refresh token", short("u", -time.Minute), "expired", 3005},
		{"refresh token of another user", short("v", time.Hour), `token_user_mismatch: refresh token is for user "v"`, 3500},
		{"forged refresh token", signWith(t, "x", map[string]any{"sub": "u"}), "signature_invalid", 3500},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			c := srv.Dial(t, nil)
			c.Connect(short("u", time.Hour))
			c.Send(fmt.Sprintf(`{"id":7,"refresh":{"token":%q}}`, tc.token))
			code, reason := c.ExpectClose(wait)
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Fatalf("close %d %q, want %d with %q", code, reason, tc.code, tc.reason)
			}
		})
	}
}

func TestSubscriptionRefreshFlow(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.ExpiredSubCloseDelay = config.Duration(300 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	subTok := func(d time.Duration) string {
		return testutil.Token(t, map[string]any{"sub": "u", "channel": "$s", "exp": time.Now().Add(d).Unix()})
	}
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	r := c.Call("subscribe", map[string]any{"channel": "$s", "token": subTok(time.Second)})["subscribe"].(map[string]any)
	if r["expires"] != true || num(r["ttl"]) > 1 {
		t.Fatalf("subscribe result %v", r)
	}
	p := c.WaitPush(4 * time.Second)
	u := p["unsubscribe"].(map[string]any)
	if p["channel"] != "$s" || num(u["code"]) != 2501 {
		t.Fatalf("push %v, want unsubscribe 2501", p)
	}
	// Resubscribe and refresh in time.
	c.Call("subscribe", map[string]any{"channel": "$s", "token": subTok(time.Second)})
	rr := c.Call("sub_refresh", map[string]any{"channel": "$s", "token": subTok(time.Hour)})["sub_refresh"].(map[string]any)
	if rr["expires"] != true || num(rr["ttl"]) < 3590 {
		t.Fatalf("sub_refresh result %v", rr)
	}
	// Wait past the first token's expiry and grace, then check that nothing
	// but the reply arrived (a read timeout would break the connection).
	time.Sleep(2 * time.Second)
	c.Call("presence_stats", map[string]any{"channel": "$s"})
	if len(c.Pushes) > 0 {
		t.Fatalf("refreshed subscription must stay: got %v", c.Pushes)
	}
	if r := c.Call("sub_refresh", map[string]any{"channel": "never", "token": subTok(time.Hour)}); testutil.ErrorCode(r) != 103 {
		t.Fatalf("sub_refresh of an unknown subscription = %v", r)
	}
	c.Send(fmt.Sprintf(`{"id":50,"sub_refresh":{"channel":"$s","token":%q}}`, subTok(-time.Minute)))
	if code, _ := c.ExpectClose(wait); code != 3006 {
		t.Fatalf("expired sub_refresh token closed with %d, want 3006", code)
	}
}

func TestServerSideSubscriptionsFromToken(t *testing.T) {
	srv := testutil.Start(t, nil)
	publishN(t, srv, "feed", 1, 1)
	c := srv.Dial(t, nil)
	tok := testutil.Token(t, map[string]any{"sub": "u", "channels": []string{"feed"},
		"subs": map[string]any{"alerts": map[string]any{"data": map[string]any{"hello": 1}}}})
	res := c.Connect(tok)
	subs := res["subs"].(map[string]any)
	if subs["feed"] == nil || subs["alerts"].(map[string]any)["data"].(map[string]any)["hello"] == nil {
		t.Fatalf("connect subs = %v", subs)
	}
	publishN(t, srv, "feed", 2, 2)
	if p := c.WaitPush(wait); p["channel"] != "feed" || num(p["pub"].(map[string]any)["offset"]) != 2 {
		t.Fatalf("push %v", p)
	}
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.QueueMaxSize = 64 << 10
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "slow"))
	c.Call("subscribe", map[string]any{"channel": "firehose"})
	// The client stops reading; publish until its queue overflows.
	srv.FloodUntilGone("firehose", "slow")
	if !strings.Contains(srv.Logs.String(), "client is too slow") {
		t.Fatalf("slow client not disconnected; log:\n%s", srv.Logs.String())
	}
	waitFor(t, func() bool { return srv.Hub().NumUserClients("slow") == 0 }, "slow client removed from the hub")
	// The publisher was never blocked, and other clients still work.
	other := srv.Dial(t, nil)
	other.Connect(testutil.UserToken(t, "ok"))
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for: %s", what)
}

func TestGracefulShutdown(t *testing.T) {
	srv := testutil.Start(t, nil)
	var clients []*testutil.Client
	for i := 0; i < 5; i++ {
		c := srv.Dial(t, nil)
		c.Connect(testutil.UserToken(t, fmt.Sprint("u", i)))
		clients = append(clients, c)
	}
	pending := srv.Dial(t, nil) // never sent connect
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- srv.Shutdown(context.Background()) }()
	for _, c := range append(clients, pending) {
		if code, reason := c.ExpectClose(wait); code != 3001 || reason != "shutdown" {
			t.Fatalf("close %d %q, want 3001 shutdown", code, reason)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	if _, err := http.Get("http://" + srv.Addr + "/health"); err == nil {
		t.Fatalf("server still accepts connections after shutdown")
	}
}

func TestHealth(t *testing.T) {
	srv := testutil.Start(t, nil)
	resp, err := http.Get("http://" + srv.Addr + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestUserConnectionLimit(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.UserConnectionLimit = 2
	srv := testutil.Start(t, cfg)
	tok := testutil.UserToken(t, "u")
	srv.Dial(t, nil).Connect(tok)
	srv.Dial(t, nil).Connect(tok)
	srv.Dial(t, nil).Connect(testutil.UserToken(t, "other"))
	c := srv.Dial(t, nil)
	c.Send(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, tok))
	if code, reason := c.ExpectClose(wait); code != 3504 || !strings.Contains(reason, "user_connection_limit is 2") {
		t.Fatalf("close %d %q, want 3504", code, reason)
	}
}

func TestCommandRateLimitIs111(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.ChannelLimit = 5
	cfg.Client.CommandRateLimit = 1
	cfg.Client.CommandBurst = 6
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	var frame []string
	for i := 2; i <= 9; i++ {
		frame = append(frame, fmt.Sprintf(`{"id":%d,"presence_stats":{"channel":"a"}}`, i))
	}
	c.Send(strings.Join(frame, "\n"))
	limited := 0
	for i := 2; i <= 9; i++ {
		r := c.WaitReply(uint32(i))
		if code := testutil.ErrorCode(r); code == 111 {
			limited++
			e := r["error"].(map[string]any)
			if e["temporary"] != true || !strings.Contains(e["message"].(string), "command_rate_limit") {
				t.Fatalf("111 reply %v: must be temporary and name the setting", r)
			}
		} else if code != 0 {
			t.Fatalf("reply %v", r)
		}
	}
	if limited != 2 {
		t.Fatalf("%d commands limited, want 2 (burst 6 of 8)", limited)
	}
}

func TestAsyncMessagePush(t *testing.T) {
	srv := testutil.Start(t, nil)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	if st, body := srv.API(t, "send", map[string]any{"user": "u", "data": map[string]any{"note": "hi"}}); st != 200 || body["error"] != nil {
		t.Fatalf("send: %d %v", st, body)
	}
	p := c.WaitPush(wait)
	if p["message"].(map[string]any)["data"].(map[string]any)["note"] != "hi" {
		t.Fatalf("push %v", p)
	}
	if _, body := srv.API(t, "send", map[string]any{"user": "u"}); body["error"] == nil {
		t.Fatalf("send without data must be refused")
	}
}

func TestFramePingPong(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.PingInterval = config.Duration(300 * time.Millisecond)
	cfg.Client.PongTimeout = config.Duration(200 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	conn, _, err := websocket.DefaultDialer.Dial(srv.WSURL()+"?cf_ws_frame_ping_pong=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pings := 0
	conn.SetPingHandler(func(data string) error {
		pings++
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, testutil.UserToken(t, "u"))))
	conn.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	_, data, err := conn.ReadMessage()
	if err != nil || strings.Contains(string(data), `"pong"`) || strings.Contains(string(data), `"ping"`) {
		t.Fatalf("connect reply %s %v: no ping/pong fields with frame pings", data, err)
	}
	// Only WebSocket ping frames arrive, and answering them keeps the connection.
	_, data, err = conn.ReadMessage()
	if err == nil {
		t.Fatalf("unexpected message %s", data)
	}
	if websocket.IsCloseError(err, 3012) || pings < 3 {
		t.Fatalf("err %v after %d pings; want a read timeout with the connection alive", err, pings)
	}
}

func TestEpochChangeIsInsufficientState(t *testing.T) {
	cfg := testutil.Config()
	cfg.Channel.WithoutNamespace.HistoryMetaTTL = config.Duration(200 * time.Millisecond)
	cfg.Channel.WithoutNamespace.ForcePositioning = true
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	c.Call("subscribe", map[string]any{"channel": "pos"})
	time.Sleep(300 * time.Millisecond) // the stream's metadata expires: a new epoch begins
	publishN(t, srv, "pos", 1, 1)
	// A client-side subscription: unsubscribe 2500, and the SDK resubscribes.
	push := c.WaitPush(wait)
	unsub, _ := push["unsubscribe"].(map[string]any)
	if push["channel"] != "pos" || unsub["code"] != float64(2500) || !strings.Contains(fmt.Sprint(unsub["reason"]), "epoch") {
		t.Fatalf("push %v, want unsubscribe 2500 insufficient state", push)
	}
	if r := c.Call("subscribe", map[string]any{"channel": "pos"}); r["error"] != nil {
		t.Fatalf("resubscribe: %v", r)
	}
	// A server-side subscription, which the client cannot resubscribe:
	// disconnect 3010, and the client reconnects.
	tok := testutil.Token(t, map[string]any{"sub": "u", "channels": []string{"spos"}})
	s := srv.Dial(t, nil)
	s.Connect(tok)
	time.Sleep(300 * time.Millisecond)
	publishN(t, srv, "spos", 1, 1)
	if code, reason := s.ExpectClose(wait); code != 3010 || !strings.Contains(reason, "epoch") {
		t.Fatalf("close %d %q, want 3010 insufficient state", code, reason)
	}
}

func TestConnectSubsRecoverServerSideSubscriptions(t *testing.T) {
	cfg := testutil.Config()
	cfg.Channel.WithoutNamespace.ForceRecovery = true
	srv := testutil.Start(t, cfg)
	tok := testutil.Token(t, map[string]any{"sub": "u", "channels": []string{"feed"}})
	c := srv.Dial(t, nil)
	first := c.Connect(tok)["subs"].(map[string]any)["feed"].(map[string]any)
	epoch := first["epoch"].(string)
	c.Conn.Close()
	publishN(t, srv, "feed", 1, 2)
	c2 := srv.Dial(t, nil)
	c2.Send(fmt.Sprintf(`{"id":1,"connect":{"token":%q,"subs":{"feed":{"recover":true,"offset":0,"epoch":%q}}}}`, tok, epoch))
	res := c2.WaitReply(1)["connect"].(map[string]any)["subs"].(map[string]any)["feed"].(map[string]any)
	if res["recovered"] != true || len(res["publications"].([]any)) != 2 {
		t.Fatalf("server-side recovery result %v", res)
	}
}

func TestAPISubscribeRecoversSince(t *testing.T) {
	srv := testutil.Start(t, nil)
	_, body := srv.API(t, "publish", map[string]any{"channel": "late", "data": map[string]any{"n": 1}})
	epoch := body["result"].(map[string]any)["epoch"].(string)
	publishN(t, srv, "late", 2, 3)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	srv.API(t, "subscribe", map[string]any{"user": "u", "channel": "late", "recover_since": map[string]any{"offset": 1, "epoch": epoch}})
	p := c.WaitPush(wait)
	s := p["subscribe"].(map[string]any)
	if p["channel"] != "late" || s["recovered"] != true || len(s["publications"].([]any)) != 2 {
		t.Fatalf("subscribe push %v", p)
	}
}

func TestTooManyServerSideChannelsIs3505(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.ChannelLimit = 2
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Send(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, testutil.Token(t, map[string]any{"sub": "u", "channels": []string{"a", "b", "c"}})))
	if code, reason := c.ExpectClose(wait); code != 3505 || !strings.Contains(reason, "limit 2") {
		t.Fatalf("close %d %q, want 3505", code, reason)
	}
}

func TestExpiredServerSideSubscriptionIs3006(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.ExpiredSubCloseDelay = config.Duration(200 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	srv.API(t, "subscribe", map[string]any{"user": "u", "channel": "temp", "expire_at": time.Now().Add(time.Second).Unix()})
	if p := c.WaitPush(wait); p["subscribe"].(map[string]any)["expires"] != true {
		t.Fatalf("subscribe push %v, want expires", p)
	}
	if code, _ := c.ExpectClose(4 * time.Second); code != 3006 {
		t.Fatalf("close %d, want 3006", code)
	}
}

// TestBehindSubscriberGetsCoalescedFrames: messages queued while a write is
// in progress go out together, newline-joined in one frame.
func TestBehindSubscriberGetsCoalescedFrames(t *testing.T) {
	srv := testutil.Start(t, nil)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	c.Call("subscribe", map[string]any{"channel": "burst"})
	const n = 1000
	for i := 0; i < n; i++ {
		_ = srv.HubPublish("burst", []byte(`{"i":1}`))
	}
	frames, msgs := 0, 0
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for msgs < n {
		_, data, err := c.Conn.ReadMessage()
		if err != nil {
			t.Fatalf("after %d messages: %v", msgs, err)
		}
		frames++
		msgs += strings.Count(string(data), "\n") + 1
	}
	if msgs != n || frames >= n {
		t.Fatalf("%d messages in %d frames: want all %d, coalesced into fewer frames", msgs, frames, n)
	}
	t.Logf("%d messages in %d frames", msgs, frames)
}
