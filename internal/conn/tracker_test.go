package conn

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestTrackerShutdown(t *testing.T) {
	var tr Tracker[int]
	if !tr.Begin() || !tr.Add(1) {
		t.Fatal("a tracker admits before Shutdown")
	}
	var stopped atomic.Int32
	ended := make(chan struct{})
	go func() {
		<-ended
		tr.Remove(1)
		tr.Done()
	}()
	done := make(chan error, 1)
	go func() {
		done <- tr.Shutdown(context.Background(), func(int) { stopped.Add(1); close(ended) }, func(int) {})
	}()
	select {
	case err := <-done:
		if err != nil || stopped.Load() != 1 || tr.Len() != 0 {
			t.Fatalf("shutdown: %v, stopped %d, live %d", err, stopped.Load(), tr.Len())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not return after the connection ended")
	}
	if tr.Begin() || tr.Add(2) {
		t.Fatal("a tracker admits after Shutdown")
	}
}

func TestTrackerShutdownForcesAtTheDeadline(t *testing.T) {
	var tr Tracker[int]
	tr.Begin()
	tr.Add(7)
	var forced atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.Shutdown(ctx, func(int) {}, func(c int) { forced.Add(int32(c)) }); err == nil || forced.Load() != 7 {
		t.Fatalf("err %v, forced %d", err, forced.Load())
	}
	tr.Done()
}
