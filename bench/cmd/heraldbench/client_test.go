package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePub(t *testing.T) {
	cases := []struct {
		line    string
		t, seq  int64
		matches bool
	}{
		{`{"push":{"channel":"bench","pub":{"data":{"t":1732380000123456789,"seq":42},"offset":5}}}`, 1732380000123456789, 42, true},
		{`{"push":{"channel":"bench","pub":{"data":{"seq":7,"t":99}}}}`, 99, 7, true},
		{`{"push":{"channel":"bench","pub":{"data":{"t":5,"seq":-3}}}}`, 5, -3, true},
		{`{"id":2,"subscribe":{}}`, 0, 0, false},
		{`{"push":{"channel":"bench","join":{"info":{"user":"u"}}}}`, 0, 0, false},
		{`{}`, 0, 0, false},
	}
	for _, c := range cases {
		ts, seq, ok := parsePub([]byte(c.line))
		if ok != c.matches || (ok && (ts != c.t || seq != c.seq)) {
			t.Errorf("parsePub(%s) = %d, %d, %v; want %d, %d, %v", c.line, ts, seq, ok, c.t, c.seq, c.matches)
		}
	}
}

func TestRecorderMissingAndDuplicates(t *testing.T) {
	rs := &runState{m: 4}
	c := &client{run: rs}
	c.rec.reset(4)
	for _, seq := range []string{"0", "1", "1", "3", "9", "-1"} {
		c.handleLine([]byte(`{"push":{"channel":"c","pub":{"data":{"t":100,"seq":`+seq+`}}}}`), 150)
	}
	if c.rec.got != 3 || c.rec.dups != 1 || c.rec.outOfRange != 1 || rs.warm.Load() != 1 {
		t.Fatalf("got %d dups %d out of range %d warm %d; want 3 1 1 1", c.rec.got, c.rec.dups, c.rec.outOfRange, rs.warm.Load())
	}
	for _, l := range c.rec.lat {
		if l != 50 {
			t.Fatalf("latency %d, want 50", l)
		}
	}
}

func TestPercentileAndMedian(t *testing.T) {
	s := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := pct(s, 50); p != 5 {
		t.Errorf("p50 = %d", p)
	}
	if p := pct(s, 99); p != 10 {
		t.Errorf("p99 = %d", p)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

func TestServerConfigIsTheDocumentedOne(t *testing.T) {
	cfg := serverConfig(0)
	for _, want := range []string{"listen: 127.0.0.1:0", "ping_interval: 0", "allow_subscribe_for_client: true", "key: bench-admin-key"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if cfg := serverConfig(5e9); !strings.Contains(cfg, "pong_timeout: 2.5s") {
		t.Errorf("short ping interval needs a shorter pong_timeout:\n%s", cfg)
	}
}

// BenchmarkParsePub is the load generator's cost per received publication
// (parsing only): it must stay far below the server's cost per delivery.
func BenchmarkParsePub(b *testing.B) {
	line := []byte(`{"push":{"channel":"bench","pub":{"data":{"t":1732380000123456789,"seq":4242},"offset":5}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := parsePub(line); !ok {
			b.Fatal("no match")
		}
	}
}

// BenchmarkHandleLine includes the per-subscriber bookkeeping (bitset,
// latency slice, counters).
func BenchmarkHandleLine(b *testing.B) {
	rs := &runState{m: 1 << 20}
	c := &client{run: rs}
	c.rec.reset(rs.m)
	line := []byte(`{"push":{"channel":"bench","pub":{"data":{"t":1732380000123456789,"seq":4242},"offset":5}}}`)
	b.ReportAllocs()
	for b.Loop() {
		c.handleLine(line, 1732380000123456999)
	}
}

func TestParseSSEData(t *testing.T) {
	rs := &runState{m: 4}
	c := &client{run: rs}
	c.rec.reset(4)
	lines := []string{":", "id: urn:uuid:1", `data: {"t":10,"seq":1}`, "", "event: x", `data: {"t":5,"seq":-1}`, "", `data: not json`, `data: {"t":12,"seq":1}`}
	measured := 0
	for _, l := range lines {
		if c.handleSSELine([]byte(l), 20) {
			measured++
		}
	}
	if measured != 2 || c.rec.got != 1 || c.rec.dups != 1 || rs.warm.Load() != 1 || rs.other.Load() != 1 || rs.pings.Load() != 1 {
		t.Fatalf("measured %d got %d dups %d warm %d other %d comments %d", measured, c.rec.got, c.rec.dups, rs.warm.Load(), rs.other.Load(), rs.pings.Load())
	}
	if c.rec.lat[0] != 10 {
		t.Fatalf("latency %d", c.rec.lat[0])
	}
	body := string(mercureBody("https://example.com/b/1", 7, 3))
	if body != "topic=https%3A%2F%2Fexample.com%2Fb%2F1&data=%7B%22t%22%3A7%2C%22seq%22%3A3%7D" {
		t.Fatalf("body %s", body)
	}
	if mercurePublished(200, []byte("urn:uuid:x")) != nil || mercurePublished(200, []byte(`{"result":{}}`)) == nil || mercurePublished(401, nil) == nil {
		t.Fatal("mercurePublished")
	}
}

// The report of a recorded matrix has a table per mode and transport and
// the targets of both transports.
func TestReportOfRecordedMatrix(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report.md")
	if err := runReport([]string{"-in", "../../results/2026-11-23-8264456.jsonl", "-out", out}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## conns", "## fanout", "## sse conns", "## sse fanout",
		"| sse conns N=5000 | 3 |", "| RSS per idle SSE subscriber (Mercure) | sse conns N=5000 | ~50 KiB | ≤ 20 KiB | 13.49 | yes |",
		"| latency p99 at that load | fanout N=1000 flat-out | 74 ms | ≤ 40 ms | 35.32 | yes |"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
}
