package proxy

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// reservedHeaders are set by Herald or the HTTP client, or are hop-by-hop
// headers of the client's upgrade request: no allowlist may forward them.
var reservedHeaders = map[string]bool{
	"host": true, "content-type": true, "content-length": true, "transfer-encoding": true,
	"connection": true, "upgrade": true, "keep-alive": true, "te": true, "trailer": true,
	"proxy-connection": true, "expect": true,
}

// allowlist turns a configured header list into a set of lower-case names.
func allowlist(what string, names []string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if err := checkHeaderName(what, n); err != nil {
			return nil, err
		}
		set[strings.ToLower(n)] = true
	}
	return set, nil
}

func checkHeaderName(what, n string) error {
	if !validHeaderName(n) {
		return fmt.Errorf("%s: %q is not a valid header name", what, oneLine(n, 64))
	}
	if reservedHeaders[strings.ToLower(n)] {
		return fmt.Errorf("%s: %q cannot be forwarded or set: Herald sets it, or it belongs to the client's connection", what, n)
	}
	return nil
}

// validHeaderName reports whether n is an HTTP token (RFC 9110 5.6.2).
func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v has no control character but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// EmulatedMarker lists, on a proxy request, the headers that came from the
// client's connect message (emulated headers: set by the client, untrusted).
const EmulatedMarker = "X-Herald-Emulated-Headers"

// headers builds the request headers: static < emulated < transport, only
// allowlisted names, then Content-Type. It also returns the forwarded values
// that must never be shown (they may carry credentials), for redaction.
func (p *Proxy) headers(h Headers) (http.Header, []string) {
	out := http.Header{}
	var secrets []string
	emulated := map[string]bool{} // canonical names that came from the client's connect message
	for k, v := range p.static {
		out[k] = append([]string(nil), v...)
		secrets = append(secrets, v...)
	}
	if len(p.emuAllow) > 0 {
		for k, v := range h.Emulated {
			if !p.emuAllow[strings.ToLower(k)] {
				continue
			}
			if !validHeaderName(k) || !validHeaderValue(v) {
				p.log.Debug("emulated header skipped: invalid name or value", "header", oneLine(k, 64))
				continue
			}
			out.Set(k, v)
			emulated[http.CanonicalHeaderKey(k)] = true
			secrets = append(secrets, v)
		}
	}
	if len(p.httpAllow) > 0 {
		for k, v := range h.Transport {
			if !p.httpAllow[strings.ToLower(k)] || len(v) == 0 {
				continue
			}
			ck := http.CanonicalHeaderKey(k)
			vals := make([]string, 0, len(v))
			for _, s := range v {
				if validHeaderValue(s) {
					vals = append(vals, s)
				}
			}
			if len(vals) == 0 {
				continue
			}
			out[ck] = vals
			delete(emulated, ck) // the transport header wins
			secrets = append(secrets, vals...)
		}
	}
	if len(p.cookies) > 0 && len(out.Values("Cookie")) == 0 {
		// Only the allowlisted cookies, not the whole Cookie header.
		var kept []string
		for _, line := range h.Transport.Values("Cookie") {
			for _, part := range strings.Split(line, ";") {
				name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
				if p.cookies[name] {
					kept = append(kept, strings.TrimSpace(part))
				}
			}
		}
		if len(kept) > 0 {
			v := strings.Join(kept, "; ")
			out.Set("Cookie", v)
			secrets = append(secrets, v)
		}
	}
	if len(emulated) > 0 {
		// Mark what the client itself sent (untrusted), so the backend can
		// tell it apart from headers of the HTTP request.
		names := make([]string, 0, len(emulated))
		for k := range emulated {
			names = append(names, k)
		}
		sort.Strings(names)
		out.Set(EmulatedMarker, strings.Join(names, ", "))
	}
	out.Set("Content-Type", "application/json")
	return out, secretParts(secrets)
}

// secretParts expands header values into the strings to redact: each value,
// the credentials after an auth scheme, and each cookie value.
func secretParts(values []string) []string {
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); len(s) >= 6 {
			out = append(out, s)
		}
	}
	for _, v := range values {
		add(v)
		if _, cred, ok := strings.Cut(v, " "); ok {
			add(cred)
		}
		for _, part := range strings.Split(v, ";") {
			if _, val, ok := strings.Cut(part, "="); ok {
				add(strings.Trim(strings.TrimSpace(val), `"`))
			}
		}
	}
	return out
}
