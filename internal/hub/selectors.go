package hub

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/heraldhub/herald/internal/broker"
)

// Topic-selector subscriptions (Mercure).
//
// A selector subscription names topics by selectors: exact topics, "*", or
// URI templates. It receives a publication when one of its selectors matches
// one of the publication's topics (a Mercure update's topics, or the channel
// of a publication made through another door). Exact selectors are found
// through an index; each distinct template is matched once per publication,
// through the matcher's bounded cache, whatever the number of subscribers
// that use it. A private publication, and every publication made through
// another door, reaches only subscribers whose token allows one of its
// topics (Mercure's mercure.subscribe).

type selectorSub struct {
	selectors     []string
	authenticated bool     // presented a valid token
	allowed       []string // the token's selectors for private updates
	mark          uint64   // the last publication offered, under selectorIndex.mu
}

type selectorIndex struct {
	mu    sync.Mutex
	exact map[string]map[*Subscription]struct{} // plain selectors
	wide  map[string]map[*Subscription]struct{} // "*" and templates, by selector
	subs  map[*Subscription]struct{}
	seq   uint64
	count atomic.Int64
}

func (x *selectorIndex) init() {
	x.exact = map[string]map[*Subscription]struct{}{}
	x.wide = map[string]map[*Subscription]struct{}{}
	x.subs = map[*Subscription]struct{}{}
}

func (x *selectorIndex) all() []*Subscription {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]*Subscription, 0, len(x.subs))
	for s := range x.subs {
		out = append(out, s)
	}
	return out
}

// plain reports whether a selector only ever matches itself.
func plain(selector string) bool {
	return selector != "*" && !strings.Contains(selector, "{")
}

func addTo(m map[string]map[*Subscription]struct{}, key string, s *Subscription) {
	set := m[key]
	if set == nil {
		set = map[*Subscription]struct{}{}
		m[key] = set
	}
	set[s] = struct{}{}
}

func removeFrom(m map[string]map[*Subscription]struct{}, key string, s *Subscription) {
	if set := m[key]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(m, key)
		}
	}
}

// SelectorRequest is a topic-selector subscription.
type SelectorRequest struct {
	Client    Client
	Selectors []string
	// Authenticated subscribers may receive private publications whose
	// topics one of Allowed matches.
	Authenticated bool
	Allowed       []string
	// Replay asks for the indexed publications after LastEventID (all of
	// them when LastEventID is empty).
	Replay      bool
	LastEventID string
}

// SelectorResult is a registered selector subscription and what it missed.
type SelectorResult struct {
	Sub    *Subscription
	Replay []*broker.Publication
	// Found: the last event id was in the index (always true without one).
	Found bool
}

// SubscribeSelectors registers a topic-selector subscription, buffering what
// arrives, and reads what it missed from the index. The front door writes
// the replay and then calls Activate.
func (h *Hub) SubscribeSelectors(_ context.Context, req *SelectorRequest) (*SelectorResult, *Error) {
	e := h.entry(req.Client)
	if e == nil {
		return nil, &Error{Kind: ErrClosing, Msg: "connection is closing"}
	}
	s := &Subscription{client: req.Client, entry: e,
		sel:  &selectorSub{selectors: req.Selectors, authenticated: req.Authenticated, allowed: req.Allowed},
		info: &broker.ClientInfo{User: req.Client.User(), Client: req.Client.ID()}}
	e.mu.Lock()
	if e.removed || e.selector != nil {
		e.mu.Unlock()
		return nil, &Error{Kind: ErrClosing, Msg: "connection is closing or already subscribed"}
	}
	e.selector = s
	e.mu.Unlock()
	x := &h.sel
	x.mu.Lock()
	x.subs[s] = struct{}{}
	for _, sel := range req.Selectors {
		if plain(sel) {
			addTo(x.exact, sel, s)
		} else {
			addTo(x.wide, sel, s)
		}
	}
	first := x.count.Add(1) == 1
	x.mu.Unlock()
	e.m.Subscribed(1)
	if first {
		if err := h.broker.SubscribeAll(); err != nil {
			h.dropSelector(s)
			return nil, brokerError(err)
		}
	}
	res := &SelectorResult{Sub: s, Found: true}
	if !req.Replay || h.o.Index == nil {
		return res, nil
	}
	pubs, top, found, err := h.broker.IndexAfter(req.LastEventID, *h.o.Index)
	if err != nil {
		h.dropSelector(s)
		return nil, brokerError(err)
	}
	res.Found = found
	for _, p := range pubs {
		if h.wants(s.sel, p) {
			res.Replay = append(res.Replay, p)
		}
	}
	s.mu.Lock()
	s.skipSeq = top
	s.mu.Unlock()
	return res, nil
}

// SelectorSubscriptions returns this node's topic-selector subscriptions.
func (h *Hub) SelectorSubscriptions() []*Subscription { return h.sel.all() }

// Selectors returns the topic selectors of a selector subscription.
func (s *Subscription) Selectors() []string {
	if s.sel == nil {
		return nil
	}
	return s.sel.selectors
}

func (h *Hub) dropSelector(s *Subscription) bool {
	e := s.entry
	e.mu.Lock()
	if e.selector == s {
		e.selector = nil
	}
	e.mu.Unlock()
	x := &h.sel
	x.mu.Lock()
	if _, ok := x.subs[s]; !ok {
		x.mu.Unlock()
		return false
	}
	delete(x.subs, s)
	for _, sel := range s.sel.selectors {
		removeFrom(x.exact, sel, s)
		removeFrom(x.wide, sel, s)
	}
	last := x.count.Add(-1) == 0
	x.mu.Unlock()
	e.m.Subscribed(-1)
	if last {
		if err := h.broker.UnsubscribeAll(); err != nil {
			h.log.Debug("broker unsubscribe from all failed", slog.String("error", err.Error()))
		}
	}
	return true
}

func topicsOf(p *broker.Publication) []string {
	if p.Topics != nil {
		return p.Topics
	}
	return []string{p.Channel}
}

// wants applies the private rule: a private publication, or one made
// through another door, goes only to authenticated subscribers whose
// allowed selectors match one of its topics.
func (h *Hub) wants(s *selectorSub, p *broker.Publication) bool {
	topics := topicsOf(p)
	if !h.matcher.MatchAny(s.selectors, topics) {
		return false
	}
	return !(p.Private || p.Topics == nil) || (s.authenticated && h.matcher.MatchAny(s.allowed, topics))
}

// matchSelectors offers a publication to every selector subscription whose
// selectors match its topics, once each.
func (h *Hub) matchSelectors(d *Delivery) {
	p := d.Pub
	topics := topicsOf(p)
	private := p.Private || p.Topics == nil
	x := &h.sel
	x.mu.Lock()
	defer x.mu.Unlock()
	x.seq++
	mark := x.seq
	matched := 0
	var skipped []string
	offer := func(s *Subscription) {
		if s.sel.mark == mark {
			return
		}
		s.sel.mark = mark
		if private && !(s.sel.authenticated && h.matcher.MatchAny(s.sel.allowed, topics)) {
			if len(skipped) < 10 {
				skipped = append(skipped, s.client.ID())
			}
			return
		}
		matched++
		s.deliver(d)
	}
	for _, t := range topics {
		for s := range x.exact[t] {
			offer(s)
		}
	}
	for sel, set := range x.wide {
		if !h.matcher.MatchAny([]string{sel}, topics) {
			continue
		}
		for s := range set {
			offer(s)
		}
	}
	if h.log.Enabled(context.Background(), slog.LevelDebug) {
		h.log.LogAttrs(context.Background(), slog.LevelDebug, "topic subscribers matched a publication",
			slog.String("id", p.ID), slog.Any("topics", topics), slog.Bool("private", private),
			slog.Int("delivered_to", matched), slog.Any("skipped_private", skipped))
	}
	h.o.Metrics.Delivered(matched)
}
