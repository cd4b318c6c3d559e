package server_test

// Tests of /metrics: who may scrape it, and that its values move as they
// must under real traffic through every door (WebSocket, Mercure, the
// server API), refusals, backend calls and slow clients.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker/brokertest"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

const adminKey = "test-admin-key-0123456789"

// metricsConfig is the test configuration with /metrics on the main
// listener behind the admin key.
func metricsConfig() *config.Config {
	cfg := testutil.Config()
	cfg.Admin.Key = adminKey
	cfg.Metrics.Enabled = true
	return cfg
}

// scrapeAt GETs a /metrics URL with header and parses the text format.
func scrapeAt(t *testing.T, u string, header http.Header) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return resp.StatusCode, fams
}

// scrape reads the main listener's /metrics with the admin key.
func scrape(t *testing.T, srv *testutil.Server) map[string]*dto.MetricFamily {
	t.Helper()
	st, fams := scrapeAt(t, "http://"+srv.Addr+"/metrics", http.Header{"X-Admin-Key": {adminKey}})
	if st != http.StatusOK {
		t.Fatalf("/metrics with the admin key: HTTP %d", st)
	}
	return fams
}

// metricValue sums the series of name whose labels include labels (a
// histogram's value is its count); -1 when the metric has no such series.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	sum, found := 0.0, false
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			if have[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	if !found {
		return -1
	}
	return sum
}

// series lists the label sets of name, for failure messages.
func series(fams map[string]*dto.MetricFamily, name string) string {
	var out []string
	for _, m := range fams[name].GetMetric() {
		var ls []string
		for _, lp := range m.GetLabel() {
			ls = append(ls, lp.GetName()+"="+lp.GetValue())
		}
		out = append(out, "{"+strings.Join(ls, ",")+"}")
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// waitMetric scrapes until cond holds for the value of name{labels}.
func waitMetric(t *testing.T, srv *testutil.Server, what string, cond func(float64) bool, name string, labels ...string) {
	t.Helper()
	var v float64
	var fams map[string]*dto.MetricFamily
	ok := eventually(5*time.Second, func() bool {
		fams = scrape(t, srv)
		v = metricValue(fams, name, labels...)
		return cond(v)
	})
	if !ok {
		t.Fatalf("%s: %s%v = %v; series: %s", what, name, labels, v, series(fams, name))
	}
}

func equals(want float64) func(float64) bool  { return func(v float64) bool { return v == want } }
func atLeast(want float64) func(float64) bool { return func(v float64) bool { return v >= want } }

func TestMetricsEndpointNeedsTheAdminKey(t *testing.T) {
	srv := testutil.Start(t, metricsConfig())
	u := "http://" + srv.Addr + "/metrics"
	for _, c := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"no key", nil, http.StatusUnauthorized},
		{"wrong key", http.Header{"X-Admin-Key": {"nope"}}, http.StatusUnauthorized},
		{"wrong bearer", http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized},
		{"X-Admin-Key", http.Header{"X-Admin-Key": {adminKey}}, http.StatusOK},
		{"Authorization: Bearer", http.Header{"Authorization": {"Bearer " + adminKey}}, http.StatusOK},
	} {
		if st, _ := scrapeAt(t, u, c.header); st != c.want {
			t.Errorf("%s: HTTP %d, want %d", c.name, st, c.want)
		}
	}
	fams := scrape(t, srv)
	if v := metricValue(fams, "herald_refusals_total", "reason", "admin_key_wrong", "door", "admin"); v != 3 {
		t.Errorf("admin_key_wrong refusals = %v, want 3 (the wrong keys above); series: %s", v, series(fams, "herald_refusals_total"))
	}
	for _, name := range []string{"herald_build_info", "go_goroutines", "process_resident_memory_bytes", "herald_broker_up", "herald_nodes"} {
		if metricValue(fams, name) < 0 {
			t.Errorf("%s is missing", name)
		}
	}

	// Off unless enabled.
	off := testutil.Start(t, nil)
	if st, _ := scrapeAt(t, "http://"+off.Addr+"/metrics", http.Header{"X-Admin-Key": {adminKey}}); st != http.StatusNotFound {
		t.Errorf("metrics.enabled off: HTTP %d, want 404", st)
	}

	// Open in development mode.
	dev := metricsConfig()
	dev.Dev, dev.Admin.Key = true, ""
	devSrv := testutil.Start(t, dev)
	if st, _ := scrapeAt(t, "http://"+devSrv.Addr+"/metrics", nil); st != http.StatusOK {
		t.Errorf("dev mode: HTTP %d, want 200 without a key", st)
	}
}

func TestMetricsOnAListenerOfTheirOwn(t *testing.T) {
	cfg := testutil.Config()
	cfg.Metrics.Enabled = true
	cfg.Metrics.Listen = "127.0.0.1:0"
	srv := testutil.Start(t, cfg)
	if srv.MetricsAddr() == "" || srv.MetricsAddr() == srv.Addr {
		t.Fatalf("metrics address %q (main %q)", srv.MetricsAddr(), srv.Addr)
	}
	st, fams := scrapeAt(t, "http://"+srv.MetricsAddr()+"/metrics", nil)
	if st != http.StatusOK || metricValue(fams, "herald_build_info", "version", "test") != 1 {
		t.Fatalf("metrics.listen: HTTP %d, build_info %v", st, metricValue(fams, "herald_build_info"))
	}
	if st, _ := scrapeAt(t, "http://"+srv.Addr+"/metrics", nil); st != http.StatusNotFound {
		t.Errorf("main listener /metrics with metrics.listen set: HTTP %d, want 404", st)
	}
}

// Real traffic through the WebSocket door, Mercure and the server API:
// connections, subscriptions, refusals, publications, deliveries, writes,
// latency, broker operations and disconnects each move as they must.
func TestMetricsFollowTraffic(t *testing.T) {
	srv := testutil.Start(t, metricsConfig())
	ws := []string{"door", "centrifugo", "transport", "websocket"}
	base := scrape(t, srv)

	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "alice"))
	c.Call("subscribe", map[string]any{"channel": "news"})
	sse := subscribeOK(t, srv, topics("news"), mbearer(testutil.SubscriberToken(t, "news")))

	// A connection with a token signed by another key is refused.
	bad := srv.Dial(t, nil)
	badTok, _ := auth.SignHS256("some-other-secret-0123456789abcdef", map[string]any{"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()})
	bad.Send(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, badTok))
	bad.ExpectClose(5 * time.Second)

	const n = 5
	for i := range n {
		if st, res := srv.API(t, "publish", map[string]any{"channel": "news", "data": map[string]any{"n": i}}); st != 200 || res["error"] != nil {
			t.Fatalf("publish: %d %v", st, res)
		}
		pushData(t, c, "news")
		sse.Next(sseWait)
	}
	srv.Publish(t, url.Values{"topic": {"news"}, "data": {`{"from":"mercure"}`}})
	pushData(t, c, "news")
	sse.Next(sseWait)

	fams := scrape(t, srv)
	for _, chk := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"herald_connections", ws, 1},
		{"herald_subscriptions", ws, 1},
		{"herald_connects_total", ws, 1},
		{"herald_connections", []string{"door", "mercure", "transport", "sse"}, 1},
		{"herald_subscriptions", []string{"door", "mercure", "transport", "sse"}, 1},
		{"herald_refusals_total", []string{"reason", "signature_invalid", "door", "centrifugo"}, 1},
		{"herald_publications_total", nil, n + 1},
		{"herald_deliveries_total", nil, 2 * (n + 1)},
		{"herald_broker_operation_duration_seconds", []string{"broker", "memory", "op", "publish"}, n + 1},
		{"herald_channels", nil, 1},
		{"herald_broker_up", []string{"broker", "memory"}, 1},
	} {
		if got := metricValue(fams, chk.name, chk.labels...); got != chk.want {
			t.Errorf("%s%v = %v, want %v; series: %s", chk.name, chk.labels, got, chk.want, series(fams, chk.name))
		}
	}
	// Writes are counted once the write returns, which may be just after
	// the client read it.
	waitMetric(t, srv, "publications written to the WebSocket client", atLeast(n+1), "herald_messages_written_total", ws...)
	waitMetric(t, srv, "latency observed for the WebSocket door", atLeast(1), "herald_publish_latency_seconds", "door", "centrifugo")
	waitMetric(t, srv, "latency observed for Mercure", atLeast(1), "herald_publish_latency_seconds", "door", "mercure")
	fams = scrape(t, srv)
	if b := metricValue(fams, "herald_written_bytes_total", ws...); b <= 0 {
		t.Errorf("written bytes %v", b)
	}
	if w, m := metricValue(fams, "herald_writes_total", ws...), metricValue(fams, "herald_messages_written_total", ws...); w <= 0 || w > m {
		t.Errorf("writes %v, messages %v: a write carries one message or more", w, m)
	}
	if metricValue(base, "herald_publications_total") != 0 {
		t.Errorf("publications before any traffic: %v", metricValue(base, "herald_publications_total"))
	}

	// The server disconnects alice: counted under the code her client got.
	if st, res := srv.API(t, "disconnect", map[string]any{"user": "alice"}); st != 200 || res["error"] != nil {
		t.Fatalf("disconnect: %d %v", st, res)
	}
	code, _ := c.ExpectClose(5 * time.Second)
	waitMetric(t, srv, "alice's disconnect", equals(1), "herald_disconnects_total", "door", "centrifugo", "code", fmt.Sprint(code))
	waitMetric(t, srv, "no WebSocket connection left", equals(0), "herald_connections", ws...)
	waitMetric(t, srv, "no WebSocket subscription left", equals(0), "herald_subscriptions", ws...)
	// The Mercure subscriber leaves.
	sse.Close()
	waitMetric(t, srv, "the Mercure subscriber's end", equals(1), "herald_disconnects_total", "door", "mercure", "code", "client_closed")
	waitMetric(t, srv, "no Mercure connection left", equals(0), "herald_connections", "door", "mercure")
}

// A client that stops reading is dropped: a slow-client disconnect with
// cause queue_full, the messages it lost, and its close code.
func TestMetricsCountSlowClients(t *testing.T) {
	cfg := metricsConfig()
	cfg.Client.QueueMaxSize = 64 << 10
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "slow"))
	c.Call("subscribe", map[string]any{"channel": "firehose"})
	srv.FloodUntilGone("firehose", "slow") // the client stops reading
	waitMetric(t, srv, "slow client dropped", equals(1), "herald_slow_client_disconnects_total", "door", "centrifugo", "cause", "queue_full")
	waitMetric(t, srv, "its queued messages dropped", atLeast(1), "herald_queue_dropped_messages_total", "door", "centrifugo")
	waitMetric(t, srv, "its disconnect under 3008", equals(1), "herald_disconnects_total", "door", "centrifugo", "code", "3008")
}

// Calls to the team's backends: the connect proxy by outcome, timed, and
// JWKS fetches by outcome.
func TestMetricsCountBackendCalls(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(status.Load()))
		fmt.Fprint(w, `{"result":{"user":"56"}}`)
	}))
	defer be.Close()
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer jwks.Close()

	cfg := metricsConfig()
	cfg.Client.Proxy.Connect = config.Proxy{Enabled: true, Endpoint: be.URL, Timeout: config.Duration(2 * time.Second)}
	cfg.Client.Token.Keys = []config.Key{{JWKSURL: jwks.URL, RefreshInterval: config.Duration(time.Hour)}}
	srv := testutil.Start(t, cfg)

	c := srv.Dial(t, nil)
	if res := c.Connect(""); res["client"] == nil {
		t.Fatalf("connect through the proxy: %v", res)
	}
	status.Store(http.StatusInternalServerError)
	c2 := srv.Dial(t, nil)
	c2.Send(`{"id":1,"connect":{}}`)
	c2.Next(5 * time.Second)

	labels := []string{"proxy", "connect", "call", "connect"}
	waitMetric(t, srv, "accepted proxy call", equals(1), "herald_proxy_calls_total", append(labels, "outcome", "ok")...)
	waitMetric(t, srv, "proxy call answered 500", equals(1), "herald_proxy_calls_total", append(labels, "outcome", "proxy_http_status")...)
	waitMetric(t, srv, "proxy calls timed", equals(2), "herald_proxy_call_duration_seconds", labels...)
	waitMetric(t, srv, "JWKS fetch that failed", atLeast(1), "herald_jwks_fetches_total", "outcome", "error")
}

// Auth callouts: called, answered from the cache for the same token, and
// refused, each under its outcome; only calls to the service are timed.
func TestMetricsCountCallouts(t *testing.T) {
	const requestSecret, answerSecret = "herald-signs-callout-requests-0123456789", "the-service-signs-answers-0123456789"
	var deny atomic.Bool
	cs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := jwt.MapClaims{}
		if _, err := jwt.ParseWithClaims(string(body), req, func(*jwt.Token) (any, error) { return []byte(requestSecret), nil },
			jwt.WithValidMethods([]string{"HS256"})); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		answer := jwt.MapClaims{"aud": req["iss"], "nonce": req["nonce"], "exp": time.Now().Add(time.Minute).Unix(), "user": "cu1"}
		if deny.Load() {
			answer = jwt.MapClaims{"aud": req["iss"], "nonce": req["nonce"], "exp": time.Now().Add(time.Minute).Unix(), "deny": "not today"}
		}
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, answer).SignedString([]byte(answerSecret))
		io.WriteString(w, s)
	}))
	defer cs.Close()
	cfg := metricsConfig()
	cfg.Client.Callout = config.Callout{Enabled: true, Endpoint: cs.URL, Timeout: config.Duration(2 * time.Second),
		SigningSecret: requestSecret, ResponseKeys: []config.Key{{Alg: "HS256", Secret: answerSecret}}}
	srv := testutil.Start(t, cfg)

	srv.Dial(t, nil).Connect("session-1")
	srv.Dial(t, nil).Connect("session-1") // the same token: the cached answer
	deny.Store(true)
	c := srv.Dial(t, nil)
	c.Send(`{"id":1,"connect":{"token":"session-2"}}`)
	if _, err := c.ReadLine(5 * time.Second); err == nil {
		// An error reply, or a close: either way the attempt was answered.
		_, _ = c.ReadLine(time.Second)
	}

	waitMetric(t, srv, "callout accepted", equals(1), "herald_callout_calls_total", "outcome", "ok")
	waitMetric(t, srv, "callout answered from the cache", equals(1), "herald_callout_calls_total", "outcome", "cached")
	waitMetric(t, srv, "callout denied", equals(1), "herald_callout_calls_total", "outcome", "callout_denied")
	waitMetric(t, srv, "callouts timed", equals(2), "herald_callout_call_duration_seconds")
	waitMetric(t, srv, "the denial is a refusal", equals(1), "herald_refusals_total", "reason", "callout_denied", "door", "centrifugo")
}

// With a real Redis broker: herald_broker_up follows Redis going down and
// coming back, operations are timed under broker="redis", and a publication
// refused while Redis is down is counted as unavailable.
func TestMetricsFollowTheBroker(t *testing.T) {
	rs := brokertest.StartRedis(t)
	cfg := metricsConfig()
	cfg.Broker.Type = "redis"
	cfg.Broker.Redis.Address = rs.Addr()
	cfg.Broker.Redis.IOTimeout = config.Duration(300 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	redis := []string{"broker", "redis"}

	waitMetric(t, srv, "redis up", equals(1), "herald_broker_up", redis...)
	if st, res := srv.API(t, "publish", map[string]any{"channel": "news", "data": map[string]any{"n": 1}}); st != 200 || res["error"] != nil {
		t.Fatalf("publish: %d %v", st, res)
	}
	waitMetric(t, srv, "a publish through redis", equals(1), "herald_broker_operation_duration_seconds", append(redis, "op", "publish")...)

	rs.Stop()
	waitMetric(t, srv, "redis down", equals(0), "herald_broker_up", redis...)
	if st, _ := srv.API(t, "publish", map[string]any{"channel": "news", "data": map[string]any{"n": 2}}); st == 200 {
		t.Fatal("a publication was acknowledged while Redis was down")
	}
	waitMetric(t, srv, "the refused publication", atLeast(1), "herald_broker_errors_total", append(redis, "op", "publish", "kind", "unavailable")...)

	rs.Restart(t)
	waitMetric(t, srv, "redis back", equals(1), "herald_broker_up", redis...)
}
