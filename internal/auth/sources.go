package auth

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// SubprotocolPrefix marks a WebSocket subprotocol entry that carries a token:
// "herald-token.<jwt>". JWT characters are all valid in a subprotocol name.
// The entry is never echoed back: the server selects another offered protocol.
const SubprotocolPrefix = "herald-token."

// TicketParam is the URL query parameter of a one-time connection ticket.
const TicketParam = "ticket"

// SourceKinds lists the token sources a configuration may name.
var SourceKinds = []Source{SourceConnectCommand, SourceHeader, SourceSubprotocol, SourceCookie, SourceQuery, SourceTicket}

// ParseSource maps a configured source name ("connect", "header", ...) to its Source.
func ParseSource(name string) (Source, bool) {
	if name == "connect" {
		return SourceConnectCommand, true
	}
	for _, s := range SourceKinds {
		if string(s) == name {
			return s, true
		}
	}
	return "", false
}

// describeSource names a source in messages.
func describeSource(s Source) string {
	switch s {
	case SourceConnectCommand:
		return "the connect command"
	case SourceHeader:
		return "the Authorization header"
	case SourceSubprotocol:
		return "a herald-token. WebSocket subprotocol"
	case SourceCookie:
		return "a cookie"
	case SourceQuery:
		return "a URL query parameter"
	case SourceTicket:
		return "a connection ticket"
	}
	return string(s)
}

// Sources says where connections may present tokens, in order of preference.
type Sources struct {
	Enabled []Source
	// NoHeader leaves the Authorization header alone: it belongs to the
	// team's backend (the connect proxy forwards it), not to Herald.
	NoHeader   bool
	Cookie     string // cookie name
	QueryParam string // query parameter name
	Tickets    *Tickets
}

// Allows reports whether s is enabled.
func (s *Sources) Allows(src Source) bool {
	for _, e := range s.Enabled {
		if e == src {
			return true
		}
	}
	return false
}

// FromHTTP collects every token the request carries, in every place Herald
// knows, enabled or not (a token in a disabled place explains a refusal).
// connectToken is the token of the protocol's own connect message, if any.
// Candidates come back in the configured order, disabled ones last.
func (s *Sources) FromHTTP(r *http.Request, connectToken string) []Candidate {
	found := map[Source]Candidate{}
	if connectToken != "" {
		found[SourceConnectCommand] = Candidate{Source: SourceConnectCommand, Token: connectToken}
	}
	if h := r.Header.Get("Authorization"); h != "" && !s.NoHeader {
		if tok, bad := ParseAuthorization(h); tok != "" {
			found[SourceHeader] = Candidate{Source: SourceHeader, Token: tok}
		} else if bad != nil && headerMeansToken(h) {
			found[SourceHeader] = Candidate{Source: SourceHeader, Malformed: bad}
		}
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); strings.HasPrefix(p, SubprotocolPrefix) {
				found[SourceSubprotocol] = Candidate{Source: SourceSubprotocol, Token: strings.TrimPrefix(p, SubprotocolPrefix)}
			}
		}
	}
	if s.Cookie != "" {
		if c, err := r.Cookie(s.Cookie); err == nil && c.Value != "" {
			found[SourceCookie] = Candidate{Source: SourceCookie, Token: c.Value}
		}
	}
	q := r.URL.Query()
	if c, ok := s.queryCandidate(q.Get); ok {
		found[SourceQuery] = c
	}
	if t := q.Get(TicketParam); t != "" {
		c := Candidate{Source: SourceTicket}
		if !s.Allows(SourceTicket) || s.Tickets == nil {
			c.Token = "(ticket)" // present, but the source is off: explained as disabled
		} else if tok, ok := s.Tickets.Redeem(t); ok {
			c.Token = tok
		} else {
			c.Ticket = &Reason{Code: TicketInvalid, Source: SourceTicket,
				Detail: "connection ticket is unknown, expired or already used",
				Hint:   "get a new ticket from POST /auth/ticket right before connecting; each ticket works once"}
		}
		found[SourceTicket] = c
	}
	out := make([]Candidate, 0, len(found))
	for _, src := range s.Enabled {
		if c, ok := found[src]; ok {
			out = append(out, c)
			delete(found, src)
		}
	}
	for _, src := range SourceKinds {
		if c, ok := found[src]; ok {
			c.Disabled = true
			out = append(out, c)
		}
	}
	return out
}

// WithConnect adds the token of the protocol's connect message to the
// candidates found on the upgrade request, keeping the configured order.
func (s *Sources) WithConnect(http []Candidate, connectToken string) []Candidate {
	if connectToken == "" {
		return http
	}
	c := Candidate{Source: SourceConnectCommand, Token: connectToken, Disabled: !s.Allows(SourceConnectCommand)}
	out := make([]Candidate, 0, len(http)+1)
	placed := false
	for _, h := range http {
		if !placed && (h.Disabled || s.rank(SourceConnectCommand) < s.rank(h.Source)) {
			out = append(out, c)
			placed = true
		}
		out = append(out, h)
	}
	if !placed {
		out = append(out, c)
	}
	return out
}

func (s *Sources) rank(src Source) int {
	for i, e := range s.Enabled {
		if e == src {
			return i
		}
	}
	return len(s.Enabled)
}

// Tickets issues and redeems one-time connection tickets: a client that can
// send a header (its page's backend, or fetch) trades its token for a ticket
// that is valid for a few seconds and can go in a WebSocket URL instead of the token.
type Tickets struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	tickets map[string]ticket
	now     func() time.Time
}

type ticket struct {
	token   string
	expires time.Time
}

// NewTickets returns a ticket store; at most max tickets are outstanding.
func NewTickets(ttl time.Duration, max int) *Tickets {
	return &Tickets{ttl: ttl, max: max, tickets: map[string]ticket{}, now: time.Now}
}

// TTL is how long a ticket stays valid.
func (t *Tickets) TTL() time.Duration { return t.ttl }

// Issue stores token and returns a new ticket for it.
func (t *Tickets) Issue(token string) (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.tickets) >= t.max {
		for k, v := range t.tickets {
			if now.After(v.expires) {
				delete(t.tickets, k)
			}
		}
		if len(t.tickets) >= t.max {
			return "", fmt.Errorf("too many outstanding tickets (%d)", t.max)
		}
	}
	t.tickets[id] = ticket{token: token, expires: now.Add(t.ttl)}
	return id, nil
}

// Redeem returns the token of a ticket and forgets the ticket.
func (t *Tickets) Redeem(id string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tk, ok := t.tickets[id]
	if !ok {
		return "", false
	}
	delete(t.tickets, id)
	if t.now().After(tk.expires) {
		return "", false
	}
	return tk.token, true
}
