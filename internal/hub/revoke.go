package hub

import (
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// Revocations reach every node twice over. A control message applies them
// at once on the live nodes; and a record in the broker's shared store
// (Options.Records), kept until the revocation expires, reaches the nodes
// that start later and those that missed the message while their broker
// connection was down. A node reads the store when it first hears itself on
// the control channel and after every resync, and writes back what it knows
// and the store lost (a Redis restarted empty). Without a shared store, a
// node asks the live nodes for theirs at the same moments.

// Revocation is a token revocation made on some node, applied on every one.
type Revocation struct {
	JTI          string    `json:"jti,omitempty"`
	User         string    `json:"user,omitempty"`
	IssuedBefore time.Time `json:"issued_before,omitzero"`
	Until        time.Time `json:"until"`
}

// revocationSet names the revocations in the shared store.
const revocationSet = "revocations"

// revocationBatch bounds the revocations of one control message.
const revocationBatch = 200

// revocations are the revocations this node applied, by their encoding,
// until they expire.
type revocations struct {
	mu sync.Mutex
	m  map[string]Revocation
}

// normalize gives r one encoding on every node.
func (r Revocation) normalize() Revocation {
	r.Until = r.Until.UTC().Truncate(time.Millisecond)
	if !r.IssuedBefore.IsZero() {
		r.IssuedBefore = r.IssuedBefore.UTC().Truncate(time.Millisecond)
	}
	return r
}

func (r Revocation) encode() []byte {
	b, _ := json.Marshal(r) // a struct of strings and times: never fails
	return b
}

// Revoke applies a revocation on every node, and keeps it in the shared
// store until it expires, for the nodes that start later. This node
// applies it at once, whatever becomes of the message to the others.
func (h *Hub) Revoke(r Revocation) error {
	r = r.normalize()
	if h.o.Records != nil {
		if err := h.o.Records.PutRecord(revocationSet, r.encode(), r.Until); err != nil {
			return brokerError(err)
		}
	}
	h.applyRevocation(r)
	return h.SendControl("", "revoke", r)
}

// applyRevocation applies r on this node, once.
func (h *Hub) applyRevocation(r Revocation) {
	r = r.normalize()
	now := time.Now()
	if !now.Before(r.Until) {
		return
	}
	key := string(r.encode())
	h.revs.mu.Lock()
	if h.revs.m == nil {
		h.revs.m = map[string]Revocation{}
	}
	_, known := h.revs.m[key]
	if !known {
		for k, old := range h.revs.m {
			if !now.Before(old.Until) {
				delete(h.revs.m, k)
			}
		}
		h.revs.m[key] = r
	}
	h.revs.mu.Unlock()
	if !known && h.o.OnRevocation != nil {
		h.o.OnRevocation(r)
	}
}

// knownRevocations returns the unexpired revocations this node applied.
func (h *Hub) knownRevocations() map[string]Revocation {
	now := time.Now()
	h.revs.mu.Lock()
	defer h.revs.mu.Unlock()
	out := make(map[string]Revocation, len(h.revs.m))
	for k, r := range h.revs.m {
		if now.Before(r.Until) {
			out[k] = r
		}
	}
	return out
}

func (h *Hub) registerRevocationControls() {
	h.controls["revoke"] = func(_ string, p json.RawMessage) {
		var r Revocation
		if err := json.Unmarshal(p, &r); err != nil {
			h.log.Warn("undecodable revocation", slog.String("error", err.Error()))
			return
		}
		h.applyRevocation(r)
	}
	// Without a shared store: a node that joins or reconnects asks the
	// others for their revocations.
	h.controls["revocations?"] = func(from string, _ json.RawMessage) {
		if from == h.o.NodeID {
			return
		}
		go h.sendRevocations(from)
	}
	h.controls["revocations"] = func(_ string, p json.RawMessage) {
		var list []Revocation
		if err := json.Unmarshal(p, &list); err != nil {
			h.log.Warn("undecodable revocations", slog.String("error", err.Error()))
			return
		}
		for _, r := range list {
			h.applyRevocation(r)
		}
	}
}

// sendRevocations sends this node's revocations to node, in batches.
func (h *Hub) sendRevocations(node string) {
	list := make([]Revocation, 0, revocationBatch)
	flush := func() {
		if len(list) > 0 {
			_ = h.SendControl(node, "revocations", list)
			list = list[:0]
		}
	}
	for _, r := range h.knownRevocations() {
		list = append(list, r)
		if len(list) == revocationBatch {
			flush()
		}
	}
	flush()
}

// kickRevocations asks keepRevocations to synchronise.
func (h *Hub) kickRevocations() {
	select {
	case h.revKick <- struct{}{}:
	default:
	}
}

// keepRevocations synchronises this node's revocations with the shared
// store (or the other nodes) when kicked, retrying until it succeeds.
func (h *Hub) keepRevocations() {
	for {
		select {
		case <-h.revKick:
		case <-h.stopNodes:
			return
		}
		for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
			err := h.syncRevocations()
			if err == nil {
				break
			}
			h.log.Debug("revocations not synchronised yet; retrying", slog.String("error", err.Error()), slog.Duration("retry_in", delay))
			select {
			case <-time.After(delay):
			case <-h.stopNodes:
				return
			}
		}
	}
}

// syncRevocations applies the stored revocations this node does not know
// and stores those it knows and the store lost.
func (h *Hub) syncRevocations() error {
	if h.o.Records == nil {
		return h.SendControl("", "revocations?", struct{}{})
	}
	recs, err := h.o.Records.Records(revocationSet)
	if err != nil {
		return err
	}
	stored := make(map[string]bool, len(recs))
	for _, d := range recs {
		var r Revocation
		if err := json.Unmarshal(d, &r); err != nil {
			h.log.Warn("undecodable stored revocation", slog.String("error", err.Error()))
			continue
		}
		stored[string(r.normalize().encode())] = true
		h.applyRevocation(r)
	}
	for key, r := range h.knownRevocations() {
		if stored[key] {
			continue
		}
		if err := h.o.Records.PutRecord(revocationSet, []byte(key), r.Until); err != nil {
			return err
		}
	}
	return nil
}
