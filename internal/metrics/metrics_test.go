package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker"
)

func TestLabelKeepsValuesBounded(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "unknown",
		"token_expired":         "token_expired",
		"3008":                  "3008",
		"uni_http_stream":       "uni_http_stream",
		"user 42":               "other",
		"a\nb":                  "other",
		strings.Repeat("x", 49): "other",
		"é":                     "other",
	} {
		if got := Label(in); got != want {
			t.Errorf("Label(%q) = %q, want %q", in, got, want)
		}
	}
	for tr, door := range map[string]string{"websocket": "centrifugo", "uni_sse": "centrifugo", "mercure": "mercure",
		"actioncable": "actioncable", "api": "api", "admin": "admin", "nats": "nats_callout", "carrier-pigeon": "other"} {
		if got := DoorOf(tr); got != door {
			t.Errorf("DoorOf(%q) = %q, want %q", tr, got, door)
		}
	}
}

// Core packages built without metrics call them all the same.
func TestNilMetricsAreNoOps(t *testing.T) {
	var m *Metrics
	d := m.Door("centrifugo", "websocket")
	var b WriteBatch
	b.Wrote(d, 1, 10, 1)
	b.Flush()
	d.WroteDirect(3)
	d.Dropped(2)
	d.QueueFull()
	d.WriteFailed(true)
	d.Connected()
	d.Subscribed(1)
	d.Disconnected("")
	m.Publication()
	m.Delivered(3)
	m.Resync()
	m.Refused("token_expired", "websocket")
	m.JWKSFetch("ok")
	m.ProxyCall("connect", "connect", "ok", 0, true)
	m.CalloutCall("ok", 0, true)
	m.GaugeFunc("x", "x", func() float64 { return 1 })
	mem := broker.NewMemory()
	if b, p := m.Broker("memory", mem, mem); b != broker.Broker(mem) || p != broker.PresenceManager(mem) {
		t.Fatal("nil metrics wrapped the broker")
	}
	if len(m.Snapshot()) != 0 || len(m.Names()) != 0 || m.Registry() != nil {
		t.Fatal("nil metrics report something")
	}
}

func TestDoorCountsAndSnapshot(t *testing.T) {
	m := New()
	d := m.Door("centrifugo", "websocket")
	if m.Door("centrifugo", "websocket") != d {
		t.Fatal("a door's metrics are resolved again")
	}
	d.Connected()
	d.Connected()
	d.Subscribed(3)
	var b WriteBatch
	b.Wrote(d, 4, 100, 0)
	if m.Snapshot().Total("writes_total") != 0 || !b.Pending() {
		t.Fatal("a batch added its counts before Flush")
	}
	b.Flush()
	d.WroteDirect(10)
	d.Disconnected("")
	d.Disconnected("3008")
	m.Door("mercure", "sse").Connected()
	s := m.Snapshot()
	if got := s.Values("connections", "door", "transport"); got["centrifugo/websocket"] != 0 || got["mercure/sse"] != 1 {
		t.Errorf("connections %v", got)
	}
	if got := s.Values("disconnects_total", "code"); got["client_closed"] != 1 || got["3008"] != 1 {
		t.Errorf("disconnects %v", got)
	}
	if s.Total("messages_written_total") != 5 || s.Total("written_bytes_total") != 110 || s.Total("writes_total") != 2 {
		t.Errorf("writes %v, messages %v, bytes %v", s.Total("writes_total"), s.Total("messages_written_total"), s.Total("written_bytes_total"))
	}
	if s.Total("subscriptions") != 3 {
		t.Errorf("subscriptions %v", s.Total("subscriptions"))
	}
}

// A batch is added when full and when the door changes; latencies are
// observed once each.
func TestWriteBatch(t *testing.T) {
	m := New()
	ws, sse := m.Door("centrifugo", "websocket"), m.Door("mercure", "sse")
	var b WriteBatch
	accepted := time.Now().Add(-50 * time.Millisecond).UnixNano()
	for range batchWrites {
		b.Wrote(ws, 2, 10, accepted)
	}
	if b.Pending() {
		t.Fatal("a full batch was not added")
	}
	b.Wrote(ws, 1, 5, 0)
	b.Wrote(sse, 1, 7, accepted) // another door: the websocket write is added
	s := m.Snapshot()
	if got := s.Values("writes_total", "door"); got["centrifugo"] != batchWrites+1 || got["mercure"] != 0 {
		t.Fatalf("writes %v", got)
	}
	if got := s.Values("publish_latency_seconds", "door"); got["centrifugo"] != batchWrites {
		t.Fatalf("latency observations %v", got)
	}
	b.Flush()
	s = m.Snapshot()
	if s.Values("written_bytes_total", "door")["mercure"] != 7 || s.Values("publish_latency_seconds", "door")["mercure"] != 1 {
		t.Fatalf("after Flush: bytes %v, latency %v", s.Values("written_bytes_total", "door"), s.Values("publish_latency_seconds", "door"))
	}
	sum := s[Namespace+"_publish_latency_seconds"].GetMetric()[0].GetHistogram().GetSampleSum()
	if sum < 0.05*batchWrites || sum > 10 {
		t.Fatalf("latency sum %v s for %d writes 50 ms after acceptance", sum, batchWrites)
	}
}

func TestBrokerOperationsAreTimed(t *testing.T) {
	m := New()
	mem := broker.NewMemory()
	b, p := m.Broker("memory", mem, mem)
	if _, err := b.Publish(&broker.Publication{Channel: "c", Data: []byte(`{}`)}, broker.PublishOptions{HistorySize: 10, HistoryTTL: 60e9}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.History("c", broker.HistoryFilter{Limit: -1}); err != nil {
		t.Fatal(err)
	}
	if err := p.AddPresence("c", "client", &broker.ClientInfo{User: "u"}); err != nil {
		t.Fatal(err)
	}
	ops := m.Snapshot().Values("broker_operation_duration_seconds", "broker", "op")
	for _, op := range []string{"memory/publish", "memory/history", "memory/add_presence"} {
		if ops[op] != 1 {
			t.Errorf("%s timed %v times; all: %v", op, ops[op], ops)
		}
	}
	if up := m.Snapshot().Values("broker_up", "broker"); up["memory"] != 1 {
		t.Errorf("broker_up %v", up)
	}
	if !m.Names()["herald_broker_up"] || !m.Names()["herald_callout_call_duration_seconds"] {
		t.Error("Names misses registered metrics")
	}
}
