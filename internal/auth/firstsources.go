package auth

import (
	"fmt"
	"net/http"
	"strings"
)

// FirstSources is a token-source rule where the first place that holds a
// token wins, by a fixed precedence: the Authorization header, then a query
// parameter, then a cookie (Mercure's rule). Other places that hold a
// different token are reported, not refused.
type FirstSources struct {
	QueryParam string // "authorization" for Mercure
	Cookie     string // cookie name
}

// FromHTTP collects the request's tokens in precedence order. A malformed
// header or a repeated query parameter is a candidate with Malformed set.
func (s *FirstSources) FromHTTP(r *http.Request) []Candidate {
	var out []Candidate
	if vals := r.Header.Values("Authorization"); len(vals) > 0 {
		scheme, tok, ok := strings.Cut(vals[0], " ")
		tok = strings.TrimSpace(tok)
		c := Candidate{Source: SourceHeader, Token: tok}
		switch {
		case len(vals) > 1:
			c.Malformed = &Reason{Code: TokenMalformed, Source: SourceHeader, Detail: "the request has several Authorization headers",
				Hint: "send exactly one Authorization: Bearer <token> header"}
		case !ok || !strings.EqualFold(scheme, "Bearer") || tok == "":
			c.Malformed = &Reason{Code: TokenMalformed, Source: SourceHeader, Detail: "Authorization header is not `Bearer <token>`",
				Hint: "send Authorization: Bearer <JWT> (the token itself, not the key)"}
		}
		out = append(out, c)
	}
	if vals, ok := r.URL.Query()[s.QueryParam]; ok && s.QueryParam != "" {
		c := Candidate{Source: SourceQuery, Token: vals[0], Param: s.QueryParam}
		if len(vals) > 1 {
			c.Malformed = &Reason{Code: TokenMalformed, Source: SourceQuery,
				Detail: fmt.Sprintf("the %s query parameter appears %d times", s.QueryParam, len(vals)), Hint: "give it once"}
		}
		out = append(out, c)
	}
	if s.Cookie != "" {
		if c, err := r.Cookie(s.Cookie); err == nil && c.Value != "" {
			out = append(out, Candidate{Source: SourceCookie, Token: c.Value})
		}
	}
	return out
}

// PickFirst chooses the token of a request under FirstSources: the first
// candidate wins; a malformed winner (or a malformed header anywhere) is
// refused as token_malformed; ignored lists later candidates that hold a
// different token. No candidate gives nil, nil: the caller decides whether
// anonymous access is allowed.
func PickFirst(cands []Candidate) (chosen *Candidate, ignored []Candidate, reason *Reason) {
	for i := range cands {
		if m := cands[i].Malformed; m != nil && (i == 0 || cands[i].Source == SourceHeader) {
			r := *m
			return nil, nil, &r
		}
	}
	if len(cands) == 0 {
		return nil, nil, nil
	}
	first := &cands[0]
	if first.Token == "" {
		return nil, nil, &Reason{Code: TokenMalformed, Source: first.Source, Detail: "the token is empty"}
	}
	for _, c := range cands[1:] {
		if c.Token != first.Token {
			ignored = append(ignored, c)
		}
	}
	return first, ignored, nil
}
