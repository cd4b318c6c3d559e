package natscallout

import (
	"sync/atomic"
	"time"
)

// bucketWidth and numBuckets make the processing-time histogram: 1 µs
// buckets up to 10 ms, and one bucket above.
const (
	bucketWidth = time.Microsecond
	numBuckets  = 10000
)

// stats counts the answers and how long Herald took over each: decrypting
// and verifying the request, deciding, signing and encrypting the answer
// (the time a request waits for a worker is not in it, nor the log line,
// written once the answer is sent).
type stats struct {
	accepted, refused, invalid atomic.Uint64
	totalNanos                 atomic.Uint64
	buckets                    [numBuckets + 1]atomic.Uint64
}

func (s *stats) observe(d time.Duration, outcome int) {
	switch outcome {
	case outcomeAccepted:
		s.accepted.Add(1)
	case outcomeRefused:
		s.refused.Add(1)
	default:
		s.invalid.Add(1)
	}
	s.totalNanos.Add(uint64(d))
	i := int(d / bucketWidth)
	if i > numBuckets || i < 0 {
		i = numBuckets
	}
	s.buckets[i].Add(1)
}

// Stats is a snapshot of the service's counters.
type Stats struct {
	Accepted uint64 `json:"accepted"`
	Refused  uint64 `json:"refused"`
	// Invalid counts requests that could not be answered (they did not
	// verify, or could not be decrypted).
	Invalid uint64 `json:"invalid"`
	// Processing times: Herald's own work on each login (decrypt, verify,
	// decide, sign, encrypt), in microseconds.
	P50Micros  float64 `json:"p50_us"`
	P99Micros  float64 `json:"p99_us"`
	MeanMicros float64 `json:"mean_us"`
}

// Stats returns the counters and processing-time quantiles so far.
func (s *Service) Stats() Stats { return s.stats.snapshot() }

func (s *stats) snapshot() Stats {
	st := Stats{Accepted: s.accepted.Load(), Refused: s.refused.Load(), Invalid: s.invalid.Load()}
	var counts [numBuckets + 1]uint64
	var n uint64
	for i := range counts {
		counts[i] = s.buckets[i].Load()
		n += counts[i]
	}
	if n == 0 {
		return st
	}
	st.MeanMicros = float64(s.totalNanos.Load()) / float64(n) / 1e3
	quantile := func(q float64) float64 {
		want := uint64(q*float64(n)) + 1
		var seen uint64
		for i, c := range counts {
			if seen += c; seen >= want {
				// The middle of the bucket.
				return (float64(i) + 0.5) * float64(bucketWidth) / 1e3
			}
		}
		return float64(numBuckets) * float64(bucketWidth) / 1e3
	}
	st.P50Micros, st.P99Micros = quantile(0.50), quantile(0.99)
	return st
}
