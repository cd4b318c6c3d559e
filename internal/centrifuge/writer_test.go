package centrifuge_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// Frames of every length class (7-bit, 16-bit and 64-bit lengths) arrive
// whole and in order, including messages joined into one frame.
func TestFrameLengths(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.QueueMaxSize = 4 << 20
	srv := testutil.Start(t, cfg)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	c.Call("subscribe", map[string]any{"channel": "sizes"})
	// Payload lengths around the frame header's boundaries (125/126 and
	// 65535/65536 bytes of frame payload, with the push envelope around it).
	sizes := []int{0, 1, 60, 100, 126, 1000, 65400, 65536, 70000, 300000}
	for i, n := range sizes {
		data, _ := json.Marshal(map[string]any{"i": i, "pad": strings.Repeat("y", n)})
		if err := srv.HubPublish("sizes", data); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range sizes {
		p := c.WaitPush(5 * time.Second)
		var got struct {
			I   int    `json:"i"`
			Pad string `json:"pad"`
		}
		raw, _ := json.Marshal(p["pub"].(map[string]any)["data"])
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if got.I != i || len(got.Pad) != n {
			t.Fatalf("push %d: got i=%d with %d bytes, want %d bytes", i, got.I, len(got.Pad), n)
		}
	}
}

// Clients that stop reading fill their socket buffers; the writers that wait
// for them are replaced, so a client that reads still gets every message at
// once. With the writers stuck on the slow clients, the fast one would wait
// for their write timeout (5 s); 4 s leaves room for a slow, race-checked run
// in which a single writer (write_lag 1s) copies the slow clients' 16 MiB.
func TestSlowClientsDoNotDelayOthers(t *testing.T) {
	// Whatever client.write_lag says, a writer stuck on a slow client is
	// replaced at once.
	for _, lag := range []time.Duration{0, 10 * time.Millisecond, time.Second} {
		t.Run(lag.String(), func(t *testing.T) { testSlowClients(t, lag) })
	}
}

func testSlowClients(t *testing.T, lag time.Duration) {
	cfg := testutil.Config()
	cfg.Client.WriteLag = config.Duration(lag)
	cfg.Client.QueueMaxSize = 256 << 20
	srv := testutil.Start(t, cfg)
	// More slow clients than writers.
	for i := range runtime.GOMAXPROCS(0) + 2 {
		c := srv.Dial(t, nil)
		c.Connect(testutil.UserToken(t, fmt.Sprint("slow", i)))
		c.Call("subscribe", map[string]any{"channel": "wide"})
	}
	fast := srv.Dial(t, nil)
	fast.Connect(testutil.UserToken(t, "fast"))
	fast.Call("subscribe", map[string]any{"channel": "wide"})
	got := make(chan int, 1024)
	go func() {
		for {
			l, err := fast.ReadLine(30 * time.Second)
			if err != nil {
				close(got)
				return
			}
			var m struct {
				Push struct {
					Pub struct {
						Data struct {
							N int `json:"n"`
						} `json:"data"`
					} `json:"pub"`
				} `json:"push"`
			}
			if json.Unmarshal([]byte(l), &m) == nil && m.Push.Pub.Data.N > 0 {
				got <- m.Push.Pub.Data.N
			}
		}
	}()
	// About 16 MiB per client: far more than a loopback socket buffers.
	const total = 256
	pad := strings.Repeat("z", 64<<10)
	for n := 1; n <= total; n++ {
		data, _ := json.Marshal(map[string]any{"n": n, "pad": pad})
		if err := srv.HubPublish("wide", data); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	timeout := time.After(4 * time.Second)
	for want := 1; want <= total; want++ {
		select {
		case n, ok := <-got:
			if !ok {
				t.Fatalf("fast client's connection ended after %d messages", want-1)
			}
			if n != want {
				t.Fatalf("fast client got %d, want %d", n, want)
			}
		case <-timeout:
			t.Fatalf("fast client got %d of %d messages in 4 s: writers are waiting for the slow clients", want-1, total)
		}
	}
	t.Logf("fast client read %d messages in %s", total, time.Since(start))
}
