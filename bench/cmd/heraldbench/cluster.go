package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Two-node runs: `-nodes 2 -broker redis` starts a private redis-server
// (loopback, free port, no persistence) and two herald nodes sharing it.
// Subscribers connect to node B; publications go in through node A, so
// every delivery crosses Redis. CPU per delivery is the two nodes'
// together; Redis's own CPU is reported beside it.

// ResultCluster holds the figures of two-node and Redis runs.
type ResultCluster struct {
	Nodes                  int     `json:"nodes,omitempty"`
	Broker                 string  `json:"broker,omitempty"`
	RedisCPUS              float64 `json:"redis_cpu_s,omitempty"`
	RedisCPUPerDeliveryUS  float64 `json:"redis_cpu_per_delivery_us,omitempty"`
	RedisCPUPerPublication float64 `json:"redis_cpu_per_publication_us,omitempty"`
	PublicationsPerSec     float64 `json:"publications_per_s,omitempty"`
}

func (o *options) checkCluster() error {
	switch {
	case o.nodes < 1 || o.nodes > 2:
		return errors.New("-nodes must be 1 or 2")
	case o.broker != "memory" && o.broker != "redis":
		return fmt.Errorf("-broker must be memory or redis, got %q", o.broker)
	case o.nodes == 2 && o.broker == "memory":
		return errors.New("-nodes 2 needs a broker that connects nodes: -broker redis")
	case (o.nodes > 1 || o.broker != "memory") && o.url != "":
		return errors.New("-nodes and -broker need -bin (the harness starts the nodes)")
	}
	return nil
}

// channelOf is the channel subscriber i subscribes to.
func (o *options) channelOf(i int) string {
	if o.spread {
		return o.channel + "-" + strconv.Itoa(i)
	}
	return o.channel
}

// channelFor is the channel publication seq goes to.
func (p *publisher) channelFor(seq int64) string {
	if p.spread == 0 {
		return p.ch
	}
	if seq < 0 {
		seq = -seq
	}
	return p.ch + "-" + strconv.FormatInt(seq%int64(p.spread), 10)
}

// startCluster starts what the options ask for: one node, or Redis and one
// or two nodes using it.
func startCluster(o *options, env []string) (*target, error) {
	mercure := o.transport == "sse"
	door := ""
	if o.transport == "actioncable" {
		door = cableConfig()
	}
	if o.broker == "memory" {
		return startServer(o.bin, o.pingInterval, mercure, door, env, o.serverStderr, 30*time.Second)
	}
	r, err := startRedisServer()
	if err != nil {
		return nil, err
	}
	extra := door + "broker:\n  type: redis\n  redis:\n    address: 127.0.0.1:" + strconv.Itoa(r.port) + "\n"
	b, err := startServer(o.bin, o.pingInterval, mercure, extra, env, o.serverStderr, 30*time.Second)
	if err != nil {
		r.stop()
		return nil, err
	}
	b.redis = r
	if o.nodes == 2 {
		a, err := startServer(o.bin, o.pingInterval, mercure, extra, env, "", 30*time.Second)
		if err != nil {
			b.stop(time.Second)
			return nil, err
		}
		b.pub = a
	}
	return b, nil
}

// pubBase is the node publications go in through.
func (t *target) pubBase() string {
	if t.pub != nil {
		return t.pub.base
	}
	return t.base
}

// nodesCPU is the CPU time of every herald node of the run.
func (t *target) nodesCPU() time.Duration {
	c := t.cpuTime()
	if t.pub != nil {
		c += t.pub.cpuTime()
	}
	return c
}

// redisCPU is the CPU time of the run's redis-server (0 without one).
func (t *target) redisCPU() time.Duration {
	if t.redis == nil {
		return 0
	}
	n, err := cpuTicks(t.redis.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return time.Duration(n) * clockTick
}

func (r *Result) redisFigures(t *target, redisUsed time.Duration, deliveries, publications int64, window time.Duration) {
	if t.redis == nil {
		return
	}
	r.RedisCPUS = round(redisUsed.Seconds(), 2)
	if deliveries > 0 {
		r.RedisCPUPerDeliveryUS = round(float64(redisUsed.Nanoseconds())/1e3/float64(deliveries), 3)
	}
	if publications > 0 {
		r.RedisCPUPerPublication = round(float64(redisUsed.Nanoseconds())/1e3/float64(publications), 2)
		r.PublicationsPerSec = round(float64(publications)/window.Seconds(), 0)
	}
}

// redisProc is a private redis-server.
type redisProc struct {
	cmd  *exec.Cmd
	port int
	dir  string
	done chan struct{}
}

func startRedisServer() (*redisProc, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("-broker redis needs redis-server on PATH (apt-get install redis-server)")
	}
	dir, err := os.MkdirTemp("", "heraldbench-redis-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning", "--logfile", filepath.Join(dir, "redis.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &redisProc{cmd: cmd, port: port, dir: dir, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			return r, nil
		}
		select {
		case <-r.done:
			b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			return nil, fmt.Errorf("redis-server exited: %s", b)
		case <-time.After(20 * time.Millisecond):
		}
	}
	r.stop()
	return nil, errors.New("redis-server did not listen in time")
}

func (r *redisProc) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	_ = os.RemoveAll(r.dir)
}
