package hub

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/config"
)

func TestResolve(t *testing.T) {
	ns, err := NewNamespaces(&config.Channel{MaxLength: 20, Namespaces: []config.Namespace{
		{Name: "chat"}, {Name: "ids", NamespaceOptions: config.NamespaceOptions{ChannelRegex: `^\d+$`}},
	}}, config.NamespaceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		channel string
		ns      string
		kind    ChannelErrorKind
	}{
		{"plain", "", 0},
		{"chat:room", "chat", 0},
		{"$chat:room", "chat", 0},
		{"chat:a:b", "chat", 0},
		{"news:x", "", UnknownNamespace},
		{"", "", BadChannelName},
		{"tab\there", "", BadChannelName},
		{"ünï", "", BadChannelName},
		{strings.Repeat("x", 21), "", BadChannelName},
	}
	for _, c := range cases {
		got, err := ns.Resolve(c.channel)
		var ce *ChannelError
		switch {
		case c.kind != 0 && (!errors.As(err, &ce) || ce.Kind != c.kind):
			t.Errorf("%q: err %v, want kind %d", c.channel, err, c.kind)
		case c.kind == 0 && (err != nil || got.Name != c.ns):
			t.Errorf("%q: %v %v, want namespace %q", c.channel, got, err, c.ns)
		}
	}
	ids, _ := ns.Resolve("ids:42")
	if ids.CheckRegex("ids:42") != nil || ids.CheckRegex("ids:abc") == nil {
		t.Errorf("channel_regex applies to the part after the namespace")
	}
}

func TestNormalizeData(t *testing.T) {
	got, err := NormalizeData([]byte("{\n  \"a\": [1,\n 2]\n}"))
	if err != nil || string(got) != `{"a":[1,2]}` {
		t.Fatalf("%s %v", got, err)
	}
	for _, bad := range []string{"", "  ", "{", "nope"} {
		if _, err := NormalizeData([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
