package server_test

// End-to-end tests of where a connection may present its token
// (docs/auth.md, "Where a token may come from"), over real sockets.
// This file also holds the helpers the other auth_*_test.go files share.

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// wait bounds every single wait for the server.
const wait = 5 * time.Second

// --- a raw protocol client on a real WebSocket, with any URL, header and subprotocols ---

type wsConn struct {
	t     *testing.T
	conn  *websocket.Conn
	resp  *http.Response
	lines []string
	id    uint32
}

// dialWS opens a WebSocket to srv; query is the raw URL query (without '?').
func dialWS(t *testing.T, srv *testutil.Server, query string, header http.Header, subprotocols ...string) *wsConn {
	t.Helper()
	u := srv.WSURL()
	if query != "" {
		u += "?" + query
	}
	d := websocket.Dialer{HandshakeTimeout: wait, Subprotocols: subprotocols}
	conn, resp, err := d.Dial(u, header)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("dial %s: %v %s", srv.WSURL(), err, body)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &wsConn{t: t, conn: conn, resp: resp}
}

// outcome is what the server answered to one command: a reply, or a close.
type outcome struct {
	Reply  map[string]any // nil when the server closed the connection
	Code   int            // close code when closed
	Reason string         // close reason when closed
}

func (o outcome) connected() bool { return o.Reply != nil && o.Reply["connect"] != nil }

func (o outcome) errCode() int { return testutil.ErrorCode(o.Reply) }

func (o outcome) errMessage() string { return testutil.ErrorMessage(o.Reply) }

func (o outcome) String() string {
	if o.Reply == nil {
		return fmt.Sprintf("close %d %q", o.Code, o.Reason)
	}
	b, _ := json.Marshal(o.Reply)
	return "reply " + string(b)
}

// next returns the next JSON line, or the close frame.
func (c *wsConn) next(deadline time.Time) (map[string]any, *testutil.ErrClosed) {
	c.t.Helper()
	if len(c.lines) == 0 {
		_ = c.conn.SetReadDeadline(deadline)
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return nil, &testutil.ErrClosed{Code: ce.Code, Reason: ce.Text}
			}
			c.t.Fatalf("read: %v", err)
		}
		c.lines = strings.Split(string(data), "\n")
	}
	l := c.lines[0]
	c.lines = c.lines[1:]
	var m map[string]any
	if err := json.Unmarshal([]byte(l), &m); err != nil {
		c.t.Fatalf("server sent invalid JSON %q: %v", l, err)
	}
	return m, nil
}

// call sends a command and returns its reply, or the close that came instead.
func (c *wsConn) call(method string, params any) outcome {
	c.t.Helper()
	c.id++
	id := c.id
	p, _ := json.Marshal(params)
	_ = c.conn.SetWriteDeadline(time.Now().Add(wait))
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"id":%d,%q:%s}`, id, method, p))); err != nil {
		c.t.Fatalf("send %s: %v", method, err)
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		m, closed := c.next(deadline)
		if closed != nil {
			return outcome{Code: closed.Code, Reason: closed.Reason}
		}
		if got, ok := m["id"].(float64); ok && uint32(got) == id {
			return outcome{Reply: m}
		}
	}
	c.t.Fatalf("no answer to %s within %s", method, wait)
	return outcome{}
}

func (c *wsConn) connect(token string) outcome {
	c.t.Helper()
	return c.call("connect", map[string]any{"token": token})
}

// expectClose reads (skipping pings and pushes) until the server closes.
func (c *wsConn) expectClose(timeout time.Duration) (int, string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, closed := c.next(deadline)
		if closed != nil {
			return closed.Code, closed.Reason
		}
	}
	c.t.Fatalf("connection not closed within %s", timeout)
	return 0, ""
}

// connectWith dials srv with header and sends connect with token.
func connectWith(t *testing.T, srv *testutil.Server, token string, header http.Header) outcome {
	t.Helper()
	return dialWS(t, srv, "", header).connect(token)
}

// mustConnect dials, connects with token and fails unless accepted.
func mustConnect(t *testing.T, srv *testutil.Server, token string) *wsConn {
	t.Helper()
	c := dialWS(t, srv, "", nil)
	if o := c.connect(token); !o.connected() {
		t.Fatalf("connect refused: %v", o)
	}
	return c
}

// expectClosed asserts that o is a close with code whose reason contains every want.
func expectClosed(t *testing.T, o outcome, code int, want ...string) {
	t.Helper()
	if o.Reply != nil || o.Code != code {
		t.Fatalf("got %v, want close %d with %q", o, code, want)
	}
	for _, w := range want {
		if !strings.Contains(o.Reason, w) {
			t.Fatalf("close reason %q lacks %q", o.Reason, w)
		}
	}
}

// expectError asserts that o is an error reply with code whose message contains every want.
func expectError(t *testing.T, o outcome, code int, want ...string) {
	t.Helper()
	if o.Reply == nil || o.errCode() != code {
		t.Fatalf("got %v, want error %d with %q", o, code, want)
	}
	for _, w := range want {
		if !strings.Contains(o.errMessage(), w) {
			t.Fatalf("error message %q lacks %q", o.errMessage(), w)
		}
	}
}

// --- tokens and keys ---

type testKeys struct {
	rsaA, rsaB, rsaAttacker *rsa.PrivateKey
	ec                      *ecdsa.PrivateKey
	ed                      ed25519.PrivateKey
}

var keysOnce = sync.OnceValue(func() *testKeys {
	gen := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &testKeys{rsaA: gen(), rsaB: gen(), rsaAttacker: gen(), ec: ec, ed: ed}
})

// keys returns the test key pairs, generated once per test binary.
func keys() *testKeys { return keysOnce() }

// claimsFor returns connection claims for user, valid for an hour.
func claimsFor(user string) map[string]any {
	return map[string]any{"sub": user, "exp": time.Now().Add(time.Hour).Unix()}
}

// sign mints a token with method and key; header entries are added to the JOSE header.
func sign(t *testing.T, method jwt.SigningMethod, key any, claims map[string]any, header map[string]any) string {
	t.Helper()
	tk := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	for k, v := range header {
		tk.Header[k] = v
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// hs mints an HS256 token with secret.
func hs(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, []byte(secret), claims, nil)
}

// unsignedToken builds an alg none token by hand.
func unsignedToken(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return b64(b)
	}
	return enc(map[string]any{"alg": "none", "typ": "JWT"}) + "." + enc(claims) + "."
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func testDuration(d time.Duration) config.Duration { return config.Duration(d) }

// publicPEM encodes a public key as a PEM PUBLIC KEY block.
func publicPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// fingerprint is the documented fingerprint of a public key: the first 8 hex
// digits of the SHA-256 of its DER SubjectPublicKeyInfo.
func fingerprint(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return secretFingerprint(string(der))
}

// secretFingerprint is the documented fingerprint of an HMAC secret.
func secretFingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])[:8]
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// replaceFile replaces path atomically (write then rename), as deploy tools do.
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logLine returns the first log line that contains every part, or "".
func logLine(srv *testutil.Server, parts ...string) string {
	for _, l := range strings.Split(srv.Logs.String(), "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if ok {
			return l
		}
	}
	return ""
}

// expectLog fails unless a log line contains every part.
func expectLog(t *testing.T, srv *testutil.Server, parts ...string) string {
	t.Helper()
	l := logLine(srv, parts...)
	if l == "" {
		t.Fatalf("no log line with %q in:\n%s", parts, srv.Logs.String())
	}
	return l
}

// neverLogged fails when any secret string appears in the server log.
func neverLogged(t *testing.T, srv *testutil.Server, secrets ...string) {
	t.Helper()
	logs := srv.Logs.String()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			t.Errorf("the log contains a secret (%.20s...)", s)
		}
		// The signature alone identifies a token too.
		if parts := strings.Split(s, "."); len(parts) == 3 && len(parts[2]) > 16 && strings.Contains(logs, parts[2]) {
			t.Errorf("the log contains a token signature (%.20s...)", parts[2])
		}
	}
}

// connectedLine returns the "client connected" log line of user.
func connectedLine(t *testing.T, srv *testutil.Server, user string) string {
	t.Helper()
	var line string
	eventually(wait, func() bool {
		line = logLine(srv, `msg="client connected"`, "user="+user+" ")
		return line != ""
	})
	if line == "" {
		t.Fatalf("no client connected line for user %s in:\n%s", user, srv.Logs.String())
	}
	return line
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// --- sources ---

func TestAuthSourceHeader(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		t.Run(scheme, func(t *testing.T) {
			user := "hdr-" + strings.ToLower(scheme) + "-" + scheme[:2]
			tok := testutil.UserToken(t, user)
			o := connectWith(t, srv, "", http.Header{"Authorization": {scheme + " " + tok}})
			if !o.connected() {
				t.Fatalf("Authorization: %s with an empty connect token: %v", scheme, o)
			}
			if l := connectedLine(t, srv, user); !strings.Contains(l, "token_source=header") {
				t.Fatalf("client connected line lacks token_source=header: %s", l)
			}
			neverLogged(t, srv, tok)
		})
	}
}

func TestAuthSourceSubprotocol(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	tok := testutil.UserToken(t, "sp-user")
	// Offered as a browser would: new WebSocket(url, ['centrifuge-json', 'herald-token.' + jwt]).
	for name, offer := range map[string][]string{
		"json first":  {"centrifuge-json", "herald-token." + tok},
		"token first": {"herald-token." + tok, "centrifuge-json"},
	} {
		t.Run(name, func(t *testing.T) {
			c := dialWS(t, srv, "", nil, offer...)
			if got := c.conn.Subprotocol(); got != "centrifuge-json" {
				t.Fatalf("selected subprotocol %q, want centrifuge-json", got)
			}
			if got := c.resp.Header.Values("Sec-WebSocket-Protocol"); len(got) != 1 || got[0] != "centrifuge-json" {
				t.Fatalf("response Sec-WebSocket-Protocol %q, want exactly centrifuge-json", got)
			}
			for k, vs := range c.resp.Header {
				for _, v := range vs {
					if strings.Contains(v, tok) || strings.Contains(v, "herald-token") {
						t.Fatalf("the token is echoed in response header %s: %.40s", k, v)
					}
				}
			}
			if o := c.connect(""); !o.connected() {
				t.Fatalf("subprotocol token with an empty connect token: %v", o)
			}
		})
	}
	if l := connectedLine(t, srv, "sp-user"); !strings.Contains(l, "token_source=subprotocol") {
		t.Fatalf("client connected line lacks token_source=subprotocol: %s", l)
	}
	neverLogged(t, srv, tok)
}

func TestAuthSourceCookieAndQuery(t *testing.T) {
	t.Parallel()
	t.Run("default names", func(t *testing.T) {
		t.Parallel()
		cfg := testutil.Config()
		cfg.Client.TokenSources = []string{"connect", "header", "subprotocol", "cookie", "query", "ticket"}
		srv := testutil.Start(t, cfg)

		cookieTok := testutil.UserToken(t, "cookie-user")
		c := dialWS(t, srv, "", http.Header{"Cookie": {"other=1; herald_token=" + cookieTok}})
		if o := c.connect(""); !o.connected() {
			t.Fatalf("cookie herald_token: %v", o)
		}
		if l := connectedLine(t, srv, "cookie-user"); !strings.Contains(l, "token_source=cookie") {
			t.Fatalf("client connected line lacks token_source=cookie: %s", l)
		}

		queryTok := testutil.UserToken(t, "query-user")
		q := dialWS(t, srv, "token="+url.QueryEscape(queryTok), nil)
		if o := q.connect(""); !o.connected() {
			t.Fatalf("query token=: %v", o)
		}
		if l := connectedLine(t, srv, "query-user"); !strings.Contains(l, "token_source=query") {
			t.Fatalf("client connected line lacks token_source=query: %s", l)
		}
		neverLogged(t, srv, cookieTok, queryTok)
	})
	t.Run("configured names", func(t *testing.T) {
		t.Parallel()
		cfg := testutil.Config()
		cfg.Client.TokenSources = []string{"connect", "cookie", "query"}
		cfg.Client.TokenCookie = "sess"
		cfg.Client.TokenQueryParam = "access_token"
		srv := testutil.Start(t, cfg)

		tok := testutil.UserToken(t, "named-cookie")
		if o := connectWith(t, srv, "", http.Header{"Cookie": {"sess=" + tok}}); !o.connected() {
			t.Fatalf("cookie sess: %v", o)
		}
		tok2 := testutil.UserToken(t, "named-query")
		if o := dialWS(t, srv, "access_token="+tok2, nil).connect(""); !o.connected() {
			t.Fatalf("query access_token: %v", o)
		}
		// The default names carry nothing now: no token was found anywhere.
		tok3 := testutil.UserToken(t, "default-cookie")
		o := connectWith(t, srv, "", http.Header{"Cookie": {"herald_token=" + tok3}})
		expectClosed(t, o, 3501, "token_missing")
		neverLogged(t, srv, tok, tok2, tok3)
	})
}

func TestAuthSourceDisabled(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil) // default sources: connect, header, subprotocol, ticket
	tok := testutil.UserToken(t, "q-off")
	o := dialWS(t, srv, "token="+tok, nil).connect("")
	expectClosed(t, o, 3500, "invalid token", "token_source_disabled", "query")
	expectLog(t, srv, "reason=token_source_disabled", "token_source=query")

	cookie := testutil.UserToken(t, "c-off")
	o = connectWith(t, srv, "", http.Header{"Cookie": {"herald_token=" + cookie}})
	expectClosed(t, o, 3500, "token_source_disabled", "cookie")

	t.Run("header off", func(t *testing.T) {
		cfg := testutil.Config()
		cfg.Client.TokenSources = []string{"connect"}
		srv := testutil.Start(t, cfg)
		o := connectWith(t, srv, "", bearer(testutil.UserToken(t, "h-off")))
		expectClosed(t, o, 3500, "token_source_disabled", "Authorization header")
		// A token in an enabled place wins over one in a disabled place? No:
		// only enabled places are used, so the connect token is accepted.
		tok := testutil.UserToken(t, "h-off-2")
		if o := connectWith(t, srv, tok, bearer(testutil.UserToken(t, "h-off-3"))); !o.connected() {
			t.Fatalf("connect token with a token in a disabled header: %v", o)
		}
	})
	neverLogged(t, srv, tok, cookie)
}

func TestAuthSourceAmbiguous(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	a := testutil.UserToken(t, "amb-a")
	b := testutil.UserToken(t, "amb-b")
	t.Run("different tokens", func(t *testing.T) {
		o := connectWith(t, srv, a, bearer(b))
		expectClosed(t, o, 3500, "invalid token", "token_ambiguous")
		expectLog(t, srv, "reason=token_ambiguous")
		if logLine(srv, `msg="client connected"`, "user=amb-") != "" {
			t.Fatalf("an ambiguous connection was accepted:\n%s", srv.Logs.String())
		}
	})
	t.Run("different tokens header and subprotocol", func(t *testing.T) {
		c := dialWS(t, srv, "", bearer(a), "centrifuge-json", "herald-token."+b)
		expectClosed(t, c.connect(""), 3500, "token_ambiguous")
	})
	t.Run("same token twice", func(t *testing.T) {
		tok := testutil.UserToken(t, "amb-same")
		if o := connectWith(t, srv, tok, bearer(tok)); !o.connected() {
			t.Fatalf("the same token in connect and header: %v", o)
		}
		c := dialWS(t, srv, "", bearer(tok), "centrifuge-json", "herald-token."+tok)
		if o := c.connect(tok); !o.connected() {
			t.Fatalf("the same token in three places: %v", o)
		}
	})
	neverLogged(t, srv, a, b)
}

// --- tickets ---

func postTicket(t *testing.T, srv *testutil.Server, method string, header http.Header) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+srv.Addr+"/auth/ticket", nil)
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Timeout: wait}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s /auth/ticket: %v", method, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%s /auth/ticket: status %d, body %q is not JSON", method, resp.StatusCode, raw)
	}
	return resp, body
}

func TestAuthTicket(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, nil)
	tok := testutil.UserToken(t, "ticket-user")
	var tickets []string

	t.Run("works once", func(t *testing.T) {
		resp, body := postTicket(t, srv, http.MethodPost, bearer(tok))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /auth/ticket: %d %v", resp.StatusCode, body)
		}
		ticket, _ := body["ticket"].(string)
		if ticket == "" || body["expires_in"] != float64(10) {
			t.Fatalf("ticket body %v, want a ticket and expires_in 10 (the default ticket_ttl)", body)
		}
		if ticket == tok || strings.Contains(ticket, ".") {
			t.Fatalf("the ticket must not be the token: %q", ticket)
		}
		tickets = append(tickets, ticket)

		c := dialWS(t, srv, "ticket="+ticket, nil)
		if o := c.connect(""); !o.connected() {
			t.Fatalf("connect with ?ticket=: %v", o)
		}
		if l := connectedLine(t, srv, "ticket-user"); !strings.Contains(l, "token_source=ticket") {
			t.Fatalf("client connected line lacks token_source=ticket: %s", l)
		}
		o := dialWS(t, srv, "ticket="+ticket, nil).connect("")
		expectClosed(t, o, 3500, "invalid token", "ticket_invalid")
	})
	t.Run("unknown", func(t *testing.T) {
		o := dialWS(t, srv, "ticket=0123456789abcdef", nil).connect("")
		expectClosed(t, o, 3500, "ticket_invalid")
	})
	t.Run("lowercase bearer", func(t *testing.T) {
		resp, body := postTicket(t, srv, http.MethodPost, http.Header{"Authorization": {"bearer " + tok}})
		if resp.StatusCode != http.StatusOK || body["ticket"] == nil {
			t.Fatalf("POST with bearer: %d %v", resp.StatusCode, body)
		}
		tickets = append(tickets, body["ticket"].(string))
	})
	t.Run("no token", func(t *testing.T) {
		resp, body := postTicket(t, srv, http.MethodPost, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("POST without a token: %d %v, want 401", resp.StatusCode, body)
		}
		if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
			t.Fatalf("WWW-Authenticate %q, want a Bearer challenge", h)
		}
		if body["error"] != "token_missing" {
			t.Fatalf("body %v, want error token_missing", body)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		bad := hs(t, "another-secret-entirely-0123456789", claimsFor("ticket-user"))
		resp, body := postTicket(t, srv, http.MethodPost, bearer(bad))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("POST with a bad token: %d %v, want 401", resp.StatusCode, body)
		}
		if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") || !strings.Contains(h, `error="invalid_token"`) {
			t.Fatalf("WWW-Authenticate %q, want Bearer error=\"invalid_token\"", h)
		}
		if body["error"] != "signature_invalid" {
			t.Fatalf("body %v, want error signature_invalid", body)
		}
		expired := testutil.Token(t, map[string]any{"sub": "x", "exp": time.Now().Add(-time.Hour).Unix()})
		resp, body = postTicket(t, srv, http.MethodPost, bearer(expired))
		if resp.StatusCode != http.StatusUnauthorized || body["error"] != "token_expired" {
			t.Fatalf("POST with an expired token: %d %v, want 401 token_expired", resp.StatusCode, body)
		}
		neverLogged(t, srv, bad, expired)
	})
	t.Run("GET", func(t *testing.T) {
		resp, body := postTicket(t, srv, http.MethodGet, bearer(tok))
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET /auth/ticket: %d %v, want 405", resp.StatusCode, body)
		}
	})
	neverLogged(t, srv, append(tickets, tok)...)
}

func TestAuthTicketExpires(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.Client.TicketTTL = testDuration(time.Second)
	srv := testutil.Start(t, cfg)
	tok := testutil.UserToken(t, "ticket-exp")
	resp, body := postTicket(t, srv, http.MethodPost, bearer(tok))
	if resp.StatusCode != http.StatusOK || body["expires_in"] != float64(1) {
		t.Fatalf("POST /auth/ticket: %d %v, want expires_in 1", resp.StatusCode, body)
	}
	ticket := body["ticket"].(string)
	time.Sleep(1500 * time.Millisecond)
	o := dialWS(t, srv, "ticket="+ticket, nil).connect("")
	expectClosed(t, o, 3500, "ticket_invalid")
	neverLogged(t, srv, tok, ticket)
}

func TestAuthTicketSourceDisabled(t *testing.T) {
	t.Parallel()
	cfg := testutil.Config()
	cfg.Client.TokenSources = []string{"connect", "header"}
	srv := testutil.Start(t, cfg)
	tok := testutil.UserToken(t, "no-tickets")
	resp, body := postTicket(t, srv, http.MethodPost, bearer(tok))
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /auth/ticket with tickets off: %d %v, want 404", resp.StatusCode, body)
	}
	o := dialWS(t, srv, "ticket=0123456789abcdef", nil).connect("")
	expectClosed(t, o, 3500, "token_source_disabled")
}
