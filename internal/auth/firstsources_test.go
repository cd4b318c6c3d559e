package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestFirstSourcesPrecedence(t *testing.T) {
	s := FirstSources{QueryParam: "authorization", Cookie: "c"}
	req := func(header, query, cookie string) *http.Request {
		r := httptest.NewRequest("GET", "/hub?"+query, nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: "c", Value: cookie})
		}
		return r
	}
	rows := []struct {
		name    string
		r       *http.Request
		token   string
		src     Source
		ignored int
		code    Code
	}{
		{"header first", req("Bearer h", "authorization=q", "c1"), "h", SourceHeader, 2, ""},
		{"query before cookie", req("", "authorization=q", "q"), "q", SourceQuery, 0, ""},
		{"cookie alone", req("", "", "c1"), "c1", SourceCookie, 0, ""},
		{"nothing", req("", "", ""), "", "", 0, ""},
		{"malformed header", req("Token x", "authorization=q", ""), "", "", 0, TokenMalformed},
		{"repeated query", req("", "authorization=a&authorization=b", ""), "", "", 0, TokenMalformed},
		{"repeated query after a header", req("Bearer h", "authorization=a&authorization=b", ""), "h", SourceHeader, 1, ""},
		{"empty query token", req("", "authorization=", ""), "", "", 0, TokenMalformed},
	}
	for _, r := range rows {
		c, ignored, reason := PickFirst(s.FromHTTP(r.r))
		switch {
		case r.code != "":
			if reason == nil || reason.Code != r.code {
				t.Errorf("%s: reason %v, want %s", r.name, reason, r.code)
			}
		case reason != nil:
			t.Errorf("%s: refused %v", r.name, reason)
		case r.token == "" && c != nil:
			t.Errorf("%s: chose %+v", r.name, c)
		case r.token != "" && (c == nil || c.Token != r.token || c.Source != r.src || len(ignored) != r.ignored):
			t.Errorf("%s: chose %+v, ignored %d", r.name, c, len(ignored))
		}
	}
}
