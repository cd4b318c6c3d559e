package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type doorKey struct{ door, transport string }

// Door holds the metrics of one front door and transport, resolved once, so
// that a connection updates them without a label lookup. A connection's
// queue and its hub entry keep a pointer to it.
type Door struct {
	m                          *Metrics
	door, transport            string
	writes, messages, bytes    prometheus.Counter
	dropped, writeErrors       prometheus.Counter
	queueFull, writeTimeout    prometheus.Counter
	latency                    prometheus.Observer
	connections, subscriptions prometheus.Gauge
	connects                   prometheus.Counter
}

// Door returns the metrics of a front door (centrifugo, mercure, ...) and
// transport (websocket, sse, ...). Both are names from the code, never
// from a client; an empty one is "unknown".
func (m *Metrics) Door(door, transport string) *Door {
	if m == nil {
		return nil
	}
	k := doorKey{Label(door), Label(transport)}
	m.mu.RLock()
	d := m.doors[k]
	m.mu.RUnlock()
	if d != nil {
		return d
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if d = m.doors[k]; d != nil {
		return d
	}
	l := []string{k.door, k.transport}
	d = &Door{m: m, door: k.door, transport: k.transport,
		writes: m.writes.WithLabelValues(l...), messages: m.messages.WithLabelValues(l...), bytes: m.bytes.WithLabelValues(l...),
		dropped: m.dropped.WithLabelValues(l...), writeErrors: m.writeErrors.WithLabelValues(l...),
		queueFull: m.slow.WithLabelValues(k.door, k.transport, "queue_full"), writeTimeout: m.slow.WithLabelValues(k.door, k.transport, "write_timeout"),
		latency:     m.latency.WithLabelValues(k.door),
		connections: m.connections.WithLabelValues(l...), subscriptions: m.subscriptions.WithLabelValues(l...),
		connects: m.connects.WithLabelValues(l...)}
	m.doors[k] = d
	return d
}

// Name returns the door and transport labels.
func (d *Door) Name() (door, transport string) {
	if d == nil {
		return "", ""
	}
	return d.door, d.transport
}

// WriteBatch gathers one writer goroutine's counts of writes, messages,
// bytes and publication latencies, and adds them to the shared metrics in
// one go: when it holds batchWrites writes, when the next write is for
// another door, and when the writer is about to sleep (Flush). A counter
// that every writer updates on every write would move its cache line from
// core to core at each write; a batch moves it once per batch. The zero
// value is ready; a WriteBatch is not safe for concurrent use.
type WriteBatch struct {
	d                   *Door
	writes, msgs, bytes int
	lat                 [batchWrites]float64
	nlat                int
}

// batchWrites bounds the writes a batch holds before it is added.
const batchWrites = 64

// Wrote counts one write to a connection of door d: msgs messages, n
// bytes. oldest, when not zero, is the acceptance time (unix nanoseconds)
// of the oldest publication in it, whose latency until now is observed.
func (b *WriteBatch) Wrote(d *Door, msgs, n int, oldest int64) {
	if d == nil {
		return
	}
	if d != b.d {
		b.Flush()
		b.d = d
	}
	b.writes++
	b.msgs += msgs
	b.bytes += n
	if oldest != 0 {
		lat := time.Now().UnixNano() - oldest
		if lat < 0 {
			lat = 0 // another node's clock is ahead
		}
		b.lat[b.nlat] = float64(lat) / 1e9
		b.nlat++
	}
	if b.writes == batchWrites {
		b.Flush()
	}
}

// Pending reports whether the batch holds counts not yet added.
func (b *WriteBatch) Pending() bool { return b.writes > 0 }

// Flush adds what the batch holds to the shared metrics.
func (b *WriteBatch) Flush() {
	d := b.d
	if d == nil || b.writes == 0 {
		return
	}
	d.writes.Add(float64(b.writes))
	d.messages.Add(float64(b.msgs))
	d.bytes.Add(float64(b.bytes))
	for _, l := range b.lat[:b.nlat] {
		d.latency.Observe(l)
	}
	b.writes, b.msgs, b.bytes, b.nlat = 0, 0, 0, 0
}

// WroteDirect counts a write made outside the queue: one message (a
// control frame, a response head).
func (d *Door) WroteDirect(n int) {
	if d == nil {
		return
	}
	d.writes.Inc()
	d.messages.Inc()
	d.bytes.Add(float64(n))
}

// Dropped counts n messages dropped by a closed queue.
func (d *Door) Dropped(n int) {
	if d != nil && n > 0 {
		d.dropped.Add(float64(n))
	}
}

// QueueFull counts a client disconnected because its queue overflowed.
func (d *Door) QueueFull() {
	if d != nil {
		d.queueFull.Inc()
	}
}

// WriteFailed counts a failed write: a timeout is a slow client, anything
// else an error.
func (d *Door) WriteFailed(timeout bool) {
	if d == nil {
		return
	}
	if timeout {
		d.writeTimeout.Inc()
	} else {
		d.writeErrors.Inc()
	}
}

// Connected counts a connection registered with the hub.
func (d *Door) Connected() {
	if d != nil {
		d.connects.Inc()
		d.connections.Inc()
	}
}

// Disconnected counts the end of a registered connection with the front
// door's code ("" is client_closed).
func (d *Door) Disconnected(code string) {
	if d == nil {
		return
	}
	if code == "" {
		code = "client_closed"
	}
	d.connections.Dec()
	d.m.disconnects.WithLabelValues(d.door, d.transport, Label(code)).Inc()
}

// Subscribed adds n (negative: removes) subscriptions.
func (d *Door) Subscribed(n int) {
	if d != nil {
		d.subscriptions.Add(float64(n))
	}
}

// Label keeps a label value bounded and readable: label values come from
// Herald's code (door names, reason codes, disconnect codes), and anything
// else (empty, long or with unusual characters) becomes "unknown" or "other".
func Label(s string) string {
	if s == "" {
		return "unknown"
	}
	if len(s) > 48 {
		return "other"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "other"
		}
	}
	return s
}

// doors maps the transport names that refusals and connections record to
// their front door.
var doors = map[string]string{
	"websocket": "centrifugo", "http_stream": "centrifugo", "sse": "centrifugo", "emulation": "centrifugo",
	"uni_websocket": "centrifugo", "uni_sse": "centrifugo", "uni_http_stream": "centrifugo", "uni_grpc": "centrifugo",
	"mercure": "mercure", "actioncable": "actioncable", "broadcast": "actioncable", "api": "api", "admin": "admin", "ticket": "ticket",
	"nats": "nats_callout", "nats_callout": "nats_callout",
}

// DoorOf returns the front door of a transport name as the refusal log
// records it ("other" when it is not known).
func DoorOf(transport string) string {
	if d, ok := doors[transport]; ok {
		return d
	}
	return "other"
}
