package auth

import (
	"fmt"
	"strings"

	"github.com/heraldhub/herald/internal/suggest"
)

// This file explains a connection that presents no usable token: an
// Authorization header that is not "Bearer <token>", a token in a URL
// parameter Herald does not read, a token only in a switched-off place, or
// nothing at all. Each explanation names what was found and where, and its
// hint follows the configuration (the enabled sources) and the client (a
// browser, which sends Origin, cannot set headers on a WebSocket).

// ParseAuthorization reads an Authorization header value. It returns the
// token of "Bearer <token>" (the scheme in any case), or the reason the
// header is something else; both are empty when the header is.
func ParseAuthorization(h string) (string, *Reason) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", nil
	}
	scheme, rest, hasSpace := strings.Cut(h, " ")
	rest = strings.TrimSpace(rest)
	if strings.EqualFold(scheme, "bearer") {
		if rest != "" {
			return rest, nil
		}
		return "", malformedHeader("the Authorization header says Bearer but carries no token")
	}
	shown := fmt.Sprintf("%q", Truncate(scheme, 20))
	low := strings.ToLower(scheme)
	switch {
	case !hasSpace && LooksLikeJWT(h):
		return "", malformedHeader(`the Authorization header holds a bare token without the "Bearer " scheme`)
	case strings.TrimRight(low, ":=") == "bearer":
		return "", malformedHeader("the Authorization header's scheme is " + shown + "; write it without punctuation")
	case low == "basic" || low == "digest" || low == "apikey":
		return "", malformedHeader("the Authorization header carries " + scheme + " credentials, not a Bearer token")
	case suggest.Distance(low, "bearer") <= 2:
		return "", malformedHeader("the Authorization header's scheme is " + shown + `, not "Bearer"`)
	}
	return "", malformedHeader("the Authorization header's scheme is " + shown + `; Herald reads only "Bearer <token>"`)
}

// headerMeansToken reports whether an Authorization header that is not
// "Bearer <token>" was still meant to carry a token for Herald: a JWT in it
// (bare, or after another scheme such as Token or JWT), or a misspelt Bearer
// scheme. Other credentials (Basic for a site behind HTTP authentication,
// which browsers send on WebSocket upgrades too) are not Herald's business
// and are ignored, as if absent.
func headerMeansToken(h string) bool {
	h = strings.TrimSpace(h)
	scheme, rest, hasSpace := strings.Cut(h, " ")
	if !hasSpace {
		return LooksLikeJWT(h) || strings.EqualFold(h, "bearer")
	}
	low := strings.ToLower(scheme)
	return LooksLikeJWT(strings.TrimSpace(rest)) || strings.TrimRight(low, ":=") == "bearer" ||
		(suggest.Distance(low, "bearer") <= 2 && low != "basic")
}

func malformedHeader(detail string) *Reason {
	return &Reason{Code: TokenMalformed, Source: SourceHeader, Detail: detail,
		Hint: "send Authorization: Bearer <JWT> (the word Bearer, one space, the token)"}
}

// LooksLikeJWT reports whether s has the shape of a compact JWT: three
// non-empty dot-separated base64url segments (the signature may be empty).
func LooksLikeJWT(s string) bool {
	if len(s) < 16 || len(s) > MaxTokenSize {
		return false
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// tokenQueryParams are URL parameters that clients and libraries commonly
// put tokens in. A JWT in one of them that Herald does not read is reported
// rather than ignored.
var tokenQueryParams = []string{"token", "access_token", "jwt", "auth_token", "id_token", "authorization", "auth", "bearer"}

// queryCandidate finds a token in the URL: in the configured parameter, or,
// failing that, a JWT in a commonly used one (returned as disabled: Herald
// never uses it, but its presence explains a refusal).
func (s *Sources) queryCandidate(get func(string) string) (Candidate, bool) {
	if s.QueryParam != "" {
		if v := get(s.QueryParam); v != "" {
			return Candidate{Source: SourceQuery, Token: v, Param: s.QueryParam}, true
		}
	}
	for _, name := range tokenQueryParams {
		if name == s.QueryParam {
			continue
		}
		v := get(name)
		if rest, ok := strings.CutPrefix(v, "Bearer "); ok {
			v = rest
		}
		if LooksLikeJWT(v) {
			return Candidate{Source: SourceQuery, Token: v, Param: name, Disabled: true}, true
		}
	}
	return Candidate{}, false
}

// sourceName names a source briefly, for lists in details and hints.
func (s *Sources) sourceName(src Source) string {
	switch src {
	case SourceConnectCommand:
		return "connect.token"
	case SourceHeader:
		return "the Authorization header"
	case SourceSubprotocol:
		return "a herald-token subprotocol"
	case SourceCookie:
		return "the cookie " + s.Cookie
	case SourceQuery:
		return "?" + s.QueryParam + "="
	case SourceTicket:
		return "?ticket="
	}
	return string(src)
}

// how says how a client presents a token in src, for hints.
func (s *Sources) how(src Source, browser bool) string {
	switch src {
	case SourceConnectCommand:
		return "give it to the SDK (token or getToken), which sends it in connect.token"
	case SourceHeader:
		if browser {
			return ""
		}
		return "send Authorization: Bearer <JWT> with the upgrade request"
	case SourceSubprotocol:
		return "offer the WebSocket subprotocol herald-token.<JWT> next to centrifuge-json"
	case SourceCookie:
		return "set the cookie " + s.Cookie + " to the JWT"
	case SourceQuery:
		return "put it in the URL as ?" + s.QueryParam + "=<JWT>"
	case SourceTicket:
		return "trade it for a one-time ?ticket= at POST /auth/ticket"
	}
	return ""
}

// ways lists how a client may present a token, in the configured order.
func (s *Sources) ways(browser bool) []string {
	var out []string
	for _, src := range s.Enabled {
		if h := s.how(src, browser); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// missingReason explains a connection that presented no token at all.
func (s *Sources) missingReason(browser bool) *Reason {
	var names []string
	for _, src := range s.Enabled {
		names = append(names, s.sourceName(src))
	}
	r := &Reason{Code: TokenMissing, Detail: "no token in " + orList(names)}
	if len(names) == 0 {
		r.Detail = "no token: client.token_sources is empty, so no place is read"
	}
	ways := s.ways(browser)
	switch {
	case browser && len(ways) == 0:
		r.Hint = "a browser cannot set the Authorization header on a WebSocket: add connect, subprotocol or ticket to client.token_sources"
	case browser:
		r.Hint = "a browser cannot set headers on a WebSocket: " + strings.Join(ways, "; or ")
	case len(ways) == 0:
		r.Hint = "add a place to client.token_sources"
	default:
		r.Hint = strings.Join(ways, "; or ")
	}
	r.Hint += "; or accept anonymous connections (client.allow_anonymous_connect_without_token)"
	return r
}

// disabledReason explains a token found only where Herald does not read it.
func (s *Sources) disabledReason(c *Candidate, browser bool) *Reason {
	r := &Reason{Code: TokenSourceDisabled, Source: c.Source}
	where := describeSource(c.Source)
	switch c.Source {
	case SourceQuery:
		where = "URL parameter " + c.Param
	case SourceCookie:
		where = "the cookie " + s.Cookie
	}
	r.Detail = fmt.Sprintf("token in %s, but client.token_sources does not list %s", where, sourceKey(c.Source))
	enable := "add " + sourceKey(c.Source) + " to client.token_sources"
	if c.Source == SourceQuery && c.Param != s.QueryParam {
		if s.Allows(SourceQuery) {
			r.Detail = fmt.Sprintf("token in URL parameter %s; Herald reads ?%s= (client.token_query_param)", c.Param, s.QueryParam)
		} else {
			r.Detail = fmt.Sprintf("token in URL parameter %s; URL tokens are off (no query in client.token_sources)", c.Param)
		}
		enable = "set client.token_query_param: " + c.Param
		if !s.Allows(SourceQuery) {
			enable += " and add query to client.token_sources"
		}
	}
	if c.Source == SourceHeader && c.Malformed != nil {
		r.Detail = "an Authorization header (not Bearer <token> either), but client.token_sources does not list header"
	}
	ways := s.ways(browser)
	if len(ways) > 0 {
		r.Hint = strings.Join(ways, "; or ") + "; or " + enable
	} else {
		r.Hint = enable
	}
	if c.Source == SourceQuery {
		r.Hint += " (URLs end up in access logs: a one-time ?ticket= is safer)"
	}
	return r
}

// sourceKey is the name of a source in client.token_sources.
func sourceKey(src Source) string {
	if src == SourceConnectCommand {
		return "connect"
	}
	return string(src)
}
