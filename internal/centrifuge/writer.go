package centrifuge

import (
	"bytes"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

var framePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// enqueue queues one encoded message. Messages queued while a write is in
// progress are coalesced into one frame, joined by newlines, so a subscriber
// that falls behind costs one write per batch, not one per message. Over
// client.queue_max_size bytes the client is disconnected with 3008.
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
		// A goroutine per burst: running writes on the pool of workers.go
		// measured no better (heraldbench fanout, flat out and 10 msg/s).
		go s.writeLoop()
	}
}

// writeLoop writes until the queue is empty, then ends: an idle connection
// has no writer goroutine.
func (s *session) writeLoop() {
	for {
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

		buf := framePool.Get().(*bytes.Buffer)
		buf.Reset()
		for i, m := range msgs {
			if i > 0 {
				buf.WriteByte('\n')
			}
			buf.Write(m)
		}
		// Move the write deadline only when it gets close: setting it costs a
		// timer update on every frame.
		if now := time.Now(); s.deadline.Sub(now) < writeTimeout/2 {
			s.deadline = now.Add(writeTimeout)
			_ = s.conn.SetWriteDeadline(s.deadline)
		}
		err := s.conn.WriteMessage(websocket.TextMessage, buf.Bytes())
		if buf.Cap() <= 64<<10 {
			framePool.Put(buf)
		}
		clear(msgs) // drop references to the encoded messages
		s.wmu.Lock()
		if s.spare == nil && cap(msgs) <= 1024 {
			s.spare = msgs[:0]
		}
		s.wmu.Unlock()
		if err != nil {
			s.wmu.Lock()
			s.writing = false
			s.wmu.Unlock()
			s.log().Debug("write failed", slog.String("error", err.Error()))
			s.closeWith(DisconnectWriteError)
			return
		}
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
	msg := websocket.FormatCloseMessage(int(d.Code), d.Reason)
	_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
	// The reader waits for the client's close frame; do not wait forever.
	_ = s.conn.SetReadDeadline(time.Now().Add(closeGrace))
}
