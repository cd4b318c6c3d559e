package brokertest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a private redis-server started by a test: loopback, a free
// port, no persistence. It is stopped when the test ends.
type RedisServer struct {
	Port int
	args []string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	// ready answers nil once the server serves (default: PING on Addr,
	// with TLS when it serves TLS).
	ready func() error
	tls   *tls.Config // the server serves TLS only (StartRedisTLS)
}

// Addr is host:port of the server.
func (r *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// redisBinary finds redis-server or fails the test with what to install.
// Tests that need Redis never skip: CI installs it (.ci/run).
func redisBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed: the broker tests run against a real Redis; install it with `apt-get install -y redis-server` (.ci/run does this in CI)")
	}
	return p
}

// freePort returns a port that was free a moment ago on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartRedis starts a private redis-server with extra configuration lines
// (such as "replicaof 127.0.0.1 6400").
func StartRedis(t testing.TB, extra ...string) *RedisServer {
	t.Helper()
	return startRedis(t, nil, extra...)
}

// startRedis starts a redis-server that serves TLS only when tf is not nil.
func startRedis(t testing.TB, tf *TLSFiles, extra ...string) *RedisServer {
	t.Helper()
	bin := redisBinary(t)
	r := &RedisServer{dir: t.TempDir()}
	for attempt := 0; ; attempt++ {
		r.Port = freePort(t)
		port := []string{"--port", strconv.Itoa(r.Port)}
		if tf != nil {
			port = []string{"--port", "0", "--tls-port", strconv.Itoa(r.Port), "--tls-cert-file", tf.CertFile,
				"--tls-key-file", tf.KeyFile, "--tls-ca-cert-file", tf.CAFile, "--tls-auth-clients", "no"}
			r.tls = helperTLS(t, tf)
		}
		r.args = append([]string{bin}, port...)
		r.args = append(r.args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", r.dir, "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning")
		for _, line := range extra {
			f := strings.Fields(line)
			r.args = append(r.args, "--"+f[0])
			r.args = append(r.args, f[1:]...)
		}
		err := r.start()
		if err == nil {
			break
		}
		if attempt == 4 {
			t.Fatalf("redis-server did not start: %v", err)
		}
	}
	t.Cleanup(r.Stop)
	return r
}

func (r *RedisServer) start() error {
	r.cmd = exec.Command(r.args[0], r.args[1:]...)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(r.dir, "redis-"+strconv.Itoa(r.Port)+".log"))
	if err != nil {
		return err
	}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	r.done = make(chan struct{})
	go func() { _ = r.cmd.Wait(); logf.Close(); close(r.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("exited: %s", strings.TrimSpace(string(b)))
		default:
		}
		ready := r.ready
		if ready == nil {
			ready = func() error { return pong(r.Addr(), r.tls) }
		}
		if ready() == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Stop()
	return fmt.Errorf("no answer on %s", r.Addr())
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (r *RedisServer) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

// Running reports whether the server process is running.
func (r *RedisServer) Running() bool {
	if r.cmd == nil || r.done == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Restart starts the server again on the same port, empty (no
// persistence), as after a crash.
func (r *RedisServer) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	var err error
	for range 50 {
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may still be in TIME_WAIT use
	}
	t.Fatalf("redis-server did not restart on port %d: %v", r.Port, err)
}

// Call sends one command and returns its reply as Go values: string,
// int64, []any, map[string]any or nil; a Redis error is the error.
func (r *RedisServer) Call(args ...string) (any, error) {
	return call(r.Addr(), r.tls, args...)
}

// Do sends one command in the inline protocol and returns the first reply line.
func (r *RedisServer) Do(args ...string) (string, error) {
	return command(r.Addr(), r.tls, args...)
}

// Info returns the server's INFO section as field -> value.
func (r *RedisServer) Info(section string) (map[string]string, error) {
	v, err := r.Call("INFO", section)
	if err != nil {
		return nil, err
	}
	body, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("INFO answered %v", v)
	}
	out := map[string]string{}
	for _, l := range strings.Split(body, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

func pong(addr string, tc *tls.Config) error {
	line, err := command(addr, tc, "PING")
	if err != nil {
		return err
	}
	if line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// dialer dials the test servers.
var dialer = net.Dialer{Timeout: time.Second}

func command(addr string, tc *tls.Config, args ...string) (string, error) {
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.DialWithDialer(&dialer, "tcp", addr, tc)
	} else {
		c, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// Sentinel is a private master, replica and sentinel.
type Sentinel struct {
	Master, Replica *RedisServer
	SentinelPort    int
	MasterName      string
	sentinel        *RedisServer
}

// StartSentinel starts a master, a replica of it and one sentinel that
// fails over within about a second of the master going away.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := &Sentinel{MasterName: "heraldmaster"}
	s.Master = StartRedis(t)
	s.Replica = StartRedis(t, "replicaof 127.0.0.1 "+strconv.Itoa(s.Master.Port))
	bin := redisBinary(t)
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel resolve-hostnames no\n"+
			"sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 400\n"+
			"sentinel failover-timeout %s 2000\nsentinel parallel-syncs %s 1\n",
			port, dir, s.MasterName, s.Master.Port, s.MasterName, s.MasterName, s.MasterName)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		sr := &RedisServer{Port: port, dir: dir, args: []string{bin, conf, "--sentinel"}}
		err := sr.start()
		if err == nil {
			s.sentinel, s.SentinelPort = sr, port
			break
		}
		if attempt == 4 {
			t.Fatalf("redis sentinel did not start: %v", err)
		}
	}
	t.Cleanup(s.sentinel.Stop)
	return s
}

// WaitReplicated waits until the replica has everything the master wrote,
// so that killing the master loses nothing.
func (s *Sentinel) WaitReplicated(t testing.TB) {
	t.Helper()
	waitReplicated(t, s.Master, s.Replica)
}

func waitReplicated(t testing.TB, master, replica *RedisServer) {
	t.Helper()
	Eventually(t, 10*time.Second, func() error {
		m, err := master.Info("replication")
		if err != nil {
			return err
		}
		r, err := replica.Info("replication")
		if err != nil {
			return err
		}
		if m["master_repl_offset"] == "" || m["master_repl_offset"] != r["master_repl_offset"] {
			return fmt.Errorf("replica %s at %s of the master's %s", replica.Addr(), r["master_repl_offset"], m["master_repl_offset"])
		}
		return nil
	})
}

// Address is the redis+sentinel:// address of the group.
func (s *Sentinel) Address() string {
	return fmt.Sprintf("redis+sentinel://127.0.0.1:%d?sentinel_master_name=%s", s.SentinelPort, s.MasterName)
}

// MasterPort asks the sentinel which port the master has now.
func (s *Sentinel) MasterPort() (int, error) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.SentinelPort), time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "SENTINEL get-master-addr-by-name %s\r\n", s.MasterName)
	rd := bufio.NewReader(c)
	var lines []string
	for len(lines) < 5 {
		l, err := rd.ReadString('\n')
		if err != nil {
			return 0, err
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	// *2 $9 127.0.0.1 $4 6380
	return strconv.Atoi(lines[4])
}
