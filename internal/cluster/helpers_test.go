package cluster_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

const wait = 5 * time.Second

// subscriber is a Centrifugo client connected to one node and subscribed
// to channels.
func subscriber(t *testing.T, n *testutil.Server, user string, channels ...string) *testutil.Client {
	t.Helper()
	c := n.Dial(t, nil)
	c.Connect(testutil.UserToken(t, user))
	for _, ch := range channels {
		if r := c.Call("subscribe", map[string]any{"channel": ch}); r["error"] != nil {
			t.Fatalf("subscribe %s on %s: %v", ch, n.Addr, r)
		}
	}
	return c
}

// mercureSubscriber opens a Mercure stream on n for topics, with a token
// that may receive them (publications of other doors are private), and
// waits for the hub's opening comment.
func mercureSubscriber(t *testing.T, n *testutil.Server, lastEventID string, topics ...string) *testutil.SSE {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + testutil.SubscriberToken(t, topics...)}}
	if lastEventID != "" {
		h.Set("Last-Event-ID", lastEventID)
	}
	s := n.Subscribe(t, url.Values{"topic": topics}, h)
	if s.Resp.StatusCode != http.StatusOK {
		t.Fatalf("mercure subscribe on %s: %d %s", n.Addr, s.Resp.StatusCode, s.Body())
	}
	if l, ok := s.Line(wait); !ok || l != ":" {
		t.Fatalf("mercure stream on %s opened with %q", n.Addr, l)
	}
	return s
}

// apiPublish publishes JSON data through n's server API and returns the
// result (offset, epoch).
func apiPublish(t *testing.T, n *testutil.Server, channel string, data any) map[string]any {
	t.Helper()
	st, res := n.API(t, "publish", map[string]any{"channel": channel, "data": data})
	if st != http.StatusOK || res["error"] != nil {
		t.Fatalf("publish on %s: %d %v", n.Addr, st, res)
	}
	r, _ := res["result"].(map[string]any)
	return r
}

// apiResult calls a server API method on n and returns its result.
func apiResult(t *testing.T, n *testutil.Server, method string, body any) map[string]any {
	t.Helper()
	st, res := n.API(t, method, body)
	if st != http.StatusOK || res["error"] != nil {
		t.Fatalf("%s on %s: %d %v", method, n.Addr, st, res)
	}
	r, _ := res["result"].(map[string]any)
	return r
}

// pub is a publication push as a Centrifugo client sees it.
type pub struct {
	Channel string
	Data    string // raw JSON
	Offset  uint64
}

// nextPub waits for the next publication push (skipping joins and leaves).
func nextPub(t *testing.T, c *testutil.Client) pub {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		push := c.WaitPush(time.Until(deadline))
		p, ok := push["pub"].(map[string]any)
		if !ok {
			if push["join"] != nil || push["leave"] != nil {
				continue
			}
			t.Fatalf("push %v, want a publication", push)
		}
		ch, _ := push["channel"].(string)
		b, _ := json.Marshal(p["data"])
		off, _ := p["offset"].(float64)
		return pub{Channel: ch, Data: string(b), Offset: uint64(off)}
	}
	t.Fatalf("no publication within %s", wait)
	return pub{}
}

// expectPub waits for a publication with data on channel.
func expectPub(t *testing.T, c *testutil.Client, channel, data string) pub {
	t.Helper()
	p := nextPub(t, c)
	if p.Channel != channel || p.Data != data {
		t.Fatalf("got %+v, want %s on %s", p, data, channel)
	}
	return p
}

// expectEvent waits for the next Mercure event and checks its data.
func expectEvent(t *testing.T, s *testutil.SSE, data string) testutil.SSEEvent {
	t.Helper()
	ev := s.Next(wait)
	if ev.Data != data {
		t.Fatalf("mercure event %+v, want data %s", ev, data)
	}
	return ev
}

func msg(i int) string { return fmt.Sprintf(`{"n":%d}`, i) }

// longHistory keeps enough history for the clients of a test to recover
// from any outage it makes.
func longHistory(_ int, cfg *config.Config) {
	cfg.Channel.WithoutNamespace.HistorySize = 100000
	cfg.Mercure.HistorySize = 100000
}

// startFunc starts a cluster of n nodes (testutil.StartCluster,
// testutil.StartNATSCluster).
type startFunc func(t testing.TB, n int, configure func(int, *config.Config)) *testutil.Cluster

// eachBroker runs f against clusters of every multi-node broker: Redis
// (one server, and a Redis Cluster), and NATS with history and presence in
// Redis.
func eachBroker(t *testing.T, f func(t *testing.T, start startFunc)) {
	t.Run("Redis", func(t *testing.T) { f(t, testutil.StartCluster) })
	t.Run("RedisCluster", func(t *testing.T) { f(t, testutil.StartClusterOnRedisCluster) })
	t.Run("NATS", func(t *testing.T) { f(t, testutil.StartNATSCluster) })
}
