package server

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// pendingLimit bounds the connections that are not upgraded to a WebSocket
// or an event stream: those reading a request, being answered, or idle
// between keep-alive requests (http.max_pending_conns, and per client IP
// http.max_pending_conns_per_ip). Upgraded connections are long-lived by
// design and have their own limits; a connection stops counting when it is
// upgraded or closed.
type pendingLimit struct {
	max, perIP int
	log        *slog.Logger

	mu   sync.Mutex
	n    int
	byIP map[string]int

	refusing atomic.Bool // for the log: one line when refusals start, one when they stop
}

func newPendingLimit(max, perIP int, log *slog.Logger) *pendingLimit {
	return &pendingLimit{max: max, perIP: perIP, log: log, byIP: map[string]int{}}
}

// acquire counts c, or refuses it with the reason. release (safe to call
// more than once) ends the count.
func (l *pendingLimit) acquire(c net.Conn) (release func(), refused string) {
	if l == nil || (l.max <= 0 && l.perIP <= 0) {
		return func() {}, ""
	}
	ip := ""
	if l.perIP > 0 {
		ip = hostOf(c.RemoteAddr())
	}
	l.mu.Lock()
	switch {
	case l.max > 0 && l.n >= l.max:
		refused = fmt.Sprintf("%d connections are waiting for or sending a request (http.max_pending_conns)", l.max)
	case l.perIP > 0 && l.byIP[ip] >= l.perIP:
		refused = fmt.Sprintf("%d connections from this address are waiting for or sending a request (http.max_pending_conns_per_ip)", l.perIP)
	default:
		l.n++
		if ip != "" {
			l.byIP[ip]++
		}
	}
	l.mu.Unlock()
	if refused != "" {
		if l.refusing.CompareAndSwap(false, true) {
			l.log.Warn("refusing new connections: too many are not upgraded yet; they get 503 until some finish",
				slog.String("detail", refused), slog.String("remote_addr", c.RemoteAddr().String()))
		}
		return nil, refused
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.n--
			if ip != "" {
				if l.byIP[ip]--; l.byIP[ip] <= 0 {
					delete(l.byIP, ip)
				}
			}
			low := l.n <= l.max/2
			l.mu.Unlock()
			// Hysteresis: "accepting again" once the count has halved.
			if low && l.refusing.CompareAndSwap(true, false) {
				l.log.Info("accepting new connections again")
			}
		})
	}, ""
}

// count is the number of connections counted now (0 when neither limit is
// set: nothing is counted then).
func (l *pendingLimit) count() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// refuseConn answers a connection over the limit with 503 and closes it.
func refuseConn(c net.Conn, why string) {
	body := "503 Service Unavailable: " + why + "; retry shortly\n"
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	lingerClose(c)
}

// lingerClose closes c after reading (briefly, a bounded amount) what the
// client had already sent: closing with unread bytes makes the kernel reset
// the connection, and the client may lose the answer it was about to read.
func lingerClose(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		_, _ = io.CopyN(io.Discard, c, 64<<10)
	}
	_ = c.Close()
}

// connState releases a net/http connection's count when it is upgraded
// (hijacked) or closed.
func connState(c net.Conn, st http.ConnState) {
	if st != http.StateHijacked && st != http.StateClosed {
		return
	}
	if pc, ok := c.(*prefixConn); ok && pc.release != nil {
		pc.release()
	}
}
