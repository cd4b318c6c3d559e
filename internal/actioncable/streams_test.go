package actioncable_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/actioncable"
	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

func signedID(channel, signed string) string {
	return ident(map[string]any{"channel": channel, "signed_stream_name": signed})
}

func TestSignedStreams(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true })
	c, _ := dialWelcome(t, srv, protoJSON, "")
	good := signedID("$pubsub", auth.SignStream("secret/room", []byte(cableSecret)))
	c.send(subscribe(good))
	c.expect("confirm_subscription")
	broadcast(t, srv, testAPIKey, map[string]any{"stream": "secret/room", "data": `{"ok":true}`})
	if m, _ := c.next(5 * time.Second); m["identifier"] != good {
		t.Fatalf("got %v", m)
	}

	bad := signedID("$pubsub", auth.SignStream("secret/room", []byte("the app's other key")))
	c.send(subscribe(bad))
	c.expect("reject_subscription")
	waitLog(t, srv, "reason=signed_stream_invalid", "detail=\"digest: the HMAC-SHA256 does not match key "+auth.Fingerprint([]byte(cableSecret)))

	c.send(subscribe(signedID("$pubsub", "garbage")))
	c.expect("reject_subscription")
	waitLog(t, srv, "reason=signed_stream_malformed")

	// Unsigned names are not public unless configured or allowed by the
	// namespace (testutil's allows clients, not anonymous ones).
	c.send(subscribe(pubsub("open")))
	c.expect("reject_subscription")
	waitLog(t, srv, "allow_subscribe_for_anonymous is false")
}

func TestPublicStreamNamesFollowTheNamespaceRules(t *testing.T) {
	srv := startCable(t, func(c *config.Config) {
		c.ActionCable.Anonymous = true
		c.Channel.WithoutNamespace.AllowSubscribeForClient = false
	})
	c, _ := dialWelcome(t, srv, protoJSON, "")
	c.send(subscribe(pubsub("open")))
	c.expect("reject_subscription")
	waitLog(t, srv, "reason=channel_not_permitted", "actioncable.streams.public")
	// A channel this door cannot run without the app.
	c.send(subscribe(ident(map[string]any{"channel": "ChatChannel", "room": 1})))
	c.expect("reject_subscription")
	waitLog(t, srv, "has no app to run it")

	open := startCable(t, func(c *config.Config) {
		c.ActionCable.Anonymous = true
		c.ActionCable.Streams.Public = true
		c.Channel.WithoutNamespace.AllowSubscribeForClient = false
	})
	oc, _ := dialWelcome(t, open, protoJSON, "")
	oc.send(subscribe(pubsub("open")))
	oc.expect("confirm_subscription")

	dev := startCable(t, func(c *config.Config) {
		c.Dev = true
		c.Channel.WithoutNamespace.AllowSubscribeForClient = false
	})
	dc, _ := dialWelcome(t, dev, protoJSON, "")
	dc.send(subscribe(pubsub("open")))
	dc.expect("confirm_subscription")
}

func TestTurboStreams(t *testing.T) {
	const stream = "Z2lkOi8vYXBwL1Jvb20vMQ:messages"
	keyBase := "my-secret-key-base"
	derived, _ := auth.TurboKey(keyBase, "sha256")
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		key    []byte
	}{
		{"raw verifier key", func(c *config.Config) { c.ActionCable.Turbo.VerifierKey = "turbo-raw-key" }, []byte("turbo-raw-key")},
		{"derived from secret_key_base", func(c *config.Config) { c.ActionCable.Turbo.SecretKeyBase = keyBase }, derived},
		{"the streams secret", func(c *config.Config) {}, []byte(cableSecret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true; tc.mutate(c) })
			c, _ := dialWelcome(t, srv, protoJSON, "")
			id := signedID(actioncable.TurboChannel, auth.SignStream(stream, tc.key))
			c.send(subscribe(id))
			c.expect("confirm_subscription")
			html := `<turbo-stream action="append" target="messages"><template><p>hi</p></template></turbo-stream>`
			// Rails publishers send the HTML as a JSON string inside data.
			broadcast(t, srv, testAPIKey, map[string]any{"stream": stream, "data": jsonString(html)})
			m, raw := c.next(5 * time.Second)
			if m["identifier"] != id || m["message"] != html {
				t.Fatalf("got %s", raw)
			}
			// Another key's signature is refused.
			c.send(subscribe(signedID(actioncable.TurboChannel, auth.SignStream(stream, []byte("nope")))))
			c.expect("reject_subscription")
		})
	}
}

func TestBroadcastEndpoint(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true; c.ActionCable.Streams.Public = true })
	a, _ := dialWelcome(t, srv, protoJSON, "")
	b, bw := dialWelcome(t, srv, protoJSON, "")
	id := pubsub("feed")
	a.send(subscribe(id))
	a.expect("confirm_subscription")
	b.send(subscribe(id))
	b.expect("confirm_subscription")

	// A batch: JSON text is delivered as JSON, other text as a string.
	code, body := broadcast(t, srv, testAPIKey, []map[string]any{
		{"stream": "feed", "data": `{"n":1}`},
		{"stream": "feed", "data": "not json"},
	})
	if code != http.StatusCreated {
		t.Fatalf("batch: %d %s", code, body)
	}
	for _, c := range []*cable{a, b} {
		if m, raw := c.next(5 * time.Second); !strings.Contains(raw, `"message":{"n":1}`) {
			t.Fatalf("got %s (%v)", raw, m)
		}
		if m, _ := c.next(5 * time.Second); m["message"] != "not json" {
			t.Fatalf("got %v", m)
		}
	}
	// exclude_socket skips one session; X-API-Key works too.
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Addr+"/_broadcast",
		strings.NewReader(`{"stream":"feed","data":"{\"n\":2}","meta":{"exclude_socket":`+jsonString(bw["sid"].(string))+`,"transient":true}}`))
	req.Header.Set("X-API-Key", testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("X-API-Key broadcast: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, raw := a.next(5 * time.Second); !strings.Contains(raw, `"n":2`) || strings.Contains(raw, "offset") {
		t.Fatalf("a transient broadcast has no position: %s", raw)
	}
	b.quiet(200 * time.Millisecond)

	// Refusals.
	for _, tc := range []struct {
		key, body string
		status    int
		want      string
	}{
		{"", `{"stream":"feed","data":"x"}`, 401, "api_key_missing"},
		{"wrong", `{"stream":"feed","data":"x"}`, 401, "api_key_wrong"},
		{testAPIKey, `{"stream":"feed"`, 422, "not a broadcast object"},
		{testAPIKey, `{"data":"x"}`, 422, "stream is required"},
		{testAPIKey, `[{"stream":"feed","data":"x"},{"stream":"feed"}]`, 422, "entry 1: data is required"},
		{testAPIKey, `{"command":"explode"}`, 422, "unknown command"},
		{testAPIKey, `{"stream":"ünï","data":"x"}`, 422, "non-ASCII"},
	} {
		if code, body := broadcast(t, srv, tc.key, tc.body); code != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d %q", tc.body, code, body, tc.status, tc.want)
		}
	}
	a.quiet(100 * time.Millisecond)
	waitLog(t, srv, "reason=api_key_wrong", "the broadcast key does not match http_api.key")
}

func TestBroadcastKeyOfItsOwnAndDerived(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Broadcast.Key = "bkey" })
	if code, _ := broadcast(t, srv, "bkey", map[string]any{"stream": "x", "data": "1"}); code != http.StatusCreated {
		t.Fatalf("own key: %d", code)
	}
	if code, _ := broadcast(t, srv, testAPIKey, map[string]any{"stream": "x", "data": "1"}); code != http.StatusUnauthorized {
		t.Fatalf("the API key is not the broadcast key when one is set: %d", code)
	}
	// AnyCable's derivation from its application secret (test vector of the spec).
	if got := actioncable.DerivedSecret("anycable-local-secret", "broadcast-cable"); got != "1f5688bfc1cfa36e7af93a9674227cbeb151a5c10160a728f622737a66e194fb" {
		t.Fatalf("broadcast key %s", got)
	}
	if got := actioncable.DerivedSecret("anycable-local-secret", "rpc-cable"); got != "788f3a60c3209c0aa1dd18e20fd2310337950f0813a250749c540971992dc456" {
		t.Fatalf("rpc secret %s", got)
	}
	derived := startCable(t, func(c *config.Config) { c.ActionCable.Secret = "anycable-local-secret" })
	if code, _ := broadcast(t, derived, "1f5688bfc1cfa36e7af93a9674227cbeb151a5c10160a728f622737a66e194fb", map[string]any{"stream": "x", "data": "1"}); code != http.StatusCreated {
		t.Fatalf("derived key: %d", code)
	}
}

func TestRemoteDisconnect(t *testing.T) {
	srv := startCable(t, nil)
	ids := `{"user_id":"77"}`
	c, _ := dialWelcome(t, srv, protoJSON, "jid="+anyCableToken(t, cableSecret, ids, time.Hour))
	other, _ := dialWelcome(t, srv, protoJSON, "jid="+anyCableToken(t, cableSecret, `{"user_id":"78"}`, time.Hour))
	code, body := broadcast(t, srv, testAPIKey, map[string]any{"command": "disconnect", "payload": map[string]any{"identifier": ids, "reconnect": false}})
	if code != http.StatusCreated {
		t.Fatalf("disconnect: %d %s", code, body)
	}
	_, _, msgs := c.expectClose()
	if len(msgs) != 1 || msgs[0]["reason"] != "remote" || msgs[0]["reconnect"] != false {
		t.Fatalf("messages %v", msgs)
	}
	other.quiet(200 * time.Millisecond)
}

func TestServerAPIDisconnectAndUnsubscribe(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Streams.Public = true })
	c, _ := dialWelcome(t, srv, protoJSON, "jid="+anyCableToken(t, cableSecret, `{"user_id":"5"}`, time.Hour))
	id := pubsub("ops")
	c.send(subscribe(id))
	c.expect("confirm_subscription")
	if status, body := srv.API(t, "unsubscribe", map[string]any{"user": "5", "channel": "ops"}); status != 200 || body["error"] != nil {
		t.Fatalf("unsubscribe: %v", body)
	}
	waitFor(t, "the stream to end", func() bool { return !srv.Hub().Subscribed(srv.Hub().Clients()[0], "ops") })
	broadcast(t, srv, testAPIKey, map[string]any{"stream": "ops", "data": "1"})
	c.quiet(200 * time.Millisecond)
	if status, body := srv.API(t, "disconnect", map[string]any{"user": "5"}); status != 200 || body["error"] != nil {
		t.Fatalf("disconnect: %v", body)
	}
	_, _, msgs := c.expectClose()
	if len(msgs) != 1 || msgs[0]["reason"] != "remote" {
		t.Fatalf("messages %v", msgs)
	}
}
