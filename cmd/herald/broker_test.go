package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker/brokertest"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCheckConfigConnect(t *testing.T) {
	srv := brokertest.StartRedis(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "broker:\n  type: redis\n  redis:\n    address: "+srv.Addr()+"\n")
	code, out, errOut := runCLI("check-config", "--config", good, "--connect")
	if code != 0 || !strings.Contains(out, "broker redis at "+srv.Addr()+": connected") {
		t.Fatalf("reachable redis: %d %q %q", code, out, errOut)
	}
	down := closedPort(t)
	bad := write("bad.yaml", "broker:\n  type: redis\n  redis:\n    address: redis://user:s3cret@"+down+"\n")
	code, _, errOut = runCLI("check-config", "--config", bad, "--connect")
	if code != 1 || !strings.Contains(errOut, "cannot connect") || !strings.Contains(errOut, down) || !strings.Contains(errOut, "refused") {
		t.Fatalf("unreachable redis: %d %q", code, errOut)
	}
	if strings.Contains(errOut, "s3cret") {
		t.Fatalf("the password appears in the output: %q", errOut)
	}
	// Without --connect the file is only checked.
	if code, out, _ := runCLI("check-config", "--config", bad); code != 0 || strings.Contains(out, "broker") {
		t.Fatalf("without --connect: %d %q", code, out)
	}
	natsBad := write("nats.yaml", "broker:\n  type: nats\n  nats:\n    url: nats://"+down+"\n")
	if code, _, errOut := runCLI("check-config", "--config", natsBad, "--connect"); code != 1 || !strings.Contains(errOut, "broker nats at nats://"+down+": cannot connect") {
		t.Fatalf("unreachable nats: %d %q", code, errOut)
	}
	invalid := write("invalid.yaml", "broker:\n  type: redis\n  redis:\n    address: http://x\n    prefix: \"a{b\"\n")
	code, _, errOut = runCLI("check-config", "--config", invalid)
	if code != 1 || !strings.Contains(errOut, "broker.redis.address") || !strings.Contains(errOut, "broker.redis.prefix") {
		t.Fatalf("invalid broker settings: %d %q", code, errOut)
	}
}

func TestServeBrokerFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	srv := brokertest.StartRedis(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "herald.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:0\nlog_format: json\nhttp_api:\n  key: k\n"), 0o600)

	p := start(t, bin, nil, "serve", "--config", file, "--broker", "redis", "--redis-address", srv.Addr())
	addr := waitListening(t, p)
	waitHealth(t, addr, http.StatusOK, 10*time.Second)
	waitLog(t, p, `"msg":"broker reachable"`, 5*time.Second)
	// The node subscribed to its control channel in this Redis.
	brokertest.Eventually(t, 5*time.Second, func() error {
		n, err := srv.Do("PUBSUB", "NUMPAT")
		if err != nil {
			return err
		}
		if line, err := srv.Do("PUBSUB", "CHANNELS", "herald.control.*"); err != nil || line != "*1" {
			return errorf("control channel not subscribed: %q %v (numpat %s)", line, err, n)
		}
		return nil
	})
	srv.Stop()
	waitHealth(t, addr, http.StatusServiceUnavailable, 10*time.Second)
	waitLog(t, p, `"msg":"broker unavailable`, 5*time.Second)

	// broker.at_start wait (the default): the node serves at once, /health
	// says it is not ready, a line every 5 s says it waits, and it becomes
	// ready when the broker answers.
	p3 := start(t, bin, nil, "serve", "--config", file, "--broker", "redis", "--redis-address", srv.Addr())
	addr3 := waitListening(t, p3)
	waitHealth(t, addr3, http.StatusServiceUnavailable, 5*time.Second)
	waitLog(t, p3, `"msg":"broker unreachable; waiting`, 10*time.Second)
	srv.Restart(t)
	waitHealth(t, addr3, http.StatusOK, 10*time.Second)
	waitLog(t, p3, `"msg":"broker reachable"`, 5*time.Second)

	// broker.at_start exit: an unreachable broker stops the start.
	down := closedPort(t)
	p2 := start(t, bin, []string{"HERALD_BROKER_AT_START=exit"}, "serve", "--config", file, "--broker", "redis", "--redis-address", down)
	select {
	case <-p2.done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve with an unreachable broker and at_start exit did not exit")
	}
	if code := p2.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(p2.stderr.String(), "unreachable") {
		t.Fatalf("exit %d, stderr %q", code, p2.stderr.String())
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func waitHealth(t *testing.T, addr string, status int, timeout time.Duration) {
	t.Helper()
	brokertest.Eventually(t, timeout, func() error {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			return errorf("/health answers %d, want %d", resp.StatusCode, status)
		}
		return nil
	})
}

func waitLog(t *testing.T, p *proc, text string, timeout time.Duration) {
	t.Helper()
	brokertest.Eventually(t, timeout, func() error {
		if !strings.Contains(p.stderr.String(), text) {
			return errorf("no %s in the log:\n%s", text, p.stderr.String())
		}
		return nil
	})
}
