package hub

import "testing"

// TestMatchTable is every row of the matching table of the spec (§2), plus
// the URI template operators and the cache.
func TestMatchTable(t *testing.T) {
	rows := []struct {
		selector, topic string
		want            bool
	}{
		{"*", "https://example.com/anything", true},
		{"*", "", true},
		{"foo", "foo", true},
		{"https://example.com/books/{id}", "https://example.com/books/1", true},
		{"https://example.com/books/{id}", "https://example.com/books/1/reviews", false},
		{"https://example.com/books{/id}", "https://example.com/books/1", true},
		{"https://example.com/authors/{id}", "https://example.com/books/1", false},
		{"chat-room", "chat-room-2", false},
		{"https://example.com/books/{id", "https://example.com/books/{id", true},
		{"https://example.com/books/{id", "https://example.com/books/1", false},
		{"https://example.com/books/*", "https://example.com/books/1", false},
		{"https://example.com/books/{id}", "https://example.com/books/{id}", true},
		{"https://example.com/{+path}", "https://example.com/a/b/c", true},
		{"https://example.com/users/foo/{?topic}", "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1", true},
		{"https://example.com/users/foo/{?topic}", "https://example.com/users/bar/?topic=x", false},
		{"foo", "Foo", false},
	}
	for _, cached := range []bool{true, false} {
		size := 100
		if !cached {
			size = 0
		}
		m := NewMatcher(size)
		for round := 0; round < 2; round++ { // the second round reads the cache
			for _, r := range rows {
				if got := m.Match(r.selector, r.topic); got != r.want {
					t.Errorf("cache=%v round %d: Match(%q, %q) = %v, want %v", cached, round, r.selector, r.topic, got, r.want)
				}
			}
		}
	}
}

func TestMatchCacheIsBounded(t *testing.T) {
	m := NewMatcher(matchShards) // one entry per shard
	for i := 0; i < 1000; i++ {
		m.Match("https://example.com/books/{id}", "https://example.com/books/"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	total := 0
	for i := range m.shards {
		total += len(m.shards[i].results)
	}
	if total > matchShards {
		t.Fatalf("cache holds %d results, bound is %d", total, matchShards)
	}
	if !m.Match("https://example.com/books/{id}", "https://example.com/books/zz") {
		t.Fatal("match after eviction failed")
	}
}

func TestMatchAny(t *testing.T) {
	m := NewMatcher(10)
	if !m.MatchAny([]string{"a", "b/{id}"}, []string{"c", "b/1"}) {
		t.Fatal("OR across selectors and topics")
	}
	if m.MatchAny([]string{"a"}, []string{"b"}) || m.MatchAny(nil, []string{"a"}) {
		t.Fatal("false match")
	}
}
