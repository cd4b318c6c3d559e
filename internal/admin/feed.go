package admin

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/metrics"
)

// FeedItem is a refusal as the live feed sends it: code, detail, hint,
// front door, token source, client address, and facts about the token
// (never the token itself).
type FeedItem struct {
	auth.Refusal
	Door string `json:"door"`
}

// feedHeartbeat keeps proxies from closing an idle feed.
const feedHeartbeat = 15 * time.Second

// feed streams refusals as Server-Sent Events: the recent ones first, then
// each new one as it is recorded. Seq orders them, so a refusal recorded
// while the recent ones are read is sent once.
func (h *Handler) feed(w http.ResponseWriter, r *http.Request) {
	h.feedMu.Lock()
	if h.feeds >= maxFeeds {
		h.feedMu.Unlock()
		w.Header().Set("Retry-After", "10")
		h.fail(w, r, http.StatusServiceUnavailable, "too_many_feeds", "too many live refusal feeds are open", "close other admin pages")
		return
	}
	h.feeds++
	h.feedMu.Unlock()
	defer func() {
		h.feedMu.Lock()
		h.feeds--
		h.feedMu.Unlock()
	}()

	ch := make(chan auth.Refusal, 256)
	stop := h.o.Verifier.Refusals.Listen(func(ref auth.Refusal) {
		select {
		case ch <- ref:
		default: // the page does not keep up; it still has the log
		}
	})
	defer stop()
	rc := http.NewResponseController(w)
	// The feed outlives the listener's read and write timeouts (http.*),
	// which bound ordinary requests: a read deadline passing would end it.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	recent := h.o.Verifier.Refusals.Recent()
	slices.Reverse(recent) // oldest first
	var last uint64
	for _, ref := range recent {
		if !send(w, ref) {
			return
		}
		last = ref.Seq
	}
	if _, err := w.Write([]byte(": live\n\n")); err != nil || rc.Flush() != nil {
		return
	}
	beat := time.NewTicker(feedHeartbeat)
	defer beat.Stop()
	for {
		select {
		case ref := <-ch:
			if ref.Seq <= last {
				continue
			}
			if !send(w, ref) || rc.Flush() != nil {
				return
			}
		case <-beat.C:
			if _, err := w.Write([]byte(":\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		}
	}
}

func send(w http.ResponseWriter, ref auth.Refusal) bool {
	b, err := json.Marshal(FeedItem{Refusal: ref, Door: metrics.DoorOf(ref.Transport)})
	if err != nil {
		return false
	}
	_, err = w.Write(append(append([]byte("event: refusal\nid: "+strconv.FormatUint(ref.Seq, 10)+"\ndata: "), b...), '\n', '\n'))
	return err == nil
}
