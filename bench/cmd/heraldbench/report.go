package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// column is one figure of the markdown table: a JSON field of Result.
type column struct {
	key, title string
}

var connsColumns = []column{
	{"connects_per_s", "connects/s"},
	{"cpu_per_connect_us", "server CPU per connect (µs)"},
	{"alloc_per_connect_kib", "allocated per connect (KiB)"},
	{"rss_per_conn_kib", "RSS per conn (KiB)"},
	{"heap_stack_per_conn_kib", "live heap + stacks per conn (KiB)"},
	{"heap_per_conn_kib", "heap per conn (KiB)"},
	{"stack_per_conn_kib", "stack per conn (KiB)"},
	{"goroutines_per_conn", "goroutines per conn"},
	{"connect_failures", "failures"},
	{"other_cpu_cores", "other processes (cores)"},
}

var fanoutColumns = []column{
	{"deliveries_per_s", "deliveries/s"},
	{"lat_p50_ms", "p50 (ms)"},
	{"lat_p90_ms", "p90 (ms)"},
	{"lat_p99_ms", "p99 (ms)"},
	{"lat_max_ms", "max (ms)"},
	{"cpu_per_delivery_us", "server CPU per delivery (µs) = ms per 1000"},
	{"deliveries_per_frame", "deliveries per frame"},
	{"alloc_bytes_per_delivery", "alloc bytes per delivery"},
	{"peak_rss_kib", "peak RSS (KiB)"},
	{"publish_rtt_p50_ms", "publish RTT p50 (ms)"},
	{"missing", "missing"},
	{"duplicates", "duplicates"},
	{"redis_cpu_per_delivery_us", "Redis CPU per delivery (µs)"},
	{"publications_per_s", "publications/s"},
	{"redis_cpu_per_publication_us", "Redis CPU per publication (µs)"},
	{"other_cpu_cores", "other processes (cores)"},
}

var calloutColumns = []column{
	{"logins_per_s", "logins/s"},
	{"herald_cpu_per_login_us", "Herald CPU per login (µs)"},
	{"login_p50_ms", "login p50 (ms)"},
	{"login_p99_ms", "login p99 (ms)"},
	{"herald_processing_p50_us", "Herald processing p50 (µs)"},
	{"herald_processing_p99_us", "Herald processing p99 (µs)"},
	{"herald_share_of_login_p50", "Herald share of login p50"},
	{"connect_failures", "failures"},
	{"other_cpu_cores", "other processes (cores)"},
}

// target is one line of the targets table.
type targetRow struct {
	figure, scenario, key string
	centrifugo, goal      string
	max                   float64 // the Herald target: at most this (0: report only)
}

var targets = []targetRow{
	{"RSS per idle authenticated, subscribed connection", "conns N=5000", "rss_per_conn_kib", "~50 KiB", "≤ 12 KiB", 12},
	{"live heap + stacks per connection", "conns N=5000", "heap_stack_per_conn_kib", "~18 KiB", "(report)", 0},
	{"server CPU per authenticated HS256 connect", "conns N=5000", "cpu_per_connect_us", "~250 µs", "≤ 100 µs", 100},
	{"server CPU per delivered message, 1000 subs, flat out", "fanout N=1000 flat-out", "cpu_per_delivery_us", "~7.2 µs", "≤ 3.5 µs", 3.5},
	{"latency p50 at that load", "fanout N=1000 flat-out", "lat_p50_ms", "32 ms", "(report)", 0},
	{"latency p99 at that load", "fanout N=1000 flat-out", "lat_p99_ms", "74 ms", "≤ 40 ms", 40},
	{"server CPU per delivered message, 10 msg/s to 1000 subs", "fanout N=1000 rate=10/s", "cpu_per_delivery_us", "~16 µs", "≤ 8 µs", 8},
	// Mercure (SSE), against the reference Mercure hub.
	{"RSS per idle SSE subscriber (Mercure)", "sse conns N=5000", "rss_per_conn_kib", "~50 KiB", "≤ 20 KiB", 20},
	{"live heap + stacks per SSE subscriber", "sse conns N=5000", "heap_stack_per_conn_kib", "~37 KiB", "(report)", 0},
	{"server CPU per authenticated SSE subscribe (HS256)", "sse conns N=5000", "cpu_per_connect_us", "~200 µs", "(report)", 0},
	{"server CPU per delivered message, SSE, flat out", "sse fanout N=1000 flat-out", "cpu_per_delivery_us", "~13.5 µs", "≤ 5 µs", 5},
	{"SSE latency p50 / p99 at that load", "sse fanout N=1000 flat-out", "lat_p99_ms", "56 / 146 ms", "(report)", 0},
	{"server CPU per delivered message, SSE, 10 msg/s", "sse fanout N=1000 rate=10/s", "cpu_per_delivery_us", "~18 µs", "≤ 8 µs", 8},
	// NATS auth callout: Herald's own processing per login (medians).
	{"NATS callout: Herald processing per HS256 login, p50", "callout N=2000 HS256", "herald_processing_p50_us", "–", "≤ 200 µs", 200},
	{"NATS callout: the same with xkey encryption, p50", "callout N=2000 HS256 xkey", "herald_processing_p50_us", "–", "≤ 1000 µs", 1000},
	{"NATS callout: Herald CPU per HS256 login", "callout N=2000 HS256", "herald_cpu_per_login_us", "–", "(report)", 0},
	{"NATS callout: login latency p99 (HS256)", "callout N=2000 HS256", "login_p99_ms", "–", "(report)", 0},
	// Scale-out: subscribers on node B, publishing through node A and Redis.
	{"both nodes' CPU per delivery, 1000 subs on B, flat out on A via Redis", "fanout N=1000 flat-out, 2 node(s) via redis", "cpu_per_delivery_us", "–", "≤ 1.5 × single node", 0},
	{"latency p99 at that load", "fanout N=1000 flat-out, 2 node(s) via redis", "lat_p99_ms", "–", "≤ 2 × single node", 0},
	{"Redis CPU per delivery at that load", "fanout N=1000 flat-out, 2 node(s) via redis", "redis_cpu_per_delivery_us", "–", "(report)", 0},
	{"publications/s to 10,000 channels, one subscriber each, via Redis", "channels N=10000 (one subscriber each), 2 node(s) via redis", "publications_per_s", "–", "(report)", 0},
	{"Redis CPU per publication at that load", "channels N=10000 (one subscriber each), 2 node(s) via redis", "redis_cpu_per_publication_us", "–", "(report)", 0},
}

func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("in", "", "JSON lines written by conns and fanout runs")
	out := fs.String("out", "", "markdown file to write (default stdout)")
	command := fs.String("command", "", "the command that produced the runs, quoted in the report")
	title := fs.String("title", "Herald benchmark", "report title")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("report: -in is required")
	}
	runs, err := readRuns(*in)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var first Result
	if b, err := json.Marshal(runs[0]); err == nil {
		_ = json.Unmarshal(b, &first)
	}
	var w io.Writer = os.Stdout
	if *out != "" {
		o, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer o.Close()
		w = o
	}
	writeReport(w, *title, *command, first, runs)
	return nil
}

func num(m map[string]any, key string) (float64, bool) {
	v, ok := m[key].(float64)
	return v, ok
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func fmtNum(x float64) string {
	switch {
	case x >= 1000 || x == float64(int64(x)):
		return fmt.Sprintf("%.0f", x)
	case x >= 100:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

// medians groups runs by scenario (in first-seen order) and takes the median
// of each numeric field over the runs of a scenario.
func medians(runs []map[string]any) (order []string, med map[string]map[string]float64, count, failed, noisy map[string]int) {
	byScenario := map[string][]map[string]any{}
	count, failed, noisy = map[string]int{}, map[string]int{}, map[string]int{}
	for _, r := range runs {
		s, _ := r["scenario"].(string)
		if _, ok := byScenario[s]; !ok {
			order = append(order, s)
		}
		byScenario[s] = append(byScenario[s], r)
		count[s]++
		if ok, _ := r["ok"].(bool); !ok {
			failed[s]++
		}
		if other, _ := num(r, "other_cpu_cores"); other > noisyCores {
			noisy[s]++
		}
	}
	med = map[string]map[string]float64{}
	for s, rs := range byScenario {
		vals := map[string][]float64{}
		for _, r := range rs {
			for k := range r {
				if v, ok := num(r, k); ok {
					vals[k] = append(vals[k], v)
				}
			}
		}
		med[s] = map[string]float64{}
		for k, v := range vals {
			med[s][k] = median(v)
		}
	}
	return order, med, count, failed, noisy
}

// noisyCores: a run during which other processes kept more than this many
// cores busy is counted as noisy in the report.
const noisyCores = 0.25

func writeReport(w io.Writer, title, command string, first Result, runs []map[string]any) {
	order, med, count, failed, noisy := medians(runs)
	fmt.Fprintf(w, "# %s: %s, commit %s\n\n", title, first.Time[:10], first.Commit)
	fmt.Fprintf(w, "Medians over repeated runs (%d runs in all; the runs column gives the count per scenario, "+
		"and how many were noisy: other processes kept more than %.2g cores busy).\n\n", len(runs), noisyCores)
	fmt.Fprintf(w, "- Machine: %d CPUs (`nproc`), %s, %.1f GiB memory, Linux %s, %s/%s\n", first.NumCPU, first.CPUModel,
		float64(first.MemTotalK)/1024/1024, first.Kernel, first.GOOS, first.GOARCH)
	fmt.Fprintf(w, "- Go: %s; commit: %s\n", first.GoVersion, first.Commit)
	fmt.Fprintf(w, "- Server: %s, client.ping_interval %s; load generator on the same machine (loopback)\n", first.Target, first.PingInterval)
	if command != "" {
		fmt.Fprintf(w, "- Command: `%s`\n", command)
	}
	fmt.Fprintln(w)

	table := func(mode string, cols []column, extra func(s string) string) {
		var scen []string
		for _, s := range order {
			if strings.HasPrefix(s, mode+" ") {
				scen = append(scen, s)
			}
		}
		if len(scen) == 0 {
			return
		}
		fmt.Fprintf(w, "## %s\n\n| scenario | runs |", mode)
		for _, c := range cols {
			fmt.Fprintf(w, " %s |", c.title)
		}
		fmt.Fprint(w, "\n|---|---:|")
		for range cols {
			fmt.Fprint(w, "---:|")
		}
		fmt.Fprintln(w)
		for _, s := range scen {
			runsCell := fmt.Sprint(count[s])
			if failed[s] > 0 {
				runsCell += fmt.Sprintf(" (%d not ok)", failed[s])
			}
			if noisy[s] > 0 {
				runsCell += fmt.Sprintf(" (%d noisy)", noisy[s])
			}
			fmt.Fprintf(w, "| %s%s | %s |", s, extra(s), runsCell)
			for _, c := range cols {
				if v, ok := med[s][c.key]; ok {
					fmt.Fprintf(w, " %s |", fmtNum(v))
				} else {
					fmt.Fprint(w, " – |")
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
	withM := func(s string) string {
		if m, ok := med[s]["m"]; ok {
			return fmt.Sprintf(", M=%.0f", m)
		}
		return ""
	}
	table("conns", connsColumns, func(string) string { return "" })
	table("fanout", fanoutColumns, withM)
	table("channels", fanoutColumns, withM)
	table("pb conns", connsColumns, func(string) string { return "" })
	table("pb fanout", fanoutColumns, withM)
	table("sse conns", connsColumns, func(string) string { return "" })
	table("sse fanout", fanoutColumns, withM)
	table("callout", calloutColumns, func(string) string { return "" })
	table("actioncable conns", connsColumns, func(string) string { return "" })
	table("actioncable fanout", fanoutColumns, withM)

	fmt.Fprint(w, "## Against the targets\n\n| figure | scenario | Centrifugo v6.9 | Herald target | Herald (median) | met |\n|---|---|---:|---:|---:|:---:|\n")
	for _, t := range targets {
		v, ok := med[t.scenario][t.key]
		got, met := "not run", ""
		if ok {
			got = fmtNum(v)
			switch {
			case t.max == 0:
				met = "–"
			case v <= t.max:
				met = "yes"
			default:
				met = "no"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", t.figure, t.scenario, t.centrifugo, t.goal, got, met)
	}
	fmt.Fprintln(w)
}
