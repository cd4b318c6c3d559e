package hub

import (
	"fmt"

	"github.com/heraldhub/herald/internal/broker"
)

// Positioning and recovery: the one implementation every front door uses.
//
// A stream position is an offset and an epoch; the epoch changes when the
// stream is lost or recreated. Recovery gives a resubscribing client the
// publications after its position, all of them or none (never partial):
//
//   - the requested epoch must be the stream's, or empty (a client that
//     knows only an offset, such as one starting from 0);
//   - the stream must still hold every publication after the offset, up to
//     the top, and there may be at most the recovery limit of them.
//
// Publications that arrive while history is read are buffered by the
// subscription and delivered after the answer, skipping those the answer
// carried (their offsets are not above the position it reports).

// recovered decides whether pubs, read after since from a stream whose top
// is top, recover the client completely.
func recovered(pubs []*broker.Publication, top broker.StreamPosition, since broker.StreamPosition, limit int) bool {
	if since.Epoch != "" && since.Epoch != top.Epoch {
		return false
	}
	if since.Offset > top.Offset {
		return false
	}
	n := len(pubs)
	if n == 0 {
		return since.Offset == top.Offset
	}
	return n <= limit && pubs[0].Offset == since.Offset+1 && pubs[n-1].Offset == top.Offset
}

// position fills the result of a positioned subscription: the stream's
// position, and with a recovery request the missed publications.
func (h *Hub) position(s *Subscription, req *SubscribeRequest, res *SubscribeResult) *Error {
	var pubs []*broker.Publication
	var top broker.StreamPosition
	var err error
	rec := req.Recover
	if s.recoverable && rec != nil {
		res.WasRecovering = true
		limit := h.o.RecoveryLimit
		pubs, top, err = h.history(s.Channel, s.ns, broker.HistoryFilter{Since: rec, Limit: limit + 1})
		if err != nil {
			return brokerError(err)
		}
		res.Position.Epoch = top.Epoch
		if recovered(pubs, top, *rec, limit) {
			res.Recovered = true
			res.Position.Offset = rec.Offset
			res.Publications = pubs
		} else {
			if req.RejectUnrecovered {
				return &Error{Kind: ErrUnrecoverable, Msg: fmt.Sprintf("position %d/%s is no longer in the stream", rec.Offset, rec.Epoch)}
			}
			res.Position.Offset = top.Offset
		}
	} else {
		if _, top, err = h.history(s.Channel, s.ns, broker.HistoryFilter{Limit: 0}); err != nil {
			return brokerError(err)
		}
		res.Position = top
	}
	s.mu.Lock()
	s.epoch, s.offset = top.Epoch, top.Offset
	s.mu.Unlock()
	return nil
}

// readHistory serves a history read with the protocol's rules: since must
// still be in the stream (same epoch or none given, not evicted).
func (h *Hub) readHistory(ns *Namespace, r *ReadRequest) ([]*broker.Publication, broker.StreamPosition, *Error) {
	if r.Limit < -1 {
		return nil, broker.StreamPosition{}, &Error{Kind: ErrBadRequest, Msg: fmt.Sprintf("limit %d is out of range (use -1 for all, 0 for the position only, or a positive count)", r.Limit)}
	}
	n := int(r.Limit)
	if r.Limit == -1 || r.Limit > int64(r.MaxLimit) {
		n = r.MaxLimit
	}
	f := broker.HistoryFilter{Since: r.Since, Limit: n, Reverse: r.Reverse}
	if r.Since != nil && n == 0 {
		// The position check below needs the first publication after since.
		f.Limit = 1
	}
	pubs, top, err := h.history(r.Channel, ns, f)
	if err != nil {
		return nil, top, brokerError(err)
	}
	if since := r.Since; since != nil {
		switch {
		case since.Epoch != "" && since.Epoch != top.Epoch:
			return nil, top, &Error{Kind: ErrUnrecoverable, Msg: fmt.Sprintf("epoch %q is not the stream's epoch", since.Epoch)}
		case since.Offset > top.Offset:
			return nil, top, &Error{Kind: ErrUnrecoverable, Msg: fmt.Sprintf("offset %d is beyond the stream top %d", since.Offset, top.Offset)}
		case !r.Reverse && since.Offset < top.Offset && (len(pubs) == 0 || pubs[0].Offset != since.Offset+1):
			return nil, top, &Error{Kind: ErrUnrecoverable, Msg: fmt.Sprintf("publications after offset %d were evicted from history", since.Offset)}
		}
	}
	if n == 0 {
		pubs = nil
	}
	return pubs, top, nil
}

// history reads a channel's stream with the namespace's TTLs applied.
func (h *Hub) history(channel string, ns *Namespace, f broker.HistoryFilter) ([]*broker.Publication, broker.StreamPosition, error) {
	f.MetaTTL = metaTTL(ns)
	f.TTL = ns.HistoryTTL.D()
	return h.broker.History(channel, f)
}
