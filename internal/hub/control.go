package hub

import (
	"encoding/json"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"
)

// Control intents and node announcements cross nodes as control messages
// of the broker, so an intent made through the server API of one node
// reaches the connection wherever it is.

// controlMsg is the envelope of every control message.
type controlMsg struct {
	Kind    string          `json:"k"`
	From    string          `json:"from"`
	Payload json.RawMessage `json:"p"`
}

// intentMsg addresses an intent to a user's connections (or one connection).
type intentMsg struct {
	User   string   `json:"user,omitempty"`
	Client string   `json:"client,omitempty"`
	Except []string `json:"except,omitempty"`
	Intent Intent   `json:"intent"`
}

// NodeInfo describes a live node, as the server API's info method lists it.
type NodeInfo struct {
	ID          string `json:"uid"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	NumClients  int    `json:"num_clients"`
	NumUsers    int    `json:"num_users"`
	NumChannels int    `json:"num_channels"`
	NumSubs     int    `json:"num_subs"`
	Uptime      int64  `json:"uptime"`
	seen        time.Time
}

// nodeMsg is a node's announcement. Hello says that the node has not
// heard itself yet (it just started or reconnected): every node answers
// it, so that it knows them all at once.
type nodeMsg struct {
	NodeInfo
	Hello bool `json:"hello,omitempty"`
}

type nodeRegistry struct {
	mu    sync.Mutex
	nodes map[string]NodeInfo
}

// Control sends an intent to the connections of user (or to the connection
// client) on every node, except the connections listed in except.
func (h *Hub) Control(user, client string, except []string, in Intent) error {
	return h.SendControl("", "intent", intentMsg{User: user, Client: client, Except: except, Intent: in})
}

// HandleControlKind registers f for control messages of kind, sent by any
// node with SendControl. Register before the hub serves traffic.
func (h *Hub) HandleControlKind(kind string, f func(from string, payload json.RawMessage)) {
	h.controlMu.Lock()
	h.controls[kind] = f
	h.controlMu.Unlock()
}

// SendControl sends payload, as JSON, to the handler of kind on node (on
// every node when node is "").
func (h *Hub) SendControl(node, kind string, payload any) error {
	p, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	data, err := json.Marshal(controlMsg{Kind: kind, From: h.o.NodeID, Payload: p})
	if err != nil {
		return err
	}
	if err := h.broker.PublishControl(node, data); err != nil {
		return brokerError(err)
	}
	return nil
}

// HandleControl implements broker.Handler.
func (h *Hub) HandleControl(data []byte) {
	var m controlMsg
	if err := json.Unmarshal(data, &m); err != nil {
		h.log.Warn("undecodable control message", slog.String("error", err.Error()))
		return
	}
	h.controlMu.RLock()
	f := h.controls[m.Kind]
	h.controlMu.RUnlock()
	if f == nil {
		h.log.Debug("control message of an unknown kind", slog.String("kind", m.Kind), slog.String("from", m.From))
		return
	}
	f(m.From, m.Payload)
}

func (h *Hub) registerBuiltinControls() {
	h.controls["intent"] = func(_ string, p json.RawMessage) {
		var m intentMsg
		if err := json.Unmarshal(p, &m); err != nil {
			h.log.Warn("undecodable intent", slog.String("error", err.Error()))
			return
		}
		for _, c := range h.localClients(m.User, m.Client) {
			if !slices.Contains(m.Except, c.ID()) {
				c.Control(m.Intent)
			}
		}
	}
	h.registerRevocationControls()
	h.controls["node"] = func(from string, p json.RawMessage) {
		var m nodeMsg
		if err := json.Unmarshal(p, &m); err != nil {
			return
		}
		n := m.NodeInfo
		if n.ID == h.o.NodeID {
			// This node hears itself: its control subscription is live, so
			// nothing sent from now on is missed; catch up on what was.
			if h.heardSelf.CompareAndSwap(false, true) {
				h.kickRevocations()
			}
			return
		}
		n.seen = time.Now()
		h.nodes.mu.Lock()
		if h.nodes.nodes == nil {
			h.nodes.nodes = map[string]NodeInfo{}
		}
		_, known := h.nodes.nodes[n.ID]
		h.nodes.nodes[n.ID] = n
		h.nodes.mu.Unlock()
		if !known || m.Hello {
			// A node that joins hears from every other one at once, not
			// after their next announcement. Not from the broker's reader.
			go func() { _ = h.SendControl(n.ID, "node", nodeMsg{NodeInfo: h.selfInfo()}) }()
		}
	}
	h.controls["leave"] = func(from string, _ json.RawMessage) {
		h.nodes.mu.Lock()
		delete(h.nodes.nodes, from)
		h.nodes.mu.Unlock()
	}
}

func (h *Hub) selfInfo() NodeInfo {
	st := h.Stats()
	return NodeInfo{ID: h.o.NodeID, Name: h.o.NodeName, Version: h.o.Version, NumClients: st.NumClients, NumUsers: st.NumUsers,
		NumChannels: st.NumChannels, NumSubs: st.NumSubs, Uptime: int64(st.Uptime / time.Second)}
}

// startNodeInfo announces this node every NodeInfoInterval, and every
// 250 ms until it hears its own announcement (the broker connects in the
// background).
func (h *Hub) startNodeInfo() {
	go func() {
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-h.stopNodes:
				return
			}
			next := h.o.NodeInfoInterval
			hello := !h.heardSelf.Load()
			if err := h.SendControl("", "node", nodeMsg{NodeInfo: h.selfInfo(), Hello: hello}); err != nil || hello {
				next = 250 * time.Millisecond
			}
			t.Reset(next)
		}
	}()
}

// Nodes returns every live node, this one first with fresh counters.
func (h *Hub) Nodes() []NodeInfo {
	out := []NodeInfo{h.selfInfo()}
	gone := 3 * h.o.NodeInfoInterval
	h.nodes.mu.Lock()
	for id, n := range h.nodes.nodes {
		if time.Since(n.seen) > gone {
			delete(h.nodes.nodes, id)
			continue
		}
		if id != h.o.NodeID {
			out = append(out, n)
		}
	}
	h.nodes.mu.Unlock()
	sort.Slice(out[1:], func(i, j int) bool { return out[1+i].ID < out[1+j].ID })
	return out
}
