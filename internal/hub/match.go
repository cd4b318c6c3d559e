package hub

import (
	"regexp"
	"strings"
	"sync"

	"github.com/yosida95/uritemplate/v3"
)

// Matcher decides whether a topic selector matches a topic (§2 of the spec):
// "*" matches everything, identical strings match, and a selector that is a
// valid RFC 6570 URI template matches the topics it can expand to. A selector
// without "{" or with an invalid template only matches itself. Results are
// cached in a bounded cache.
type Matcher struct {
	max    int // entries per shard; 0 disables caching
	shards [matchShards]matchShard
}

const matchShards = 32

type matchKey struct{ selector, topic string }

type matchShard struct {
	mu      sync.RWMutex
	results map[matchKey]bool
	// templates caches compiled templates (nil = not a valid template).
	templates map[string]*regexp.Regexp
}

// NewMatcher returns a matcher caching about size results (0: no cache).
func NewMatcher(size int) *Matcher {
	m := &Matcher{}
	if size > 0 {
		m.max = max(size/matchShards, 1)
	}
	return m
}

func (m *Matcher) shard(s string) *matchShard {
	// FNV-1a over the selector: all results and the template of one selector
	// live in one shard.
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return &m.shards[h%matchShards]
}

// Match reports whether selector matches topic.
func (m *Matcher) Match(selector, topic string) bool {
	if selector == "*" || selector == topic {
		return true
	}
	if !strings.Contains(selector, "{") {
		return false
	}
	if m.max == 0 {
		re := compileTemplate(selector)
		return re != nil && re.MatchString(topic)
	}
	sh := m.shard(selector)
	k := matchKey{selector, topic}
	sh.mu.RLock()
	res, ok := sh.results[k]
	re, compiled := sh.templates[selector]
	sh.mu.RUnlock()
	if ok {
		return res
	}
	if !compiled {
		re = compileTemplate(selector)
	}
	res = re != nil && re.MatchString(topic)
	sh.mu.Lock()
	// Bounded: a full shard starts over rather than growing.
	if len(sh.results) >= m.max {
		clear(sh.results)
	}
	if len(sh.templates) >= m.max {
		clear(sh.templates)
	}
	if sh.results == nil {
		sh.results = make(map[matchKey]bool)
		sh.templates = make(map[string]*regexp.Regexp)
	}
	sh.results[k] = res
	sh.templates[selector] = re
	sh.mu.Unlock()
	return res
}

// MatchAny reports whether any selector matches any topic.
func (m *Matcher) MatchAny(selectors, topics []string) bool {
	for _, s := range selectors {
		for _, t := range topics {
			if m.Match(s, t) {
				return true
			}
		}
	}
	return false
}

// compileTemplate returns the regular expression of a URI template, or nil
// when selector is not a valid template (it is then a raw string).
func compileTemplate(selector string) *regexp.Regexp {
	t, err := uritemplate.New(selector)
	if err != nil {
		return nil
	}
	return t.Regexp()
}
