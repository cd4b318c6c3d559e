package server_test

// End-to-end tests of key and token mix-ups at the Mercure door (docs/auth.md,
// "Key mix-ups"): a token signed for another purpose, a secret sent as a
// token, and a secret wrapped in quotes.

import (
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/testutil"
)

func TestMercureRecognisesTokensForOtherPurposes(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil) // publisher, subscriber and client keys differ
	form := topics("https://example.com/books/1")
	pubFP := auth.Fingerprint([]byte(testutil.MercurePublisherSecret))
	subFP := auth.Fingerprint([]byte(testutil.MercureSubscriberSecret))
	for _, tc := range []struct {
		name, token string
		status      int
		code        auth.Code
		parts       []string
	}{
		{"subscriber token sent to publish", testutil.SubscriberToken(t, "*"), 401, auth.SignatureInvalid,
			[]string{"this is a Mercure subscriber token (signed with key " + subFP + "), not a Mercure publisher token", "hint: send a Mercure publisher token here"}},
		{"connection token sent to publish", testutil.UserToken(t, "u"), 401, auth.SignatureInvalid,
			[]string{"this is a connection token (client.token keys)"}},
		{"publisher secret sent as the token", testutil.MercurePublisherSecret, 401, auth.TokenMalformed,
			[]string{"it is the HMAC secret of key " + pubFP + " itself", "never send the secret"}},
		{"subscriber secret sent as the token", testutil.MercureSubscriberSecret, 401, auth.TokenMalformed,
			[]string{"it is the HMAC secret of key " + subFP + " itself (the key of a Mercure subscriber token)"}},
	} {
		st, body, h := srv.MercurePost(t, mbearer(tc.token), form)
		challenge(t, tc.name, st, body, h, tc.status, tc.code)
		for _, p := range tc.parts {
			if !strings.Contains(body, p) {
				t.Errorf("%s: body %q lacks %q", tc.name, body, p)
			}
		}
		if strings.Contains(body, "Bearer prefix") {
			t.Errorf("%s: the hint talks of a Bearer prefix, which Mercure requires: %q", tc.name, body)
		}
	}
	// A publisher token sent to subscribe is recognised too.
	s := srv.Subscribe(t, topics("https://example.com/books/1"), mbearer(testutil.PublisherToken(t, "*")))
	if body := s.Body(); s.Resp.StatusCode != 401 || !strings.Contains(body, "this is a Mercure publisher token") {
		t.Errorf("publisher token sent to subscribe: %d %q", s.Resp.StatusCode, body)
	}
	neverLogged(t, srv, testutil.MercurePublisherSecret, testutil.MercureSubscriberSecret)

	t.Run("one shared secret", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Mercure.Subscriber.Secret = testutil.MercurePublisherSecret
		srv := testutil.Start(t, cfg)
		tok := testutil.SignMercure(t, testutil.MercurePublisherSecret, map[string]any{"mercure": map[string]any{"subscribe": []string{"*"}}})
		st, body, h := srv.MercurePost(t, mbearer(tok), form)
		challenge(t, "subscriber token, shared secret", st, body, h, 403, auth.TopicNotPermitted)
		if !strings.Contains(body, "it is a subscriber token") {
			t.Errorf("body %q does not say it is a subscriber token", body)
		}
	})
}

func TestStartupWarnsAboutQuotedSecrets(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.Client.Token.HMACSecretKey = "'" + testutil.Secret + "'"
	cfg.Mercure.Publisher.Secret = `"` + testutil.MercurePublisherSecret + `"`
	srv := testutil.Start(t, cfg)
	srv.LogStartup()
	expectLog(t, srv, "level=WARN", "starts and ends with a quote", `for="connection tokens"`, "fingerprint_without_quotes="+auth.Fingerprint([]byte(testutil.Secret)))
	expectLog(t, srv, "level=WARN", "starts and ends with a quote", `for="mercure publisher tokens"`, "fingerprint_without_quotes="+auth.Fingerprint([]byte(testutil.MercurePublisherSecret)))
	neverLogged(t, srv, testutil.Secret, testutil.MercurePublisherSecret)
}
