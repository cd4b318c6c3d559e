package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// hostCPU is the machine-wide CPU time from the first line of /proc/stat.
type hostCPU struct {
	busy, steal time.Duration
	at          time.Time
}

func readHostCPU() hostCPU {
	h := hostCPU{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return h
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return h
	}
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	// user nice system idle iowait irq softirq steal
	h.busy = time.Duration(v[0]+v[1]+v[2]+v[5]+v[6]) * clockTick
	h.steal = time.Duration(v[7]) * clockTick
	return h
}

// otherCPU is how many cores other processes (not the server, not this
// load generator) kept busy between a and b, given what those two used.
func otherCPU(a, b hostCPU, server, self time.Duration) float64 {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return 0
	}
	other := (b.busy - a.busy - server - self).Seconds() / wall
	return max(0, other)
}

// waitQuiet waits until processes other than this one use less than
// threshold cores over a one-second sample, for at most limit. It reports
// the time waited and whether the machine was quiet in the end.
func waitQuiet(threshold float64, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	for {
		a, s0 := readHostCPU(), selfCPU()
		time.Sleep(time.Second)
		b, s1 := readHostCPU(), selfCPU()
		if otherCPU(a, b, 0, s1-s0) < threshold {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
	}
}
