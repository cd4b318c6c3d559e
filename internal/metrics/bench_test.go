package metrics

import (
	"testing"
	"time"
)

// The cost the metrics add to one write of the writer pool, with every
// writer (one per GOMAXPROCS here) counting writes of the same door:
//
//	go test -run '^$' -bench Write -cpu 1,2 ./internal/metrics/
//
// BenchmarkWriteBatch is what the pool does; BenchmarkWriteUnbatched
// updates the shared counters at every write, as a plain use of the
// client library would.
func BenchmarkWriteBatch(b *testing.B) {
	d := New().Door("centrifugo", "websocket")
	accepted := time.Now().UnixNano()
	b.RunParallel(func(pb *testing.PB) {
		var w WriteBatch
		for pb.Next() {
			w.Wrote(d, 3, 300, accepted)
		}
		w.Flush()
	})
}

func BenchmarkWriteUnbatched(b *testing.B) {
	d := New().Door("centrifugo", "websocket")
	accepted := time.Now().UnixNano()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.writes.Inc()
			d.messages.Add(3)
			d.bytes.Add(300)
			d.latency.Observe(float64(time.Now().UnixNano()-accepted) / 1e9)
		}
	})
}
