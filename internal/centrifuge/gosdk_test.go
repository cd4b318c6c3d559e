package centrifuge_test

import (
	"context"
	"testing"
	"time"

	cfgo "github.com/centrifugal/centrifuge-go"

	"github.com/heraldhub/herald/internal/testutil"
)

// recv reads the next value of ch within five seconds.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s within 5s", what)
	}
	var zero T
	return zero
}

// The Go SDK (centrifuge-go) over Protobuf: connect with a token,
// subscribe, publish, presence, history, and recovery after a forced
// reconnect.
func TestGoSDKOverProtobuf(t *testing.T) {
	srv := testutil.Start(t, nil)
	c := cfgo.NewProtobufClient(srv.WSURL()+"?cf_protocol_version=v2", cfgo.Config{Token: testutil.UserToken(t, "gopher")})
	defer c.Close()
	connected := make(chan cfgo.ConnectedEvent, 4)
	c.OnConnected(func(e cfgo.ConnectedEvent) { connected <- e })
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, connected, "connect"); e.ClientID == "" {
		t.Fatalf("connected %+v", e)
	}
	sub, err := c.NewSubscription("gonews", cfgo.SubscriptionConfig{Recoverable: true})
	if err != nil {
		t.Fatal(err)
	}
	pubs := make(chan cfgo.PublicationEvent, 16)
	subscribed := make(chan cfgo.SubscribedEvent, 4)
	sub.OnPublication(func(e cfgo.PublicationEvent) { pubs <- e })
	sub.OnSubscribed(func(e cfgo.SubscribedEvent) { subscribed <- e })
	if err := sub.Subscribe(); err != nil {
		t.Fatal(err)
	}
	first := recv(t, subscribed, "subscribe")
	if !first.Recoverable {
		t.Fatalf("subscribed %+v", first)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if status, _ := srv.API(t, "publish", map[string]any{"channel": "gonews", "data": map[string]any{"n": 1}}); status != 200 {
		t.Fatal("api publish")
	}
	if p := recv(t, pubs, "the API publication"); string(p.Data) != `{"n":1}` {
		t.Fatalf("publication %q", p.Data)
	}
	if _, err := sub.Publish(ctx, []byte{0xde, 0xad, 0xbe, 0xef}); err != nil {
		t.Fatal(err)
	}
	if p := recv(t, pubs, "the client publication"); string(p.Data) != "\xde\xad\xbe\xef" || p.Info == nil || p.Info.User != "gopher" {
		t.Fatalf("publication %+v", p)
	}
	pr, err := sub.Presence(ctx)
	if err != nil || len(pr.Clients) != 1 {
		t.Fatalf("presence %+v %v", pr, err)
	}
	hist, err := sub.History(ctx, cfgo.WithHistoryLimit(10))
	if err != nil || len(hist.Publications) != 2 {
		t.Fatalf("history %+v %v", hist, err)
	}

	// A forced reconnect: what was published meanwhile is recovered.
	if status, _ := srv.API(t, "disconnect", map[string]any{"user": "gopher", "disconnect": map[string]any{"code": 4000, "reason": "again"}}); status != 200 {
		t.Fatal("api disconnect")
	}
	if status, _ := srv.API(t, "publish", map[string]any{"channel": "gonews", "data": map[string]any{"n": 3}}); status != 200 {
		t.Fatal("api publish")
	}
	recv(t, connected, "the reconnect")
	again := recv(t, subscribed, "the resubscribe")
	if !again.WasRecovering || !again.Recovered {
		t.Fatalf("resubscribed %+v", again)
	}
	if p := recv(t, pubs, "the recovered publication"); string(p.Data) != `{"n":3}` {
		t.Fatalf("recovered %q", p.Data)
	}
}
