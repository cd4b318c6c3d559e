package mercure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/conn"
	"github.com/heraldhub/herald/internal/hub"
)

// stream is one subscriber's event stream on its hijacked connection: a
// client of the hub with a topic-selector subscription. The shared writers
// (internal/conn) write it, joining what arrives under load into one chunk;
// its only goroutine waits for the client to leave.
type stream struct {
	h         *Handler
	nc        net.Conn
	id        string // urn:uuid:<v4>, named in subscription events and the API
	grant     *auth.MercureGrant
	selectors []string
	remote    string
	chunked   bool // HTTP/1.1 framing; false for HTTP/1.0 clients
	q         conn.Queue

	mu        sync.Mutex
	sub       *hub.Subscription
	heartbeat *time.Timer
	lifetime  *time.Timer
	why       string // why the stream ended, when the server ended it
	ended     atomic.Bool
	done      chan struct{} // closed when the stream has ended
}

// ID implements hub.Client.
func (st *stream) ID() string { return st.id }

// User implements hub.Client: Mercure subscribers have no user.
func (st *stream) User() string { return "" }

// Deliver implements hub.Client.
func (st *stream) Deliver(_ *hub.Subscription, d *hub.Delivery) {
	st.q.EnqueueAt(d.Encoded(formatSSE, encodeDelivery), d.Accepted())
}

// Door implements hub.DoorClient: the metrics count the stream under it.
func (st *stream) Door() (door, transport string) { return "mercure", "sse" }

// Control implements hub.Client. Every intent ends the stream except a
// message, which Mercure cannot carry: the client reconnects with its
// Last-Event-ID and replays what it missed.
func (st *stream) Control(in hub.Intent) {
	switch in.Kind {
	case hub.IntentSend, hub.IntentSubscribe, hub.IntentRefresh, hub.IntentCheckRevoked:
		return
	}
	why := "server"
	switch in.Why {
	case hub.WhyShutdown:
		why = "server_shutdown"
	case hub.WhyInsufficientState:
		why = "insufficient_state"
	}
	go st.end(why)
}

// Slow implements conn.Owner.
func (st *stream) Slow(queued int) {
	streamLog{st}.Debug("mercure: subscriber queue over its bounds", slog.Int("queued_bytes", queued))
	go st.end("queue_full")
}

// WriteFailed implements conn.Owner.
func (st *stream) WriteFailed(err error) {
	why := "write_failed"
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		why = "dispatch_timeout"
	}
	go st.end(why)
}

// start arms the heartbeat and the stream's lifetime: a random 80-100 % of
// write_timeout minus dispatch_timeout, and before the token expires.
func (st *stream) start() {
	h := st.h
	st.mu.Lock()
	defer st.mu.Unlock()
	if hb := h.cfg.Heartbeat.D(); hb > 0 {
		st.heartbeat = time.AfterFunc(hb, st.beat)
	}
	life, why := time.Duration(0), ""
	if wt := h.cfg.WriteTimeout.D(); wt > 0 {
		life = jitter(wt) - h.cfg.DispatchTimeout.D()
		if life <= 0 {
			life = jitter(wt)
		}
		why = "write_timeout"
	}
	if g := st.grant; g != nil && !g.Expiry.IsZero() {
		if left := jitter(time.Until(g.Expiry)); life == 0 || left < life {
			life, why = max(left, time.Millisecond), "token_expired"
		}
	}
	if life > 0 {
		st.lifetime = time.AfterFunc(life, func() { st.end(why) })
	}
}

func (st *stream) beat() {
	if st.ended.Load() {
		return
	}
	st.q.Enqueue(heartbeatComment)
	st.mu.Lock()
	if st.heartbeat != nil {
		st.heartbeat.Reset(st.h.cfg.Heartbeat.D())
	}
	st.mu.Unlock()
}

var heartbeatComment = []byte(":\n")

// end ends the stream (the first reason wins): no more writes, the last
// chunk when the client still reads, and the connection closed, which ends
// the goroutine waiting in run.
func (st *stream) end(why string) {
	if !st.ended.CompareAndSwap(false, true) {
		return
	}
	st.mu.Lock()
	st.why = why
	if st.heartbeat != nil {
		st.heartbeat.Stop()
	}
	if st.lifetime != nil {
		st.lifetime.Stop()
	}
	st.mu.Unlock()
	st.q.Close()
	if why != "client_left" { // counted as client_closed
		st.h.hub.Disconnecting(st, why) // herald_disconnects_total
	}
	st.h.logEnd(st, why)
	switch why {
	case "queue_full", "write_failed", "dispatch_timeout", "client_left":
		// The client does not read (or is gone): a write stuck on it
		// fails now, and the connection closes without a last chunk.
		_ = st.nc.SetWriteDeadline(time.Now())
	default:
		// The last chunk ends the response cleanly for a client that
		// still reads; a write stuck on the socket gives way within a second.
		_ = st.nc.SetWriteDeadline(time.Now().Add(time.Second))
		if st.chunked {
			_ = st.q.WriteNow([]byte("0\r\n\r\n"), time.Second)
		}
	}
	_ = st.nc.Close()
}

// run waits for the client to leave (a client of a stream sends nothing
// after its request, so the end of input is the client leaving) or for the
// stream to end, then unregisters it.
func (st *stream) run() {
	var b [1]byte
	for {
		if _, err := st.nc.Read(b[:]); err != nil {
			break
		}
	}
	st.end("client_left")
	h := st.h
	h.hub.RemoveClient(st)
	h.announce(st, false)
	h.forget(st)
	close(st.done)
}

func (h *Handler) logEnd(st *stream, why string) {
	log := streamLog{st}
	switch why {
	case "client_left":
		log.Debug("mercure: subscriber disconnected")
	case "server_shutdown":
		log.Debug("mercure: subscription closed: the server is shutting down")
	case "write_timeout":
		log.Debug("mercure: subscription closed at the end of its lifetime (write_timeout); the client reconnects")
	case "token_expired":
		log.Info("mercure: subscription closed because its token expires", slog.Time("exp", st.grant.Expiry))
	case "dispatch_timeout":
		log.Info("mercure: subscriber dropped: writing to it took longer than dispatch_timeout", slog.Duration("dispatch_timeout", h.cfg.DispatchTimeout.D()))
	case "queue_full":
		log.Info("mercure: subscriber dropped: it did not keep up and its queue of updates is full",
			slog.Int("subscriber_queue", h.cfg.SubscriberQueue), slog.Int("queue_max_size", h.queueMax))
	case "insufficient_state":
		log.Info("mercure: subscription closed: publications may have been missed; the client reconnects with Last-Event-ID and replays them")
	default:
		log.Info("mercure: subscriber dropped", slog.String("why", why), slog.Int("subscriber_queue", h.cfg.SubscriberQueue))
	}
}

// streamLog writes a stream's log lines with its remote address and topics.
// It builds nothing unless the level is enabled: a logger made with With for
// every stream held preformatted attributes for the stream's whole life.
type streamLog struct{ st *stream }

func (l streamLog) log(level slog.Level, msg string, attrs ...slog.Attr) {
	h := l.st.h.log
	if !h.Enabled(context.Background(), level) {
		return
	}
	attrs = append([]slog.Attr{slog.String("remote_addr", l.st.remote), slog.Any("topics", truncateList(l.st.selectors))}, attrs...)
	h.LogAttrs(context.Background(), level, msg, attrs...)
}

func (l streamLog) Debug(msg string, attrs ...slog.Attr) { l.log(slog.LevelDebug, msg, attrs...) }
func (l streamLog) Info(msg string, attrs ...slog.Attr)  { l.log(slog.LevelInfo, msg, attrs...) }

// jitter returns a random duration in [80 %, 100 %] of d.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * (0.8 + 0.2*rand.Float64()))
}

func truncateList(s []string) []string {
	if len(s) > 5 {
		s = append(s[:5:5], fmt.Sprintf("… %d more", len(s)-5))
	}
	return s
}
