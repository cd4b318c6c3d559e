package suggest

import (
	"strings"
	"testing"
)

func TestDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"chanels", "channels", 1}, {"usr", "user", 1}, {"kitten", "sitting", 3}, {"é", "e", 1},
		{strings.Repeat("a", 65), "a", 1 << 30},
	}
	for _, c := range cases {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
