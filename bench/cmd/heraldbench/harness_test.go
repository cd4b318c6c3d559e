package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/testutil"
)

// The harness against a real server, in both transports and both modes,
// with small counts: every connection connects and subscribes, every
// publication reaches every subscriber once (runBench fails otherwise).
func TestHarnessAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and opens connections")
	}
	cfg := testutil.Config()
	cfg.LogLevel = "warn"
	cfg.Admin.Key = adminKey
	cfg.HTTPAPI.Key = apiKey
	cfg.Client.Token.HMACSecretKey = hmacSecret
	cfg.Client.CommandRateLimit = 0
	cfg.Mercure.Publisher.Secret = mercurePublisherSecret
	cfg.Mercure.Subscriber.Secret = mercureSubscriberSecret
	srv := testutil.Start(t, cfg)
	url := "http://" + srv.Addr
	pid := strconv.Itoa(os.Getpid())
	// runBench prints its JSON line; keep the test output readable.
	stdout := os.Stdout
	devnull, _ := os.Open(os.DevNull)
	os.Stdout = devnull
	defer func() { os.Stdout = stdout; devnull.Close() }()
	for _, tc := range []struct{ mode, transport string }{
		{"conns", "ws"}, {"fanout", "ws"}, {"conns", "pb"}, {"fanout", "pb"}, {"conns", "sse"}, {"fanout", "sse"},
	} {
		args := []string{"-url", url, "-pid", pid, "-transport", tc.transport, "-n", "20", "-m", "30",
			"-warmup", "2", "-settle", "100ms", "-drain", "3s", "-timeout", "1m"}
		if err := runBench(tc.mode, args); err != nil {
			t.Errorf("%s over %s: %v", tc.mode, tc.transport, err)
		}
	}
}

// The callout scenario end to end with a small count: a herald nats-callout
// process built from this tree, a NATS server, every login accepted and
// Herald's processing times read from its closing log line.
func TestHarnessCallout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds herald and logs in through it")
	}
	bin := t.TempDir() + "/herald"
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/herald").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stdout := os.Stdout
	r, w, _ := os.Pipe()
	os.Stdout = w
	err := runCallout([]string{"-bin", bin, "-n", "50", "-concurrency", "4", "-xkey", "-timeout", "1m"})
	w.Close()
	os.Stdout = stdout
	line, _ := io.ReadAll(r)
	if err != nil {
		t.Fatalf("callout: %v\n%s", err, line)
	}
	var res map[string]any
	if err := json.Unmarshal(line, &res); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	if res["ok"] != true || res["connected"] != 50.0 || res["herald_accepted"] != 70.0 {
		t.Fatalf("result: %s", line)
	}
	for _, k := range []string{"logins_per_s", "herald_processing_p50_us", "login_p50_ms", "herald_share_of_login_p50"} {
		if v, _ := res[k].(float64); v <= 0 {
			t.Errorf("%s = %v", k, res[k])
		}
	}
}

// The two-node mode against real processes: a private redis-server and two
// herald nodes built from this tree; subscribers on node B, publications
// through node A, every one delivered once (runBench fails otherwise).
func TestHarnessTwoNodesThroughRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds herald and starts redis-server and two nodes")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: install it with `apt-get install -y redis-server` (.ci/run does this in CI)")
	}
	bin := filepath.Join(t.TempDir(), "herald")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/herald").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stdout := os.Stdout
	r, w, _ := os.Pipe()
	os.Stdout = w
	lines := make(chan string, 1)
	go func() { b, _ := io.ReadAll(r); lines <- string(b) }()
	common := []string{"-bin", bin, "-nodes", "2", "-broker", "redis", "-warmup", "2", "-drain", "5s", "-timeout", "2m"}
	err1 := runBench("fanout", append([]string{"-n", "20", "-m", "30"}, common...))
	err2 := runBench("channels", append([]string{"-n", "40", "-m", "200"}, common...))
	w.Close()
	os.Stdout = stdout
	out := <-lines
	if err1 != nil || err2 != nil {
		t.Fatalf("fanout: %v; channels: %v\n%s", err1, err2, out)
	}
	for _, want := range []string{`"nodes":2`, `"broker":"redis"`, `"publications_per_s"`, `channels N=40 (one subscriber each), 2 node(s) via redis`} {
		if !strings.Contains(out, want) {
			t.Errorf("results lack %s:\n%s", want, out)
		}
	}
}
