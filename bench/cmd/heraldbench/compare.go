package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// compareKeys are the figures an A/B comparison shows, per kind of scenario.
var compareKeys = map[string][]column{
	"conns": {{"rss_per_conn_kib", "RSS per conn (KiB)"}, {"heap_stack_per_conn_kib", "heap + stacks per conn (KiB)"},
		{"cpu_per_connect_us", "CPU per connect (µs)"}, {"goroutines_per_conn", "goroutines per conn"}},
	"fanout": {{"cpu_per_delivery_us", "CPU per delivery (µs)"}, {"lat_p50_ms", "p50 (ms)"}, {"lat_p99_ms", "p99 (ms)"},
		{"deliveries_per_s", "deliveries/s"}, {"missing", "missing"}, {"duplicates", "duplicates"}},
	"callout": {{"herald_processing_p50_us", "Herald processing p50 (µs)"}, {"herald_cpu_per_login_us", "Herald CPU per login (µs)"},
		{"login_p99_ms", "login p99 (ms)"}, {"logins_per_s", "logins/s"}},
}

// runCompare writes a table of the medians of two sets of runs made in one
// sitting (run.sh with BASELINE), with the ratio B/A of each figure.
func runCompare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	a := fs.String("a", "", "JSON lines of the baseline runs")
	b := fs.String("b", "", "JSON lines of the runs under test")
	out := fs.String("out", "", "markdown file to write (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *a == "" || *b == "" {
		return errors.New("compare: -a and -b are required")
	}
	ra, err := readRuns(*a)
	if err != nil {
		return err
	}
	rb, err := readRuns(*b)
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	writeCompare(w, ra, rb)
	return nil
}

func readRuns(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var runs []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		runs = append(runs, m)
	}
	if len(runs) == 0 {
		return nil, errors.New("no runs in " + path)
	}
	return runs, sc.Err()
}

func writeCompare(w io.Writer, ra, rb []map[string]any) {
	commit := func(runs []map[string]any) string { c, _ := runs[0]["commit"].(string); return c }
	order, medA, countA, _, _ := medians(ra)
	_, medB, countB, _, _ := medians(rb)
	fmt.Fprintf(w, "A = %s (%d runs), B = %s (%d runs), interleaved: medians, and B/A.\n\n", commit(ra), len(ra), commit(rb), len(rb))
	fmt.Fprint(w, "| scenario | figure | A | B | B/A |\n|---|---|---:|---:|---:|\n")
	for _, s := range order {
		kind := "fanout"
		if strings.Contains(s, "conns") {
			kind = "conns"
		} else if strings.HasPrefix(s, "callout") {
			kind = "callout"
		}
		for _, c := range compareKeys[kind] {
			va, okA := medA[s][c.key]
			vb, okB := medB[s][c.key]
			if !okA || !okB {
				continue
			}
			ratio := "–"
			if va != 0 {
				ratio = fmt.Sprintf("%.2f", vb/va)
			}
			fmt.Fprintf(w, "| %s (%d/%d runs) | %s | %s | %s | %s |\n", s, countA[s], countB[s], c.title, fmtNum(va), fmtNum(vb), ratio)
		}
	}
	fmt.Fprintln(w)
}
