package actioncable_test

import (
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
)

// The Action Cable door is counted like every door: its connection and
// subscription, the broadcasts written to it and their latency, a refused
// broadcast, and the client leaving.
func TestMetricsCountTheCableDoor(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true; c.ActionCable.Streams.Public = true })
	c, _ := dialWelcome(t, srv, protoJSON, "")
	c.send(subscribe(pubsub("metered")))
	c.expect("confirm_subscription")
	for range 2 {
		broadcast(t, srv, testAPIKey, map[string]any{"stream": "metered", "data": `{"n":1}`})
		c.next(5 * time.Second)
	}
	if st, _ := broadcast(t, srv, "wrong-key", map[string]any{"stream": "metered", "data": `{}`}); st == 200 {
		t.Fatal("a broadcast with a wrong key was accepted")
	}
	door := "actioncable/websocket"
	value := func(name string, by ...string) func() float64 {
		return func() float64 { return srv.Metrics().Snapshot().Values(name, by...)[door] }
	}
	for _, chk := range []struct {
		what string
		get  func() float64
		ok   func(float64) bool
	}{
		{"connections", value("connections", "door", "transport"), func(v float64) bool { return v == 1 }},
		{"subscriptions", value("subscriptions", "door", "transport"), func(v float64) bool { return v == 1 }},
		{"messages written (welcome, confirmation, two broadcasts)", value("messages_written_total", "door", "transport"), func(v float64) bool { return v >= 4 }},
		{"broadcast latency", func() float64 {
			return srv.Metrics().Snapshot().Values("publish_latency_seconds", "door")["actioncable"]
		},
			func(v float64) bool { return v >= 1 }},
		{"the refused broadcast", func() float64 { return srv.Metrics().Snapshot().Values("refusals_total", "door")["actioncable"] },
			func(v float64) bool { return v == 1 }},
	} {
		waitFor(t, chk.what, func() bool { return chk.ok(chk.get()) })
	}
	_ = c.conn.Close()
	waitFor(t, "the client's leaving", func() bool {
		return srv.Metrics().Snapshot().Values("disconnects_total", "door", "code")["actioncable/client_closed"] == 1
	})
}
