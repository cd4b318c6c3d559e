package server_test

import (
	"bufio"
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
