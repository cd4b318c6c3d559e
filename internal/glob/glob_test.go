package glob

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "https://app.example.com", true},
		{"https://*.example.com", "https://app.example.com", true},
		{"https://*.example.com", "https://example.com", false},
		{"https://*.example.com", "https://app.example.com.evil.io", false},
		{"http://localhost:*", "http://localhost:3000", true},
		{"http://localhost:*", "http://localhost", false},
		{"chat:*", "chat:room", true},
		{"chat:*", "news:room", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"exact", "exact", true},
		{"exact", "Exact", false},
		{"", "", true},
		{"", "x", false},
		{"**", "anything", true},
	}
	for _, c := range cases {
		if got := Match(c.pattern, c.s); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}
