package hub

import (
	"testing"

	"github.com/heraldhub/herald/internal/broker"
)

func pubs(offsets ...uint64) []*broker.Publication {
	out := make([]*broker.Publication, len(offsets))
	for i, o := range offsets {
		out[i] = &broker.Publication{Offset: o}
	}
	return out
}

// TestRecovered is the recovery rule, all or nothing: the epoch must be the
// stream's or empty, and every publication after the position must still
// be there, up to the top, within the limit.
func TestRecovered(t *testing.T) {
	top := broker.StreamPosition{Offset: 5, Epoch: "e1"}
	rows := []struct {
		name  string
		pubs  []*broker.Publication
		since broker.StreamPosition
		limit int
		want  bool
	}{
		{"nothing missed", nil, broker.StreamPosition{Offset: 5, Epoch: "e1"}, 300, true},
		{"all missed ones present", pubs(3, 4, 5), broker.StreamPosition{Offset: 2, Epoch: "e1"}, 300, true},
		{"empty epoch recovers from the offset", pubs(3, 4, 5), broker.StreamPosition{Offset: 2}, 300, true},
		{"offset 0, empty epoch: the retained publications", pubs(1, 2, 3, 4, 5), broker.StreamPosition{}, 300, true},
		{"offset 0 after eviction is a gap", pubs(3, 4, 5), broker.StreamPosition{}, 300, false},
		{"other epoch", pubs(3, 4, 5), broker.StreamPosition{Offset: 2, Epoch: "e0"}, 300, false},
		{"evicted in between", pubs(4, 5), broker.StreamPosition{Offset: 2, Epoch: "e1"}, 300, false},
		{"beyond the top", nil, broker.StreamPosition{Offset: 9, Epoch: "e1"}, 300, false},
		{"more than the limit", pubs(3, 4, 5), broker.StreamPosition{Offset: 2, Epoch: "e1"}, 2, false},
		{"cut short by the limit", pubs(3, 4), broker.StreamPosition{Offset: 2, Epoch: "e1"}, 2, false},
		{"nothing read but behind", nil, broker.StreamPosition{Offset: 3, Epoch: "e1"}, 300, false},
	}
	for _, r := range rows {
		if got := recovered(r.pubs, top, r.since, r.limit); got != r.want {
			t.Errorf("%s: recovered = %v, want %v", r.name, got, r.want)
		}
	}
}
