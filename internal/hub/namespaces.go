package hub

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

// Reserved channel symbols.
const (
	NamespaceBoundary = auth.NamespaceBoundary
	PrivatePrefix     = auth.PrivatePrefix
)

// Namespace is a resolved set of channel options.
type Namespace struct {
	Name string // "" for channels without a namespace
	config.NamespaceOptions
	regex *regexp.Regexp
}

// topicsName names the namespace of URI channels (Mercure topics).
const topicsName = "(topics)"

// Label names the namespace in messages.
func (n *Namespace) Label() string {
	switch n.Name {
	case "":
		return "channel.without_namespace"
	case topicsName:
		return "the namespace of URI channels (Mercure topics)"
	}
	return fmt.Sprintf("namespace %q", n.Name)
}

// ChannelErrorKind classifies a channel that cannot be used.
type ChannelErrorKind int

// Channel error kinds.
const (
	// BadChannelName: empty, too long, non-ASCII or failing channel_regex (code 107).
	BadChannelName ChannelErrorKind = iota + 1
	// UnknownNamespace: the namespace before ":" is not configured (code 102).
	UnknownNamespace
)

// ChannelError says why a channel name cannot be used.
type ChannelError struct {
	Kind ChannelErrorKind
	Msg  string
}

func (e *ChannelError) Error() string { return e.Msg }

// Namespaces resolves channel names to their namespace options.
type Namespaces struct {
	without   *Namespace
	topics    *Namespace
	byName    map[string]*Namespace
	maxLength int
}

// NewNamespaces builds the resolver from configuration. Configuration is
// validated beforehand; a bad channel_regex here is still reported. topics
// are the options of URI channels (names with "://", Mercure topics).
func NewNamespaces(c *config.Channel, topics config.NamespaceOptions) (*Namespaces, error) {
	n := &Namespaces{byName: map[string]*Namespace{}, maxLength: c.MaxLength,
		topics: &Namespace{Name: topicsName, NamespaceOptions: topics}}
	build := func(name string, o config.NamespaceOptions) (*Namespace, error) {
		ns := &Namespace{Name: name, NamespaceOptions: o}
		if o.ChannelRegex != "" {
			re, err := regexp.Compile(o.ChannelRegex)
			if err != nil {
				return nil, fmt.Errorf("channel_regex of %s: %w", ns.Label(), err)
			}
			ns.regex = re
		}
		return ns, nil
	}
	var err error
	if n.without, err = build("", c.WithoutNamespace); err != nil {
		return nil, err
	}
	for _, ns := range c.Namespaces {
		b, err := build(ns.Name, ns.NamespaceOptions)
		if err != nil {
			return nil, err
		}
		n.byName[ns.Name] = b
	}
	return n, nil
}

// Resolve checks a channel name and returns its namespace.
func (n *Namespaces) Resolve(channel string) (*Namespace, error) {
	if channel == "" {
		return nil, &ChannelError{BadChannelName, "empty channel name"}
	}
	if n.maxLength > 0 && len(channel) > n.maxLength {
		return nil, &ChannelError{BadChannelName, fmt.Sprintf("channel name is %d bytes, limit is %d (channel.max_length)", len(channel), n.maxLength)}
	}
	for i := 0; i < len(channel); i++ {
		if c := channel[i]; c >= 0x7f || c < 0x20 {
			return nil, &ChannelError{BadChannelName, fmt.Sprintf("channel name has a non-ASCII or control byte at %d", i)}
		}
	}
	if IsURI(channel) {
		return n.topics, nil
	}
	name := strings.TrimPrefix(channel, PrivatePrefix)
	i := strings.Index(name, NamespaceBoundary)
	if i < 0 {
		return n.without, nil
	}
	ns := n.byName[name[:i]]
	if ns == nil {
		return nil, &ChannelError{UnknownNamespace, fmt.Sprintf("unknown namespace %q (add it to channel.namespaces)", name[:i])}
	}
	return ns, nil
}

// ResolveOptional resolves a channel whose namespace prefix is optional: a
// name whose part before ":" is no configured namespace is a channel without
// namespace. Other protocols' stream names use ":" freely (Action Cable's
// chat:Z2lk…, Turbo's Z2lk…:messages); such a name is still the same channel
// for every door, and a configured namespace still applies to it.
func (n *Namespaces) ResolveOptional(channel string) (*Namespace, error) {
	ns, err := n.Resolve(channel)
	var ce *ChannelError
	if err != nil && errors.As(err, &ce) && ce.Kind == UnknownNamespace {
		return n.without, nil
	}
	return ns, err
}

func (n *Namespaces) resolve(channel string, optional bool) (*Namespace, error) {
	if optional {
		return n.ResolveOptional(channel)
	}
	return n.Resolve(channel)
}

// CheckRegex applies the namespace's channel_regex to the part after "ns:".
// It applies to client-side subscriptions only.
func (ns *Namespace) CheckRegex(channel string) error {
	if ns.regex == nil {
		return nil
	}
	name := strings.TrimPrefix(channel, PrivatePrefix)
	if i := strings.Index(name, NamespaceBoundary); i >= 0 {
		name = name[i+1:]
	}
	if !ns.regex.MatchString(name) {
		return &ChannelError{BadChannelName, fmt.Sprintf("channel name does not match channel_regex of %s", ns.Label())}
	}
	return nil
}

// IsURI reports whether a channel name is a URI ("https://example.com/books/1"):
// such names are channels of the topics namespace, never a namespace named
// after the scheme.
func IsURI(channel string) bool { return strings.Contains(channel, "://") }

// ResolveTopic returns the namespace of a Mercure topic: a topic that is a
// valid channel name of a configured namespace (or without one) is that
// channel; any other topic (a URI, an IRI, a name whose prefix is no
// namespace) is a channel of the topics namespace.
func (n *Namespaces) ResolveTopic(topic string) *Namespace {
	if ns, err := n.Resolve(topic); err == nil {
		return ns
	}
	return n.topics
}
