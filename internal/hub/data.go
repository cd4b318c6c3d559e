package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/heraldhub/herald/internal/broker"
)

// NormalizeData checks that publication data is JSON and compacts it, which
// also removes raw newlines that would break the protocol's line framing.
func NormalizeData(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errors.New("publication data is empty")
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("publication data is not valid JSON: %v", err)
	}
	return buf.Bytes(), nil
}

// HistoryErrorKind classifies a history request that cannot be served.
type HistoryErrorKind int

// History error kinds.
const (
	HistoryBadRequest HistoryErrorKind = iota + 1
	HistoryUnrecoverable
	HistoryInternal
)

// HistoryError says why a history request failed.
type HistoryError struct {
	Kind HistoryErrorKind
	Msg  string
}

func (e *HistoryError) Error() string { return e.Msg }

// ReadHistory serves a history request with the protocol's rules: limit 0 is
// only the position, -1 is all (capped at maxLimit), N is at most N (capped);
// since must still be in the stream (same epoch, not evicted).
func ReadHistory(h *Hub, channel string, ns *Namespace, limit int64, since *broker.StreamPosition, reverse bool, maxLimit int) ([]*broker.Publication, broker.StreamPosition, *HistoryError) {
	if limit < -1 {
		return nil, broker.StreamPosition{}, &HistoryError{HistoryBadRequest, fmt.Sprintf("limit %d is out of range (use -1 for all, 0 for the position only, or a positive count)", limit)}
	}
	n := int(limit)
	if limit == -1 || limit > int64(maxLimit) {
		n = maxLimit
	}
	f := broker.HistoryFilter{Since: since, Limit: n, Reverse: reverse}
	if since != nil && n == 0 {
		// The position check below needs the first publication after since.
		f.Limit = 1
	}
	pubs, top, err := h.History(channel, ns, f)
	if err != nil {
		return nil, top, &HistoryError{HistoryInternal, err.Error()}
	}
	if since != nil {
		switch {
		case since.Epoch != top.Epoch:
			return nil, top, &HistoryError{HistoryUnrecoverable, fmt.Sprintf("epoch %q is not the stream's epoch", since.Epoch)}
		case since.Offset > top.Offset:
			return nil, top, &HistoryError{HistoryUnrecoverable, fmt.Sprintf("offset %d is beyond the stream top %d", since.Offset, top.Offset)}
		case !reverse && since.Offset < top.Offset && (len(pubs) == 0 || pubs[0].Offset != since.Offset+1):
			return nil, top, &HistoryError{HistoryUnrecoverable, fmt.Sprintf("publications after offset %d were evicted from history", since.Offset)}
		}
	}
	if n == 0 {
		pubs = nil
	}
	return pubs, top, nil
}
