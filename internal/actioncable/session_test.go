package actioncable_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

func TestNegotiationEchoesOneSupportedSubprotocol(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true })
	cases := []struct {
		name    string
		offered []string
		want    string
	}{
		{"rails client", []string{protoJSON, "actioncable-unsupported"}, protoJSON},
		{"anycable extended", []string{protoExt}, protoExt},
		{"client order wins", []string{protoJSON, protoExt}, protoJSON},
		{"token entry never echoed", []string{"anycable-token.e30.e30.sig", protoExt}, protoExt},
		{"only unsupported", []string{"actioncable-unsupported"}, ""},
		{"msgpack is not spoken", []string{"actioncable-v1-msgpack"}, ""},
		{"none offered", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialCable(t, srv, dialOpts{protocols: tc.offered})
			if c.protocol != tc.want {
				t.Fatalf("negotiated %q, want %q", c.protocol, tc.want)
			}
			if len(tc.offered) > 0 && strings.HasPrefix(tc.offered[0], "anycable-token.") {
				// The token was read from the subprotocol (and refused: it is not signed).
				c.expect("disconnect")
				return
			}
			w := c.expect("welcome")
			if sid, _ := w["sid"].(string); sid == "" {
				t.Fatalf("welcome without sid: %v", w)
			}
		})
	}
	waitLog(t, srv, "no subprotocol Herald speaks was offered", "actioncable-v1-msgpack")
}

func TestPingEveryInterval(t *testing.T) {
	srv := startCable(t, func(c *config.Config) {
		c.ActionCable.Anonymous = true
		c.ActionCable.PingInterval = config.Duration(100 * time.Millisecond)
	})
	c, _ := dialWelcome(t, srv, protoJSON, "")
	var last float64
	for i := 0; i < 3; i++ {
		m, raw, err := c.read(2 * time.Second)
		if err != nil || m["type"] != "ping" {
			t.Fatalf("want a ping, got %s %v", raw, err)
		}
		ts, ok := m["message"].(float64)
		if !ok || ts < float64(time.Now().Add(-time.Minute).Unix()) || ts < last {
			t.Fatalf("ping message must be unix seconds: %s", raw)
		}
		last = ts
	}
}

func TestSubscribeConfirmsOnceAndEchoesTheIdentifier(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true; c.ActionCable.Streams.Public = true })
	c, _ := dialWelcome(t, srv, protoJSON, "")
	// Odd spacing and key order: the reply must carry these very bytes.
	id := `{ "stream_name" : "room-1",  "channel":"$pubsub" }`
	c.send(subscribe(id))
	raw := c.expectRaw()
	want := `{"type":"confirm_subscription","identifier":` + jsonString(id) + `}`
	if raw != want {
		t.Fatalf("got %s, want %s", raw, want)
	}
	// The Rails client re-sends subscribe every 500 ms until it sees the
	// confirm: a duplicate gets no second confirm and no second subscription.
	c.send(subscribe(id))
	c.send(subscribe(id))
	c.quiet(200 * time.Millisecond)
	if code, _ := broadcast(t, srv, testAPIKey, map[string]any{"stream": "room-1", "data": `{"text":"hi"}`}); code != http.StatusCreated {
		t.Fatalf("broadcast: %d", code)
	}
	m, raw := c.next(5 * time.Second)
	if m["identifier"] != id || !strings.HasPrefix(raw, `{"identifier":`+jsonString(id)+`,"message":{"text":"hi"}`) {
		t.Fatalf("data frame %s", raw)
	}
	c.quiet(200 * time.Millisecond) // once, not once per duplicate

	// Unsubscribe: no answer, and no more messages.
	c.send(map[string]any{"command": "unsubscribe", "identifier": id})
	c.quiet(200 * time.Millisecond)
	broadcast(t, srv, testAPIKey, map[string]any{"stream": "room-1", "data": `{"text":"after"}`})
	c.quiet(300 * time.Millisecond)
}

func TestTwoIdentifiersOfOneStreamEachGetTheMessage(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true; c.ActionCable.Streams.Public = true })
	c, _ := dialWelcome(t, srv, protoJSON, "")
	// @rails/actioncable writes channel first; @anycable/core sorts keys.
	a := `{"channel":"$pubsub","stream_name":"shared"}`
	b := `{"channel":"$pubsub","stream_name":"shared","x":1}`
	c.send(subscribe(a))
	c.expect("confirm_subscription")
	c.send(subscribe(b))
	c.expect("confirm_subscription")
	broadcast(t, srv, testAPIKey, map[string]any{"stream": "shared", "data": `"plain text"`})
	got := map[any]bool{}
	for i := 0; i < 2; i++ {
		m, _ := c.next(5 * time.Second)
		if m["message"] != "plain text" {
			t.Fatalf("message %v", m)
		}
		got[m["identifier"]] = true
	}
	if !got[a] || !got[b] {
		t.Fatalf("each identifier once: %v", got)
	}
	// Ending one keeps the other. (Commands apply in order: the confirm of
	// the next subscribe says the unsubscribe was applied.)
	c.send(map[string]any{"command": "unsubscribe", "identifier": a})
	c.send(subscribe(pubsub("other")))
	c.expect("confirm_subscription")
	broadcast(t, srv, testAPIKey, map[string]any{"stream": "shared", "data": `"again"`})
	m, _ := c.next(5 * time.Second)
	if m["identifier"] != b {
		t.Fatalf("message for %v, want %s", m["identifier"], b)
	}
	c.quiet(200 * time.Millisecond)
}

func TestPublicationsOfEveryDoorReachActionCable(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true; c.ActionCable.Streams.Public = true })
	c, _ := dialWelcome(t, srv, protoJSON, "")
	id := pubsub("news")
	c.send(subscribe(id))
	c.expect("confirm_subscription")
	// The server API, as a Centrifugo client would publish.
	if status, body := srv.API(t, "publish", map[string]any{"channel": "news", "data": map[string]any{"n": 1}}); status != 200 || body["error"] != nil {
		t.Fatalf("api publish: %d %v", status, body)
	}
	if m, raw := c.next(5 * time.Second); m["identifier"] != id || !strings.Contains(raw, `"message":{"n":1}`) {
		t.Fatalf("got %s", raw)
	}
	// A Centrifugo client subscribed to the same channel gets /_broadcast's publication.
	cf := srv.Dial(t, nil)
	cf.Connect(testutilUserToken(t))
	cf.Call("subscribe", map[string]any{"channel": "news"})
	broadcast(t, srv, testAPIKey, map[string]any{"stream": "news", "data": `{"n":2}`})
	if m, raw := c.next(5 * time.Second); m["identifier"] != id || !strings.Contains(raw, `"message":{"n":2}`) {
		t.Fatalf("got %s", raw)
	}
	push := cf.WaitPush(5 * time.Second)
	if !strings.Contains(mustJSON(push), `"n":2`) {
		t.Fatalf("centrifugo push %v", push)
	}
}

func TestStreamNamesWithColonsAreChannelsWithoutANamespace(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true; c.ActionCable.Streams.Public = true })
	c, _ := dialWelcome(t, srv, protoJSON, "")
	// Turbo joins streamables with ":", Rails' stream_for writes channel:gid.
	for _, stream := range []string{"Z2lkOi8vYXBwL1Jvb20vMQ:messages", "chat:Z2lkOi8vYXBwL1VzZXIvMQ"} {
		id := pubsub(stream)
		c.send(subscribe(id))
		c.expect("confirm_subscription")
		if code, body := broadcast(t, srv, testAPIKey, map[string]any{"stream": stream, "data": `{"s":"` + stream + `"}`}); code != http.StatusCreated {
			t.Fatalf("broadcast %s: %d %s", stream, code, body)
		}
		if m, raw := c.next(5 * time.Second); m["identifier"] != id || !strings.Contains(raw, stream) {
			t.Fatalf("got %s", raw)
		}
	}
}

func TestShutdownSendsServerRestart(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true })
	c, _ := dialWelcome(t, srv, protoJSON, "")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	code, _, msgs := c.expectClose()
	if len(msgs) != 1 || msgs[0]["type"] != "disconnect" || msgs[0]["reason"] != "server_restart" || msgs[0]["reconnect"] != true {
		t.Fatalf("messages before close: %v", msgs)
	}
	if code != 1001 {
		t.Fatalf("close code %d, want 1001", code)
	}
}

func TestOriginsAreChecked(t *testing.T) {
	srv := startCable(t, func(c *config.Config) {
		c.ActionCable.Anonymous = true
		c.Client.AllowedOrigins = []string{"https://app.example.com"}
	})
	ok := dialCable(t, srv, dialOpts{protocols: []string{protoJSON}, header: http.Header{"Origin": {"https://app.example.com"}}})
	ok.expect("welcome")
	_, resp, err := tryDial(srv, dialOpts{protocols: []string{protoJSON}, header: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a foreign origin must get 403, got %v %v", resp, err)
	}
	waitLog(t, srv, "reason=origin_not_allowed")
}

func TestInvalidMessagesAreIgnoredAndLimitsHold(t *testing.T) {
	srv := startCable(t, func(c *config.Config) {
		c.ActionCable.Anonymous = true
		c.ActionCable.Streams.Public = true
		c.Client.ChannelLimit = 2
	})
	c, _ := dialWelcome(t, srv, protoJSON, "")
	_ = c.conn.WriteMessage(1, []byte("not json"))
	_ = c.conn.WriteMessage(1, []byte(`["array"]`))
	c.send(map[string]any{"command": "subscribe", "identifier": map[string]any{"channel": "$pubsub"}})
	c.send(map[string]any{"command": "subscribe", "identifier": "not an object"})
	c.expect("reject_subscription")
	c.send(map[string]any{"command": "subscribe", "identifier": strings.Repeat("x", 5000)})
	c.send(map[string]any{"command": "frobnicate", "identifier": pubsub("a")})
	c.quiet(200 * time.Millisecond)
	waitLog(t, srv, "invalid message ignored", "longer than actioncable.max_identifier", "unknown command ignored")

	c.send(subscribe(pubsub("a")))
	c.expect("confirm_subscription")
	c.send(subscribe(pubsub("b")))
	c.expect("confirm_subscription")
	c.send(subscribe(pubsub("c")))
	c.expect("reject_subscription")
	waitLog(t, srv, "client.channel_limit")
}

func TestMercureAndActionCableShareChannels(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true; c.ActionCable.Streams.Public = true })
	c, _ := dialWelcome(t, srv, protoJSON, "")
	id := pubsub("news2")
	c.send(subscribe(id))
	c.expect("confirm_subscription")
	sse := srv.Subscribe(t, url.Values{"topic": {"news2"}}, http.Header{"Authorization": {"Bearer " + testutil.SubscriberToken(t, "news2")}})
	if sse.Resp.StatusCode != http.StatusOK {
		t.Fatalf("mercure subscribe: %d", sse.Resp.StatusCode)
	}
	// A Mercure POST reaches the Action Cable subscriber (text arrives as a string).
	srv.Publish(t, url.Values{"topic": {"news2"}, "data": {"from mercure"}})
	if m, raw := c.next(5 * time.Second); m["identifier"] != id || m["message"] != "from mercure" {
		t.Fatalf("got %s", raw)
	}
	// /_broadcast reaches the Mercure subscriber.
	broadcast(t, srv, testAPIKey, map[string]any{"stream": "news2", "data": `{"from":"cable"}`})
	deadline := time.Now().Add(5 * time.Second)
	for {
		line, ok := sse.Line(time.Until(deadline))
		if !ok {
			t.Fatalf("the Mercure subscriber got no broadcast: %s", sse.Body())
		}
		if strings.HasPrefix(line, "data:") && strings.Contains(line, `"from":"cable"`) {
			break
		}
	}
}
