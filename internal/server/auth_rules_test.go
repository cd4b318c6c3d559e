package server_test

// End-to-end tests of the JWT header and claim rules (docs/auth.md, "Header
// and claim rules"): crit, typ, exp rules, out-of-range dates and duplicate
// members, as a WebSocket client and a Mercure publisher see them.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// rawHS signs header and claims, JSON texts taken as they are, with HS256.
func rawHS(secret, header, claims string) string {
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestAuthRulesHeaderAndDates(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	exp := time.Now().Add(time.Hour).Unix()
	h := `{"alg":"HS256","typ":"JWT"}`
	for name, tc := range map[string]struct {
		token string
		parts []string
	}{
		"crit":                  {rawHS(testutil.Secret, `{"alg":"HS256","crit":["b64"],"b64":false}`, `{"sub":"c"}`), []string{"crit_not_understood", `crit lists "b64"`}},
		"nbf 1e300":             {rawHS(testutil.Secret, h, `{"sub":"n","nbf":1e300}`), []string{"claim_invalid", "nbf 1e300 is out of range"}},
		"exp -1e300":            {rawHS(testutil.Secret, h, `{"sub":"e","exp":-1e300}`), []string{"claim_invalid", "exp -1e300 is out of range"}},
		"duplicate sub":         {rawHS(testutil.Secret, h, `{"sub":"admin","sub":"x"}`), []string{"token_malformed", `duplicate member "sub"`}},
		"duplicate header alg":  {rawHS(testutil.Secret, `{"alg":"HS256","alg":"none"}`, `{"sub":"x"}`), []string{"token_malformed", `duplicate member "alg"`}},
		"claim not UTF-8":       {rawHS(testutil.Secret, h, "{\"sub\":\"x\xfe\"}"), []string{"claim_invalid", "claim sub is not valid UTF-8"}},
		"the secret, not a JWT": {testutil.Secret, []string{"token_malformed", "it is the HMAC secret of key"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := connectWith(t, srv, tc.token, nil)
			expectClosed(t, o, 3500, append([]string{"invalid token"}, tc.parts...)...)
		})
	}
	if o := connectWith(t, srv, rawHS(testutil.Secret, h, `{"sub":"far","exp":253402300799}`), nil); !o.connected() {
		t.Fatalf("exp in year 9999 refused: %v", o)
	}
	if o := connectWith(t, srv, rawHS(testutil.Secret, h, `{"sub":"ok","exp":`+strconv.FormatInt(exp, 10)+`}`), nil); !o.connected() {
		t.Fatalf("a plain token refused: %v", o)
	}
	neverLogged(t, srv, testutil.Secret)
}

func TestAuthRulesTypAndExp(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.Client.Token.Typ = []string{"at+jwt"}
	cfg.Client.Token.RequireExp = true
	cfg.Mercure.Publisher.RequireExp = true
	cfg.Mercure.Subscriber.MaxLifetimeWithoutExp = config.Duration(time.Hour)
	srv := testutil.Start(t, cfg)
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)

	t.Run("typ", func(t *testing.T) {
		o := connectWith(t, srv, rawHS(testutil.Secret, `{"alg":"HS256","typ":"JWT"}`, `{"sub":"t","exp":`+exp+`}`), nil)
		expectClosed(t, o, 3500, "typ_not_allowed", `typ "JWT" is not accepted; accepted: at+jwt`)
		o = connectWith(t, srv, rawHS(testutil.Secret, `{"alg":"HS256"}`, `{"sub":"t","exp":`+exp+`}`), nil)
		expectClosed(t, o, 3500, "typ_not_allowed", "no typ header")
		if o := connectWith(t, srv, rawHS(testutil.Secret, `{"alg":"HS256","typ":"at+JWT"}`, `{"sub":"t","exp":`+exp+`}`), nil); !o.connected() {
			t.Fatalf("typ at+JWT refused: %v", o)
		}
	})
	t.Run("require_exp", func(t *testing.T) {
		o := connectWith(t, srv, rawHS(testutil.Secret, `{"alg":"HS256","typ":"at+jwt"}`, `{"sub":"noexp"}`), nil)
		expectClosed(t, o, 3500, "exp_required", "client.token.require_exp")
		expectLog(t, srv, "reason=exp_required")
	})
	t.Run("mercure publisher require_exp", func(t *testing.T) {
		tok := testutil.PublisherToken(t, "*")
		status, body, hdr := srv.MercurePost(t, mbearer(tok), url.Values{"topic": {"https://example.com/a"}, "data": {"x"}})
		if status != http.StatusUnauthorized || !strings.Contains(body, "exp_required") || !strings.Contains(hdr.Get("WWW-Authenticate"), "exp_required") {
			t.Fatalf("publish without exp: %d %q %v", status, body, hdr)
		}
	})
	t.Run("mercure subscriber max_lifetime_without_exp", func(t *testing.T) {
		old := testutil.SignMercure(t, testutil.MercureSubscriberSecret, map[string]any{
			"iat": time.Now().Add(-2 * time.Hour).Unix(), "mercure": map[string]any{"subscribe": []string{"*"}}})
		s := srv.Subscribe(t, topics("https://example.com/a"), mbearer(old))
		defer s.Close()
		if body := s.Body(); s.Resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "token_expired") || !strings.Contains(body, "mercure.subscriber.max_lifetime_without_exp") {
			t.Fatalf("subscriber token issued 2h ago without exp: %d %s", s.Resp.StatusCode, body)
		}
		fresh := testutil.SignMercure(t, testutil.MercureSubscriberSecret, map[string]any{
			"iat": time.Now().Unix(), "mercure": map[string]any{"subscribe": []string{"*"}}})
		subscribeOK(t, srv, topics("https://example.com/a"), mbearer(fresh)).Close()
	})
}
