package main

import (
	"os"
	"strconv"
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
		{"conns", "ws"}, {"fanout", "ws"}, {"conns", "sse"}, {"fanout", "sse"},
	} {
		args := []string{"-url", url, "-pid", pid, "-transport", tc.transport, "-n", "20", "-m", "30",
			"-warmup", "2", "-settle", "100ms", "-drain", "3s", "-timeout", "1m"}
		if err := runBench(tc.mode, args); err != nil {
			t.Errorf("%s over %s: %v", tc.mode, tc.transport, err)
		}
	}
}
