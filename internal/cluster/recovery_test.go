package cluster_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/heraldhub/herald/internal/testutil"
)

// A Centrifugo client that moves from node A to node B recovers what was
// published meanwhile through other nodes, from the shared stream.
func TestRecoveryAfterMovingToAnotherNode(t *testing.T) {
	eachBroker(t, func(t *testing.T, start startFunc) {
		c := start(t, 3, nil)
		a, b, cn := c.Nodes[0], c.Nodes[1], c.Nodes[2]
		onA := a.Dial(t, nil)
		onA.Connect(testutil.UserToken(t, "mover"))
		res := onA.Call("subscribe", map[string]any{"channel": "feed", "recoverable": true})["subscribe"].(map[string]any)
		epoch, _ := res["epoch"].(string)
		if epoch == "" || res["recoverable"] != true {
			t.Fatalf("subscribe result %v: want a recoverable, positioned subscription", res)
		}
		apiPublish(t, cn, "feed", map[string]any{"n": 1})
		last := expectPub(t, onA, "feed", msg(1))
		_ = onA.Conn.Close()

		// Published while the client moves: through C's API and B's Mercure door.
		apiPublish(t, cn, "feed", map[string]any{"n": 2})
		b.Publish(t, url.Values{"topic": {"feed"}, "data": {msg(3)}})

		onB := b.Dial(t, nil)
		onB.Connect(testutil.UserToken(t, "mover"))
		r := onB.Call("subscribe", map[string]any{"channel": "feed", "recoverable": true, "recover": true,
			"offset": last.Offset, "epoch": epoch})["subscribe"].(map[string]any)
		pubs, _ := r["publications"].([]any)
		if r["recovered"] != true || r["was_recovering"] != true || len(pubs) != 2 || r["epoch"] != epoch {
			t.Fatalf("recovery on node B: %v", r)
		}
		for i, p := range pubs {
			m := p.(map[string]any)
			if m["offset"] != float64(last.Offset+uint64(i)+1) || fmt.Sprint(m["data"]) != fmt.Sprint(map[string]any{"n": float64(i + 2)}) {
				t.Fatalf("recovered publication %d: %v", i, m)
			}
		}
		// And it follows the stream live from there, with no duplicate.
		apiPublish(t, a, "feed", map[string]any{"n": 4})
		if p := expectPub(t, onB, "feed", msg(4)); p.Offset != last.Offset+3 {
			t.Fatalf("live publication at offset %d, want %d", p.Offset, last.Offset+3)
		}

		// A position the stream no longer holds (another epoch) is told, not
		// silently skipped: recovered false.
		other := cn.Dial(t, nil)
		other.Connect(testutil.UserToken(t, "mover"))
		r = other.Call("subscribe", map[string]any{"channel": "feed", "recoverable": true, "recover": true,
			"offset": 1, "epoch": "not-the-epoch"})["subscribe"].(map[string]any)
		if r["recovered"] == true || r["was_recovering"] != true || r["publications"] != nil {
			t.Fatalf("recovery from another epoch: %v", r)
		}
	})
}

// A Mercure subscriber that reconnects to another node with Last-Event-ID
// replays what it missed, whatever node and door published it.
func TestLastEventIDAfterMovingToAnotherNode(t *testing.T) {
	eachBroker(t, func(t *testing.T, start startFunc) {
		c := start(t, 3, nil)
		a, b, cn := c.Nodes[0], c.Nodes[1], c.Nodes[2]
		onA := mercureSubscriber(t, a, "", "books")
		cn.Publish(t, url.Values{"topic": {"books"}, "data": {msg(1)}})
		first := expectEvent(t, onA, msg(1))
		onA.Close()

		apiPublish(t, cn, "books", map[string]any{"n": 2})
		a.Publish(t, url.Values{"topic": {"books"}, "data": {msg(3)}, "id": {"third"}})
		apiPublish(t, b, "other-topic", map[string]any{"n": 0}) // not for this subscriber

		onB := mercureSubscriber(t, b, first.ID, "books")
		expectEvent(t, onB, msg(2))
		if ev := expectEvent(t, onB, msg(3)); ev.ID != "third" {
			t.Fatalf("replayed event id %q, want the publisher's id third", ev.ID)
		}
		// Then live, once.
		a.Publish(t, url.Values{"topic": {"books"}, "data": {msg(4)}})
		expectEvent(t, onB, msg(4))

		// The same replay on node C, from the publisher-chosen id.
		onC := mercureSubscriber(t, cn, "third", "books")
		expectEvent(t, onC, msg(4))
	})
}
