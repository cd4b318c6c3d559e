package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The Mercure (SSE) transport: each subscriber is a GET of the Mercure hub
// with ?topic=<channel> and its own subscriber token; publications are
// form POSTs with a publisher token. The server is started with these secrets.
const (
	mercurePath             = "/.well-known/mercure"
	mercurePublisherSecret  = "bench-mercure-publisher-secret-0123456789"
	mercureSubscriberSecret = "bench-mercure-subscriber-secret-012345678"
)

// mercureConfig is the configuration section the SSE runs add.
func mercureConfig() string {
	return `mercure:
  publisher:
    secret: ` + mercurePublisherSecret + `
  subscriber:
    secret: ` + mercureSubscriberSecret + `
`
}

// makeMercureTokens signs one subscriber token per connection, allowed to
// subscribe to topic.
func makeMercureTokens(n int, topic string, ttl time.Duration) ([]string, error) {
	exp := time.Now().Add(ttl).Unix()
	out := make([]string, n)
	for i := range out {
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "user" + strconv.Itoa(i), "exp": exp,
			"mercure": map[string]any{"subscribe": []string{topic}}})
		s, err := t.SignedString([]byte(mercureSubscriberSecret))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func mercurePublisherToken() string {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(),
		"mercure": map[string]any{"publish": []string{"*"}}})
	s, _ := t.SignedString([]byte(mercurePublisherSecret))
	return s
}

// sseConn is one subscriber's stream.
type sseConn struct {
	nc   net.Conn
	body io.Reader // the response body, de-chunked
}

// connectSSE opens a subscription and waits for the hub's first comment,
// which the hub writes as soon as the subscription is registered.
func connectSSE(base, token, topic string, idx int, rs *runState) (*client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	nc, err := net.DialTimeout("tcp", u.Host, 15*time.Second)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET " + mercurePath + "?topic=" + url.QueryEscape(topic) + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		nc.Close()
		return nil, fmt.Errorf("subscribe: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	c := &client{idx: idx, sse: &sseConn{nc: nc, body: resp.Body}, run: rs, done: make(chan struct{}), buf: make([]byte, 4096)}
	// The first bytes are the hub's opening comment.
	n, err := resp.Body.Read(c.buf)
	if err != nil || n == 0 || c.buf[0] != ':' {
		nc.Close()
		return nil, fmt.Errorf("subscribe: no opening comment (%d bytes, %v)", n, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// readSSE reads the stream until it ends, recording every data line that
// carries a measured publication. A "frame" here is one read of the body
// that carried at least one publication.
func (c *client) readSSE() {
	defer close(c.done)
	var pending []byte // an incomplete line from the previous read
	for {
		n, err := c.sse.body.Read(c.buf)
		now := time.Now().UnixNano()
		data := c.buf[:n]
		pubs := 0
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				pending = append(pending, data...)
				break
			}
			line := data[:i]
			if len(pending) > 0 {
				line = append(pending, line...)
				pending = pending[:0]
			}
			data = data[i+1:]
			if c.handleSSELine(line, now) {
				pubs++
			}
		}
		if pubs > 0 {
			c.run.pubFrames.Add(1)
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.err = err
			}
			c.run.closed.Add(1)
			return
		}
	}
}

var dataPrefix = []byte("data: ")

func (c *client) handleSSELine(line []byte, now int64) bool {
	if len(line) == 0 || line[0] == ':' || !bytes.HasPrefix(line, dataPrefix) {
		if len(line) > 0 && line[0] == ':' {
			c.run.pings.Add(1)
		}
		return false // event boundary, comment, id: or event: line
	}
	t, seq, ok := parseData(line[len(dataPrefix):])
	if !ok {
		c.run.other.Add(1)
		return false
	}
	return c.record(t, seq, now)
}

// parseData extracts t and seq from {"t":123,"seq":4}.
func parseData(b []byte) (t, seq int64, ok bool) {
	i := bytes.Index(b, keyT)
	j := bytes.Index(b, keySeq)
	if i < 0 || j < 0 {
		return 0, 0, false
	}
	t, ok1 := parseInt(b[i+len(keyT):])
	seq, ok2 := parseInt(b[j+len(keySeq):])
	return t, seq, ok1 && ok2
}

// mercureBody is the form body of one Mercure publication.
func mercureBody(topic string, t, seq int64) []byte {
	data := `{"t":` + strconv.FormatInt(t, 10) + `,"seq":` + strconv.FormatInt(seq, 10) + `}`
	return []byte("topic=" + url.QueryEscape(topic) + "&data=" + url.QueryEscape(data))
}

// mercurePublished checks a publication's answer: 200 with the update id.
func mercurePublished(status int, body []byte) error {
	if status != http.StatusOK || !strings.HasPrefix(string(body), "urn:uuid:") {
		return fmt.Errorf("publish: %d: %s", status, bytes.TrimSpace(body))
	}
	return nil
}
