package actioncable_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// anyCableToken mints an AnyCable token: the identifiers in ext, as a string.
func anyCableToken(t *testing.T, secret, identifiers string, ttl time.Duration) string {
	t.Helper()
	claims := map[string]any{"ext": identifiers}
	if ttl != 0 {
		claims["exp"] = time.Now().Add(ttl).Unix()
	}
	tok, err := auth.SignHS256(secret, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAnyCableTokenInEveryPlace(t *testing.T) {
	srv := startCable(t, nil)
	tok := anyCableToken(t, cableSecret, `{"user_id":"42"}`, time.Hour)
	cases := []struct {
		name string
		o    dialOpts
	}{
		{"jid query parameter", dialOpts{protocols: []string{protoJSON}, query: "jid=" + tok}},
		{"X-JID header", dialOpts{protocols: []string{protoJSON}, header: http.Header{"X-Jid": {tok}}}},
		{"anycable-token subprotocol", dialOpts{protocols: []string{protoExt, "anycable-token." + tok}}},
	}
	for _, tc := range cases {
		c := dialCable(t, srv, tc.o)
		if strings.HasPrefix(c.protocol, "anycable-token") || c.protocol == "" {
			t.Fatalf("%s: negotiated %q", tc.name, c.protocol)
		}
		c.expect("welcome")
	}
	// The user is the only identifier's value: the server API sees it.
	waitFor(t, "user 42 on this node", func() bool { return srv.Hub().NumUserClients("42") == 3 })
}

func TestTokenRefusalsSayWhyInTheLogAndInDevelopmentMode(t *testing.T) {
	srv := startCable(t, nil) // testutil's reason_detail is full
	cases := []struct {
		name, token, reason, code string
	}{
		{"expired", anyCableToken(t, cableSecret, `{"user_id":"1"}`, -time.Minute), "token_expired", "token_expired"},
		// The seed case: the app signs with one secret, Herald verifies with another.
		{"other secret", anyCableToken(t, "the-app-rotated-its-secret-0123456789", `{"user_id":"1"}`, time.Hour), "unauthorized", "signature_invalid"},
		{"no ext", mustSign(t, map[string]any{"sub": "1"}), "unauthorized", "claim_invalid"},
		{"ext not a string", mustSign(t, map[string]any{"ext": map[string]any{"user_id": "1"}}), "unauthorized", "claim_invalid"},
		{"not a JWT", "nope", "unauthorized", "token_malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialCable(t, srv, dialOpts{protocols: []string{protoJSON}, query: "jid=" + tc.token})
			code, text, msgs := c.expectClose()
			if len(msgs) != 1 || msgs[0]["type"] != "disconnect" || msgs[0]["reason"] != tc.reason || msgs[0]["reconnect"] != false {
				t.Fatalf("messages %v", msgs)
			}
			herald, _ := msgs[0]["herald"].(map[string]any)
			if herald["code"] != tc.code {
				t.Fatalf("herald field %v, want code %s", msgs[0]["herald"], tc.code)
			}
			if code != 1000 || text != "Auth Failed" {
				t.Fatalf("close %d %q", code, text)
			}
		})
	}
	fp := auth.Fingerprint([]byte(cableSecret))
	waitLog(t, srv, "reason=signature_invalid", "key_fingerprint="+fp, "sha256sum | cut -c1-8", "reason=token_expired")
}

func mustSign(t *testing.T, claims map[string]any) string {
	t.Helper()
	tok, err := auth.SignHS256(cableSecret, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestClientsSeeOnlyTheReasonOutsideDevelopment(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.Client.ReasonDetail = "code" })
	c := dialCable(t, srv, dialOpts{protocols: []string{protoJSON}, query: "jid=" + anyCableToken(t, "other-secret-0123456789", `{"id":1}`, time.Hour)})
	_, _, msgs := c.expectClose()
	if len(msgs) != 1 || msgs[0]["reason"] != "unauthorized" || msgs[0]["herald"] != nil {
		t.Fatalf("messages %v", msgs)
	}
}

func TestConnectionsWithoutToken(t *testing.T) {
	t.Run("refused without anonymous or RPC", func(t *testing.T) {
		srv := startCable(t, nil)
		c := dialCable(t, srv, dialOpts{protocols: []string{protoJSON}})
		_, _, msgs := c.expectClose()
		if len(msgs) != 1 || msgs[0]["reason"] != "unauthorized" {
			t.Fatalf("messages %v", msgs)
		}
		waitLog(t, srv, "reason=token_missing", "actioncable.anonymous")
	})
	t.Run("anonymous when allowed", func(t *testing.T) {
		srv := startCable(t, func(c *config.Config) { c.ActionCable.Anonymous = true })
		dialWelcome(t, srv, protoJSON, "")
	})
	t.Run("enforce refuses even in development mode", func(t *testing.T) {
		srv := startCable(t, func(c *config.Config) { c.Dev = true; c.ActionCable.JWT.Enforce = true })
		c := dialCable(t, srv, dialOpts{protocols: []string{protoJSON}})
		_, _, msgs := c.expectClose()
		if len(msgs) != 1 || msgs[0]["reason"] != "unauthorized" {
			t.Fatalf("messages %v", msgs)
		}
		waitLog(t, srv, "actioncable.jwt.enforce is on")
	})
}

func TestTokensFallBackToTheClientKeysAndRotate(t *testing.T) {
	// No AnyCable secret: client.token's keys verify AnyCable tokens too.
	srv := startCable(t, func(c *config.Config) { c.ActionCable.JWT.Secret = "" })
	dialWelcome(t, srv, protoJSON, "jid="+anyCableToken(t, testutil.Secret, `{"user_id":"7"}`, time.Hour))

	// A rotation: the previous secret keeps working until it is removed.
	rot := startCable(t, func(c *config.Config) {
		c.ActionCable.JWT.Secret = "new-anycable-secret-0123456789abcdef"
		c.ActionCable.JWT.PreviousSecret = cableSecret
	})
	dialWelcome(t, rot, protoJSON, "jid="+anyCableToken(t, cableSecret, `{"user_id":"7"}`, time.Hour))
	dialWelcome(t, rot, protoJSON, "jid="+anyCableToken(t, "new-anycable-secret-0123456789abcdef", `{"user_id":"7"}`, time.Hour))
}

func TestUserIdentifierNamesTheUser(t *testing.T) {
	srv := startCable(t, func(c *config.Config) { c.ActionCable.UserIdentifier = "user" })
	dialWelcome(t, srv, protoJSON, "jid="+anyCableToken(t, cableSecret, `{"user":"gid://app/User/5","tenant":"acme"}`, time.Hour))
	waitFor(t, "the user from the named identifier", func() bool { return srv.Hub().NumUserClients("gid://app/User/5") == 1 })
}

func TestRevokedTokenIsDisconnected(t *testing.T) {
	srv := startCable(t, nil)
	c, _ := dialWelcome(t, srv, protoJSON, "jid="+anyCableToken(t, cableSecret, `{"user_id":"9"}`, time.Hour))
	if status, body := srv.API(t, "invalidate_user_tokens", map[string]any{"user": "9"}); status != 200 || body["error"] != nil {
		t.Fatalf("invalidate: %d %v", status, body)
	}
	_, _, msgs := c.expectClose()
	if len(msgs) != 1 || msgs[0]["reason"] != "unauthorized" || msgs[0]["reconnect"] != false {
		t.Fatalf("messages %v", msgs)
	}
	waitLog(t, srv, "reason=token_revoked")
}
