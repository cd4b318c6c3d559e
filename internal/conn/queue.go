package conn

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/heraldhub/herald/internal/metrics"
)

// Outgoing messages.
//
// Herald writes the bytes of its connections itself instead of through a
// library's writer: a WebSocket frame is a 2–10 byte header and the payload,
// an HTTP chunk a length line and the payload, and building them in a buffer
// the writer owns saves a copy, the library's write lock and, most of all,
// the write-deadline timer update it makes on every frame (about 4 % of the
// server's CPU when publishing flat out).
//
// Every write to a connection is one call that holds the socket's write lock
// until the whole buffer is out, so frames never interleave, whichever
// goroutine writes them.
//
// A connection's Queue collects encoded messages. Queues with messages wait
// in FIFO order for one of a few long-lived writer goroutines (Pool). A
// writer takes everything a queue holds, frames it as one write (the
// connection's Framer decides how: one WebSocket frame, one HTTP chunk),
// writes it without blocking and moves on; a queue that received more in the
// meantime goes to the back of the line. Compared with a goroutine per
// burst, this costs no goroutine creation per write, and the order is fair: a
// publication reaches the subscribers in the order it was queued for them,
// which is what bounds the latency tail under load. When a client's socket
// buffer is full, the writer waits for it (up to the queue's write timeout)
// and another writer takes its place, so one slow client never holds up the
// others.

// Framer appends the bytes of one write holding msgs to dst.
type Framer func(dst []byte, msgs [][]byte) []byte

// Owner is told what happens to its queue. Both calls come from a writer or
// an enqueuing goroutine and must not block: start a goroutine for slow work.
type Owner interface {
	// Slow: more than the queue's limit is waiting; the queue is closed.
	Slow(queued int)
	// WriteFailed: a write failed or timed out; the queue is closed.
	WriteFailed(err error)
}

// Queue is one connection's outgoing messages. The zero value is not
// usable: call Init.
type Queue struct {
	pool    *Pool
	fc      frameConn
	framer  Framer
	owner   Owner
	max     int
	maxMsgs int
	timeout time.Duration
	m       *metrics.Door // nil when the pool has no metrics

	mu      sync.Mutex
	queue   [][]byte
	spare   [][]byte // the previous queue, reused
	bytes   int
	oldest  int64 // acceptance (unix ns) of the oldest publication queued, 0 if none
	writing bool
	closing bool
}

// QueueOptions configure a Queue.
type QueueOptions struct {
	Framer Framer
	Owner  Owner
	// MaxBytes bounds what may wait; over it the owner is told Slow.
	MaxBytes int
	// MaxMessages, when set, bounds the number of messages waiting too.
	MaxMessages int
	// WriteTimeout bounds one write to a client that does not read.
	WriteTimeout time.Duration
	// Door and Transport name the front door and transport in the metrics
	// (centrifugo and websocket, mercure and sse, ...).
	Door, Transport string
}

// Init prepares q to write to nc through pool.
func (q *Queue) Init(nc net.Conn, pool *Pool, o QueueOptions) {
	q.pool, q.fc = pool, newFrameConn(nc)
	q.framer, q.owner, q.max, q.maxMsgs, q.timeout = o.Framer, o.Owner, o.MaxBytes, o.MaxMessages, o.WriteTimeout
	q.m = pool.metrics.Door(o.Door, o.Transport)
}

// Enqueue queues one encoded message. Messages queued while the connection
// waits for a writer are written in one go, so a subscriber that falls
// behind costs one write per batch, not one per message. It reports false
// when the queue is closed or has just overflowed.
func (q *Queue) Enqueue(b []byte) bool { return q.enqueue(b, 0) }

// EnqueueAt queues a message that carries a publication accepted at
// accepted: the write that carries it measures the publication's latency
// (herald_publish_latency_seconds).
func (q *Queue) EnqueueAt(b []byte, accepted time.Time) bool {
	var at int64
	if !accepted.IsZero() {
		at = accepted.UnixNano()
	}
	return q.enqueue(b, at)
}

func (q *Queue) enqueue(b []byte, accepted int64) bool {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		q.m.Dropped(1)
		return false
	}
	q.queue = append(q.queue, b)
	q.bytes += len(b)
	if q.oldest == 0 {
		q.oldest = accepted
	}
	if (q.max > 0 && q.bytes > q.max) || (q.maxMsgs > 0 && len(q.queue) > q.maxMsgs) {
		queued, dropped := q.bytes, len(q.queue)
		q.closing = true
		q.queue, q.bytes, q.oldest = nil, 0, 0
		q.mu.Unlock()
		q.m.QueueFull()
		q.m.Dropped(dropped)
		q.owner.Slow(queued)
		return false
	}
	start := !q.writing
	q.writing = true
	q.mu.Unlock()
	if start {
		q.pool.push(q)
	}
	return true
}

// Close stops writing and drops what is queued. It reports whether the
// queue was open.
func (q *Queue) Close() bool {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return false
	}
	dropped := len(q.queue)
	q.closing = true
	q.queue, q.bytes, q.oldest = nil, 0, 0
	q.mu.Unlock()
	q.m.Dropped(dropped)
	return true
}

// Closed reports whether the queue is closed.
func (q *Queue) Closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing
}

// Queued returns the number of bytes waiting.
func (q *Queue) Queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// WriteNow writes b at once, outside the queue, waiting at most timeout:
// control frames, a response's header. It allocates its own state; such
// writes are rare.
func (q *Queue) WriteNow(b []byte, timeout time.Duration) error {
	w := newWrite()
	w.timeout = timeout
	w.buf = b
	err := w.write(&q.fc)
	if err == nil {
		q.m.WroteDirect(len(b))
	}
	return err
}

// isTimeout reports whether a write failed because its deadline passed: the
// client did not read.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// frameConn writes whole buffers to one connection.
type frameConn struct {
	nc  net.Conn
	raw syscall.RawConn // nil when the connection has no file descriptor
}

func newFrameConn(nc net.Conn) frameConn {
	fc := frameConn{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok && rawWriteSupported {
		if raw, err := sc.SyscallConn(); err == nil {
			fc.raw = raw
		}
	}
	return fc
}

// write is the state of one buffer's write through RawConn.Write. The
// callback is a method value made once per writer, so a write allocates nothing.
type write struct {
	fc      *frameConn
	buf     []byte
	off     int
	timeout time.Duration
	err     error
	waited  bool
	onWait  func() // called once when the write has to wait for the client
	fn      func(fd uintptr) bool
	stats   metrics.WriteBatch // the writer's counts, added to the metrics in batches
}

func newWrite() *write {
	w := &write{}
	w.fn = w.writeSome
	return w
}

// writeSome writes what the socket takes. When the socket buffer is full it
// sets the write deadline and returns false, so that RawConn.Write waits for
// the socket (still holding its write lock) and calls it again.
func (w *write) writeSome(fd uintptr) bool {
	for w.off < len(w.buf) {
		n, err := rawWrite(fd, w.buf[w.off:])
		if n > 0 {
			w.off += n
		}
		switch {
		case err == nil:
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			if !w.waited {
				w.waited = true
				_ = w.fc.nc.SetWriteDeadline(time.Now().Add(w.timeout))
				if w.onWait != nil {
					w.onWait()
				}
			}
			return false
		default:
			w.err = err
			return true
		}
	}
	if w.waited {
		// A deadline left in the past would fail the next write at once.
		_ = w.fc.nc.SetWriteDeadline(time.Time{})
	}
	return true
}

// write writes w.buf whole, waiting at most w.timeout for a slow client.
func (w *write) write(fc *frameConn) error {
	w.fc, w.off, w.err, w.waited = fc, 0, nil, false
	defer func() { w.fc = nil }()
	if fc.raw == nil {
		_ = fc.nc.SetWriteDeadline(time.Now().Add(w.timeout))
		_, err := fc.nc.Write(w.buf)
		return err
	}
	if err := fc.raw.Write(w.fn); err != nil {
		return err
	}
	return w.err
}
