package proxy

import (
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/heraldhub/herald/internal/auth"
)

// jwtLike matches compact JWTs (and JWS), which are redacted from every
// snippet of a backend's body even when Herald did not forward them.
var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`)

const redacted = "[redacted]"

// printable returns the start of b as one line of at most n bytes (plus an
// ellipsis when cut): secrets and JWT-like strings redacted, control
// characters and whitespace runs collapsed to a space, invalid UTF-8 and
// other unprintable characters shown as '?'.
func printable(b []byte, n int, secrets []string) string {
	s := string(b)
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	s = jwtLike.ReplaceAllString(s, redacted)
	var sb strings.Builder
	space := false
	cut := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			r = '?'
		case unicode.IsSpace(r) || unicode.IsControl(r):
			space = true
			continue
		case !unicode.IsPrint(r):
			r = '?'
		}
		add := utf8.RuneLen(r)
		if space && sb.Len() > 0 {
			add++
		}
		if sb.Len()+add > n {
			cut = true
			break
		}
		if space && sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		space = false
		sb.WriteRune(r)
	}
	if cut {
		sb.WriteString("…")
	}
	return sb.String()
}

// oneLine makes s a single valid UTF-8 line of at most max bytes.
func oneLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return auth.Truncate(s, max)
}

// redactURL shows a URL without user info, query or fragment, which may
// carry credentials.
func redactURL(u *url.URL) string {
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := c.String()
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
}
