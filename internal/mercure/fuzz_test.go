package mercure_test

// Fuzz targets of what the hub parses: a publication's form body (with its
// Content-Type) and a subscription's URL query, against a real server.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/testutil"
)

// fuzzServer starts a quiet server for a fuzz target: logs only errors, so
// that millions of refusals do not pile up in memory.
func fuzzServer(f *testing.F) *testutil.Server {
	cfg := testutil.Config()
	cfg.LogLevel = "error"
	cfg.Mercure.MaxTopics = 20
	cfg.Mercure.MaxBodySize = 4096
	return testutil.Start(f, cfg)
}

// FuzzMercurePublishForm: whatever a publisher sends, the hub answers 200,
// 400, 403 or 413, never panics, and a 200 means the update went out: the
// subscriber receives it with the id, type and data of the form (each line
// of data as one data: line).
func FuzzMercurePublishForm(f *testing.F) {
	for _, s := range [][2]string{
		{"application/x-www-form-urlencoded", "topic=https://example.com/a&data=hello"},
		{"application/x-www-form-urlencoded; charset=utf-8", "topic=a&topic=b&data=line1%0Aline2%0D%0Aline3%0Dx&type=t&id=i1&retry=10&private=on"},
		{"application/x-www-form-urlencoded", "topic=a&id=%23x"},
		{"application/x-www-form-urlencoded", "topic=a&type=a%0Ab"},
		{"application/x-www-form-urlencoded", "topic=/.well-known/mercure/subscriptions"},
		{"application/x-www-form-urlencoded", "topic=a;b&data=x"},
		{"text/plain", "topic=a"},
		{"", "topic=a"},
		{"application/x-www-form-urlencoded", "topic=a&data=%ff%fe"},
		{"application/x-www-form-urlencoded", "topic=a&id=earliest"},
		{"application/x-www-form-urlencoded", "topic=a&retry=-1"},
	} {
		f.Add(s[0], s[1])
	}
	srv := fuzzServer(f)
	sub := testutil.SignMercure(f, testutil.MercureSubscriberSecret, map[string]any{"mercure": map[string]any{"subscribe": []string{"*"}}})
	stream := srv.Subscribe(f, url.Values{"topic": {"*"}}, http.Header{"Authorization": {"Bearer " + sub}})
	if stream.Resp.StatusCode != 200 {
		f.Fatalf("subscribe: %d", stream.Resp.StatusCode)
	}
	auth := "Bearer " + testutil.PublisherToken(f, "*")
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		req, err := http.NewRequest(http.MethodPost, srv.MercureURL(), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", auth)
		if contentType != "" {
			if !validHeaderValue(contentType) {
				return // the client would refuse to send it
			}
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mt, _, ctErr := mime.ParseMediaType(contentType)
		form, formErr := url.ParseQuery(body)
		switch resp.StatusCode {
		case 200:
		case 400, 403, 413:
			if len(got) == 0 || !strings.HasSuffix(string(got), "\n") {
				t.Fatalf("%d with body %q: a refusal says why, on one line", resp.StatusCode, got)
			}
			return
		default:
			t.Fatalf("status %d %q for Content-Type %q body %q", resp.StatusCode, got, contentType, body)
		}
		switch {
		case ctErr != nil || mt != "application/x-www-form-urlencoded":
			t.Fatalf("accepted Content-Type %q", contentType)
		case formErr != nil:
			t.Fatalf("accepted a body that is not a form (%v): %q", formErr, body)
		case len(body) > srv.Cfg.Mercure.MaxBodySize:
			t.Fatalf("accepted a body of %d bytes", len(body))
		}
		ev, err := stream.TryNext(5 * time.Second)
		if err != nil {
			t.Fatalf("publication %q accepted as %q but not delivered: %v", body, got, err)
		}
		wantData := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(form.Get("data"))
		if ev.ID != string(got) || ev.Type != form.Get("type") || ev.Data != wantData {
			t.Fatalf("body %q: delivered id %q type %q data %q; want id %q type %q data %q", body, ev.ID, ev.Type, ev.Data, got, form.Get("type"), wantData)
		}
		if id := form.Get("id"); id != "" && id != string(got) {
			t.Fatalf("the publisher's id %q was answered as %q", id, got)
		}
	})
}

// validHeaderValue reports whether net/http would send v as a header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzMercureSubscribeQuery: whatever request line and Last-Event-ID a
// subscriber sends, the hub answers 200 (a stream), 400 or 401 and never
// panics; a stream opens only for a query with 1 to max_topics topics.
func FuzzMercureSubscribeQuery(f *testing.F) {
	for _, s := range [][2]string{
		{"topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D", ""},
		{"topic=*&lastEventID=earliest", ""},
		{"topic=a&topic=b&Last-Event-ID=x", "urn:uuid:1"},
		{"", ""},
		{"topic=a;b", ""},
		{"topic=%zz", ""},
		{"topic=a b", ""},
		{"authorization=abc&topic=a", ""},
		{strings.Repeat("topic=x&", 25), ""},
	} {
		f.Add(s[0], s[1])
	}
	cfg := testutil.Config()
	cfg.LogLevel = "error"
	cfg.Mercure.MaxTopics = 20
	cfg.Mercure.Anonymous = true
	srv := testutil.Start(f, cfg)
	f.Fuzz(func(t *testing.T, rawQuery, lastEventID string) {
		c, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var req bytes.Buffer
		fmt.Fprintf(&req, "GET %s?%s HTTP/1.1\r\nHost: herald\r\n", srv.Cfg.Mercure.Path, rawQuery)
		if lastEventID != "" {
			fmt.Fprintf(&req, "Last-Event-ID: %s\r\n", lastEventID)
		}
		req.WriteString("\r\n")
		if _, err := c.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("request %q: no HTTP answer: %v", req.String(), err)
		}
		// The body is not closed: that would read a stream to its end. The
		// connection is closed instead, which ends the stream.
		validRequest := validRequestTarget(rawQuery) && validHeaderValue(lastEventID) && !strings.ContainsAny(lastEventID, "\r\n")
		q, _ := url.ParseQuery(rawQuery)
		n := len(q["topic"])
		switch resp.StatusCode {
		case 200:
			if !validRequest || n == 0 || n > cfg.Mercure.MaxTopics {
				t.Fatalf("stream opened for query %q (%d topics)", rawQuery, n)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("stream with Content-Type %q", ct)
			}
		case 400, 401:
			_, hasAuth := q["authorization"]
			if validRequest && !hasAuth && (resp.StatusCode == 401 || n >= 1 && n <= cfg.Mercure.MaxTopics) {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				t.Fatalf("query %q with %d topics refused: %d %s", rawQuery, n, resp.StatusCode, b)
			}
		default:
			t.Fatalf("status %d for query %q", resp.StatusCode, rawQuery)
		}
	})
}

// validRequestTarget reports whether q can stand in a request line: no
// space, no control character.
func validRequestTarget(q string) bool {
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
