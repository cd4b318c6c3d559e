package main

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/testutil"
)

// TestToolMercureToken: tokens minted by herald mercure-token are accepted by
// a real hub, signed by the role's configured secret.
func TestToolMercureToken(t *testing.T) {
	srv := testutil.Start(t, nil)
	env := []string{"HERALD_MERCURE_PUBLISHER_SECRET=" + testutil.MercurePublisherSecret, "HERALD_MERCURE_SUBSCRIBER_SECRET=" + testutil.MercureSubscriberSecret}
	mintWith := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"mercure-token"}, args...), env, &out, &errb); code != 0 {
			t.Fatalf("mercure-token %v: %d %s", args, code, errb.String())
		}
		return strings.TrimSpace(out.String())
	}
	sub := srv.Subscribe(t, url.Values{"topic": {"https://example.com/a"}}, http.Header{"Authorization": {"Bearer " + mintWith("--subscribe", "https://example.com/{x}", "--ttl", "1h")}})
	if sub.Resp.StatusCode != 200 {
		t.Fatalf("subscriber token refused: %d %s", sub.Resp.StatusCode, sub.Body())
	}
	pub := mintWith("--publish", "https://example.com/{x}", "--payload", `{"user":"ci"}`)
	if st, body, _ := srv.MercurePost(t, http.Header{"Authorization": {"Bearer " + pub}}, url.Values{"topic": {"https://example.com/a"}, "private": {"on"}, "id": {"cli-1"}}); st != 200 {
		t.Fatalf("publisher token refused: %d %s", st, body)
	}
	if ev := sub.Next(5e9); ev.ID != "cli-1" {
		t.Fatalf("%+v", ev)
	}
	// --secret wins; a wrong one is refused by the hub
	bad := mintWith("--secret", "another-secret-0123456789abcdef0123", "--publish", "*")
	if st, _, _ := srv.MercurePost(t, http.Header{"Authorization": {"Bearer " + bad}}, url.Values{"topic": {"x"}}); st != 401 {
		t.Fatalf("token with another secret: %d", st)
	}
	var errb bytes.Buffer
	if code := run([]string{"mercure-token", "--publish", "*"}, nil, &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), "no mercure.publisher.secret") {
		t.Fatalf("without a secret: %d %q", code, errb.String())
	}
}
