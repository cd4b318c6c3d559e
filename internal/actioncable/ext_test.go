package actioncable_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
)

func TestHistoryWithStreamPositions(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true; c.ActionCable.Streams.Public = true })
	c, _ := dialWelcome(t, srv, protoExt, "")
	id := pubsub("hist")
	c.send(subscribe(id))
	c.expect("confirm_subscription")
	for i := 1; i <= 3; i++ {
		broadcast(t, srv, testAPIKey, map[string]any{"stream": "hist", "data": `{"i":` + string(rune('0'+i)) + `}`})
	}
	var epoch string
	for i := 1; i <= 3; i++ {
		m, _ := c.next(5 * time.Second)
		if m["stream_id"] != "hist" || m["offset"] != float64(i) {
			t.Fatalf("positions: %v", m)
		}
		epoch = m["epoch"].(string)
	}
	// After offset 1 of this epoch: 2 and 3, then confirm_history.
	c.send(map[string]any{"command": "history", "identifier": id,
		"history": map[string]any{"streams": map[string]any{"hist": map[string]any{"epoch": epoch, "offset": 1}}}})
	for i := 2; i <= 3; i++ {
		if m, raw := c.next(5 * time.Second); m["offset"] != float64(i) || m["identifier"] != id {
			t.Fatalf("history entry %s", raw)
		}
	}
	c.expect("confirm_history")
	// Since a time: all three.
	c.send(map[string]any{"command": "history", "identifier": id, "history": map[string]any{"since": time.Now().Add(-time.Minute).Unix()}})
	for i := 1; i <= 3; i++ {
		if m, raw := c.next(5 * time.Second); m["offset"] != float64(i) {
			t.Fatalf("since entry %s", raw)
		}
	}
	c.expect("confirm_history")
	// Another epoch cannot be served: reject_history and nothing else.
	c.send(map[string]any{"command": "history", "identifier": id,
		"history": map[string]any{"streams": map[string]any{"hist": map[string]any{"epoch": "gone", "offset": 1}}}})
	c.expect("reject_history")
	// An empty request is an error.
	c.send(map[string]any{"command": "history", "identifier": id, "history": map[string]any{}})
	c.expect("reject_history")
	// History attached to subscribe runs after the confirm.
	id2 := ident(map[string]any{"channel": "$pubsub", "stream_name": "hist", "tag": 2})
	c.send(map[string]any{"command": "subscribe", "identifier": id2,
		"history": map[string]any{"streams": map[string]any{"hist": map[string]any{"epoch": epoch, "offset": 2}}}})
	c.expect("confirm_subscription")
	if m, _ := c.next(5 * time.Second); m["offset"] != float64(3) || m["identifier"] != id2 {
		t.Fatalf("subscribe history %v", m)
	}
	c.expect("confirm_history")
}

func TestSessionRestoreWithSid(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Streams.Public = true })
	tok := anyCableToken(t, cableSecret, `{"user_id":"11"}`, time.Hour)
	c, w := dialWelcome(t, srv, protoExt, "jid="+tok)
	sid := w["sid"].(string)
	id := pubsub("keep")
	c.send(subscribe(id))
	c.expect("confirm_subscription")
	_ = c.conn.Close() // the network drops
	waitFor(t, "the session to end", func() bool { return srv.ActionCableSessions() == 0 })

	// Another credential cannot take the session.
	other := anyCableToken(t, cableSecret, `{"user_id":"12"}`, time.Hour)
	_, w2 := dialWelcome(t, srv, protoExt, "jid="+other+"&sid="+sid)
	if w2["restored"] != nil {
		t.Fatalf("restored with another token: %v", w2)
	}
	waitLog(t, srv, "session not restored: the connection presents other credentials")

	// That attempt used the sid up; a new session with its own sid restores.
	c3, w3 := dialWelcome(t, srv, protoExt, "jid="+tok)
	sid3 := w3["sid"].(string)
	c3.send(subscribe(id))
	c3.expect("confirm_subscription")
	_ = c3.conn.Close()
	waitFor(t, "the session to end", func() bool { return srv.ActionCableSessions() <= 1 })
	r, rw := dialWelcome(t, srv, protoExt, "jid="+tok+"&sid="+sid3)
	if rw["restored"] != true || rw["sid"] == sid3 {
		t.Fatalf("welcome %v", rw)
	}
	ids, _ := rw["restored_ids"].([]any)
	if len(ids) != 1 || ids[0] != id {
		t.Fatalf("restored_ids %v", rw["restored_ids"])
	}
	// The stream is followed again without a subscribe.
	broadcast(t, srv, testAPIKey, map[string]any{"stream": "keep", "data": `{"back":true}`})
	if m, raw := r.next(5 * time.Second); m["identifier"] != id || !strings.Contains(raw, `"back":true`) {
		t.Fatalf("got %s", raw)
	}
	// A session sent away with a disconnect message is not kept.
	broadcast(t, srv, testAPIKey, map[string]any{"command": "disconnect", "payload": map[string]any{"identifier": `{"user_id":"11"}`, "reconnect": true}})
	r.expectClose()
	_, w4 := dialWelcome(t, srv, protoExt, "jid="+tok+"&sid="+rw["sid"].(string))
	if w4["restored"] != nil {
		t.Fatalf("a kicked session was restored: %v", w4)
	}
}

func TestPresenceAndWhisperOnPublicStreams(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true; c.ActionCable.Streams.Public = true })
	a, _ := dialWelcome(t, srv, protoExt, "")
	b, _ := dialWelcome(t, srv, protoExt, "")
	plain, _ := dialWelcome(t, srv, protoJSON, "")
	id := pubsub("room")
	for _, c := range []*cable{a, b, plain} {
		c.send(subscribe(id))
		c.expect("confirm_subscription")
	}
	a.send(map[string]any{"command": "join", "identifier": id, "presence": map[string]any{"id": "alice", "info": map[string]any{"name": "Alice"}}})
	for _, c := range []*cable{a, b} {
		m := c.expect("presence")
		msg := m["message"].(map[string]any)
		if msg["type"] != "join" || msg["id"] != "alice" || msg["info"].(map[string]any)["name"] != "Alice" {
			t.Fatalf("join event %v", m)
		}
	}
	// A second session with the same presence id is not a second join.
	b.send(map[string]any{"command": "join", "identifier": id, "presence": map[string]any{"id": "alice"}})
	b.send(map[string]any{"command": "presence", "identifier": id, "data": map[string]any{"return_records": true}})
	m := b.expect("presence")
	msg := m["message"].(map[string]any)
	recs, _ := msg["records"].([]any)
	if msg["type"] != "info" || msg["total"] != float64(1) || len(recs) != 1 {
		t.Fatalf("info %v", m)
	}
	// Whisper: to the others, not to the sender, not stored.
	a.send(map[string]any{"command": "whisper", "identifier": id, "data": map[string]any{"typing": true}})
	for _, c := range []*cable{b, plain} {
		if m, raw := c.next(5 * time.Second); !strings.Contains(raw, `"message":{"typing":true}`) || m["offset"] != nil {
			t.Fatalf("whisper %s", raw)
		}
	}
	a.quiet(200 * time.Millisecond)
	// The leave is announced when the last session of the id leaves.
	a.send(map[string]any{"command": "leave", "identifier": id})
	b.quiet(200 * time.Millisecond)
	b.send(map[string]any{"command": "unsubscribe", "identifier": id})
	if m := a.expect("presence"); m["message"].(map[string]any)["type"] != "leave" {
		t.Fatalf("leave %v", m)
	}
	plain.quiet(200 * time.Millisecond) // presence events are for the extended protocol
	// Ext commands on the plain protocol are ignored.
	plain.send(map[string]any{"command": "presence", "identifier": id, "data": map[string]any{}})
	plain.quiet(200 * time.Millisecond)
	waitLog(t, srv, "it needs the extended protocol")
}

func TestSignedStreamsHavePresenceAndWhisperOnlyWhenConfigured(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true })
	c, _ := dialWelcome(t, srv, protoExt, "")
	id := signedID("$pubsub", signStream("sig"))
	c.send(subscribe(id))
	c.expect("confirm_subscription")
	c.send(map[string]any{"command": "join", "identifier": id, "presence": map[string]any{"id": "x"}})
	if m := c.expect("presence"); m["message"].(map[string]any)["type"] != "error" {
		t.Fatalf("got %v", m)
	}
	c.send(map[string]any{"command": "whisper", "identifier": id, "data": "hi"})
	c.quiet(200 * time.Millisecond)
	waitLog(t, srv, "whisper ignored", "presence join refused")
}
