package cluster_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker/brokertest"
	"github.com/heraldhub/herald/internal/testutil"
)

// Redis stopped and restarted mid-stream, with publications flowing through
// node A (server API and Mercure) to subscribers on node B (Centrifugo and
// Mercure):
//   - while Redis is away, publishing through any door answers a clear
//     temporary error (503 with the reason, client error 100), never a false
//     success; clients stay connected; /health answers 503; the log says so;
//   - once it is back, every node is healthy again, and the clients that
//     may have missed publications are told by their protocol (unsubscribe
//     2500 then recovery; the Mercure stream closed, then Last-Event-ID);
//   - nothing is delivered twice, and with Redis's data kept nothing
//     accepted is lost; with Redis restarted empty the clients are told
//     their position is gone (recovered false; Last-Event-ID: earliest).
func TestRedisRestartMidStream(t *testing.T) {
	for _, tc := range []struct {
		name    string
		persist bool
	}{{"WithItsData", true}, {"Empty", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var r *brokertest.RedisServer
			if tc.persist {
				r = brokertest.StartRedis(t, "appendonly yes", "appendfsync always")
			} else {
				r = brokertest.StartRedis(t)
			}
			c := testutil.StartClusterAt(t, r.Addr(), 2, longHistory)
			testOutage(t, c, r.Stop, r.Restart, "redis", tc.persist)
		})
	}
}

// The same with a whole Redis Cluster stopped and restarted mid-stream,
// empty.
func TestRedisClusterRestartMidStream(t *testing.T) {
	c := testutil.StartClusterOnRedisCluster(t, 2, longHistory)
	testOutage(t, c, c.RedisCluster.Stop, c.RedisCluster.Restart, "redis", false)
}

// The same with NATS stopped and restarted mid-stream, history and
// presence in Redis staying up: nothing accepted is lost.
func TestNATSRestartMidStream(t *testing.T) {
	c := testutil.StartNATSCluster(t, 2, longHistory)
	testOutage(t, c, c.NATS.Stop, c.NATS.Restart, "nats", true)
}

// testOutage stops the broker's service (stop), checks the failure
// behaviour, starts it again (start) and checks that the clients were told
// and lost nothing (persist: the history survived) or were told that their
// position is gone.
func testOutage(t *testing.T, c *testutil.Cluster, stop func(), start func(testing.TB), service string, persist bool) {
	a, b := c.Nodes[0], c.Nodes[1]
	cent, merc := followOn(t, b, "live")
	pub := publishThrough(t, a, "live", 1, 10*time.Millisecond)
	waitAccepted(t, pub, 20)

	stop()
	refusedBefore := func() int { _, ref, _ := pub.Results(); return len(ref) }
	testutil.Eventually(t, wait, func() error {
		if n := refusedBefore(); n < 5 {
			return fmt.Errorf("%d publications refused so far", n)
		}
		return nil
	})
	for _, n := range c.Nodes {
		body := n.WaitHealth(t, http.StatusServiceUnavailable, wait)
		if !strings.Contains(body, `"status":"broker unavailable"`) || !strings.Contains(body, service) {
			t.Fatalf("/health of %s with %s away: %s", n.Addr, service, body)
		}
		waitLog(t, n, "broker unavailable: publications are refused")
	}
	checkRefusals(t, a)

	start(t)
	for _, n := range c.Nodes {
		n.WaitHealth(t, http.StatusOK, 10*time.Second)
		waitLog(t, n, "broker available again")
	}
	// The clients are told, and come back.
	testutil.Eventually(t, 10*time.Second, func() error {
		if !cent.hasEvent("recovered") || !merc.hasEvent("reconnected") {
			return fmt.Errorf("not told yet: centrifugo %v, mercure %v", cent.Events(), merc.Events())
		}
		return nil
	})
	mark := pub.Last()
	waitAccepted(t, pub, mark+30)
	pub.Stop()
	accepted, refused, unexpected := pub.Results()
	if len(unexpected) > 0 {
		t.Fatalf("publications neither accepted nor refused with a reason: %v", unexpected)
	}
	if !cent.hasEvent("unsubscribe 2500") || cent.hasEvent("closed") {
		t.Fatalf("the Centrifugo client must stay connected and get unsubscribe 2500: %v", cent.Events())
	}
	if !merc.hasEvent("stream ended") {
		t.Fatalf("the Mercure stream must be closed so that it reconnects: %v", merc.Events())
	}
	want := accepted
	if !persist {
		// Redis lost the streams: the clients are told their position is
		// gone; what was accepted once they followed again arrives.
		if !cent.hasEvent("recovered false") || !merc.hasEvent("reconnected, Last-Event-ID earliest") {
			t.Fatalf("clients not told that their position is gone: centrifugo %v, mercure %v", cent.Events(), merc.Events())
		}
		want = map[int]bool{}
		for n := range accepted {
			if n > mark {
				want[n] = true
			}
		}
		for n := range accepted {
			refused[n] = true // may have arrived or not; never twice
		}
	} else if cent.hasEvent("recovered false") {
		t.Fatalf("with the history kept the Centrifugo client must recover: %v", cent.Events())
	}
	for name, f := range map[string]*seen{"centrifugo": &cent.seen, "mercure": &merc.seen} {
		testutil.Eventually(t, 10*time.Second, func() error {
			if err := f.check(want, refused); err != nil {
				return fmt.Errorf("%s follower: %v", name, err)
			}
			return nil
		})
	}
	t.Logf("%d publications accepted, %d refused while %s was away; centrifugo %v; mercure %v",
		len(accepted), len(refused), service, cent.Events(), merc.Events())
}

// waitAccepted waits until the publisher had n publications accepted.
func waitAccepted(t *testing.T, p *publisher, n int) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		acc, _, unexpected := p.Results()
		if len(unexpected) > 0 {
			t.Fatalf("unexpected publish results: %v", unexpected)
		}
		if len(acc) < n {
			return fmt.Errorf("%d publications accepted, want %d", len(acc), n)
		}
		return nil
	})
}

func waitLog(t *testing.T, n *testutil.Server, text string) {
	t.Helper()
	testutil.Eventually(t, wait, func() error {
		if !strings.Contains(n.Logs.String(), text) {
			return fmt.Errorf("%s did not log %q", n.Addr, text)
		}
		return nil
	})
}

// checkRefusals publishes through every door of n while the broker is
// away: each refuses with a temporary error and the reason.
func checkRefusals(t *testing.T, n *testutil.Server) {
	t.Helper()
	st, res := n.API(t, "publish", map[string]any{"channel": "live", "data": map[string]any{"n": -1}})
	e, _ := res["error"].(map[string]any)
	if st != http.StatusServiceUnavailable || e["code"] != float64(100) || e["temporary"] != true ||
		!strings.Contains(fmt.Sprint(e["message"]), "broker unavailable") {
		t.Fatalf("API publish with Redis away: %d %v; want 503, code 100, temporary, the reason", st, res)
	}
	st, body, h := n.MercurePost(t, http.Header{"Authorization": {"Bearer " + testutil.PublisherToken(t, "*")}},
		url.Values{"topic": {"live"}, "data": {`{"n":-1}`}})
	if st != http.StatusServiceUnavailable || !strings.Contains(body, "broker unavailable") || h.Get("Retry-After") == "" {
		t.Fatalf("Mercure POST with Redis away: %d %q; want 503 with the reason and Retry-After", st, body)
	}
	cl := n.Dial(t, nil)
	cl.Connect(testutil.UserToken(t, "publisher"))
	rep := cl.Call("publish", map[string]any{"channel": "live", "data": map[string]any{"n": -1}})
	ce, _ := rep["error"].(map[string]any)
	if ce["code"] != float64(100) || ce["temporary"] != true {
		t.Fatalf("client publish with Redis away: %v; want error 100, temporary", rep)
	}
	// The connection stays and answers.
	if r := cl.Call("rpc", map[string]any{"method": "x"}); r == nil {
		t.Fatal("the client's connection did not stay")
	}
}
