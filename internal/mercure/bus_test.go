package mercure

import (
	"fmt"
	"testing"
	"time"
)

func ids(us []*Update) string {
	s := ""
	for _, u := range us {
		s += u.ID + ","
	}
	return s
}

func pub(b *Bus, id string, topics ...string) {
	b.Publish(NewUpdate(id, topics, "", "", 0, false))
}

// TestBusDeliversOnceThroughEveryPath: a subscriber reached through several
// exact and template selectors gets each update once; removal empties the index.
func TestBusDeliversOnceThroughEveryPath(t *testing.T) {
	b := NewBus(NewMatcher(100), 10, 0)
	s := NewSubscriber([]string{"a", "b", "x/{id}"}, false, nil, 10)
	other := NewSubscriber([]string{"c"}, false, nil, 10)
	b.Subscribe(s, "")
	b.Subscribe(other, "")
	pub(b, "1", "a", "b", "x/1")
	pub(b, "2", "c")
	pub(b, "3", "x/2")
	if got := ids(s.Take()); got != "1,3," {
		t.Fatalf("got %s", got)
	}
	if got := ids(other.Take()); got != "2," {
		t.Fatalf("other got %s", got)
	}
	b.Unsubscribe(s)
	b.Unsubscribe(other)
	if len(b.exact) != 0 || len(b.wide) != 0 || len(b.subs) != 0 {
		t.Fatalf("index not empty: %d %d %d", len(b.exact), len(b.wide), len(b.subs))
	}
}

func TestBusQueueFullDrops(t *testing.T) {
	b := NewBus(NewMatcher(100), 0, 0)
	s := NewSubscriber([]string{"*"}, false, nil, 2)
	b.Subscribe(s, "")
	pub(b, "1", "t")
	pub(b, "2", "t")
	select {
	case <-s.Gone():
		t.Fatal("dropped before the queue was full")
	default:
	}
	pub(b, "3", "t")
	select {
	case <-s.Gone():
	default:
		t.Fatal("not dropped with a full queue")
	}
	if s.Why() != "queue_full" {
		t.Fatal(s.Why())
	}
}

func TestHistoryBoundsAndDuplicates(t *testing.T) {
	b := NewBus(NewMatcher(100), 3, 0)
	for i, id := range []string{"a", "b", "a", "c", "d"} {
		pub(b, id, fmt.Sprint("t", i))
	}
	// retained: a(2) c(3) d(4); a now means its later occurrence
	s := NewSubscriber([]string{"*"}, false, nil, 10)
	replay, h := b.Subscribe(s, "a")
	if h != "a" || ids(replay) != "c,d," {
		t.Fatalf("after a: %s %s", h, ids(replay))
	}
	replay, h = b.Subscribe(NewSubscriber([]string{"*"}, false, nil, 10), "b")
	if h != Earliest || len(replay) != 0 {
		t.Fatalf("evicted id: %s %s", h, ids(replay))
	}
	replay, h = b.Subscribe(NewSubscriber([]string{"*"}, false, nil, 10), Earliest)
	if h != Earliest || ids(replay) != "a,c,d," {
		t.Fatalf("earliest: %s %s", h, ids(replay))
	}
	if len(b.hist.index) != 3 {
		t.Fatalf("index size %d", len(b.hist.index))
	}
}

func TestHistoryTTL(t *testing.T) {
	b := NewBus(NewMatcher(100), 10, time.Minute)
	now := time.Now()
	b.now = func() time.Time { return now }
	pub(b, "old", "t")
	now = now.Add(2 * time.Minute)
	pub(b, "new", "t")
	replay, _ := b.Subscribe(NewSubscriber([]string{"*"}, false, nil, 10), Earliest)
	if ids(replay) != "new," {
		t.Fatalf("%s", ids(replay))
	}
}
