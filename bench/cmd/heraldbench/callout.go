package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"

	"github.com/heraldhub/herald/internal/natscallout/natstest"
)

// The callout scenario: a real NATS server (the nats-server module, in this
// process) whose auth callout is a `herald nats-callout` process started by
// the harness; N nats.go clients log in through it, C at a time, each with
// its own HS256 token, and stay connected until the end.

// calloutResult holds the figures of the callout scenario.
type calloutResult struct {
	Logins          int     `json:"logins,omitempty"`
	Concurrency     int     `json:"concurrency,omitempty"`
	XKey            bool    `json:"xkey"`
	LoginsPerSec    float64 `json:"logins_per_s,omitempty"`
	CPUPerLoginUS   float64 `json:"herald_cpu_per_login_us,omitempty"`
	LoginP50MS      float64 `json:"login_p50_ms,omitempty"`
	LoginP99MS      float64 `json:"login_p99_ms,omitempty"`
	ProcessingP50US float64 `json:"herald_processing_p50_us,omitempty"`
	ProcessingP99US float64 `json:"herald_processing_p99_us,omitempty"`
	HeraldShareP50  float64 `json:"herald_share_of_login_p50,omitempty"`
	HeraldAccepted  float64 `json:"herald_accepted,omitempty"`
}

func runCallout(args []string) error {
	fs := flag.NewFlagSet("callout", flag.ContinueOnError)
	bin := fs.String("bin", "", "herald binary to start as: herald nats-callout …")
	n := fs.Int("n", 2000, "logins (each a new nats.go client that stays connected)")
	conc := fs.Int("concurrency", 8, "logins in flight at once")
	xkey := fs.Bool("xkey", false, "the NATS server encrypts its requests (auth_callout.xkey)")
	timeout := fs.Duration("timeout", 5*time.Minute, "hard limit for the whole run")
	quietWait := fs.Duration("quiet-wait", 0, "before starting, wait up to this long for other processes to go quiet")
	label := fs.String("label", "", "free text copied into the result")
	commit := fs.String("commit", "", "commit being measured")
	serverStderr := fs.String("server-stderr", "", "copy herald's stderr to this file")
	fs.Duration("ping-interval", 0, "ignored (accepted so that run.sh passes the same flags to every scenario)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || *n <= 0 || *conc <= 0 {
		return errors.New("callout needs -bin, and positive -n and -concurrency")
	}
	res := &Result{Mode: "callout", N: *n, Time: time.Now().UTC().Format(time.RFC3339), Label: *label,
		Target: "herald nats-callout started by the harness, nats-server in the load generator", Transport: "nats"}
	res.Scenario = fmt.Sprintf("callout N=%d HS256", *n)
	if *xkey {
		res.Scenario += " xkey"
	}
	fillEnv(res, *commit)
	res.StartedQuiet = true
	if *quietWait > 0 {
		waited, quiet := waitQuiet(0.2, *quietWait)
		res.QuietWaitS, res.StartedQuiet = round(waited.Seconds(), 1), quiet
	}
	killer := time.AfterFunc(*timeout, func() {
		fmt.Fprintf(os.Stderr, "heraldbench: run exceeded -timeout %s, stopping\n", *timeout)
		os.Exit(3)
	})
	defer killer.Stop()
	start, clientCPU0, host0 := time.Now(), selfCPU(), readHostCPU()
	cr := &calloutResult{Logins: *n, Concurrency: *conc, XKey: *xkey}
	serverCPU, err := benchCallout(*bin, *n, *conc, *xkey, *serverStderr, res, cr)
	selfUsed := selfCPU() - clientCPU0
	host1 := readHostCPU()
	res.ServerCPUS = serverCPU.Seconds()
	res.OtherCPUCores = round(otherCPU(host0, host1, serverCPU, selfUsed), 2)
	res.StealS = round((host1.steal - host0.steal).Seconds(), 2)
	res.ClientCPUS = selfUsed.Seconds()
	res.TotalS = round(time.Since(start).Seconds(), 2)
	res.OK = err == nil && res.ConnectFailures == 0
	if err != nil {
		res.Error = err.Error()
	}
	// One JSON line: the common fields and the callout figures.
	line, _ := json.Marshal(res)
	extra, _ := json.Marshal(cr)
	fmt.Println(string(line[:len(line)-1]) + "," + string(extra[1:]))
	return err
}

// benchCallout runs the scenario and returns the CPU herald used in all.
func benchCallout(bin string, n, conc int, xkey bool, stderrPath string, res *Result, cr *calloutResult) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "heraldbench-callout-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	keys := natstest.NewKeys()
	xpub := ""
	if xkey {
		xpub = keys.XKeyPub
	}
	ns, err := natstest.Start(dir, natstest.Centralized(keys.IssuerPub, xpub))
	if err != nil {
		return 0, err
	}
	defer ns.Stop()
	args := []string{"nats-callout", "--nats-url", ns.URL, "--user", natstest.CalloutUser, "--password", natstest.CalloutPassword,
		"--issuer-seed", keys.IssuerSeed, "--account", "APP", "--hmac-secret", hmacSecret}
	if xkey {
		args = append(args, "--xkey-seed", keys.XKeySeed)
	}
	if stderrPath == "" {
		stderrPath = dir + "/herald.stderr"
	}
	logFile, err := os.Create(stderrPath)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	// Herald's defaults (log_level info: one line per login), JSON lines.
	cmd.Env = []string{"HERALD_LOG_FORMAT=json", "PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	tokens, err := makeCalloutTokens(n + 20)
	if err != nil {
		stop()
		return 0, err
	}
	// Ready: a login goes through (20 warm-up logins, not measured).
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < 20; {
		nc, err := nats.Connect(ns.URL, nats.Token(tokens[n+i]), nats.NoReconnect(), nats.Timeout(5*time.Second))
		if err != nil {
			if time.Now().After(deadline) {
				stop()
				return 0, fmt.Errorf("no login through herald nats-callout within 30s: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		nc.Close()
		i++
	}
	cpu0, _ := cpuTicks(pid)
	lat, conns, failures, wall := loginAll(ns.URL, tokens[:n], conc)
	cpu1, _ := cpuTicks(pid)
	for _, nc := range conns {
		nc.Close()
	}
	total, _ := cpuTicks(pid)
	stop()
	used := time.Duration(cpu1-cpu0) * clockTick
	res.Connected, res.ConnectFailures = len(conns), failures
	res.ConnectWallS = round(wall.Seconds(), 3)
	cr.LoginsPerSec = round(float64(n)/wall.Seconds(), 1)
	cr.CPUPerLoginUS = round(float64(used.Microseconds())/float64(n), 1)
	slices.Sort(lat)
	cr.LoginP50MS, cr.LoginP99MS = ms(pct(lat, 50)), ms(pct(lat, 99))
	st, err := calloutStats(stderrPath)
	if err != nil {
		return time.Duration(total) * clockTick, err
	}
	cr.ProcessingP50US, cr.ProcessingP99US, cr.HeraldAccepted = st.P50, st.P99, st.Accepted
	if p50 := float64(pct(lat, 50)); p50 > 0 {
		cr.HeraldShareP50 = round(st.P50*1e3/p50, 3)
	}
	return time.Duration(total) * clockTick, nil
}

// loginAll logs in with every token, conc at a time, and returns each
// login's latency (nats.Connect: TCP, INFO/CONNECT, the callout round trip,
// PING/PONG), the open connections, the failures and the wall time.
func loginAll(url string, tokens []string, conc int) ([]int64, []*nats.Conn, int, time.Duration) {
	lat := make([]int64, 0, len(tokens))
	conns := make([]*nats.Conn, 0, len(tokens))
	var mu sync.Mutex
	var next atomic.Int64
	var failures atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tokens) {
					return
				}
				t0 := time.Now()
				nc, err := nats.Connect(url, nats.Token(tokens[i]), nats.NoReconnect(), nats.Timeout(10*time.Second))
				d := time.Since(t0)
				if err != nil {
					failures.Add(1)
					continue
				}
				mu.Lock()
				lat = append(lat, int64(d))
				conns = append(conns, nc)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat, conns, int(failures.Load()), time.Since(start)
}

func makeCalloutTokens(n int) ([]string, error) {
	exp := time.Now().Add(time.Hour).Unix()
	out := make([]string, n)
	for i := range out {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "user" + strconv.Itoa(i), "exp": exp}).SignedString([]byte(hmacSecret))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

type processingStats struct{ P50, P99, Accepted float64 }

// calloutStats reads the "nats callout stopped" line herald logs on exit.
func calloutStats(path string) (processingStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return processingStats{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"nats callout stopped"`) {
			continue
		}
		var line struct {
			P50      float64 `json:"processing_p50_us"`
			P99      float64 `json:"processing_p99_us"`
			Accepted float64 `json:"accepted"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return processingStats{}, err
		}
		return processingStats(line), nil
	}
	return processingStats{}, errors.New("herald logged no \"nats callout stopped\" line")
}
