package auth

import "testing"

func TestUserLimited(t *testing.T) {
	cases := []struct {
		channel, user    string
		limited, allowed bool
	}{
		{"personal:#42", "42", true, true},
		{"dialog:#42,43", "43", true, true},
		{"dialog:#42,43", "44", true, false},
		{"personal:#42", "", true, false},
		{"open", "42", false, false},
	}
	for _, c := range cases {
		l, a := UserLimited(c.channel, c.user)
		if l != c.limited || a != c.allowed {
			t.Errorf("UserLimited(%q, %q) = %v, %v", c.channel, c.user, l, a)
		}
	}
}
