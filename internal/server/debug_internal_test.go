package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
)

// TestPprofCmdlineRedactsSecrets: /debug/pprof/cmdline shows the command
// line without the values of secret flags, over a real server.
func TestPprofCmdlineRedactsSecrets(t *testing.T) {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Admin.Key = "admin-key-for-tests"
	s, err := New(cfg, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	s.args = []string{"herald", "serve", "--api-key", "API-SECRET-1", "--hmac-secret=HMAC-SECRET-2", "-listen", "127.0.0.1:0",
		"--dev", "-secret", "S3", "--config", "/etc/herald.yaml"}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/debug/pprof/cmdline", nil)
	req.Header.Set("X-Admin-Key", cfg.Admin.Key)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	got := strings.Split(string(b), "\x00")
	want := []string{"herald", "serve", "--api-key", "<redacted>", "--hmac-secret=<redacted>", "-listen", "127.0.0.1:0",
		"--dev", "-secret", "<redacted>", "--config", "/etc/herald.yaml"}
	if resp.StatusCode != 200 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("cmdline: %d %q, want %q", resp.StatusCode, got, want)
	}
	for _, secret := range []string{"API-SECRET-1", "HMAC-SECRET-2", "S3"} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("cmdline shows %s", secret)
		}
	}
}
