package testutil

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/auth"
)

// MercureURL is the hub URL of the server.
func (s *Server) MercureURL() string { return "http://" + s.Addr + s.Cfg.Mercure.Path }

// SignMercure mints an HS256 token with secret.
func SignMercure(t testing.TB, secret string, claims map[string]any) string {
	t.Helper()
	tok, err := auth.SignHS256(secret, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// PublisherToken mints a publisher token allowed to publish to selectors.
func PublisherToken(t testing.TB, selectors ...string) string {
	return SignMercure(t, MercurePublisherSecret, map[string]any{"mercure": map[string]any{"publish": selectors}})
}

// SubscriberToken mints a subscriber token allowed to receive private
// updates on selectors.
func SubscriberToken(t testing.TB, selectors ...string) string {
	return SignMercure(t, MercureSubscriberSecret, map[string]any{"mercure": map[string]any{"subscribe": selectors}})
}

// MercurePost publishes form with the given headers and returns the status,
// the body and the response headers.
func (s *Server) MercurePost(t testing.TB, header http.Header, form url.Values) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.MercureURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// Publish publishes form with a publisher token for "*" and fails the test
// unless it is accepted; it returns the update id.
func (s *Server) Publish(t testing.TB, form url.Values) string {
	t.Helper()
	st, body, _ := s.MercurePost(t, http.Header{"Authorization": {"Bearer " + PublisherToken(t, "*")}}, form)
	if st != http.StatusOK {
		t.Fatalf("publish: %d %s", st, body)
	}
	return body
}

// SSEEvent is one parsed server-sent event.
type SSEEvent struct {
	ID, Type, Data, Retry string
	HasID                 bool
}

// SSE is a subscription stream read line by line.
type SSE struct {
	Resp   *http.Response
	lines  chan string
	cancel context.CancelFunc
	t      testing.TB
}

// Subscribe opens GET <hub>?query with header and returns the stream; the
// caller checks Resp.StatusCode. The stream is closed at test end.
func (s *Server) Subscribe(t testing.TB, query url.Values, header http.Header) *SSE {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.MercureURL()+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := &SSE{Resp: resp, lines: make(chan string, 1024), cancel: cancel, t: t}
	go func() {
		defer close(st.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			st.lines <- sc.Text()
		}
	}()
	t.Cleanup(st.Close)
	return st
}

// Close ends the stream.
func (s *SSE) Close() {
	s.cancel()
	_ = s.Resp.Body.Close()
}

// Body reads the whole body of a refused subscription.
func (s *SSE) Body() string {
	var b strings.Builder
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return b.String()
			}
			b.WriteString(l + "\n")
		case <-time.After(5 * time.Second):
			return b.String()
		}
	}
}

// Line returns the next raw line; ok is false on timeout or end of stream.
func (s *SSE) Line(timeout time.Duration) (line string, ok bool) {
	select {
	case l, open := <-s.lines:
		return l, open
	case <-time.After(timeout):
		return "", false
	}
}

// Next returns the next event, skipping comments; it fails the test when
// none arrives within timeout.
func (s *SSE) Next(timeout time.Duration) SSEEvent {
	s.t.Helper()
	ev, err := s.TryNext(timeout)
	if err != nil {
		s.t.Fatal(err)
	}
	return ev
}

// TryNext returns the next event, skipping comments, or an error on timeout
// or end of stream.
func (s *SSE) TryNext(timeout time.Duration) (SSEEvent, error) {
	var ev SSEEvent
	var data []string
	started := false
	deadline := time.After(timeout)
	for {
		var l string
		var open bool
		select {
		case l, open = <-s.lines:
			if !open {
				return ev, io.EOF
			}
		case <-deadline:
			return ev, fmt.Errorf("no event within %s", timeout)
		}
		if l == "" {
			if started {
				ev.Data = strings.Join(data, "\n")
				return ev, nil
			}
			continue
		}
		if strings.HasPrefix(l, ":") {
			continue
		}
		started = true
		name, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			ev.ID, ev.HasID = value, true
		case "event":
			ev.Type = value
		case "retry":
			ev.Retry = value
		case "data":
			data = append(data, value)
		}
	}
}

// Ended reports whether the stream ends (EOF) within timeout, skipping what
// arrives before.
func (s *SSE) Ended(timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		select {
		case _, open := <-s.lines:
			if !open {
				return true
			}
		case <-deadline:
			return false
		}
	}
}
