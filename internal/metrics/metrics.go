package metrics

import (
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every Herald metric.
const Namespace = "herald"

// latencyBuckets (seconds) span a local write (well under a millisecond)
// to a client that is seconds behind.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// callBuckets (seconds) span a backend on the same host to one at its timeout.
var callBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Metrics are one server's metrics and the registry that exposes them.
type Metrics struct {
	reg *prometheus.Registry

	// Connection plumbing, by front door and transport.
	writes, messages, bytes, dropped, writeErrors *prometheus.CounterVec
	slow                                          *prometheus.CounterVec // + cause
	latency                                       *prometheus.HistogramVec

	// Connections and subscriptions, by front door and transport.
	connections, subscriptions *prometheus.GaugeVec
	connects                   *prometheus.CounterVec
	disconnects                *prometheus.CounterVec // + code

	publications, deliveries, resyncs prometheus.Counter

	refusals    *prometheus.CounterVec
	jwksFetches *prometheus.CounterVec

	proxyCalls      *prometheus.CounterVec
	proxyDuration   *prometheus.HistogramVec
	calloutCalls    *prometheus.CounterVec
	calloutDuration prometheus.Histogram

	brokerDuration *prometheus.HistogramVec
	brokerErrors   *prometheus.CounterVec

	mu    sync.RWMutex
	doors map[doorKey]*Door
	names map[string]bool // every herald_ metric registered
}

// New builds the metrics of one server and registers them, with the Go
// runtime and process collectors, in a registry of their own.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), doors: map[doorKey]*Door{}, names: map[string]bool{}}
	dt := []string{"door", "transport"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		m.register(name, v)
		return v
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		m.register(name, v)
		return v
	}
	plain := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
		m.register(name, c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
		m.register(name, v)
		return v
	}

	m.writes = counter("writes_total", "Socket writes to clients (one write carries every message queued meanwhile).", dt...)
	m.messages = counter("messages_written_total", "Messages written to clients: publications, join/leave, replies, pings, control frames and response heads.", dt...)
	m.bytes = counter("written_bytes_total", "Bytes written to clients, framing included.", dt...)
	m.dropped = counter("queue_dropped_messages_total", "Messages dropped from or refused by a closed outgoing queue (a slow, failed or closing connection).", dt...)
	m.writeErrors = counter("write_errors_total", "Writes to clients that failed (the connection is closed).", dt...)
	m.slow = counter("slow_client_disconnects_total", "Clients disconnected for not keeping up: queue_full (over client.queue_max_size) or write_timeout (a write waited too long).", "door", "transport", "cause")
	m.latency = histogram("publish_latency_seconds", "From a publication's acceptance to the end of the write that carried it to a subscriber; one observation per write, for the oldest publication in it.", latencyBuckets, "door")

	m.connections = gauge("connections", "Client connections on this node.", dt...)
	m.subscriptions = gauge("subscriptions", "Subscriptions on this node (a Mercure subscriber's topic selectors count as one).", dt...)
	m.connects = counter("connects_total", "Connections accepted on this node.", dt...)
	m.disconnects = counter("disconnects_total", "Connections ended, by the front door's code (client_closed when the client left).", "door", "transport", "code")

	m.publications = plain("publications_total", "Publications accepted by this node, from every front door and the API.")
	m.deliveries = plain("deliveries_total", "Publications handed to subscriptions on this node (one per subscriber).")
	m.resyncs = plain("broker_resyncs_total", "Times the broker said publications may have been lost (its connection came back).")

	m.refusals = counter("refusals_total", "Refused attempts, by reason code (docs/auth.md) and front door.", "reason", "door")
	m.jwksFetches = counter("jwks_fetches_total", "JWKS endpoint fetches, by outcome: ok, not_modified or error.", "outcome")

	m.proxyCalls = counter("proxy_calls_total", "Calls to the team's backend through a proxy, by outcome: ok, error or disconnect (the backend's own refusal), or the proxy_* reason code.", "proxy", "call", "outcome")
	m.proxyDuration = histogram("proxy_call_duration_seconds", "Duration of proxy calls that reached the backend.", callBuckets, "proxy", "call")
	m.calloutCalls = counter("callout_calls_total", "Auth callouts, by outcome: ok, cached, or the callout_* reason code.", "outcome")
	m.calloutDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "callout_call_duration_seconds",
		Help: "Duration of auth callouts that called the service.", Buckets: callBuckets})
	m.register("callout_call_duration_seconds", m.calloutDuration)

	m.brokerDuration = histogram("broker_operation_duration_seconds", "Broker operations by kind (its _count is the number of operations).", callBuckets, "broker", "op")
	m.brokerErrors = counter("broker_errors_total", "Failed broker operations: unavailable (its backing service is unreachable) or error.", "broker", "op", "kind")

	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// register adds c, named name (without the herald_ prefix), to the registry.
func (m *Metrics) register(name string, c prometheus.Collector) {
	m.mu.Lock()
	m.names[Namespace+"_"+name] = true
	m.mu.Unlock()
	m.reg.MustRegister(c)
}

// Names returns the full name of every metric registered (herald_ ones,
// whether or not they have a series yet, and those the Go runtime and
// process collectors report), for checks that a dashboard queries only
// metrics that exist.
func (m *Metrics) Names() map[string]bool {
	out := map[string]bool{}
	if m == nil {
		return out
	}
	m.mu.RLock()
	for n := range m.names {
		out[n] = true
	}
	m.mu.RUnlock()
	fams, _ := m.reg.Gather()
	for _, f := range fams {
		out[f.GetName()] = true
	}
	return out
}

// Registry returns the registry that /metrics exposes.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// GaugeFunc registers a gauge read when scraped (f must be quick and must
// not block): counts the hub keeps anyway, such as channels and nodes.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	if m == nil {
		return
	}
	m.register(name, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, f))
}

// BuildInfo registers herald_build_info{version, go_version} 1.
func (m *Metrics) BuildInfo(version string) {
	if m == nil {
		return
	}
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info", Help: "Always 1; its labels name the build.",
		ConstLabels: prometheus.Labels{"version": Label(version), "go_version": goVersion}})
	g.Set(1)
	m.register("build_info", g)
}

// Publication counts an accepted publication.
func (m *Metrics) Publication() {
	if m != nil {
		m.publications.Inc()
	}
}

// Delivered counts n deliveries of one publication, once per fan-out.
func (m *Metrics) Delivered(n int) {
	if m != nil && n > 0 {
		m.deliveries.Add(float64(n))
	}
}

// Resync counts a broker resynchronisation.
func (m *Metrics) Resync() {
	if m != nil {
		m.resyncs.Inc()
	}
}

// Refused counts a refusal. transport is what the refusal log records
// (websocket, mercure, api, ...); the door is found from it.
func (m *Metrics) Refused(code, transport string) {
	if m != nil {
		m.refusals.WithLabelValues(Label(code), DoorOf(transport)).Inc()
	}
}

// JWKSFetch counts a JWKS fetch: ok, not_modified or error.
func (m *Metrics) JWKSFetch(outcome string) {
	if m != nil {
		m.jwksFetches.WithLabelValues(Label(outcome)).Inc()
	}
}

// ProxyCall counts a proxy call. took is observed when reached is set (the
// backend was called, not refused before: overload, open circuit).
func (m *Metrics) ProxyCall(proxy, call, outcome string, took time.Duration, reached bool) {
	if m == nil {
		return
	}
	m.proxyCalls.WithLabelValues(Label(proxy), Label(call), Label(outcome)).Inc()
	if reached {
		m.proxyDuration.WithLabelValues(Label(proxy), Label(call)).Observe(took.Seconds())
	}
}

// CalloutCall counts an auth callout; took is observed when the service was called.
func (m *Metrics) CalloutCall(outcome string, took time.Duration, called bool) {
	if m == nil {
		return
	}
	m.calloutCalls.WithLabelValues(Label(outcome)).Inc()
	if called {
		m.calloutDuration.Observe(took.Seconds())
	}
}
