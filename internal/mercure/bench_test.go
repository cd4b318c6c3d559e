package mercure

import (
	"fmt"
	"testing"
)

// BenchmarkPublish measures one publication reaching 100 of 10 000
// subscribers (100 topics, exact selectors) plus 10 template subscribers.
func BenchmarkPublish(b *testing.B) {
	bus := NewBus(NewMatcher(100000), 1000, 0)
	var subs []*Subscriber
	for i := 0; i < 10000; i++ {
		s := NewSubscriber([]string{fmt.Sprintf("https://example.com/rooms/%d", i%100)}, false, nil, 1<<30)
		bus.Subscribe(s, "")
		subs = append(subs, s)
	}
	for i := 0; i < 10; i++ {
		s := NewSubscriber([]string{"https://example.com/rooms/{id}"}, false, nil, 1<<30)
		bus.Subscribe(s, "")
		subs = append(subs, s)
	}
	u := NewUpdate("id", []string{"https://example.com/rooms/7"}, "hello", "", 0, false)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bus.Publish(&Update{ID: u.ID, Topics: u.Topics, encoded: u.encoded})
		if i%64 == 63 {
			for _, s := range subs {
				s.Take()
			}
		}
	}
}
