package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

const sseWait = 5 * time.Second

func mbearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func topics(ts ...string) url.Values { return url.Values{"topic": ts} }

// subscribeOK opens a stream and fails unless it is 200 and starts with ":".
func subscribeOK(t *testing.T, srv *testutil.Server, q url.Values, h http.Header) *testutil.SSE {
	t.Helper()
	s := srv.Subscribe(t, q, h)
	if s.Resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe %v: %d %s", q, s.Resp.StatusCode, s.Body())
	}
	if l, ok := s.Line(sseWait); !ok || l != ":" {
		t.Fatalf("first line %q (ok=%v), want the comment \":\" flushed at once", l, ok)
	}
	return s
}

func TestMercureSubscribeHeadersAndFirstComment(t *testing.T) {
	srv := testutil.Start(t, nil)
	s := subscribeOK(t, srv, topics("https://example.com/books/1"), mbearer(testutil.SubscriberToken(t)))
	want := map[string]string{
		"Content-Type":            "text/event-stream",
		"Cache-Control":           "private, no-cache, no-store, must-revalidate, max-age=0",
		"Pragma":                  "no-cache",
		"Expires":                 "0",
		"X-Accel-Buffering":       "no",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'self'",
		"X-Xss-Protection":        "1; mode=block",
	}
	for k, v := range want {
		if got := s.Resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if s.Resp.Header.Get("Last-Event-ID") != "" {
		t.Error("Last-Event-ID must only be sent when the request carried one")
	}
}

func TestMercurePublishAndReceive(t *testing.T) {
	srv := testutil.Start(t, nil)
	s := subscribeOK(t, srv, topics("https://example.com/books/{id}", "https://example.com/users/dunglas"), mbearer(testutil.SubscriberToken(t)))
	// typed, retry, multi-line data, publisher id verbatim
	id := srv.Publish(t, url.Values{"topic": {"https://example.com/books/1"}, "data": {"line1\nline2\r\n\r\nend"}, "type": {"book"}, "retry": {"5000"},
		"id": {`batch-7:["https://example.com/books/1"]`}})
	if id != `batch-7:["https://example.com/books/1"]` {
		t.Fatalf("response body %q, want the publisher's id verbatim", id)
	}
	ev := s.Next(sseWait)
	if ev.ID != id || ev.Type != "book" || ev.Retry != "5000" || ev.Data != "line1\nline2\n\nend" {
		t.Fatalf("event %+v", ev)
	}
	// second selector (OR), generated id, no type
	id2 := srv.Publish(t, url.Values{"topic": {"https://example.com/users/dunglas"}, "data": {""}})
	if !strings.HasPrefix(id2, "urn:uuid:") || id2[len("urn:uuid:")+14] != '7' {
		t.Fatalf("generated id %q, want urn:uuid:<UUIDv7>", id2)
	}
	ev = s.Next(sseWait)
	if ev.ID != id2 || ev.Type != "" || ev.Data != "" || ev.Retry != "" {
		t.Fatalf("event %+v", ev)
	}
	// not matching: {id} does not cross /
	srv.Publish(t, topics("https://example.com/books/1/reviews"))
	// duplicate ids are accepted
	srv.Publish(t, url.Values{"topic": {"https://example.com/books/2"}, "id": {id}})
	if ev := s.Next(sseWait); ev.ID != id {
		t.Fatalf("got %+v, want the duplicate id and no update for books/1/reviews", ev)
	}
}

func TestMercurePublishResponse(t *testing.T) {
	srv := testutil.Start(t, nil)
	req, _ := http.NewRequest(http.MethodPost, srv.MercureURL(), strings.NewReader("topic=a&data=x&id=my-id-1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	req.Header.Set("Authorization", "Bearer "+testutil.PublisherToken(t, "*"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 100)
	n, _ := resp.Body.Read(b)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || string(b[:n]) != "my-id-1" {
		t.Fatalf("%d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), b[:n])
	}
}

func TestMercurePublishValidation(t *testing.T) {
	srv := testutil.Start(t, nil)
	pub := mbearer(testutil.PublisherToken(t, "*"))
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	rows := []struct {
		name   string
		form   url.Values
		status int
		body   string
	}{
		{"no topic", url.Values{"data": {"x"}}, 400, `Missing "topic" parameter`},
		{"too many topics", url.Values{"topic": many}, 400, `Too many "topic" parameters`},
		{"bad retry", url.Values{"topic": {"a"}, "retry": {"abc"}}, 400, `Invalid "retry" parameter`},
		{"negative retry", url.Values{"topic": {"a"}, "retry": {"-1"}}, 400, `Invalid "retry" parameter`},
		{"LF in id", url.Values{"topic": {"a"}, "id": {"a\nb"}}, 400, `"id" field contains a forbidden control character`},
		{"CR in id", url.Values{"topic": {"a"}, "id": {"a\rb"}}, 400, `"id" field contains a forbidden control character`},
		{"NUL in type", url.Values{"topic": {"a"}, "type": {"a\x00"}}, 400, `"type" field contains a forbidden control character`},
		{"LF in type", url.Values{"topic": {"a"}, "type": {"x\ny"}}, 400, `"type" field contains a forbidden control character`},
		{"id starting with #", url.Values{"topic": {"a"}, "id": {"#frag"}}, 400, `must not start with #`},
		{"id earliest", url.Values{"topic": {"a"}, "id": {"earliest"}}, 400, `must not be earliest`},
		{"reserved namespace", url.Values{"topic": {"a", "/.well-known/mercure/subscriptions/x/y"}}, 403, `references the reserved "/.well-known/mercure" namespace`},
	}
	for _, r := range rows {
		st, body, _ := srv.MercurePost(t, pub, r.form)
		if st != r.status || !strings.Contains(body, r.body) {
			t.Errorf("%s: %d %q, want %d containing %q", r.name, st, body, r.status, r.body)
		}
	}
	// wrong content type names what was received
	req, _ := http.NewRequest(http.MethodPost, srv.MercureURL(), strings.NewReader(`{"topic":"a"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", pub.Get("Authorization"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 300)
	n, _ := resp.Body.Read(b)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b[:n]), "got application/json") {
		t.Errorf("json body: %d %q", resp.StatusCode, b[:n])
	}
	// body limit
	big := url.Values{"topic": {"a"}, "data": {strings.Repeat("x", 1<<20)}}
	if st, body, _ := srv.MercurePost(t, pub, big); st != http.StatusRequestEntityTooLarge {
		t.Errorf("1 MiB of data: %d %q, want 413", st, body)
	}
	// exactly at the topic limit is fine
	if st, body, _ := srv.MercurePost(t, pub, url.Values{"topic": many[:1000]}); st != 200 {
		t.Errorf("1000 topics: %d %q", st, body)
	}
}

// challenge checks a refusal's status, WWW-Authenticate and body reason.
func challenge(t *testing.T, what string, st int, body string, h http.Header, wantStatus int, wantCode auth.Code) {
	t.Helper()
	if st != wantStatus || !strings.HasPrefix(body, string(wantCode)) {
		t.Errorf("%s: %d %q, want %d with reason %s", what, st, body, wantStatus, wantCode)
		return
	}
	wa := h.Get("WWW-Authenticate")
	switch {
	case wantCode == auth.TokenMissing:
		if wa != `Bearer realm="mercure"` {
			t.Errorf("%s: WWW-Authenticate %q, want a bare Bearer challenge", what, wa)
		}
	case wantStatus == 401:
		if !strings.Contains(wa, `error="invalid_token"`) || !strings.Contains(wa, `error_description="`+string(wantCode)) {
			t.Errorf("%s: WWW-Authenticate %q", what, wa)
		}
	case wantStatus == 403:
		if !strings.Contains(wa, `error="insufficient_scope"`) || !strings.Contains(wa, `error_description="`+string(wantCode)) {
			t.Errorf("%s: WWW-Authenticate %q", what, wa)
		}
	}
}

func TestMercurePublishAuthorization(t *testing.T) {
	srv := testutil.Start(t, nil)
	form := topics("https://example.com/books/1", "https://example.com/users/foo/?topic=x")
	now := time.Now()
	psign := func(claims map[string]any) string {
		return testutil.SignMercure(t, testutil.MercurePublisherSecret, claims)
	}
	rows := []struct {
		name   string
		header http.Header
		status int
		code   auth.Code
	}{
		{"no token", nil, 401, auth.TokenMissing},
		{"not Bearer", http.Header{"Authorization": {"Basic abc"}}, 401, auth.TokenMalformed},
		{"garbage", mbearer("abc"), 401, auth.TokenMalformed},
		{"subscriber key", mbearer(testutil.SubscriberToken(t, "*")), 401, auth.SignatureInvalid},
		{"expired", mbearer(psign(map[string]any{"exp": now.Add(-time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}}})), 401, auth.TokenExpired},
		{"not yet valid", mbearer(psign(map[string]any{"nbf": now.Add(time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}}})), 401, auth.TokenNotYetValid},
		{"alg none", mbearer(unsignedToken(map[string]any{"mercure": map[string]any{"publish": []string{"*"}}})), 401, auth.AlgNotAllowed},
		{"HS512 against an HS256 key", mbearer(sign(t, jwt.SigningMethodHS512, []byte(testutil.MercurePublisherSecret), map[string]any{"mercure": map[string]any{"publish": []string{"*"}}}, nil)), 401, auth.AlgNotAllowed},
		{"claim not an object", mbearer(psign(map[string]any{"mercure": "everything"})), 401, auth.ClaimInvalid},
		{"no mercure claim", mbearer(psign(map[string]any{"sub": "x"})), 403, auth.TopicNotPermitted},
		{"empty publish", mbearer(testutil.PublisherToken(t)), 403, auth.TopicNotPermitted},
		{"one topic not covered", mbearer(testutil.PublisherToken(t, "https://example.com/books/{id}")), 403, auth.TopicNotPermitted},
		{"books/* is not a template", mbearer(testutil.PublisherToken(t, "https://example.com/books/*", "https://example.com/users/foo/{?topic}")), 403, auth.TopicNotPermitted},
	}
	for _, r := range rows {
		st, body, h := srv.MercurePost(t, r.header, form)
		challenge(t, r.name, st, body, h, r.status, r.code)
	}
	// every topic covered, by two selectors; namespaced claim wins over mercure
	ok := []string{
		testutil.PublisherToken(t, "https://example.com/books/{id}", "https://example.com/users/foo/{?topic}"),
		psign(map[string]any{"https://mercure.rocks/": map[string]any{"publish": []string{"*"}}, "mercure": map[string]any{"publish": []string{}}}),
		psign(map[string]any{"exp": now.Add(time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}}}),
	}
	for i, tok := range ok {
		if st, body, _ := srv.MercurePost(t, mbearer(tok), form); st != 200 {
			t.Errorf("good token %d: %d %q", i, st, body)
		}
	}
	// the namespaced claim wins: an empty namespaced publish refuses although mercure allows
	tok := psign(map[string]any{"https://mercure.rocks/": map[string]any{"publish": []string{}}, "mercure": map[string]any{"publish": []string{"*"}}})
	st, body, h := srv.MercurePost(t, mbearer(tok), form)
	challenge(t, "namespaced claim wins", st, body, h, 403, auth.TopicNotPermitted)
	if !strings.Contains(srv.Logs.String(), "mercure: publication refused") {
		t.Error("refusals are logged at INFO")
	}
}

func TestMercureKeysNotConfigured(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Publisher.Secret = ""
	srv := testutil.Start(t, cfg)
	st, body, h := srv.MercurePost(t, mbearer(testutil.PublisherToken(t, "*")), topics("a"))
	challenge(t, "no publisher key", st, body, h, 401, auth.KeysNotConfigured)
	if !strings.Contains(body, "mercure.publisher.secret") {
		t.Errorf("hint should name the key to set: %q", body)
	}
}

func TestMercureReasonDetailCodeOnly(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.ReasonDetail = "code"
	srv := testutil.Start(t, cfg)
	st, body, h := srv.MercurePost(t, mbearer(testutil.PublisherToken(t, "other")), topics("a"))
	if st != 403 || body != "topic_not_permitted\n" || h.Get("WWW-Authenticate") != `Bearer realm="mercure", error="insufficient_scope", error_description="topic_not_permitted"` {
		t.Fatalf("%d %q %q", st, body, h.Get("WWW-Authenticate"))
	}
}

func TestMercureSubscribeErrors(t *testing.T) {
	srv := testutil.Start(t, nil)
	sub := mbearer(testutil.SubscriberToken(t))
	s := srv.Subscribe(t, url.Values{}, sub)
	if s.Resp.StatusCode != 400 || !strings.Contains(s.Body(), `Missing "topic" parameter.`) {
		t.Errorf("no topic: %d", s.Resp.StatusCode)
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	s = srv.Subscribe(t, url.Values{"topic": many}, sub)
	if s.Resp.StatusCode != 400 || !strings.Contains(s.Body(), `Too many "topic" parameters`) {
		t.Errorf("1001 topics: %d", s.Resp.StatusCode)
	}
	// anonymous is off by default
	s = srv.Subscribe(t, topics("a"), nil)
	if s.Resp.StatusCode != 401 || s.Resp.Header.Get("WWW-Authenticate") != `Bearer realm="mercure"` || !strings.HasPrefix(s.Body(), "token_missing") {
		t.Errorf("anonymous off: %d %q", s.Resp.StatusCode, s.Resp.Header.Get("WWW-Authenticate"))
	}
	// publisher token on the subscriber key
	s = srv.Subscribe(t, topics("a"), mbearer(testutil.PublisherToken(t, "*")))
	if s.Resp.StatusCode != 401 || !strings.HasPrefix(s.Body(), "signature_invalid") {
		t.Errorf("wrong key: %d", s.Resp.StatusCode)
	}
	// 405
	req, _ := http.NewRequest(http.MethodPut, srv.MercureURL(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("PUT: %d", resp.StatusCode)
	}
}

func TestMercureAnonymousMode(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Anonymous = true
	srv := testutil.Start(t, cfg)
	anon := subscribeOK(t, srv, topics("https://example.com/{x}"), nil)
	// an invalid presented token is refused even in anonymous mode
	expired := testutil.SignMercure(t, testutil.MercureSubscriberSecret, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})
	for name, h := range map[string]http.Header{
		"expired header": mbearer(expired),
		"bad cookie":     {"Cookie": {"mercureAuthorization=not.a.token"}},
	} {
		s := srv.Subscribe(t, topics("a"), h)
		if s.Resp.StatusCode != 401 {
			t.Errorf("%s in anonymous mode: %d, want 401", name, s.Resp.StatusCode)
		}
	}
	q := topics("https://example.com/{x}")
	q.Set("authorization", "bad")
	if s := srv.Subscribe(t, q, nil); s.Resp.StatusCode != 401 {
		t.Errorf("bad query token in anonymous mode: %d", s.Resp.StatusCode)
	}
	srv.Publish(t, url.Values{"topic": {"https://example.com/private"}, "private": {"on"}, "id": {"p1"}})
	srv.Publish(t, url.Values{"topic": {"https://example.com/public"}, "id": {"pub1"}})
	if ev := anon.Next(sseWait); ev.ID != "pub1" {
		t.Fatalf("anonymous got %+v, want only the public update", ev)
	}
}

func TestMercurePrivateDeliveryRule(t *testing.T) {
	srv := testutil.Start(t, nil)
	book := "https://example.com/books/{id}"
	// subscribe claim matches the alternate topic, routing matches the canonical one
	perUser := subscribeOK(t, srv, topics(book), mbearer(testutil.SubscriberToken(t, "https://example.com/users/foo/{?topic}")))
	other := subscribeOK(t, srv, topics(book), mbearer(testutil.SubscriberToken(t, "https://example.com/users/bar/{?topic}")))
	noClaim := subscribeOK(t, srv, topics(book), mbearer(testutil.SubscriberToken(t)))
	all := subscribeOK(t, srv, topics(book), mbearer(testutil.SubscriberToken(t, "*")))
	// a claim that matches but routing that does not
	unrouted := subscribeOK(t, srv, topics("https://example.com/authors/{id}"), mbearer(testutil.SubscriberToken(t, "*")))

	srv.Publish(t, url.Values{"topic": {"https://example.com/books/1", "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1"},
		"private": {""}, "id": {"private-1"}})
	srv.Publish(t, url.Values{"topic": {"https://example.com/books/2", "https://example.com/authors/9"}, "id": {"public-2"}})
	for name, s := range map[string]*testutil.SSE{"per-user": perUser, "star": all} {
		if ev := s.Next(sseWait); ev.ID != "private-1" {
			t.Errorf("%s: got %+v, want private-1", name, ev)
		}
	}
	for name, s := range map[string]*testutil.SSE{"other user": other, "no claim": noClaim, "per-user": perUser, "star": all, "unrouted": unrouted} {
		if ev := s.Next(sseWait); ev.ID != "public-2" {
			t.Errorf("%s: got %+v, want public-2 (and never private-1)", name, ev)
		}
	}
}

func TestMercureTokenPrecedence(t *testing.T) {
	srv := testutil.Start(t, nil)
	good := testutil.SubscriberToken(t, "*")
	bad := "bad.token.here"
	q := func(tok string) url.Values {
		v := topics("a")
		if tok != "" {
			v.Set("authorization", tok)
		}
		return v
	}
	cookie := func(tok string) string { return "mercureAuthorization=" + tok }
	rows := []struct {
		name   string
		query  url.Values
		header http.Header
		status int
	}{
		{"header wins over query", q(bad), http.Header{"Authorization": {"Bearer " + good}}, 200},
		{"header wins over cookie", q(""), http.Header{"Authorization": {"Bearer " + good}, "Cookie": {cookie(bad)}}, 200},
		{"bad header loses even with good query", q(good), http.Header{"Authorization": {"Bearer " + bad}}, 401},
		{"query wins over cookie", q(good), http.Header{"Cookie": {cookie(bad)}}, 200},
		{"bad query loses even with good cookie", q(bad), http.Header{"Cookie": {cookie(good)}}, 401},
		{"cookie alone", q(""), http.Header{"Cookie": {cookie(good)}}, 200},
		{"bearer scheme case-insensitive", q(""), http.Header{"Authorization": {"bearer " + good}}, 200},
	}
	for _, r := range rows {
		s := srv.Subscribe(t, r.query, r.header)
		if s.Resp.StatusCode != r.status {
			t.Errorf("%s: %d, want %d", r.name, s.Resp.StatusCode, r.status)
		}
		s.Close()
	}
	if !strings.Contains(srv.Logs.String(), "several token sources carry different tokens") {
		t.Error("differing tokens in several sources are logged")
	}
	if strings.Contains(srv.Logs.String(), good) {
		t.Error("a token appears in the log")
	}
	// a private update reaches a query-token and a cookie subscriber
	qs := subscribeOK(t, srv, q(good), nil)
	cs := subscribeOK(t, srv, q(""), http.Header{"Cookie": {cookie(good)}})
	srv.Publish(t, url.Values{"topic": {"a"}, "private": {"on"}, "id": {"priv"}})
	for name, s := range map[string]*testutil.SSE{"query": qs, "cookie": cs} {
		if ev := s.Next(sseWait); ev.ID != "priv" {
			t.Errorf("%s: %+v", name, ev)
		}
	}
	if strings.Contains(srv.Logs.String(), good) {
		t.Error("the query token appears in the log")
	}
}

func TestMercureCookiePublishOrigin(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.CookieName = "hubAuth"
	cfg.Mercure.PublishOrigins = []string{"https://app.example.com", "https://*.example.org"}
	srv := testutil.Start(t, cfg)
	c := "hubAuth=" + testutil.PublisherToken(t, "*")
	rows := []struct {
		name   string
		header http.Header
		status int
	}{
		{"no Origin nor Referer", http.Header{"Cookie": {c}}, 403},
		{"foreign Origin", http.Header{"Cookie": {c}, "Origin": {"https://evil.example"}}, 403},
		{"allowed Origin", http.Header{"Cookie": {c}, "Origin": {"https://app.example.com"}}, 200},
		{"wildcard Origin", http.Header{"Cookie": {c}, "Origin": {"https://a.example.org"}}, 200},
		{"Referer when no Origin", http.Header{"Cookie": {c}, "Referer": {"https://app.example.com/page?x=1"}}, 200},
		{"foreign Referer", http.Header{"Cookie": {c}, "Referer": {"https://evil.example/app.example.com"}}, 403},
		{"header token is not origin-checked", http.Header{"Authorization": {"Bearer " + testutil.PublisherToken(t, "*")}, "Origin": {"https://evil.example"}}, 200},
		{"the default cookie name is not read", http.Header{"Cookie": {"mercureAuthorization=" + testutil.PublisherToken(t, "*")}, "Origin": {"https://app.example.com"}}, 401},
	}
	for _, r := range rows {
		st, body, h := srv.MercurePost(t, r.header, topics("a"))
		if st != r.status {
			t.Errorf("%s: %d %q, want %d", r.name, st, body, r.status)
		}
		if st == 403 {
			challenge(t, r.name, st, body, h, 403, auth.OriginNotAllowed)
		}
	}
}

func TestMercureCORS(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.CORSOrigins = []string{"https://app.example.com"}
	srv := testutil.Start(t, cfg)
	pre := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.MercureURL(), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "authorization,last-event-id")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ok := pre("https://app.example.com")
	if ok.StatusCode != 204 || ok.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		ok.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(ok.Header.Get("Access-Control-Allow-Headers"), "last-event-id") ||
		!strings.Contains(ok.Header.Get("Access-Control-Allow-Headers"), "authorization") ||
		!strings.Contains(ok.Header.Get("Access-Control-Allow-Headers"), "cache-control") {
		t.Errorf("allowed preflight: %d %v", ok.StatusCode, ok.Header)
	}
	no := pre("https://evil.example")
	if no.StatusCode != 204 || no.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("refused preflight: %d %v", no.StatusCode, no.Header)
	}
	s := subscribeOK(t, srv, topics("a"), http.Header{"Origin": {"https://app.example.com"}, "Authorization": {"Bearer " + testutil.SubscriberToken(t)}})
	if s.Resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || s.Resp.Header.Get("Access-Control-Expose-Headers") != "Last-Event-ID, WWW-Authenticate" ||
		s.Resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("GET from an allowed origin: %v", s.Resp.Header)
	}
	if !strings.Contains(srv.Logs.String(), "CORS preflight from a refused origin") {
		t.Error("refused origins are logged")
	}
}

func TestMercureCORSOriginsValidated(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.CORSOrigins = []string{"https://ok.example", "https://slash.example/", "example.com", "*", "null"}
	ps := cfg.Validate()
	if len(ps) != 2 || !strings.Contains(ps.Error(), "cors_origins[1]") || !strings.Contains(ps.Error(), "cors_origins[2]") {
		t.Fatalf("problems: %v", ps)
	}
}

func TestMercureReconnection(t *testing.T) {
	srv := testutil.Start(t, nil)
	sub := testutil.SubscriberToken(t, "https://example.com/mine/{id}")
	for _, f := range []url.Values{
		{"topic": {"https://example.com/a/1"}, "id": {"e1"}},
		{"topic": {"https://example.com/mine/1"}, "id": {"secret-1"}, "private": {"on"}},
		{"topic": {"https://example.com/other/1"}, "id": {"other-1"}, "private": {"on"}},
		{"topic": {"https://example.com/a/2"}, "id": {"e2"}},
		{"topic": {"https://example.com/a/3"}, "id": {"e1"}}, // duplicate id: e1 means its first occurrence
	} {
		srv.Publish(t, f)
	}
	sel := url.Values{"topic": {"https://example.com/a/{n}", "https://example.com/mine/{id}", "https://example.com/other/{id}"}}
	ids := func(s *testutil.SSE, n int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, s.Next(sseWait).ID)
		}
		return out
	}
	with := func(name, value string) url.Values {
		q := url.Values{}
		for k, v := range sel {
			q[k] = v
		}
		q.Set(name, value)
		return q
	}
	// header beats every query parameter
	s := subscribeOK(t, srv, with("lastEventID", "e2"), http.Header{"Last-Event-ID": {"e1"}, "Authorization": {"Bearer " + sub}})
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "e1" {
		t.Errorf("Last-Event-ID response header %q, want e1", got)
	}
	if got := strings.Join(ids(s, 3), ","); got != "secret-1,e2,e1" {
		t.Errorf("replay after e1: %s (other-1 is private to someone else)", got)
	}
	// live continues after the replay, without a duplicate
	srv.Publish(t, url.Values{"topic": {"https://example.com/a/4"}, "id": {"e4"}})
	if got := s.Next(sseWait).ID; got != "e4" {
		t.Errorf("live after replay: %s", got)
	}
	s.Close()
	hdr := http.Header{"Authorization": {"Bearer " + sub}}
	// each query parameter alone, then the precedence between them
	for _, name := range []string{"lastEventID", "Last-Event-ID", "last_event_id"} {
		s := subscribeOK(t, srv, with(name, "e2"), hdr)
		if h := s.Resp.Header.Get("Last-Event-ID"); h != "e2" {
			t.Errorf("%s=e2: header %q", name, h)
		}
		if got := strings.Join(ids(s, 2), ","); got != "e1,e4" {
			t.Errorf("%s=e2: replay %s", name, got)
		}
		s.Close()
	}
	q := with("lastEventID", "e2")
	q.Set("Last-Event-ID", "secret-1")
	q.Set("last_event_id", "secret-1")
	s = subscribeOK(t, srv, q, hdr)
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "e2" {
		t.Errorf("lastEventID must win over the legacy names: %q", got)
	}
	s.Close()
	// earliest: the whole retained history, filtered
	s = subscribeOK(t, srv, with("lastEventID", "earliest"), hdr)
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "earliest" {
		t.Errorf("earliest: header %q", got)
	}
	if got := strings.Join(ids(s, 5), ","); got != "e1,secret-1,e2,e1,e4" {
		t.Errorf("earliest replay: %s", got)
	}
	s.Close()
	// unknown id: earliest in the header, no replay, then live
	s = subscribeOK(t, srv, with("lastEventID", "nope"), hdr)
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "earliest" {
		t.Errorf("unknown id: header %q, want earliest", got)
	}
	srv.Publish(t, url.Values{"topic": {"https://example.com/a/5"}, "id": {"e5"}})
	if got := s.Next(sseWait).ID; got != "e5" {
		t.Errorf("unknown id: first event %s, want the live e5 only", got)
	}
	s.Close()
}

func TestMercureReplayNeverLeaksPrivate(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Anonymous = true
	srv := testutil.Start(t, cfg)
	srv.Publish(t, url.Values{"topic": {"t"}, "id": {"secret"}, "private": {"on"}})
	srv.Publish(t, url.Values{"topic": {"t"}, "id": {"public"}})
	q := url.Values{"topic": {"t"}, "lastEventID": {"earliest"}}
	s := subscribeOK(t, srv, q, nil)
	if got := s.Next(sseWait).ID; got != "public" {
		t.Fatalf("anonymous replay: %s", got)
	}
	// an unknown id never reveals the latest (private) id
	q.Set("lastEventID", "unknown")
	s = subscribeOK(t, srv, q, nil)
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "earliest" {
		t.Fatalf("header %q", got)
	}
}

// TestMercureNoGapNoDuplicate publishes while subscribers reconnect: every
// subscriber sees each update after its last event id exactly once, in order.
func TestMercureNoGapNoDuplicate(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Anonymous = true
	srv := testutil.Start(t, cfg)
	const n = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		tok := testutil.PublisherToken(t, "*")
		for i := 0; i < n; i++ {
			st, body, _ := srv.MercurePost(t, mbearer(tok), url.Values{"topic": {"seq"}, "id": {fmt.Sprint(i)}})
			if st != 200 {
				t.Errorf("publish %d: %d %s", i, st, body)
				return
			}
		}
	}()
	last := "earliest"
	next := 0
	for next < n {
		s := subscribeOK(t, srv, url.Values{"topic": {"seq"}, "lastEventID": {last}}, nil)
		for k := 0; k < 7 && next < n; k++ {
			ev := s.Next(sseWait)
			if ev.ID != fmt.Sprint(next) {
				t.Fatalf("got id %s, want %d (last event id was %s)", ev.ID, next, last)
			}
			last = ev.ID
			next++
		}
		s.Close()
	}
	<-done
}

func TestMercureHeartbeat(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Heartbeat = config.Duration(100 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	s := subscribeOK(t, srv, topics("a"), mbearer(testutil.SubscriberToken(t)))
	start := time.Now()
	for i := 0; i < 2; i++ {
		if l, ok := s.Line(2 * time.Second); !ok || l != ":" {
			t.Fatalf("heartbeat %d: %q %v", i, l, ok)
		}
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("two heartbeats in %s: too early for a 100ms interval", el)
	}
}

func TestMercureCloseAtTokenExpiry(t *testing.T) {
	srv := testutil.Start(t, nil)
	tok := testutil.SignMercure(t, testutil.MercureSubscriberSecret, map[string]any{"exp": time.Now().Add(2 * time.Second).Unix()})
	s := subscribeOK(t, srv, topics("a"), mbearer(tok))
	start := time.Now()
	if !s.Ended(5 * time.Second) {
		t.Fatal("the stream outlived its token")
	}
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Fatalf("closed after %s, the token expired within 2s", el)
	}
	if !strings.Contains(srv.Logs.String(), "subscription closed because its token expires") {
		t.Error("the close is logged with its reason")
	}
}

func TestMercureWriteTimeoutLifetime(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.WriteTimeout = config.Duration(500 * time.Millisecond)
	cfg.Mercure.DispatchTimeout = config.Duration(100 * time.Millisecond)
	srv := testutil.Start(t, cfg)
	s := subscribeOK(t, srv, topics("a"), mbearer(testutil.SubscriberToken(t)))
	start := time.Now()
	if !s.Ended(3 * time.Second) {
		t.Fatal("the stream outlived write_timeout")
	}
	// 80-100 % of 500ms, minus 100ms
	if el := time.Since(start); el < 250*time.Millisecond || el > 1500*time.Millisecond {
		t.Fatalf("closed after %s", el)
	}
}

// stalledSubscriber opens a stream and never reads it: the socket buffers
// fill and writes to it block.
func stalledSubscriber(t *testing.T, srv *testutil.Server) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.MercureURL()+"?topic=a", nil)
	req.Header.Set("Authorization", "Bearer "+testutil.SubscriberToken(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(err, resp)
	}
	t.Cleanup(func() { resp.Body.Close() })
}

// publishUntilLogged publishes 64 KiB updates until the log shows want,
// then waits until the hub has forgotten the subscriber.
func publishUntilLogged(t *testing.T, srv *testutil.Server, want string) {
	t.Helper()
	tok := testutil.PublisherToken(t, "*")
	data := strings.Repeat("x", 64<<10)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(srv.Logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("a subscriber that does not read was never dropped with %q", want)
		}
		st, body, _ := srv.MercurePost(t, mbearer(tok), url.Values{"topic": {"a"}, "data": {data}})
		if st != 200 {
			t.Fatalf("publish: %d %s", st, body)
		}
	}
	for srv.MercureSubscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the dropped subscriber is still registered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMercureSlowSubscriberDroppedWhenQueueFull(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.SubscriberQueue = 2
	cfg.Mercure.DispatchTimeout = 0 // only the queue bound can drop it
	srv := testutil.Start(t, cfg)
	stalledSubscriber(t, srv)
	publishUntilLogged(t, srv, "mercure: subscriber dropped: it did not keep up and its queue of updates is full")
}

func TestMercureSlowSubscriberDroppedAfterDispatchTimeout(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.DispatchTimeout = config.Duration(200 * time.Millisecond)
	cfg.Client.QueueMaxSize = 256 << 20 // only the write deadline can drop it
	srv := testutil.Start(t, cfg)
	stalledSubscriber(t, srv)
	publishUntilLogged(t, srv, "mercure: subscriber dropped: writing to it took longer than dispatch_timeout")
	if strings.Contains(srv.Logs.String(), "queue of updates is full") {
		t.Fatal("dropped for its queue, not for the write deadline")
	}
}

func TestMercureShutdownEndsStreams(t *testing.T) {
	srv := testutil.Start(t, nil)
	s := subscribeOK(t, srv, topics("a"), mbearer(testutil.SubscriberToken(t)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Shutdown(context.Background())
	}()
	if !s.Ended(3 * time.Second) {
		t.Fatal("shutdown left the stream open")
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("shutdown did not finish")
	}
}

func TestMercureDisabled(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Enabled = false
	srv := testutil.Start(t, cfg)
	resp, err := http.Get(srv.MercureURL() + "?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("%d", resp.StatusCode)
	}
}

// TestMercureAsymmetricKeys: publisher and subscriber keys from PEM files,
// each pinned to its algorithm.
func TestMercureAsymmetricKeys(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	write := func(name string, pem []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := testutil.Config()
	cfg.Mercure.Publisher = config.MercureKeys{Alg: "HS256", Keys: []config.Key{
		{Alg: "RS256", File: write("rsa.pem", publicPEM(t, &rsaKey.PublicKey))},
		{Alg: "ES256", File: write("ec.pem", publicPEM(t, &ecKey.PublicKey))},
	}}
	cfg.Mercure.Subscriber = config.MercureKeys{Alg: "HS256", Keys: []config.Key{{Alg: "EdDSA", Value: string(publicPEM(t, edPub))}}}
	srv := testutil.Start(t, cfg)
	claims := func() map[string]any {
		return map[string]any{"mercure": map[string]any{"publish": []string{"*"}, "subscribe": []string{"*"}}}
	}
	s := subscribeOK(t, srv, topics("a"), mbearer(sign(t, jwt.SigningMethodEdDSA, edPriv, claims(), nil)))
	for _, tok := range []string{
		sign(t, jwt.SigningMethodRS256, rsaKey, claims(), nil),
		sign(t, jwt.SigningMethodES256, ecKey, claims(), nil),
	} {
		if st, body, _ := srv.MercurePost(t, mbearer(tok), url.Values{"topic": {"a"}, "private": {"on"}, "id": {tok[len(tok)-8:]}}); st != 200 {
			t.Fatalf("%d %s", st, body)
		}
		if ev := s.Next(sseWait); ev.ID != tok[len(tok)-8:] {
			t.Fatalf("%+v", ev)
		}
	}
	// alg pinned: an RS384 token from the RS256 key, an HS256 token with
	// the RSA public key as secret (algorithm confusion), an EdDSA token for publishing
	pemSecret := string(publicPEM(t, &rsaKey.PublicKey))
	for name, tok := range map[string]string{
		"RS384":              sign(t, jwt.SigningMethodRS384, rsaKey, claims(), nil),
		"HS256 confusion":    testutil.SignMercure(t, pemSecret, claims()),
		"EdDSA on publisher": sign(t, jwt.SigningMethodEdDSA, edPriv, claims(), nil),
	} {
		st, body, h := srv.MercurePost(t, mbearer(tok), topics("a"))
		challenge(t, name, st, body, h, 401, auth.AlgNotAllowed)
	}
}

func TestMercureDebugVars(t *testing.T) {
	cfg := testutil.Config()
	cfg.Admin.Key = "admin-secret"
	srv := testutil.Start(t, cfg)
	s := subscribeOK(t, srv, topics("a"), mbearer(testutil.SubscriberToken(t)))
	srv.Publish(t, topics("a"))
	srv.Publish(t, topics("b"))
	s.Next(sseWait)
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr+"/debug/vars", nil)
	req.Header.Set("X-Admin-Key", "admin-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var vars map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		t.Fatal(err)
	}
	if vars["mercure_subscribers_connected"] != 1.0 || vars["num_selector_subs"] != 1.0 || vars["num_clients"] != 1.0 {
		t.Fatalf("vars %v", vars)
	}
}

func TestMercureSubscriptionEventsAndAPI(t *testing.T) {
	cfg := testutil.Config()
	cfg.Mercure.Subscriptions = true
	srv := testutil.Start(t, cfg)
	tmpl := "/.well-known/mercure/subscriptions{/topic}{/subscriber}"
	watcher := subscribeOK(t, srv, topics(tmpl), mbearer(testutil.SubscriberToken(t, tmpl)))
	// the watcher's own subscription is announced to it
	var own map[string]any
	if err := json.Unmarshal([]byte(watcher.Next(sseWait).Data), &own); err != nil || own["topic"] != tmpl || own["active"] != true {
		t.Fatalf("own event %v %v", own, err)
	}
	bobTok := testutil.SignMercure(t, testutil.MercureSubscriberSecret, map[string]any{"mercure": map[string]any{"subscribe": []string{}, "payload": map[string]any{"user": "bob"}}})
	bob := subscribeOK(t, srv, topics("https://example.com/books/{id}"), mbearer(bobTok))
	ev := watcher.Next(sseWait)
	var doc map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &doc); err != nil {
		t.Fatal(err, ev.Data)
	}
	bobID, _ := doc["subscriber"].(string)
	wantID := "/.well-known/mercure/subscriptions/" + url.QueryEscape("https://example.com/books/{id}") + "/" + url.QueryEscape(bobID)
	if ev.Type != "" || doc["@context"] != "https://mercure.rocks/" || doc["type"] != "Subscription" || doc["active"] != true ||
		doc["topic"] != "https://example.com/books/{id}" || !strings.HasPrefix(bobID, "urn:uuid:") || doc["id"] != wantID ||
		doc["payload"].(map[string]any)["user"] != "bob" {
		t.Fatalf("event %+v %v", ev, doc)
	}
	get := func(path string, h http.Header) (int, string, http.Header) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr+path, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String(), resp.Header
	}
	reader := mbearer(testutil.SubscriberToken(t, tmpl, "/.well-known/mercure/subscriptions"))
	st, body, h := get("/.well-known/mercure/subscriptions", reader)
	if st != 200 || h.Get("Content-Type") != "application/ld+json" || !strings.Contains(body, bobID) || !strings.Contains(body, `"type":"Subscriptions"`) {
		t.Fatalf("collection: %d %s %v", st, body, h)
	}
	var coll struct {
		LastEventID   string           `json:"lastEventID"`
		Subscriptions []map[string]any `json:"subscriptions"`
	}
	if err := json.Unmarshal([]byte(body), &coll); err != nil || len(coll.Subscriptions) != 2 || coll.LastEventID != ev.ID {
		t.Fatalf("collection %s: %v (last event %s)", body, err, ev.ID)
	}
	if st, _, _ := get("/.well-known/mercure/subscriptions", http.Header{"If-None-Match": {h.Get("ETag")}, "Authorization": reader["Authorization"]}); st != 304 {
		t.Fatalf("If-None-Match: %d", st)
	}
	st, body, _ = get(wantID, reader)
	if st != 200 || !strings.Contains(body, `"lastEventID":"`+ev.ID+`"`) || !strings.Contains(body, `"user":"bob"`) {
		t.Fatalf("single: %d %s", st, body)
	}
	if st, _, _ := get("/.well-known/mercure/subscriptions/"+url.QueryEscape("https://example.com/books/{id}")+"/urn%3Auuid%3Anope", reader); st != 404 {
		t.Fatalf("unknown subscriber: %d", st)
	}
	st, body, h = get("/.well-known/mercure/subscriptions", nil)
	challenge(t, "anonymous API call", st, body, h, 401, auth.TokenMissing)
	st, body, h = get("/.well-known/mercure/subscriptions", mbearer(testutil.SubscriberToken(t, "https://example.com/{x}")))
	challenge(t, "API call without a matching selector", st, body, h, 403, auth.TopicNotPermitted)
	// publishers cannot forge subscription events
	if st, _, _ := srv.MercurePost(t, mbearer(testutil.PublisherToken(t, "*")), topics(wantID)); st != 403 {
		t.Fatalf("forged event: %d", st)
	}
	// bob leaves: inactive event
	bob.Close()
	ev = watcher.Next(sseWait)
	if err := json.Unmarshal([]byte(ev.Data), &doc); err != nil || doc["active"] != false || doc["subscriber"] != bobID {
		t.Fatalf("leave event %v %v", doc, err)
	}
}

func TestMercureSubscriptionsOffByDefault(t *testing.T) {
	srv := testutil.Start(t, nil)
	resp, err := http.Get(srv.MercureURL() + "/subscriptions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("%d", resp.StatusCode)
	}
}

// TestMercureLargeReplay: a replay larger than one write arrives whole and in order.
func TestMercureLargeReplay(t *testing.T) {
	srv := testutil.Start(t, nil)
	big := strings.Repeat("y", 100<<10)
	for i := 0; i < 5; i++ {
		data := "small"
		if i%2 == 1 {
			data = big
		}
		srv.Publish(t, url.Values{"topic": {"r"}, "id": {fmt.Sprint("r", i)}, "data": {data}})
	}
	s := subscribeOK(t, srv, url.Values{"topic": {"r"}, "lastEventID": {"earliest"}}, mbearer(testutil.SubscriberToken(t)))
	for i := 0; i < 5; i++ {
		ev := s.Next(sseWait)
		want := "small"
		if i%2 == 1 {
			want = big
		}
		if ev.ID != fmt.Sprint("r", i) || ev.Data != want {
			t.Fatalf("event %d: id %s, %d bytes", i, ev.ID, len(ev.Data))
		}
	}
}

func TestMercurePathValidated(t *testing.T) {
	for _, p := range []string{"", "/", "hub", "/hub/", "/api", "/api/hub", "/health", "/debug/hub"} {
		cfg := testutil.Config()
		cfg.Mercure.Path = p
		if ps := cfg.Validate(); len(ps) != 1 || !strings.Contains(ps.Error(), "mercure.path") {
			t.Errorf("path %q: %v", p, ps)
		}
	}
	cfg := testutil.Config()
	cfg.Mercure.Path = "/hub"
	srv := testutil.Start(t, cfg)
	s := subscribeOK(t, srv, topics("a"), mbearer(testutil.SubscriberToken(t)))
	srv.Publish(t, url.Values{"topic": {"a"}, "id": {"on-hub"}})
	if ev := s.Next(sseWait); ev.ID != "on-hub" {
		t.Fatalf("%+v", ev)
	}
	if st, body, _ := srv.MercurePost(t, mbearer(testutil.PublisherToken(t, "*")), topics("/hub/subscriptions/x/y")); st != 403 {
		t.Fatalf("a topic under the configured path: %d %s", st, body)
	}
}

// An HTTP/1.0 subscriber (nginx proxies in HTTP/1.0 unless told otherwise)
// gets the events as a plain body that ends with the connection, not chunks.
func TestMercureHTTP10Subscriber(t *testing.T) {
	srv := testutil.Start(t, nil)
	c, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /.well-known/mercure?topic=a HTTP/1.0\r\nAuthorization: Bearer "+testutil.SubscriberToken(t)+"\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET", ProtoMajor: 1, ProtoMinor: 0})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(resp.TransferEncoding) != 0 || !resp.Close {
		t.Fatalf("status %d, transfer encoding %v, close %v", resp.StatusCode, resp.TransferEncoding, resp.Close)
	}
	first := make([]byte, 2)
	if _, err := io.ReadFull(br, first); err != nil || string(first) != ":\n" {
		t.Fatalf("body starts %q (%v), want the opening comment without chunk framing", first, err)
	}
	id := srv.Publish(t, url.Values{"topic": {"a"}, "data": {"hello"}})
	want := "id: " + id + "\ndata: hello\n\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
		t.Fatalf("event %q (%v), want %q", got, err, want)
	}
}
