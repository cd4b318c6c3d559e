package centrifuge

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/conn"
)

// Outgoing messages go through the connection's queue (internal/conn):
// messages queued while the connection waits for a writer are joined into
// one text frame, separated by newlines, so a subscriber that falls behind
// costs one write per batch, not one per message. Over
// client.queue_max_size bytes the client is disconnected with 3008.

// enqueue queues one encoded message.
func (s *session) enqueue(b []byte) { s.q.Enqueue(b) }

// Slow implements conn.Owner.
func (s *session) Slow(queued int) {
	s.log().Info("client is too slow", slog.Int("queued_bytes", queued), slog.Int("queue_max_size", s.h.cfg.Client.QueueMaxSize))
	go s.closeWith(DisconnectSlow)
}

// WriteFailed implements conn.Owner.
func (s *session) WriteFailed(err error) {
	s.log().Debug("write failed", slog.String("error", err.Error()))
	// The close frame may wait for the socket: not on a writer.
	go s.closeWith(DisconnectWriteError)
}

// closeWith ends the connection with a disconnect code and reason: a
// WebSocket close frame (after a disconnect push on uni_websocket), or a
// disconnect push and the end of an HTTP response. Safe to call more than
// once and from any goroutine; the first call wins.
func (s *session) closeWith(d Disconnect) {
	if !s.closeSent.CompareAndSwap(false, true) {
		return
	}
	s.q.Close()
	s.h.hub.Disconnecting(s, strconv.Itoa(int(d.Code))) // herald_disconnects_total
	s.mu.Lock()
	s.stopTimersLocked()
	s.mu.Unlock()
	level := slog.LevelInfo
	if d.Code == DisconnectShutdown.Code || d.Code == DisconnectWriteError.Code {
		level = slog.LevelDebug
	}
	s.log().LogAttrs(context.Background(), level, "disconnect", slog.Int("code", int(d.Code)), slog.String("reason", d.Reason))
	var b []byte
	if s.conn == nil || (s.tr.uni && !s.h.cfg.UniWebSocket.DisableDisconnectPush) {
		b = s.x.framer(nil, [][]byte{s.encodePush(&Push{Disconnect: &DisconnectPush{Code: d.Code, Reason: d.Reason}})})
	}
	if s.conn == nil {
		// The push, then the end of the response.
		_ = s.q.WriteNow(append(b, s.x.streamEnd...), closeGrace)
		_ = s.x.nc.Close()
		return
	}
	b = append(b, conn.ControlFrame(conn.OpClose, websocket.FormatCloseMessage(int(d.Code), d.Reason))...)
	_ = s.q.WriteNow(b, closeGrace)
	// The reader waits for the client's close frame; do not wait forever.
	_ = s.conn.SetReadDeadline(time.Now().Add(closeGrace))
}
