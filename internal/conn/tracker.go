package conn

import (
	"context"
	"sync"
)

// Tracker is the set of a front door's live connections, for a graceful
// shutdown: it admits connection attempts until Shutdown, and Shutdown asks
// every live connection to close and waits for all of them to end.
type Tracker[T comparable] struct {
	mu      sync.Mutex
	set     map[T]struct{}
	closing bool
	wg      sync.WaitGroup
}

// Begin admits a connection attempt; false once Shutdown has started. Every
// admitted attempt calls Done when it ends, registered or not.
func (t *Tracker[T]) Begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.wg.Add(1)
	return true
}

// Done ends an attempt admitted by Begin.
func (t *Tracker[T]) Done() { t.wg.Done() }

// Add registers a live connection; false once Shutdown has started (the
// caller closes it and calls Done).
func (t *Tracker[T]) Add(c T) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	if t.set == nil {
		t.set = map[T]struct{}{}
	}
	t.set[c] = struct{}{}
	return true
}

// Remove unregisters a connection.
func (t *Tracker[T]) Remove(c T) {
	t.mu.Lock()
	delete(t.set, c)
	t.mu.Unlock()
}

// Len returns the number of live connections.
func (t *Tracker[T]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.set)
}

// Each calls f for every live connection, with the set locked: f must not
// block or call back into the tracker.
func (t *Tracker[T]) Each(f func(T)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.set {
		f(c)
	}
}

// Shutdown stops admitting, calls stop for every live connection (each on
// its own goroutine: a close handshake may wait for the client) and waits
// for every admitted attempt to end. When ctx ends first, it calls force
// for the connections still there and returns ctx's error.
func (t *Tracker[T]) Shutdown(ctx context.Context, stop, force func(T)) error {
	t.mu.Lock()
	t.closing = true
	live := make([]T, 0, len(t.set))
	for c := range t.set {
		live = append(live, c)
	}
	t.mu.Unlock()
	for _, c := range live {
		go stop(c)
	}
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Each(force)
		return ctx.Err()
	}
}
