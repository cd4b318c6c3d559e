package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSourcesFromHTTP(t *testing.T) {
	tk := NewTickets(time.Minute, 10)
	ticket, _ := tk.Issue("T-ticket")
	s := &Sources{Enabled: []Source{SourceConnectCommand, SourceHeader, SourceSubprotocol, SourceTicket}, Cookie: "herald_token", QueryParam: "token", Tickets: tk}
	r := httptest.NewRequest("GET", "/connection/websocket?token=T-query&ticket="+ticket, nil)
	r.Header.Set("Authorization", "bearer T-header")
	r.Header.Set("Sec-WebSocket-Protocol", "centrifuge-json, herald-token.T-sub")
	r.AddCookie(&http.Cookie{Name: "herald_token", Value: "T-cookie"})
	got := s.WithConnect(s.FromHTTP(r, ""), "T-connect")
	var order []string
	for _, c := range got {
		mark := ""
		if c.Disabled {
			mark = "!"
		}
		order = append(order, mark+string(c.Source)+"="+c.Token)
	}
	want := "connect.token=T-connect header=T-header subprotocol=T-sub ticket=T-ticket !cookie=T-cookie !query=T-query"
	if strings.Join(order, " ") != want {
		t.Fatalf("candidates\n got %s\nwant %s", strings.Join(order, " "), want)
	}
	// A ticket works once.
	r2 := httptest.NewRequest("GET", "/?ticket="+ticket, nil)
	c := s.FromHTTP(r2, "")
	if len(c) != 1 || c[0].Ticket == nil || c[0].Ticket.Code != TicketInvalid {
		t.Fatalf("second use of a ticket: %+v", c)
	}
}

func TestPick(t *testing.T) {
	v := newVerifier(t, Policy{})
	cases := []struct {
		name  string
		cands []Candidate
		code  Code
	}{
		{"none", nil, TokenMissing},
		{"disabled only", []Candidate{{Source: SourceQuery, Token: "x", Disabled: true}}, TokenSourceDisabled},
		{"two different", []Candidate{{Source: SourceConnectCommand, Token: "a"}, {Source: SourceHeader, Token: "b"}}, TokenAmbiguous},
		{"bad ticket", []Candidate{{Source: SourceTicket, Ticket: &Reason{Code: TicketInvalid}}}, TicketInvalid},
	}
	for _, c := range cases {
		_, r := v.pick(&Request{Tokens: c.cands})
		if r == nil || r.Code != c.code {
			t.Errorf("%s: %v, want %s", c.name, r, c.code)
		}
	}
	same := []Candidate{{Source: SourceConnectCommand, Token: "a"}, {Source: SourceHeader, Token: "a"}, {Source: SourceQuery, Token: "z", Disabled: true}}
	if c, r := v.pick(&Request{Tokens: same}); r != nil || c.Source != SourceConnectCommand {
		t.Fatalf("same token twice: %v %v", c, r)
	}
}

func TestTicketsExpireAndAreBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	tk := NewTickets(10*time.Second, 2)
	tk.now = func() time.Time { return now }
	a, _ := tk.Issue("a")
	tk.Issue("b")
	if _, err := tk.Issue("c"); err == nil {
		t.Fatal("the store must be bounded")
	}
	now = now.Add(11 * time.Second)
	if _, ok := tk.Redeem(a); ok {
		t.Fatal("an expired ticket was redeemed")
	}
	if _, err := tk.Issue("d"); err != nil {
		t.Fatalf("expired tickets must make room: %v", err)
	}
}

func TestRevocations(t *testing.T) {
	now := time.Unix(10000, 0)
	r := NewRevocations(func() time.Time { return now })
	changes := 0
	r.OnChange(func() { changes++ })
	r.RevokeToken("j1", now.Add(time.Hour))
	r.RevokeUser("u", now, now.Add(time.Hour))
	if c := r.Check("x", "j1", time.Time{}); c == nil || c.Code != TokenRevoked {
		t.Fatalf("jti not revoked: %v", c)
	}
	if c := r.Check("u", "", now.Add(-time.Second)); c == nil {
		t.Fatal("token issued before the user revocation accepted")
	}
	if c := r.Check("u", "", time.Time{}); c == nil {
		t.Fatal("token without iat accepted after a user revocation")
	}
	if c := r.Check("u", "", now.Add(time.Second)); c != nil {
		t.Fatalf("token issued after the revocation refused: %v", c)
	}
	if changes != 2 {
		t.Fatalf("OnChange ran %d times", changes)
	}
	now = now.Add(2 * time.Hour)
	if c := r.Check("x", "j1", time.Time{}); c != nil {
		t.Fatal("revocation outlived its until")
	}
	r.RevokeToken("j2", now.Add(time.Hour)) // sweeps the old entries
	if r.Len() != 1 {
		t.Fatalf("%d entries after sweep, want 1", r.Len())
	}
}

func TestVerifiedCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newVerifiedCache(10)
	k := &Key{Fingerprint: "k"}
	c.put("t1", claimSet{"exp": []byte("1005")}, k, now)
	if _, _, ok := c.get("t1", now.Add(4*time.Second)); !ok {
		t.Fatal("entry missing")
	}
	if _, _, ok := c.get("t1", now.Add(6*time.Second)); ok {
		t.Fatal("entry outlived the token's exp")
	}
	for i := 0; i < 30; i++ {
		c.put(strings.Repeat("x", i+1), claimSet{}, k, now)
	}
	if c.len() > 10 {
		t.Fatalf("cache grew to %d, bound 10", c.len())
	}
}

func TestRefusalLogKeepsNewestFirst(t *testing.T) {
	l := NewRefusalLog(3)
	for i, code := range []Code{TokenMissing, TokenExpired, SignatureInvalid, TokenRevoked} {
		l.Add(&Reason{Code: code, Detail: string(rune('a' + i))}, "websocket", "127.0.0.1:1", "")
	}
	got := l.Recent()
	if len(got) != 3 || got[0].Code != TokenRevoked || got[2].Code != TokenExpired {
		t.Fatalf("recent = %+v", got)
	}
}

func TestExplainReportsEveryCheck(t *testing.T) {
	v := newVerifier(t, Policy{Rules: Rules{Audience: []string{"app"}}})
	tok := sign(t, "wrong-secret", map[string]any{"sub": "u", "exp": time.Now().Add(-time.Hour).Unix(), "aud": "other"})
	checks, ok := v.Explain(ExplainRequest{Token: tok})
	if ok {
		t.Fatal("a bad token explained as accepted")
	}
	failed := map[string]Code{}
	for _, c := range checks {
		if !c.OK && !c.Skipped {
			failed[c.Name] = c.Code
		}
	}
	if failed["signature"] != SignatureInvalid || failed["exp"] != TokenExpired || failed["aud"] != AudienceMismatch {
		t.Fatalf("failed checks %v: want signature, exp and aud reported together", failed)
	}
	good := sign(t, secret, map[string]any{"sub": "u", "aud": "app"})
	if _, ok := v.Explain(ExplainRequest{Token: good}); !ok {
		t.Fatal("a good token explained as refused")
	}
}

// With anonymous connection tokens disallowed, the explanation of a token
// without a user names the failing check, agreeing with the verdict.
func TestExplainAnonymousTokenRefused(t *testing.T) {
	v := newVerifier(t, Policy{DisallowAnonymousTokens: true})
	tok := sign(t, secret, map[string]any{"exp": time.Now().Add(time.Hour).Unix()})
	checks, ok := v.Explain(ExplainRequest{Token: tok})
	if ok {
		t.Fatal("an anonymous token explained as accepted while anonymous tokens are disallowed")
	}
	var user *Check
	for i := range checks {
		if checks[i].Name == "user" {
			user = &checks[i]
		}
	}
	if user == nil || user.OK || user.Code != AnonymousTokenRefused {
		t.Fatalf("user check %+v, want a failure with %s", user, AnonymousTokenRefused)
	}
	if _, r := v.Connect(&Request{Tokens: []Candidate{{Source: "connect.token", Token: tok}}}); r == nil || r.Code != AnonymousTokenRefused {
		t.Fatalf("verify: %v, want %s", r, AnonymousTokenRefused)
	}
}
