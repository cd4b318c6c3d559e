package centrifuge

import (
	"encoding/binary"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Outgoing frames.
//
// Herald writes its WebSocket frames itself instead of through the library's
// writer: a server frame is a 2–10 byte header and the payload, and building
// it in a buffer the writer owns saves a copy, the library's write lock and,
// most of all, the write-deadline timer update it makes on every frame (about
// 4 % of the server's CPU when publishing flat out). The library still reads
// frames and writes the close frames of its own protocol errors.
//
// Every write to a connection is one call that holds the socket's write lock
// until the whole frame is out, so frames never interleave, whichever
// goroutine writes them.
//
// Sessions with queued messages wait in FIFO order for one of a few
// long-lived writer goroutines (writePool). A writer takes everything a
// session has queued, joins it into one frame, writes it without blocking and
// moves on; a session that received more in the meantime goes to the back of
// the line. Compared with a goroutine per burst, this costs no goroutine
// creation per write, and the order is fair: a publication reaches the
// subscribers in the order it was queued for them, which is what bounds the
// latency tail under load. When a client's socket buffer is full, the writer
// waits for it (up to writeTimeout) and another writer takes its place, so one
// slow client never holds up the others.

// enqueue queues one encoded message. Messages queued while the session waits
// for a writer are joined into one frame, separated by newlines, so a
// subscriber that falls behind costs one write per batch, not one per
// message. Over client.queue_max_size bytes the client is disconnected with 3008.
func (s *session) enqueue(b []byte) {
	s.wmu.Lock()
	if s.closing {
		s.wmu.Unlock()
		return
	}
	s.queue = append(s.queue, b)
	s.queueBytes += len(b)
	if s.queueBytes > s.h.cfg.Client.QueueMaxSize {
		queued := s.queueBytes
		s.queue, s.queueBytes = nil, 0
		s.wmu.Unlock()
		s.log().Info("disconnect: client is too slow", slog.Int("queued_bytes", queued), slog.Int("queue_max_size", s.h.cfg.Client.QueueMaxSize))
		go s.closeWith(DisconnectSlow)
		return
	}
	start := !s.writing
	s.writing = true
	s.wmu.Unlock()
	if start {
		s.h.writers.push(s)
	}
}

// closeWith sends a close frame with the disconnect code and reason and
// makes the reader stop soon. Safe to call more than once and from any goroutine.
func (s *session) closeWith(d Disconnect) {
	s.wmu.Lock()
	if s.closing {
		s.wmu.Unlock()
		return
	}
	s.closing = true
	s.queue, s.queueBytes = nil, 0
	s.wmu.Unlock()
	s.mu.Lock()
	s.stopTimersLocked()
	s.mu.Unlock()
	_ = s.writeControl(websocket.CloseMessage, websocket.FormatCloseMessage(int(d.Code), d.Reason), closeGrace)
	// The reader waits for the client's close frame; do not wait forever.
	_ = s.conn.SetReadDeadline(time.Now().Add(closeGrace))
}

// --- frames ---

// appendFrameHeader appends the header of an unmasked, final server frame.
func appendFrameHeader(dst []byte, opcode byte, n int) []byte {
	dst = append(dst, 0x80|opcode)
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(n))
	}
}

// appendTextFrame appends one text frame holding msgs joined by newlines.
func appendTextFrame(dst []byte, msgs [][]byte) []byte {
	n := len(msgs) - 1
	for _, m := range msgs {
		n += len(m)
	}
	dst = appendFrameHeader(dst, websocket.TextMessage, n)
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, m...)
	}
	return dst
}

// frameConn writes whole frames to one connection.
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

// frameWrite is the state of one frame's write through RawConn.Write. The
// callback is a method value made once per writer, so a write allocates nothing.
type frameWrite struct {
	fc      *frameConn
	buf     []byte
	off     int
	timeout time.Duration
	err     error
	waited  bool
	onWait  func() // called once when the write has to wait for the client
	fn      func(fd uintptr) bool
}

func newFrameWrite() *frameWrite {
	w := &frameWrite{}
	w.fn = w.writeSome
	return w
}

// writeSome writes what the socket takes. When the socket buffer is full it
// sets the write deadline and returns false, so that RawConn.Write waits for
// the socket (still holding its write lock) and calls it again.
func (w *frameWrite) writeSome(fd uintptr) bool {
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
func (w *frameWrite) write(fc *frameConn) error {
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

// writeControl writes a control frame (close, ping, pong), waiting at most
// timeout. Control frames are rare; this allocates its own state.
func (s *session) writeControl(opcode int, payload []byte, timeout time.Duration) error {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	w := newFrameWrite()
	w.timeout = timeout
	w.buf = append(appendFrameHeader(make([]byte, 0, 2+len(payload)), byte(opcode), len(payload)), payload...)
	return w.write(&s.fc)
}

// --- the writer pool ---

// writePool holds the sessions that have messages to write, in FIFO order,
// and the writer goroutines that write them.
//
// Writers join in only as they are needed. One writer works while the
// sessions it takes have waited less than lag; when it falls behind, another
// wakes, and a writer goes back to sleep once the line is served quickly
// again. Fewer writers mean that a session waits a little longer and then
// gets everything that arrived meanwhile in one frame: the cost of a write is
// mostly per frame, so under load this cuts the CPU per delivery several
// times, at a latency bounded by about lag.
type writePool struct {
	mu       sync.Mutex
	cond     sync.Cond
	ring     []poolEntry
	head, n  int
	sleeping int // writers waiting in cond.Wait and not yet signalled
	active   int // writers not waiting
	lag      time.Duration
	stopped  bool
}

type poolEntry struct {
	s  *session
	at time.Duration // when it joined the line, since poolEpoch
}

var poolEpoch = time.Now()

func newWritePool(writers int, lag time.Duration) *writePool {
	p := &writePool{ring: make([]poolEntry, 256), lag: lag}
	p.cond.L = &p.mu
	for range writers {
		go p.run()
	}
	return p
}

// push appends a session to the line.
func (p *writePool) push(s *session) {
	now := time.Since(poolEpoch)
	p.mu.Lock()
	if p.n == len(p.ring) {
		ring := make([]poolEntry, 2*len(p.ring))
		k := copy(ring, p.ring[p.head:])
		copy(ring[k:], p.ring[:p.head])
		p.ring, p.head = ring, 0
	}
	p.ring[(p.head+p.n)%len(p.ring)] = poolEntry{s, now}
	p.n++
	wake := p.sleeping > 0 && (p.active == 0 || now-p.ring[p.head].at > p.lag)
	if wake {
		p.sleeping--
	}
	p.mu.Unlock()
	if wake {
		p.cond.Signal()
	}
}

// stop ends the writers once the line is empty.
func (p *writePool) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

// wait puts the calling writer to sleep until push or another writer wakes it.
func (p *writePool) wait() {
	p.active--
	p.sleeping++
	p.cond.Wait()
	p.active++
}

func (p *writePool) run() {
	w := newFrameWrite()
	w.timeout = writeTimeout
	replaced := false
	// When this writer has to wait for a slow client, another starts in its
	// place and this one ends after its write; it no longer counts as active.
	w.onWait = func() {
		p.mu.Lock()
		p.active--
		p.mu.Unlock()
		replaced = true
		go p.run()
	}
	p.mu.Lock()
	p.active++
	for {
		for p.n == 0 && !p.stopped {
			p.wait()
		}
		if p.n == 0 {
			p.active--
			p.mu.Unlock()
			return
		}
		e := p.ring[p.head]
		p.ring[p.head] = poolEntry{}
		p.head = (p.head + 1) % len(p.ring)
		p.n--
		waited := time.Since(poolEpoch) - e.at
		rest := false
		if waited > p.lag && p.sleeping > 0 {
			p.sleeping-- // behind: another writer joins
			p.cond.Signal()
		} else if waited < p.lag/4 && p.active > 1 {
			rest = true // ahead: one writer fewer after this write
		}
		p.mu.Unlock()
		p.flush(w, e.s)
		p.mu.Lock()
		if replaced {
			p.mu.Unlock()
			return
		}
		if rest && p.active > 1 && !p.stopped {
			p.wait()
		}
	}
}

// flush writes everything the session has queued as one frame.
func (p *writePool) flush(w *frameWrite, s *session) {
	s.wmu.Lock()
	if s.closing || len(s.queue) == 0 {
		s.writing = false
		s.wmu.Unlock()
		return
	}
	// Swap the queue with the spare slice, so a busy connection does not
	// allocate a new queue for every write.
	msgs := s.queue
	s.queue, s.queueBytes = s.spare[:0], 0
	s.spare = nil
	s.wmu.Unlock()

	w.buf = appendTextFrame(w.buf[:0], msgs)
	clear(msgs) // drop references to the encoded messages
	err := w.write(&s.fc)
	if cap(w.buf) > 64<<10 {
		w.buf = nil // keep no large buffer for the next, likely small, frame
	}

	s.wmu.Lock()
	if s.spare == nil && cap(msgs) <= 1024 {
		s.spare = msgs[:0]
	}
	more := err == nil && !s.closing && len(s.queue) > 0
	if !more {
		s.writing = false
	}
	s.wmu.Unlock()
	if err != nil {
		s.log().Debug("write failed", slog.String("error", err.Error()))
		// The close frame may wait for the socket: not on a writer.
		go s.closeWith(DisconnectWriteError)
		return
	}
	if more {
		p.push(s)
	}
}
