// Command heraldbench is Herald's load generator and benchmark runner.
//
//	heraldbench conns  -n 1000                    # connect N clients, measure connect cost and memory
//	heraldbench fanout -n 1000 -m 1000            # N subscribers, M publications flat out
//	heraldbench fanout -n 1000 -m 100 -rate 10    # ... at 10 publications per second
//	heraldbench callout -n 2000 [-xkey]           # N NATS logins through herald nats-callout
//	heraldbench report -in runs.jsonl -out x.md   # medians of many runs as a markdown table
//
// By default it builds nothing: -bin names the herald binary to start (run.sh
// builds it), or -url targets a running server (then -pid gives the /proc
// figures). Every run prints one JSON line on stdout. All traffic goes to
// loopback addresses; every phase is bounded in count and time.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: heraldbench conns|fanout|callout|report|compare [flags] (see bench/README.md)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "conns", "fanout", "channels":
		err = runBench(os.Args[1], os.Args[2:])
	case "callout":
		err = runCallout(os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	case "compare":
		err = runCompare(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (conns, fanout, callout, report, compare)", os.Args[1])
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "heraldbench:", err)
		os.Exit(1)
	}
}

type options struct {
	mode         string
	bin          string
	url          string
	pid          int
	n            int
	m            int
	warmup       int
	rate         float64
	publishers   int
	dialConc     int
	settle       time.Duration
	drain        time.Duration
	timeout      time.Duration
	pingInterval time.Duration
	channel      string
	transport    string
	serverEnv    string
	serverStderr string
	cpuProfile   string
	cpuSeconds   int
	heapProfile  string
	allocProfile string
	label        string
	commit       string
	quietWait    time.Duration
	quietCores   float64
	nodes        int
	broker       string
	spread       bool // channels mode: subscriber i on channel <channel>-i
}

// Result is the JSON line printed for each run.
type Result struct {
	Scenario  string `json:"scenario"`
	Mode      string `json:"mode"`
	Transport string `json:"transport"`
	Label     string `json:"label,omitempty"`
	Time      string `json:"time"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`

	// Parameters.
	N            int     `json:"n"`
	M            int     `json:"m,omitempty"`
	Rate         float64 `json:"rate,omitempty"`
	Publishers   int     `json:"publishers,omitempty"`
	Warmup       int     `json:"warmup,omitempty"`
	DialConc     int     `json:"dial_concurrency,omitempty"`
	PingInterval string  `json:"ping_interval"`
	SettleS      float64 `json:"settle_s,omitempty"`
	Target       string  `json:"target"`

	// Environment.
	GoVersion string `json:"go_version"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	NumCPU    int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	MemTotalK int64  `json:"mem_total_kib"`
	Kernel    string `json:"kernel"`
	Commit    string `json:"commit,omitempty"`

	// conns.
	Connected          int     `json:"connected,omitempty"`
	ConnectFailures    int     `json:"connect_failures"`
	ConnectWallS       float64 `json:"connect_wall_s,omitempty"`
	ConnectsPerSec     float64 `json:"connects_per_s,omitempty"`
	CPUPerConnectUS    float64 `json:"cpu_per_connect_us,omitempty"`
	AllocPerConnectKiB float64 `json:"alloc_per_connect_kib,omitempty"` // heap allocated per connect (garbage included)
	MallocsPerConnect  float64 `json:"mallocs_per_connect,omitempty"`   // heap objects allocated per connect
	GCsConnecting      uint32  `json:"gcs_connecting,omitempty"`
	RSSBaselineKiB     int64   `json:"rss_baseline_kib,omitempty"`
	RSSSettledKiB      int64   `json:"rss_settled_kib,omitempty"`
	RSSPerConnKiB      float64 `json:"rss_per_conn_kib,omitempty"`
	HeapPerConnKiB     float64 `json:"heap_per_conn_kib,omitempty"`
	StackPerConnKiB    float64 `json:"stack_per_conn_kib,omitempty"`
	LivePerConnKiB     float64 `json:"heap_stack_per_conn_kib,omitempty"`
	HeapInusePerConnK  float64 `json:"heap_inuse_per_conn_kib,omitempty"`
	SysPerConnKiB      float64 `json:"sys_per_conn_kib,omitempty"`
	GoroutinesPerConn  float64 `json:"goroutines_per_conn,omitempty"`

	// fanout.
	Published          int64   `json:"published,omitempty"`
	PublishErrors      int64   `json:"publish_errors"`
	Expected           int64   `json:"expected,omitempty"`
	Delivered          int64   `json:"delivered,omitempty"`
	Missing            int64   `json:"missing"`
	Duplicates         int64   `json:"duplicates"`
	OutOfRange         int64   `json:"out_of_range"`
	WindowS            float64 `json:"window_s,omitempty"`
	DeliveriesPerSec   float64 `json:"deliveries_per_s,omitempty"`
	LatP50MS           float64 `json:"lat_p50_ms,omitempty"`
	LatP90MS           float64 `json:"lat_p90_ms,omitempty"`
	LatP99MS           float64 `json:"lat_p99_ms,omitempty"`
	LatMaxMS           float64 `json:"lat_max_ms,omitempty"`
	PubRTTP50MS        float64 `json:"publish_rtt_p50_ms,omitempty"`
	PubRTTP99MS        float64 `json:"publish_rtt_p99_ms,omitempty"`
	CPUPerDeliveryUS   float64 `json:"cpu_per_delivery_us,omitempty"`
	CPUPer1000MS       float64 `json:"cpu_per_1000_deliveries_ms,omitempty"`
	ServerCPUUtil      float64 `json:"server_cpu_util,omitempty"`      // cores busy in the window
	PerFrame           float64 `json:"deliveries_per_frame,omitempty"` // publications per WebSocket message (server-side coalescing)
	AllocPerDelivery   float64 `json:"alloc_bytes_per_delivery,omitempty"`
	MallocsPerDelivery float64 `json:"mallocs_per_delivery,omitempty"`
	GCsInWindow        uint32  `json:"gcs_in_window,omitempty"`
	PeakRSSKiB         int64   `json:"peak_rss_kib,omitempty"`
	RSSEndKiB          int64   `json:"rss_end_kib,omitempty"`
	PingsAnswered      int64   `json:"pings_answered"`
	ServerCloses       int64   `json:"server_closes"`

	// Noise: CPU used by other processes on the machine during the run.
	QuietWaitS    float64 `json:"quiet_wait_s"`
	StartedQuiet  bool    `json:"started_quiet"`
	OtherCPUCores float64 `json:"other_cpu_cores"` // cores busy outside server and load generator, whole run
	StealS        float64 `json:"steal_s"`         // hypervisor steal time, whole run, all CPUs
	CloseCodes    string  `json:"server_close_codes,omitempty"`

	ResultCluster

	ServerCPUS float64 `json:"server_cpu_s"`
	ClientCPUS float64 `json:"client_cpu_s"`
	TotalS     float64 `json:"total_s"`
}

func runBench(mode string, args []string) error {
	o := options{mode: mode}
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "", "herald binary to start as: herald serve --config <temp yaml>")
	fs.StringVar(&o.url, "url", "", "target a running server instead, e.g. http://127.0.0.1:8000 (loopback only)")
	fs.IntVar(&o.pid, "pid", 0, "with -url: the server's pid, for the /proc CPU and RSS figures")
	fs.IntVar(&o.n, "n", 1000, "connections (each subscribed to the channel)")
	fs.IntVar(&o.m, "m", 1000, "fanout: publications in the measured window")
	fs.IntVar(&o.warmup, "warmup", 20, "fanout: warm-up publications before the window (not measured)")
	fs.Float64Var(&o.rate, "rate", 0, "fanout: publications per second (0 = flat out)")
	fs.IntVar(&o.publishers, "publishers", 8, "fanout: concurrent publish requests at most")
	fs.IntVar(&o.dialConc, "dial-concurrency", 64, "connections being opened at once")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "conns: wait after connecting before measuring memory")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "fanout: give up when no delivery arrives for this long after the last publish")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "hard limit for the whole run")
	fs.DurationVar(&o.pingInterval, "ping-interval", 25*time.Second, "client.ping_interval of the started server (0 disables pings)")
	fs.StringVar(&o.channel, "channel", "bench", "channel (Mercure topic) every connection subscribes to")
	fs.StringVar(&o.transport, "transport", "ws", "ws: Centrifugo protocol over WebSocket, publishing through /api/publish; pb: the same in Protobuf; sse: Mercure subscribers, publishing with Mercure POSTs; actioncable: Action Cable clients (actioncable-v1-json at /cable), publishing through /api/publish")
	fs.StringVar(&o.serverEnv, "server-env", "", "extra environment for the started server, comma-separated (e.g. GODEBUG=gctrace=1)")
	fs.StringVar(&o.serverStderr, "server-stderr", "", "copy the started server's stderr to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "save a CPU profile of the server taken during the window (fanout) or the connect phase (conns)")
	fs.IntVar(&o.cpuSeconds, "cpuprofile-seconds", 10, "length of the CPU profile")
	fs.StringVar(&o.heapProfile, "heapprofile", "", "save a heap profile of the server after settling (conns) or after the window (fanout)")
	fs.StringVar(&o.allocProfile, "allocprofile", "", "fanout: save heap profiles before and after the window as FILE.before and FILE.after (use pprof -base)")
	fs.StringVar(&o.label, "label", "", "free text copied into the result")
	fs.StringVar(&o.commit, "commit", "", "commit being measured (default: git rev-parse --short HEAD)")
	fs.DurationVar(&o.quietWait, "quiet-wait", 0, "before starting, wait up to this long for other processes to go quiet")
	fs.Float64Var(&o.quietCores, "quiet-cores", 0.2, "with -quiet-wait: quiet means other processes use fewer cores than this")
	fs.IntVar(&o.nodes, "nodes", 1, "with -bin: herald nodes to start (2: subscribers on node B, publications through node A)")
	fs.StringVar(&o.broker, "broker", "memory", "with -bin: memory, or redis (the harness starts a private redis-server, found on PATH)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.transport != "ws" && o.transport != "pb" && o.transport != "sse" && o.transport != "actioncable" {
		return fmt.Errorf("-transport must be ws, pb, sse or actioncable, got %q", o.transport)
	}
	if o.n <= 0 || o.m <= 0 || o.publishers <= 0 || o.dialConc <= 0 {
		return errors.New("-n, -m, -publishers and -dial-concurrency must be positive")
	}
	if err := o.checkCluster(); err != nil {
		return err
	}

	res := &Result{Mode: mode, N: o.n, ResultCluster: ResultCluster{Nodes: o.nodes, Broker: o.broker}, Time: time.Now().UTC().Format(time.RFC3339), PingInterval: o.pingInterval.String(), Label: o.label}
	fillEnv(res, o.commit)
	res.StartedQuiet = true
	if o.quietWait > 0 {
		waited, quiet := waitQuiet(o.quietCores, o.quietWait)
		res.QuietWaitS, res.StartedQuiet = round(waited.Seconds(), 1), quiet
		if !quiet {
			fmt.Fprintf(os.Stderr, "heraldbench: other processes still busy after %s; running anyway\n", waited.Round(time.Second))
		}
	}
	start := time.Now()
	clientCPU0 := selfCPU()
	host0 := readHostCPU()

	var t *target
	var err error
	switch {
	case o.url != "":
		t, err = targetURL(o.url, o.pid)
		res.Target = o.url
	case o.bin != "":
		var env []string
		if o.serverEnv != "" {
			env = strings.Split(o.serverEnv, ",")
		}
		t, err = startCluster(&o, env)
		res.Target = "herald serve started by the harness"
		if o.nodes > 1 {
			res.Target = fmt.Sprintf("%d herald nodes started by the harness (subscribers on B, publishing through A), broker %s", o.nodes, o.broker)
		}
	default:
		err = errors.New("give -bin (a herald binary to start) or -url")
	}
	if err != nil {
		return err
	}
	// Hard limit: whatever happens, the run ends.
	killer := time.AfterFunc(o.timeout, func() {
		fmt.Fprintf(os.Stderr, "heraldbench: run exceeded -timeout %s, stopping\n", o.timeout)
		t.stop(2 * time.Second)
		os.Exit(3)
	})
	defer killer.Stop()

	res.Transport = o.transport
	switch mode {
	case "conns":
		res.Scenario = fmt.Sprintf("conns N=%d", o.n)
		err = benchConns(t, &o, res)
	case "fanout", "channels":
		if mode == "channels" {
			o.spread = true
			res.Scenario = fmt.Sprintf("channels N=%d (one subscriber each)", o.n)
		} else if o.rate > 0 {
			res.Scenario = fmt.Sprintf("fanout N=%d rate=%g/s", o.n, o.rate)
		} else {
			res.Scenario = fmt.Sprintf("fanout N=%d flat-out", o.n)
		}
		err = benchFanout(t, &o, res)
	}
	if o.transport != "ws" {
		res.Scenario = o.transport + " " + res.Scenario
	}
	if o.nodes > 1 || o.broker != "memory" {
		res.Scenario = fmt.Sprintf("%s, %d node(s) via %s", res.Scenario, o.nodes, o.broker)
	}
	serverCPU := t.nodesCPU()
	res.ServerCPUS = serverCPU.Seconds()
	selfUsed := selfCPU() - clientCPU0
	host1 := readHostCPU()
	res.OtherCPUCores = round(otherCPU(host0, host1, serverCPU+t.redisCPU(), selfUsed), 2)
	res.StealS = round((host1.steal - host0.steal).Seconds(), 2)
	t.stop(15 * time.Second)
	res.ClientCPUS = (selfCPU() - clientCPU0).Seconds()
	res.TotalS = round(time.Since(start).Seconds(), 2)
	res.OK = err == nil && res.ConnectFailures == 0 && res.Missing == 0 && res.Duplicates == 0 && res.PublishErrors == 0
	if err != nil {
		res.Error = err.Error()
	}
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	if err != nil {
		return err
	}
	return nil
}

func targetURL(raw string, pid int) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if !(host == "localhost" || (ip != nil && ip.IsLoopback())) {
		return nil, fmt.Errorf("refusing non-loopback target %q", raw)
	}
	return &target{base: "http://" + u.Host, ws: "ws://" + u.Host + "/connection/websocket", pid: pid,
		admin: &http.Client{Timeout: 120 * time.Second}}, nil
}

// openClients connects n clients with at most conc handshakes in flight and
// starts each one's read loop as soon as it is subscribed.
func openClients(t *target, o *options, tokens []string, rs *runState) ([]*client, int, error) {
	clients := make([]*client, o.n)
	var next atomic.Int64
	var failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < min(o.dialConc, o.n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.n {
					return
				}
				var c *client
				var err error
				switch o.transport {
				case "sse":
					c, err = connectSSE(t.base, tokens[i], o.channel, i, rs)
				case "actioncable":
					c, err = connectCable(t.base, tokens[i], o.channelOf(i), i, rs)
				case "pb":
					c, err = connectPB(t.ws, tokens[i], o.channel, i, rs)
				default:
					c, err = connectClient(t.ws, tokens[i], o.channelOf(i), i, rs)
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				c.rec.reset(rs.m)
				clients[i] = c
				go c.readLoop()
			}
		}()
	}
	wg.Wait()
	out := clients[:0]
	for _, c := range clients {
		if c != nil {
			out = append(out, c)
		}
	}
	var err error
	if e, ok := firstErr.Load().(error); ok {
		err = e
	}
	return out, int(failures.Load()), err
}

func closeClients(clients []*client) {
	var wg sync.WaitGroup
	ch := make(chan *client)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range ch {
				c.close()
			}
		}()
	}
	for _, c := range clients {
		ch <- c
	}
	close(ch)
	wg.Wait()
	deadline := time.After(5 * time.Second)
	for _, c := range clients {
		select {
		case <-c.done:
		case <-deadline:
			return
		}
	}
}

func kib(b float64) float64 { return round(b/1024, 2) }

func benchConns(t *target, o *options, res *Result) error {
	res.DialConc = o.dialConc
	res.SettleS = o.settle.Seconds()
	tokens, err := o.tokens()
	if err != nil {
		return err
	}
	rs := &runState{m: 1}
	// Baseline: an idle server after a forced GC.
	time.Sleep(500 * time.Millisecond)
	v0, err := t.vars(true)
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	rss0, _ := t.procStatus()
	res.RSSBaselineKiB = rss0

	var prof chan error
	if o.cpuProfile != "" {
		prof = startCPUProfile(t, o)
	}
	cpu0 := t.cpuTime()
	t0 := time.Now()
	clients, failures, cerr := openClients(t, o, tokens, rs)
	wall := time.Since(t0)
	cpu1 := t.cpuTime()
	defer closeClients(clients)
	vc, err := t.vars(false)
	if err != nil {
		return err
	}
	if prof != nil {
		if err := <-prof; err != nil {
			fmt.Fprintln(os.Stderr, "heraldbench: cpu profile:", err)
		}
	}
	res.Connected = len(clients)
	res.ConnectFailures = failures
	res.ConnectWallS = round(wall.Seconds(), 3)
	if len(clients) == 0 {
		return fmt.Errorf("no connection succeeded: %v", cerr)
	}
	if failures > 0 {
		fmt.Fprintf(os.Stderr, "heraldbench: %d connections failed, first error: %v\n", failures, cerr)
	}
	n := float64(len(clients))
	res.ConnectsPerSec = round(n/wall.Seconds(), 1)
	if t.pid != 0 {
		res.CPUPerConnectUS = round(float64((cpu1-cpu0).Microseconds())/n, 1)
	}
	res.AllocPerConnectKiB = kib(float64(vc.TotalAlloc-v0.TotalAlloc) / n)
	res.MallocsPerConnect = round(float64(vc.Mallocs-v0.Mallocs)/n, 1)
	res.GCsConnecting = vc.NumGC - v0.NumGC

	time.Sleep(o.settle)
	v1, err := t.vars(true)
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	rss1, _ := t.procStatus()
	if o.heapProfile != "" {
		if err := t.saveProfile("/debug/pprof/heap?gc=1", o.heapProfile); err != nil {
			fmt.Fprintln(os.Stderr, "heraldbench: heap profile:", err)
		}
	}
	if subs := v1.NumSubs + v1.MercureSubs; subs < len(clients) {
		return fmt.Errorf("server reports %d subscriptions for %d connections", subs, len(clients))
	}
	res.RSSSettledKiB = rss1
	if t.pid != 0 {
		res.RSSPerConnKiB = round(float64(rss1-rss0)/n, 2)
	}
	heap := float64(v1.HeapAlloc) - float64(v0.HeapAlloc)
	stack := float64(v1.StackInuse) - float64(v0.StackInuse)
	res.HeapPerConnKiB = kib(heap / n)
	res.StackPerConnKiB = kib(stack / n)
	res.LivePerConnKiB = kib((heap + stack) / n)
	res.HeapInusePerConnK = kib((float64(v1.HeapInuse) - float64(v0.HeapInuse)) / n)
	res.SysPerConnKiB = kib((float64(v1.Sys) - float64(v0.Sys)) / n)
	res.GoroutinesPerConn = round(float64(v1.Goroutines-v0.Goroutines)/n, 2)
	res.PingsAnswered = rs.pings.Load()
	res.ServerCloses = rs.closed.Load()
	res.CloseCodes = rs.closeCodes()
	if res.ServerCloses > 0 {
		return fmt.Errorf("%d connections were closed by the server during the run (close codes %s)", res.ServerCloses, res.CloseCodes)
	}
	return nil
}

func startCPUProfile(t *target, o *options) chan error {
	ch := make(chan error, 1)
	go func() {
		ch <- t.saveProfile(fmt.Sprintf("/debug/pprof/profile?seconds=%d", o.cpuSeconds), o.cpuProfile)
	}()
	return ch
}

// publisher sends publications through the server API.
type publisher struct {
	url     string
	client  *http.Client
	ch      string
	mercure string // publisher token: publish with Mercure POSTs
	mu      sync.Mutex
	rtt     []int64
	errs    atomic.Int64
	sent    atomic.Int64
	first   error
	record  bool
	spread  int // channels mode: seq s goes to channel <ch>-(s mod spread)
}

func newPublisher(base, channel string, conc int, mercure bool) *publisher {
	tr := &http.Transport{
		MaxIdleConns:        conc,
		MaxIdleConnsPerHost: conc,
		MaxConnsPerHost:     conc,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}
	p := &publisher{url: base + "/api/publish", ch: channel, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	if mercure {
		p.url, p.mercure = base+mercurePath, mercurePublisherToken()
	}
	return p
}

// tokens signs the connection tokens of the transport.
func (o *options) tokens() ([]string, error) {
	switch o.transport {
	case "sse":
		return makeMercureTokens(o.n, o.channel, time.Hour)
	case "actioncable":
		return makeCableTokens(o.n, time.Hour)
	}
	return makeTokens(o.n, time.Hour)
}

// publish sends {"channel":ch,"data":{"t":<now ns>,"seq":seq}}.
func (p *publisher) publish(seq int64) {
	var req *http.Request
	sent := time.Now()
	if p.mercure != "" {
		req, _ = http.NewRequest(http.MethodPost, p.url, bytes.NewReader(mercureBody(p.ch, sent.UnixNano(), seq)))
		req.Header.Set("Authorization", "Bearer "+p.mercure)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		body := make([]byte, 0, 96)
		body = append(body, `{"channel":`...)
		body = strconv.AppendQuote(body, p.channelFor(seq))
		body = append(body, `,"data":{"t":`...)
		body = strconv.AppendInt(body, sent.UnixNano(), 10)
		body = append(body, `,"seq":`...)
		body = strconv.AppendInt(body, seq, 10)
		body = append(body, `}}`...)
		req, _ = http.NewRequest(http.MethodPost, p.url, bytes.NewReader(body))
		req.Header.Set("X-API-Key", apiKey)
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if err == nil {
			if p.mercure != "" {
				err = mercurePublished(resp.StatusCode, b)
			} else if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(b, []byte(`{"result"`)) {
				err = fmt.Errorf("publish: %s: %s", resp.Status, bytes.TrimSpace(b))
			}
		}
	}
	rtt := time.Since(sent)
	p.sent.Add(1)
	p.mu.Lock()
	if err != nil {
		p.errs.Add(1)
		if p.first == nil {
			p.first = err
		}
	} else if p.record {
		p.rtt = append(p.rtt, int64(rtt))
	}
	p.mu.Unlock()
}

// flatOut publishes seqs [from, from+count) (negated for warm-up) with
// conc requests in flight.
func (p *publisher) flatOut(count, conc int, warm bool) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(count) {
					return
				}
				if warm {
					p.publish(-1 - i)
				} else {
					p.publish(i)
				}
			}
		}()
	}
	wg.Wait()
}

// atRate publishes seqs [0, count) at rate per second, each in its own
// goroutine with at most conc in flight, on a fixed schedule.
func (p *publisher) atRate(count int, rate float64, conc int) {
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < count; i++ {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		time.Sleep(time.Until(at))
		sem <- struct{}{}
		wg.Add(1)
		go func(seq int64) {
			defer wg.Done()
			p.publish(seq)
			<-sem
		}(int64(i))
	}
	wg.Wait()
}

// waitFor polls until cond holds, or nothing changed in progress() for idle,
// or the deadline passes.
func waitFor(cond func() bool, progress func() int64, idle time.Duration, deadline time.Time) bool {
	last, lastChange := progress(), time.Now()
	for {
		if cond() {
			return true
		}
		now := time.Now()
		if now.After(deadline) {
			return false
		}
		if p := progress(); p != last {
			last, lastChange = p, now
		} else if now.Sub(lastChange) > idle {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func benchFanout(t *target, o *options, res *Result) error {
	res.M, res.Rate, res.Publishers, res.Warmup, res.DialConc = o.m, o.rate, o.publishers, o.warmup, o.dialConc
	tokens, err := o.tokens()
	if err != nil {
		return err
	}
	rs := &runState{m: o.m}
	clients, failures, cerr := openClients(t, o, tokens, rs)
	defer closeClients(clients)
	res.Connected = len(clients)
	res.ConnectFailures = failures
	if failures > 0 || len(clients) == 0 {
		return fmt.Errorf("%d of %d connections failed: %v", failures, o.n, cerr)
	}
	n := int64(len(clients))
	pub := newPublisher(t.pubBase(), o.channel, o.publishers, o.transport == "sse")
	if o.spread {
		pub.spread = o.n
	}
	hardDeadline := time.Now().Add(o.timeout)

	// Warm-up: publications with negative seqs, not measured.
	if o.warmup > 0 {
		pub.flatOut(o.warmup, o.publishers, true)
		want := n * int64(o.warmup)
		if o.spread {
			want = int64(o.warmup)
		}
		waitFor(func() bool { return rs.warm.Load() >= want }, rs.warm.Load, 5*time.Second, time.Now().Add(30*time.Second))
		if pub.errs.Load() > 0 {
			return fmt.Errorf("warm-up publish failed: %v", pub.first)
		}
	}
	time.Sleep(200 * time.Millisecond)
	pub.mu.Lock()
	pub.record = true
	pub.mu.Unlock()

	if o.allocProfile != "" {
		if err := t.saveProfile("/debug/pprof/heap", o.allocProfile+".before"); err != nil {
			fmt.Fprintln(os.Stderr, "heraldbench: heap profile:", err)
		}
	}
	v0, err := t.vars(false)
	if err != nil {
		return err
	}
	var prof chan error
	if o.cpuProfile != "" {
		prof = startCPUProfile(t, o)
	}
	cpu0 := t.nodesCPU()
	redis0 := t.redisCPU()
	t0 := time.Now()
	if o.rate > 0 {
		pub.atRate(o.m, o.rate, o.publishers)
	} else {
		pub.flatOut(o.m, o.publishers, false)
	}
	want := n * int64(o.m)
	if o.spread {
		want = int64(o.m)
	}
	complete := waitFor(func() bool { return rs.delivered.Load() >= want }, rs.delivered.Load, o.drain, hardDeadline)
	cpu1 := t.nodesCPU()
	redisUsed := t.redisCPU() - redis0
	wallEnd := time.Now()
	v1, err := t.vars(false)
	if err != nil {
		return err
	}
	if prof != nil {
		if err := <-prof; err != nil {
			fmt.Fprintln(os.Stderr, "heraldbench: cpu profile:", err)
		}
	}
	if o.allocProfile != "" {
		if err := t.saveProfile("/debug/pprof/heap", o.allocProfile+".after"); err != nil {
			fmt.Fprintln(os.Stderr, "heraldbench: heap profile:", err)
		}
	}
	if o.heapProfile != "" {
		if err := t.saveProfile("/debug/pprof/heap?gc=1", o.heapProfile); err != nil {
			fmt.Fprintln(os.Stderr, "heraldbench: heap profile:", err)
		}
	}
	rssEnd, hwm := t.procStatus()

	// Aggregate per subscriber: missing and duplicate seqs, latencies.
	var got, dups, oor int64
	var lastRecv int64
	lats := make([]int64, 0, want)
	for _, c := range clients {
		r := &c.rec
		r.mu.Lock()
		got += int64(r.got)
		dups += int64(r.dups)
		oor += int64(r.outOfRange)
		lastRecv = max(lastRecv, r.lastRecv)
		lats = append(lats, r.lat...)
		r.mu.Unlock()
	}
	res.Published = pub.sent.Load() - int64(o.warmup)
	res.PublishErrors = pub.errs.Load()
	res.Expected = want
	res.Delivered = got
	res.Missing = want - got
	res.Duplicates = dups
	res.OutOfRange = oor
	end := wallEnd
	if lastRecv > 0 {
		end = time.Unix(0, lastRecv)
	}
	window := end.Sub(t0)
	res.WindowS = round(window.Seconds(), 3)
	if got > 0 {
		res.DeliveriesPerSec = round(float64(got)/window.Seconds(), 0)
		slices.Sort(lats)
		res.LatP50MS = ms(pct(lats, 50))
		res.LatP90MS = ms(pct(lats, 90))
		res.LatP99MS = ms(pct(lats, 99))
		res.LatMaxMS = ms(lats[len(lats)-1])
		if t.pid != 0 {
			cpu := cpu1 - cpu0
			res.CPUPerDeliveryUS = round(float64(cpu.Nanoseconds())/1e3/float64(got), 3)
			res.CPUPer1000MS = res.CPUPerDeliveryUS
			res.ServerCPUUtil = round(cpu.Seconds()/wallEnd.Sub(t0).Seconds(), 2)
		}
		res.redisFigures(t, redisUsed, got, int64(o.m), window)
		res.AllocPerDelivery = round(float64(v1.TotalAlloc-v0.TotalAlloc)/float64(got), 1)
		res.MallocsPerDelivery = round(float64(v1.Mallocs-v0.Mallocs)/float64(got), 2)
		res.GCsInWindow = v1.NumGC - v0.NumGC
		if f := rs.pubFrames.Load(); f > 0 {
			res.PerFrame = round(float64(rs.delivered.Load())/float64(f), 2)
		}
	}
	pub.mu.Lock()
	rtts := slices.Clone(pub.rtt)
	pub.mu.Unlock()
	if len(rtts) > 0 {
		slices.Sort(rtts)
		res.PubRTTP50MS = ms(pct(rtts, 50))
		res.PubRTTP99MS = ms(pct(rtts, 99))
	}
	res.PeakRSSKiB, res.RSSEndKiB = hwm, rssEnd
	res.PingsAnswered = rs.pings.Load()
	res.ServerCloses = rs.closed.Load()
	res.CloseCodes = rs.closeCodes()
	switch {
	case res.PublishErrors > 0:
		return fmt.Errorf("%d publish errors, first: %v", res.PublishErrors, pub.first)
	case res.ServerCloses > 0:
		return fmt.Errorf("%d connections were closed by the server during the run (close codes %s)", res.ServerCloses, res.CloseCodes)
	case !complete || res.Missing != 0 || res.Duplicates != 0:
		return fmt.Errorf("deliveries: expected %d, got %d (missing %d, duplicates %d, out of range %d)", want, got, res.Missing, dups, oor)
	}
	return nil
}

// pct is the nearest-rank percentile of sorted values.
func pct(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(ns int64) float64 { return round(float64(ns)/1e6, 3) }

func round(x float64, digits int) float64 {
	s := strconv.FormatFloat(x, 'f', digits, 64)
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// selfCPU is this process's CPU time (the load generator's own cost).
func selfCPU() time.Duration {
	n, err := cpuTicks(os.Getpid())
	if err != nil {
		return 0
	}
	return time.Duration(n) * clockTick
}

func fillEnv(r *Result, commit string) {
	r.GoVersion = runtime.Version()
	r.GOOS, r.GOARCH = runtime.GOOS, runtime.GOARCH
	r.NumCPU = runtime.NumCPU()
	r.CPUModel, r.MemTotalK = machineInfo()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Kernel = strings.TrimSpace(string(b))
	}
	if commit == "" {
		if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
			commit = strings.TrimSpace(string(out))
		}
	}
	r.Commit = commit
}

func machineInfo() (model string, memKiB int64) {
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					memKiB, _ = strconv.ParseInt(f[1], 10, 64)
				}
			}
		}
	}
	return model, memKiB
}
