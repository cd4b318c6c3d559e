package config

import "strings"

// Problem is one thing wrong with the configuration.
type Problem struct {
	// Where locates the problem's source: "herald.yaml:12" for a file line,
	// "environment variable HERALD_LISTEN", "command line", or "" when the
	// problem is about the effective configuration as a whole.
	Where string
	// Key is the dotted key path the problem is about, such as
	// "client.ping_interval" or "channel.namespaces[1].history_size". For an
	// unknown key it names the map holding that key ("" for the top level).
	Key string
	// Msg says what is wrong, and how to fix it when that is not obvious. It
	// never contains the value of a secret key.
	Msg string
}

// String formats the problem as one line, e.g.
// `herald.yaml:3: unknown key "chanels"; did you mean "channels"?` or
// `herald.yaml:7: client.channel_limit: value "lots" is not an integer`.
func (p Problem) String() string {
	var b strings.Builder
	if p.Where != "" {
		b.WriteString(p.Where)
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return oneLine(b.String())
}

// Problems lists everything wrong with a configuration. It implements error
// so that Load can return every problem at once.
type Problems []Problem

// Error returns one line per problem, joined by "\n".
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// oneLine replaces line breaks so that a problem always prints as one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
