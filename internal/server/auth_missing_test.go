package server_test

// End-to-end tests of what a connection without a usable token is told
// (docs/auth.md, "Where a token may come from"): what was found and where,
// and hints that follow the configured sources and the kind of client.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/testutil"
)

func TestAuthMissingSaysWhatWasFound(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil) // sources: connect, header, subprotocol, ticket
	tok := testutil.UserToken(t, "found")
	t.Run("access_token in the URL", func(t *testing.T) {
		o := dialWS(t, srv, "access_token="+tok, nil).connect("")
		expectClosed(t, o, 3500, "token_source_disabled", "URL parameter access_token", "URL tokens are off")
		expectLog(t, srv, "reason=token_source_disabled", "token_source=query", "set client.token_query_param: access_token and add query to client.token_sources")
	})
	for _, tc := range []struct{ name, header, want string }{
		{"misspelt", "Baerer " + tok, `scheme is "Baerer", not "Bearer"`},
		{"colon", "Bearer: " + tok, `scheme is "Bearer:"`},
		{"other scheme", "Token " + tok, `scheme is "Token"; Herald reads only "Bearer <token>"`},
		{"bare JWT", tok, `bare token without the "Bearer " scheme`},
		{"no token", "Bearer", "says Bearer but carries no token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := connectWith(t, srv, "", http.Header{"Authorization": {tc.header}})
			expectClosed(t, o, 3500, "invalid token", "token_malformed", tc.want)
		})
	}
	t.Run("other credentials are not a token", func(t *testing.T) {
		// A page behind HTTP Basic authentication: browsers send the header
		// on the upgrade too. It is not Herald's, and no refusal names it.
		o := connectWith(t, srv, "", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}})
		expectClosed(t, o, 3501, "token_missing")
		if o := connectWith(t, srv, tok, http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}); !o.connected() {
			t.Fatalf("a connect token with a Basic header: %v", o)
		}
	})
	t.Run("malformed header with a good token elsewhere", func(t *testing.T) {
		if o := connectWith(t, srv, tok, http.Header{"Authorization": {"Token " + tok}}); !o.connected() {
			t.Fatalf("a good connect token was refused because of a malformed header: %v", o)
		}
	})
	t.Run("ticket endpoint", func(t *testing.T) {
		resp, body := postTicket(t, srv, http.MethodPost, http.Header{"Authorization": {"Token " + tok}})
		if resp.StatusCode != http.StatusUnauthorized || body["error"] != "token_malformed" || !strings.Contains(body["detail"].(string), `"Token"`) {
			t.Fatalf("ticket with Authorization: Token: %d %v", resp.StatusCode, body)
		}
	})
	neverLogged(t, srv, tok)

	t.Run("query on under another name", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Client.TokenSources = []string{"connect", "query"}
		srv := testutil.Start(t, cfg)
		o := dialWS(t, srv, "access_token="+tok, nil).connect("")
		expectClosed(t, o, 3500, "token_source_disabled", "URL parameter access_token; Herald reads ?token= (client.token_query_param)")
	})
}

func TestAuthMissingHintsFollowConfiguration(t *testing.T) {
	t.Parallel()
	t.Run("browser, default sources", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Client.AllowedOrigins = []string{"http://app.example"}
		srv := testutil.Start(t, cfg)
		o := connectWith(t, srv, "", http.Header{"Origin": {"http://app.example"}})
		expectClosed(t, o, 3501, "bad request: token_missing: no token in connect.token, the Authorization header, a herald-token subprotocol or ?ticket=")
		l := expectLog(t, srv, "reason=token_missing", "a browser cannot set headers on a WebSocket",
			"subprotocol herald-token.<JWT>", "?ticket= at POST /auth/ticket")
		if strings.Contains(l, "Authorization: Bearer") {
			t.Fatalf("a browser is told to send a header: %s", l)
		}
	})
	t.Run("connect source off", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Client.TokenSources = []string{"header", "ticket"}
		srv := testutil.Start(t, cfg)
		o := connectWith(t, srv, "", nil)
		expectClosed(t, o, 3501, "token_missing: no token in the Authorization header or ?ticket=")
		l := expectLog(t, srv, "reason=token_missing", "send Authorization: Bearer <JWT>")
		if strings.Contains(l, "connect.token") || strings.Contains(l, "getToken") {
			t.Fatalf("the hint suggests connect.token, which is off: %s", l)
		}
		// A token sent in connect.token anyway is reported as such.
		o = connectWith(t, srv, testutil.UserToken(t, "c-off"), nil)
		expectClosed(t, o, 3500, "token_source_disabled", "client.token_sources does not list connect")
	})
	t.Run("browser without a browser-capable source", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Client.TokenSources = []string{"header"}
		cfg.Client.AllowedOrigins = []string{"http://app.example"}
		srv := testutil.Start(t, cfg)
		o := connectWith(t, srv, "", http.Header{"Origin": {"http://app.example"}})
		expectClosed(t, o, 3501, "token_missing")
		expectLog(t, srv, "reason=token_missing", "add connect, subprotocol or ticket to client.token_sources")
	})
}

// TestAuthCloseReasonsKeepTheCodeFirst: with full reasons (development), a
// close reason holds the code and the detail, and leaves out a hint that
// does not fit rather than cutting it.
func TestAuthCloseReasonsKeepTheCodeFirst(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	for name, token := range map[string]string{
		"missing":   "",
		"malformed": "abc.def",
		"signature": hs(t, "another-secret-of-the-right-length-000", claimsFor("sig")),
		"refresh":   hs(t, "another-secret-of-the-right-length-000", claimsFor("ref")),
	} {
		t.Run(name, func(t *testing.T) {
			var o outcome
			if name == "refresh" { // a refused refresh closes the connection too
				c := mustConnect(t, srv, testutil.UserToken(t, "ref"))
				o = c.call("refresh", map[string]any{"token": token})
			} else {
				o = connectWith(t, srv, token, nil)
			}
			if o.Reply != nil {
				t.Fatalf("accepted: %v", o)
			}
			if len(o.Reason) > 123 {
				t.Fatalf("close reason of %d bytes: %q", len(o.Reason), o.Reason)
			}
			i := strings.Index(o.Reason, ": ")
			if i < 0 || !strings.Contains(o.Reason[i+2:], "_") {
				t.Fatalf("close reason %q does not put the code right after the protocol's text", o.Reason)
			}
			if open := strings.Count(o.Reason, "("); open != strings.Count(o.Reason, ")") {
				t.Fatalf("close reason %q cuts a hint in the middle", o.Reason)
			}
		})
	}
}
