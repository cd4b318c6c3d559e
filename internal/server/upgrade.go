package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WebSocket upgrades and Mercure subscriptions bypass net/http.
//
// net/http gives every connection a 4 KiB read buffer and a 4 KiB write
// buffer from its pools, and a hijacked connection never returns them: for a
// WebSocket, 8 KiB of garbage per connect, plus the request's context, its
// connection goroutine's state and its bookkeeping. Connect storms are where
// that shows (heraldbench conns: about a quarter of the server's CPU per
// connect, half of its allocations). So the listener looks at the first bytes
// of each connection: a GET of the WebSocket path is read with
// http.ReadRequest into pooled buffers and handed to the WebSocket handler,
// which upgrades it; the buffers go back to the pool when the handler
// returns. A GET of the Mercure hub is served the same way: its handler
// hijacks the connection for the event stream, which on net/http kept both
// buffers, the connection's state and a background reader for the
// subscription's whole life (36 KiB per subscriber; heraldbench conns
// -transport sse). The Centrifugo streams (http_stream, sse and the
// unidirectional transports) are served the same way, their POSTs too: the
// handler reads the connect request from the body and then hijacks the
// connection. Every other connection goes to net/http unchanged, with the
// bytes already read put back in front of it.

// fastRoute is a method and path whose requests the listener serves itself.
type fastRoute struct {
	method  string
	path    string
	handler http.Handler
}

// upgradeListener is the listener net/http serves from. Its own accept loop
// routes each connection (see above).
type upgradeListener struct {
	net.Listener
	routes            []fastRoute
	readHeaderTimeout time.Duration
	maxHeaderBytes    int
	pending           *pendingLimit // nil: no limit

	conns     chan net.Conn // connections for net/http
	done      chan struct{}
	closeOnce sync.Once
	errMu     sync.Mutex
	err       error // the accept error that ended the loop
}

func newUpgradeListener(ln net.Listener, routes []fastRoute, readHeaderTimeout time.Duration, maxHeaderBytes int, pending *pendingLimit) *upgradeListener {
	l := &upgradeListener{Listener: ln, routes: routes, readHeaderTimeout: readHeaderTimeout,
		maxHeaderBytes: maxHeaderBytes, pending: pending, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

// Accept returns the next connection for net/http.
func (l *upgradeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.errMu.Lock()
		defer l.errMu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (l *upgradeListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		err = l.Listener.Close()
		close(l.done)
	})
	return err
}

func (l *upgradeListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: back off and go on,
				// as net/http does, rather than stop serving.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
					return
				}
			}
			l.errMu.Lock()
			l.err = err
			l.errMu.Unlock()
			l.closeOnce.Do(func() { close(l.done) })
			return
		}
		delay = 0
		go l.route(c)
	}
}

// upgradeBuffers are the pooled buffers of one handshake.
type upgradeBuffers struct {
	lr io.LimitedReader
	br *bufio.Reader
	bw *bufio.Writer
}

var upgradePool = sync.Pool{New: func() any {
	b := &upgradeBuffers{}
	b.br = bufio.NewReaderSize(&b.lr, 4096)
	b.bw = bufio.NewWriterSize(io.Discard, 4096)
	return b
}}

// route reads the start of the request and serves a WebSocket upgrade, or
// passes the connection to net/http. The connection counts as pending
// (http.max_pending_conns) until it is upgraded or closed; net/http's
// connections stop counting through connState.
func (l *upgradeListener) route(c net.Conn) {
	release, refused := l.pending.acquire(c)
	if refused != "" {
		refuseConn(c, refused)
		return
	}
	handedOver := false
	defer func() {
		if !handedOver {
			release()
		}
	}()
	b := upgradePool.Get().(*upgradeBuffers)
	defer func() {
		b.lr.R = nil
		b.br.Reset(&b.lr)
		b.bw.Reset(io.Discard)
		upgradePool.Put(b)
	}()
	b.lr.R, b.lr.N = c, int64(l.maxHeaderBytes)+4096
	b.br.Reset(&b.lr)
	if l.readHeaderTimeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(l.readHeaderTimeout))
	}
	route, err := matchRoute(b.br, l.routes)
	if err != nil {
		_ = c.Close()
		return
	}
	if route == nil {
		pc := &prefixConn{Conn: c, release: release}
		if n := b.br.Buffered(); n > 0 {
			p, _ := b.br.Peek(n)
			pc.prefix = bytes.Clone(p)
		}
		_ = c.SetReadDeadline(time.Time{})
		select {
		case l.conns <- pc:
			handedOver = true
		case <-l.done:
			_ = c.Close()
		}
		return
	}
	req, err := http.ReadRequest(b.br)
	if err != nil {
		// Too large or malformed: answer as net/http would, then close.
		status := http.StatusBadRequest
		if b.lr.N <= 0 {
			status = http.StatusRequestHeaderFieldsTooLarge
		}
		_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%d %s", status, http.StatusText(status), status, http.StatusText(status))
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	req.RemoteAddr = c.RemoteAddr().String()
	if req.Method == http.MethodPost && strings.EqualFold(req.Header.Get("Expect"), "100-continue") && req.ContentLength != 0 {
		// As net/http does when a handler reads the body: the client waits for it.
		_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
	}
	w := &upgradeResponse{conn: c, rw: bufio.NewReadWriter(b.br, b.bw), header: http.Header{}, release: release}
	route.handler.ServeHTTP(w, req)
	if !w.hijacked {
		w.finish()
		_ = c.Close()
	}
}

// matchRoute returns the route whose "<method> <path>" the connection starts
// with, followed by a space or '?', or nil. It reads no more than it needs to
// decide, so a short request to another path does not wait for bytes that
// never come.
func matchRoute(br *bufio.Reader, routes []fastRoute) (*fastRoute, error) {
	for {
		p, _ := br.Peek(br.Buffered()) // no I/O
		undecided := false
		for i := range routes {
			want := routes[i].method + " " + routes[i].path
			k := min(len(p), len(want))
			if string(p[:k]) != want[:k] {
				continue
			}
			if len(p) > len(want) {
				if c := p[len(want)]; c == ' ' || c == '?' {
					return &routes[i], nil
				}
				continue
			}
			undecided = true
		}
		if !undecided {
			return nil, nil
		}
		// What arrived so far could still be one of the routes: read more.
		if _, err := br.Peek(len(p) + 1); err != nil {
			if len(p) > 0 && errors.Is(err, io.EOF) {
				return nil, nil // let net/http answer the truncated request
			}
			return nil, err
		}
	}
}

// prefixConn replays the bytes read while routing before reading the connection.
type prefixConn struct {
	net.Conn
	prefix  []byte
	release func() // ends the connection's pending count; nil when not counted
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http close its side gracefully, as on a plain TCP connection.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// upgradeResponse is the http.ResponseWriter of a routed request. An
// upgrade or an event stream hijacks the connection; a refusal (origin,
// shutdown, a bad handshake or token) is written as a complete response and
// the connection closed. The hijacker must not use the returned buffers
// after its handler returns: they go back to the pool.
type upgradeResponse struct {
	conn     net.Conn
	rw       *bufio.ReadWriter
	header   http.Header
	status   int
	body     bytes.Buffer
	hijacked bool
	// release ends the connection's pending count (http.max_pending_conns)
	// when it is taken over: a stream's first bytes may reach the client
	// before the handler returns, and the client may open more connections
	// at once.
	release func()
}

func (w *upgradeResponse) Header() http.Header { return w.header }

func (w *upgradeResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *upgradeResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.body.Len()+len(p) > 64<<10 {
		return 0, errors.New("response too large")
	}
	return w.body.Write(p)
}

func (w *upgradeResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	w.hijacked = true
	w.release()
	w.rw.Writer.Reset(w.conn)
	return w.conn, w.rw, nil
}

func (w *upgradeResponse) writeHead(bw *bufio.Writer) {
	_, _ = fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", w.status, http.StatusText(w.status))
	if w.header.Get("Date") == "" {
		w.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	_ = w.header.Write(bw)
	_, _ = bw.WriteString("\r\n")
}

// finish writes the response of a request that was not upgraded.
func (w *upgradeResponse) finish() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	bw := w.rw.Writer
	bw.Reset(w.conn)
	w.header.Del("Transfer-Encoding")
	w.header.Set("Connection", "close")
	w.header.Set("Content-Length", strconv.Itoa(w.body.Len()))
	w.writeHead(bw)
	_, _ = bw.Write(w.body.Bytes())
	_ = w.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = bw.Flush()
}
