package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhub/herald/internal/auth"
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
