package hub

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEncodedForBuildsOncePerFormatAndKey(t *testing.T) {
	d := &Delivery{Kind: KindPublication, Channel: "c"}
	f1, f2 := RegisterFormat("test-keyed-1"), RegisterFormat("test-keyed-2")
	var builds atomic.Int32
	build := func(d *Delivery, key string) []byte {
		builds.Add(1)
		return []byte(d.Channel + "/" + key)
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := fmt.Sprintf("k%d", i%3)
			if got := string(d.EncodedFor(f1, key, build)); got != "c/"+key {
				t.Errorf("got %q for %s", got, key)
			}
		}(i)
	}
	wg.Wait()
	if n := builds.Load(); n != 3 {
		t.Fatalf("built %d times for 3 keys, want 3", n)
	}
	if got := string(d.EncodedFor(f2, "k0", build)); got != "c/k0" || builds.Load() != 4 {
		t.Fatalf("another format is its own encoding: got %q after %d builds", got, builds.Load())
	}
}

func TestEncodedForBoundsWhatItKeeps(t *testing.T) {
	d := &Delivery{Kind: KindPublication, Channel: "c"}
	f := RegisterFormat("test-keyed-1")
	builds := 0
	build := func(_ *Delivery, key string) []byte { builds++; return []byte(key) }
	for i := 0; i < maxKeyed+10; i++ {
		d.EncodedFor(f, fmt.Sprint(i), build)
	}
	if len(d.keyed) > maxKeyed {
		t.Fatalf("keeps %d keyed encodings, bound %d", len(d.keyed), maxKeyed)
	}
	before := builds
	if got := string(d.EncodedFor(f, fmt.Sprint(maxKeyed+5), build)); got != fmt.Sprint(maxKeyed+5) || builds != before+1 {
		t.Fatalf("a key past the bound is built for its subscriber: got %q, builds %d→%d", got, before, builds)
	}
}
