package brokertest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker"
)

// Recorder is a broker.Handler that keeps everything delivered to it.
type Recorder struct {
	mu       sync.Mutex
	pubs     []Delivered
	joins    []string // channel/user
	leaves   []string
	controls []string
	resyncs  int
}

// Delivered is one publication as the handler received it.
type Delivered struct {
	Pub *broker.Publication
	SP  broker.StreamPosition
}

// HandlePublication implements broker.Handler.
func (r *Recorder) HandlePublication(p *broker.Publication, sp broker.StreamPosition) {
	r.mu.Lock()
	r.pubs = append(r.pubs, Delivered{p, sp})
	r.mu.Unlock()
}

// HandleJoin implements broker.Handler.
func (r *Recorder) HandleJoin(ch string, info *broker.ClientInfo) {
	r.mu.Lock()
	r.joins = append(r.joins, ch+"/"+info.User)
	r.mu.Unlock()
}

// HandleLeave implements broker.Handler.
func (r *Recorder) HandleLeave(ch string, info *broker.ClientInfo) {
	r.mu.Lock()
	r.leaves = append(r.leaves, ch+"/"+info.User)
	r.mu.Unlock()
}

// HandleControl implements broker.Handler.
func (r *Recorder) HandleControl(data []byte) {
	r.mu.Lock()
	r.controls = append(r.controls, string(data))
	r.mu.Unlock()
}

// HandleResync implements broker.Handler.
func (r *Recorder) HandleResync() {
	r.mu.Lock()
	r.resyncs++
	r.mu.Unlock()
}

// Pubs returns the publications delivered so far.
func (r *Recorder) Pubs() []Delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivered(nil), r.pubs...)
}

// PubsOf returns the publications of one channel.
func (r *Recorder) PubsOf(channel string) []Delivered {
	var out []Delivered
	for _, d := range r.Pubs() {
		if d.Pub.Channel == channel {
			out = append(out, d)
		}
	}
	return out
}

// Controls returns the control messages delivered so far.
func (r *Recorder) Controls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.controls...)
}

// Joins and Leaves return "channel/user" of each join and leave.
func (r *Recorder) Joins() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.joins...)
}

// Leaves returns "channel/user" of each leave.
func (r *Recorder) Leaves() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.leaves...)
}

// Resyncs counts HandleResync calls.
func (r *Recorder) Resyncs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resyncs
}

// Eventually calls f every 5 ms until it returns nil, and fails the test
// with f's last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	EventuallyEvery(t, timeout, 5*time.Millisecond, f)
}

// EventuallyEvery calls f every interval until it returns nil, and fails
// the test with f's last error after timeout.
func EventuallyEvery(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

// WaitPubs waits until the channel has n deliveries and returns them.
func (r *Recorder) WaitPubs(t testing.TB, channel string, n int) []Delivered {
	t.Helper()
	var got []Delivered
	Eventually(t, 5*time.Second, func() error {
		got = r.PubsOf(channel)
		if len(got) < n {
			return fmt.Errorf("channel %q: %d of %d publications delivered", channel, len(got), n)
		}
		return nil
	})
	return got
}
