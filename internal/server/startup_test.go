package server_test

// Tests of the start-up log: warnings that concern the deployment, and
// none that do not (docs/configuration.md, "Start-up warnings").

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

const noKeyWarning = "no token key configured: every connection token will be refused"

func TestStartupWarnings(t *testing.T) {
	t.Parallel()
	t.Run("no key, no callout: warned", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Client.Token.HMACSecretKey = ""
		srv := testutil.Start(t, cfg)
		srv.LogStartup()
		expectLog(t, srv, "level=WARN", noKeyWarning)
	})
	t.Run("auth callout: no false warning", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Client.Token.HMACSecretKey = ""
		cfg.Client.Callout = config.Callout{Enabled: true, Endpoint: "http://127.0.0.1:9/callout", SigningSecret: "callout-signing-secret-0123456789",
			ResponseKeys: []config.Key{{Alg: "HS256", Secret: "callout-response-secret-0123456789"}}}
		srv := testutil.Start(t, cfg)
		srv.LogStartup()
		if l := logLine(srv, noKeyWarning); l != "" {
			t.Fatalf("with the auth callout, the start-up log says tokens will be refused: %s", l)
		}
	})
	t.Run("Mercure only: no warnings about the Centrifugo endpoints", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Client.Token.HMACSecretKey = ""
		cfg.HTTPAPI.Key = ""
		srv := testutil.Start(t, cfg)
		srv.LogStartup()
		for _, w := range []string{noKeyWarning, "http_api.key is empty", "client.allowed_origins is empty"} {
			if l := logLine(srv, w); l != "" {
				t.Fatalf("a Mercure-only deployment is warned about %q: %s", w, l)
			}
		}
		expectLog(t, srv, "only the Mercure hub is configured")
	})
}

// TestMercureCORSDetails: a cross-origin page can read WWW-Authenticate of
// a refusal, and a page of the hub's own origin is not logged as a refused
// CORS origin.
func TestMercureCORSDetails(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.Mercure.CORSOrigins = []string{"https://app.example.com"}
	srv := testutil.Start(t, cfg)
	st, _, h := srv.MercurePost(t, http.Header{"Origin": {"https://app.example.com"}, "Authorization": {"Bearer garbage"}}, url.Values{"topic": {"x"}})
	if st != 401 || h.Get("WWW-Authenticate") == "" || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Fatalf("cross-origin refusal: %d %v", st, h)
	}
	self := "http://" + srv.Addr
	st, body, _ := srv.MercurePost(t, http.Header{"Origin": {self}, "Authorization": {"Bearer " + testutil.PublisherToken(t, "*")}}, url.Values{"topic": {"https://example.com/a"}, "data": {"x"}})
	if st != 200 {
		t.Fatalf("same-origin publish: %d %s", st, body)
	}
	if l := logLine(srv, "CORS origin refused"); l != "" {
		t.Fatalf("a same-origin publish is logged as a refused CORS origin: %s", l)
	}
	_, _, _ = srv.MercurePost(t, http.Header{"Origin": {"https://evil.example"}, "Authorization": {"Bearer garbage"}}, url.Values{"topic": {"x"}})
	expectLog(t, srv, "CORS origin refused", "origin=https://evil.example")
}
