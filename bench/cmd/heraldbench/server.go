package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// serverConfig is the benchmark configuration given to `herald serve`.
// listen is always 127.0.0.1:0: the harness reads the bound address from
// the "herald listening" log line.
func serverConfig(pingInterval time.Duration) string {
	ping := "0"
	pong := ""
	if pingInterval > 0 {
		ping = pingInterval.String()
		// The default pong_timeout (8s) must stay below the interval.
		if pingInterval <= 8*time.Second {
			pong = "  pong_timeout: " + (pingInterval / 2).String() + "\n"
		}
	}
	return `listen: 127.0.0.1:0
log_format: json
log_level: warn
admin:
  key: ` + adminKey + `
client:
  token:
    hmac_secret_key: ` + hmacSecret + `
  ping_interval: ` + ping + `
` + pong + `  channel_limit: 128
  queue_max_size: 1048576
  command_rate_limit: 0
http_api:
  key: ` + apiKey + `
channel:
  without_namespace:
    allow_subscribe_for_client: true
`
}

const (
	adminKey   = "bench-admin-key"
	apiKey     = "bench-api-key"
	hmacSecret = "bench-secret"
)

// target is the server under test: either a process the harness started
// (pid known, stopped at the end) or a given URL (pid optional).
type target struct {
	base    string // http://127.0.0.1:port
	ws      string // ws://127.0.0.1:port/connection/websocket
	pid     int    // 0: no /proc figures
	cmd     *exec.Cmd
	done    chan struct{} // closed when the started process has exited
	exitErr error
	dir     string
	stderr  *os.File // copy of the server's stderr (gctrace, logs)
	admin   *http.Client
	ready   atomic.Bool

	// Two-node runs (cluster.go): this target is node B, where the
	// subscribers connect; pub is node A, where publications go in.
	pub   *target
	redis *redisProc
}

// startServer runs `bin serve --config <temp yaml>` and waits for the
// "herald listening" line on stderr.
func startServer(bin string, pingInterval time.Duration, mercure bool, extraConfig string, env []string, stderrPath string, timeout time.Duration) (*target, error) {
	dir, err := os.MkdirTemp("", "heraldbench-")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "herald.yaml")
	cfg := serverConfig(pingInterval) + extraConfig
	if mercure {
		cfg += mercureConfig()
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	// A clean environment apart from what the benchmark asks for: no
	// HERALD_* variable of the caller changes the configuration.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	t := &target{cmd: cmd, dir: dir, done: make(chan struct{}), admin: &http.Client{Timeout: 120 * time.Second}}
	if stderrPath != "" {
		if t.stderr, err = os.Create(stderrPath); err != nil {
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	t.pid = cmd.Process.Pid
	addrc := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Bytes()
			if t.stderr != nil {
				_, _ = t.stderr.Write(append(line, '\n'))
			}
			if !found && len(line) > 0 && line[0] == '{' {
				var m struct {
					Msg  string `json:"msg"`
					Addr string `json:"addr"`
				}
				if json.Unmarshal(line, &m) == nil && m.Msg == "herald listening" {
					found = true
					select {
					case addrc <- m.Addr:
					default:
					}
				}
			} else if !found && !t.ready.Load() && t.stderr == nil {
				// Not ready yet: probably why it will not start.
				fmt.Fprintf(os.Stderr, "herald: %s\n", line)
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
	}()
	go func() {
		t.exitErr = cmd.Wait()
		close(t.done)
	}()
	// At log_level warn the "herald listening" line (info) is not written:
	// then the bound address is found from the process's listening socket.
	go func() {
		for {
			select {
			case <-t.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if addr := listeningAddr(t.pid); addr != "" {
				// Wait until it accepts.
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					select {
					case addrc <- addr:
					default:
					}
					return
				}
			}
		}
	}()
	select {
	case addr := <-addrc:
		host, _, err := net.SplitHostPort(addr)
		if err != nil || !net.ParseIP(host).IsLoopback() {
			t.stop(time.Second)
			return nil, fmt.Errorf("server listens on %q, not a loopback address", addr)
		}
		t.ready.Store(true)
		t.base = "http://" + addr
		t.ws = "ws://" + addr + "/connection/websocket"
		return t, nil
	case <-t.done:
		return nil, fmt.Errorf("server exited before listening: %v", t.exitErr)
	case <-time.After(timeout):
		t.stop(time.Second)
		return nil, errors.New("server did not log \"herald listening\" in time")
	}
}

// stop sends SIGTERM (graceful shutdown: clients get close code 3001) and
// SIGKILL after grace. Only the process this harness started is signalled.
func (t *target) stop(grace time.Duration) {
	if t.pub != nil {
		t.pub.stop(grace)
	}
	if t.redis != nil {
		defer t.redis.stop()
	}
	if t.cmd == nil {
		return
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(grace):
		_ = t.cmd.Process.Kill()
		<-t.done
	}
	if t.stderr != nil {
		_ = t.stderr.Close()
	}
	_ = os.RemoveAll(t.dir)
}

// cpuTicks returns utime+stime of the process in clock ticks (1/100 s on
// Linux), from /proc/<pid>/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: split after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat fields")
	}
	return u + s, nil
}

const clockTick = 10 * time.Millisecond // sysconf(_SC_CLK_TCK) = 100 on Linux

// cpuTime is the process CPU time (user+system) from /proc/<pid>/stat.
func (t *target) cpuTime() time.Duration {
	if t.pid == 0 {
		return 0
	}
	n, err := cpuTicks(t.pid)
	if err != nil {
		return 0
	}
	return time.Duration(n) * clockTick
}

// procStatus returns VmRSS and VmHWM (peak RSS) in KiB.
func (t *target) procStatus() (rss, hwm int64) {
	if t.pid == 0 {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", t.pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}

// debugVars is what GET /debug/vars returns (the fields the harness uses).
type debugVars struct {
	Goroutines  int    `json:"goroutines"`
	HeapAlloc   uint64 `json:"heap_alloc"`
	HeapInuse   uint64 `json:"heap_inuse"`
	StackInuse  uint64 `json:"stack_inuse"`
	Sys         uint64 `json:"sys"`
	NumGC       uint32 `json:"num_gc"`
	TotalAlloc  uint64 `json:"total_alloc"`
	Mallocs     uint64 `json:"mallocs"`
	Sessions    int    `json:"sessions"`
	NumClients  int    `json:"num_clients"`
	NumSubs     int    `json:"num_subs"`
	MercureSubs int    `json:"mercure_subscribers_connected"`
}

func (t *target) adminGet(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Admin-Key", adminKey)
	resp, err := t.admin.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// vars reads /debug/vars; gc forces a collection first (live heap).
func (t *target) vars(gc bool) (*debugVars, error) {
	path := "/debug/vars"
	if gc {
		path += "?gc=1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := t.adminGet(ctx, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v debugVars
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, err
	}
	return &v, nil
}

// saveProfile downloads a pprof profile (path such as
// /debug/pprof/profile?seconds=10) to file.
func (t *target) saveProfile(path, file string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	resp, err := t.adminGet(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// listeningAddr returns the address of a TCP socket in LISTEN state owned by
// pid, from /proc/<pid>/fd and /proc/<pid>/net/tcp (IPv4 loopback only).
func listeningAddr(pid int) string {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return ""
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		hostHex, portHex, ok := strings.Cut(f[1], ":")
		if !ok || len(hostHex) != 8 {
			continue
		}
		h, err1 := strconv.ParseUint(hostHex, 16, 32)
		port, err2 := strconv.ParseUint(portHex, 16, 16)
		if err1 != nil || err2 != nil {
			continue
		}
		// /proc/net/tcp stores the IPv4 address in host (little-endian) order.
		ip := net.IPv4(byte(h), byte(h>>8), byte(h>>16), byte(h>>24))
		return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10))
	}
	return ""
}
