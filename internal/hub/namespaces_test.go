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

func TestResolveOptional(t *testing.T) {
	ns, err := NewNamespaces(&config.Channel{MaxLength: 40, Namespaces: []config.Namespace{{Name: "chat"}}}, config.NamespaceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		channel string
		ns      string
		bad     bool
	}{
		{"plain", "", false},
		{"chat:Z2lkOi8vYXBwL1VzZXIvMQ", "chat", false}, // a configured namespace still applies
		{"Z2lkOi8vYXBwL1Jvb20vMQ:messages", "", false}, // Turbo's streamables joined with ":"
		{"comments:Z2lkOi8vYXBwL1Bvc3QvMQ", "", false}, // stream_for of CommentsChannel
		{"ünï:x", "", true},                            // still ASCII only
		{"", "", true},
	}
	for _, c := range cases {
		got, err := ns.ResolveOptional(c.channel)
		if c.bad {
			if err == nil {
				t.Errorf("%q: resolved, want an error", c.channel)
			}
			continue
		}
		if err != nil || got.Name != c.ns {
			t.Errorf("%q: got %v, %v; want namespace %q", c.channel, got, err, c.ns)
		}
	}
	if _, err := ns.Resolve("comments:x"); err == nil {
		t.Error("Resolve must still refuse an unknown namespace")
	}
}
