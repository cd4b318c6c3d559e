package natscallout

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/nats-io/jwt/v2"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

// maxSubjects bounds the subjects one permission list may expand to.
const maxSubjects = 1000

// part is a piece of a subject template: literal text, the user id, or a claim.
type part struct {
	literal string
	user    bool
	claim   string // claim name or dotted path, when not ""
}

// template is a parsed subject template.
type template struct {
	raw   string
	parts []part
	// whole is set when the template is one claim placeholder alone: each
	// value of the claim is then a whole subject, wildcards allowed.
	whole bool
}

var placeholderRE = regexp.MustCompile(`\{\{\s*(user|claim:[^\s{}]+)\s*\}\}`)

func parseTemplate(s string) template {
	t := template{raw: s}
	last := 0
	for _, m := range placeholderRE.FindAllStringSubmatchIndex(s, -1) {
		if m[0] > last {
			t.parts = append(t.parts, part{literal: s[last:m[0]]})
		}
		name := s[m[2]:m[3]]
		if name == "user" {
			t.parts = append(t.parts, part{user: true})
		} else {
			t.parts = append(t.parts, part{claim: strings.TrimPrefix(name, "claim:")})
		}
		last = m[1]
	}
	if last < len(s) {
		t.parts = append(t.parts, part{literal: s[last:]})
	}
	t.whole = len(t.parts) == 1 && t.parts[0].claim != ""
	return t
}

// permissions are the parsed permission templates and limits.
type permissions struct {
	pubAllow, pubDeny, subAllow, subDeny []template
	resp                                 *jwt.ResponsePermission
	limits                               jwt.NatsLimits
	claims                               bool // some template reads a claim
}

func newPermissions(c *config.NATSPermissions) *permissions {
	p := &permissions{limits: jwt.NatsLimits{Subs: jwt.NoLimit, Data: jwt.NoLimit, Payload: jwt.NoLimit}}
	parse := func(list []string) []template {
		out := make([]template, len(list))
		for i, s := range list {
			out[i] = parseTemplate(s)
			for _, pt := range out[i].parts {
				if pt.claim != "" {
					p.claims = true
				}
			}
		}
		return out
	}
	p.pubAllow, p.pubDeny = parse(c.PublishAllow), parse(c.PublishDeny)
	p.subAllow, p.subDeny = parse(c.SubscribeAllow), parse(c.SubscribeDeny)
	if c.AllowResponses {
		p.resp = &jwt.ResponsePermission{MaxMsgs: c.ResponsesMax, Expires: c.ResponsesTTL.D()}
	}
	for _, l := range []struct {
		dst *int64
		v   int
	}{{&p.limits.Subs, c.Subscriptions}, {&p.limits.Payload, c.Payload}, {&p.limits.Data, c.Data}} {
		if l.v > 0 {
			*l.dst = int64(l.v)
		}
	}
	return p
}

// claimReader returns a claim's JSON by name or dotted path.
type claimReader func(path string) (json.RawMessage, bool)

// apply fills uc's permissions and limits for user.
func (p *permissions) apply(uc *jwt.UserClaims, user string, claim claimReader) *auth.Reason {
	for _, l := range []struct {
		dst  *jwt.StringList
		list []template
		what string
	}{{&uc.Pub.Allow, p.pubAllow, "publish_allow"}, {&uc.Pub.Deny, p.pubDeny, "publish_deny"},
		{&uc.Sub.Allow, p.subAllow, "subscribe_allow"}, {&uc.Sub.Deny, p.subDeny, "subscribe_deny"}} {
		for _, t := range l.list {
			subjects, r := t.expand(user, claim)
			if r != nil {
				r.Detail = "nats_callout.permissions." + l.what + " " + r.Detail
				return r
			}
			l.dst.Add(subjects...)
			if len(*l.dst) > maxSubjects {
				return &auth.Reason{Code: auth.ClaimInvalid,
					Detail: fmt.Sprintf("nats_callout.permissions.%s expands to more than %d subjects", l.what, maxSubjects),
					Hint:   "list fewer subjects in the token's claim"}
			}
		}
	}
	uc.Resp = p.resp
	uc.NatsLimits = p.limits
	return nil
}

// expand returns the subjects of the template for user and the token's
// claims. A claim that is absent expands to nothing.
func (t *template) expand(user string, claim claimReader) ([]string, *auth.Reason) {
	out := []string{""}
	for _, pt := range t.parts {
		var values []string
		switch {
		case pt.user:
			if !isToken(user) {
				return nil, &auth.Reason{Code: auth.ClaimInvalid,
					Detail: fmt.Sprintf("%q: the user id %q cannot be one token of a NATS subject", t.raw, auth.Truncate(user, 64)),
					Hint:   "user ids placed in subjects must not contain dots, wildcards or white space"}
			}
			values = []string{user}
		case pt.claim != "":
			var r *auth.Reason
			if values, r = claimValues(claim, pt.claim, t); r != nil {
				return nil, r
			}
		default:
			values = []string{pt.literal}
		}
		if len(out)*len(values) > maxSubjects {
			return nil, &auth.Reason{Code: auth.ClaimInvalid,
				Detail: fmt.Sprintf("%q expands to more than %d subjects", t.raw, maxSubjects), Hint: "list fewer subjects in the token's claim"}
		}
		if len(values) == 1 {
			for i := range out {
				out[i] += values[0]
			}
			continue
		}
		next := make([]string, 0, len(out)*len(values))
		for _, o := range out {
			for _, v := range values {
				next = append(next, o+v)
			}
		}
		out = next
	}
	return out, nil
}

// claimValues reads a string or an array of strings, each checked to be a
// whole subject (for a template that is the placeholder alone) or one token.
func claimValues(claim claimReader, name string, t *template) ([]string, *auth.Reason) {
	raw, ok := claim(name)
	if !ok {
		return nil, nil
	}
	values := stringOrList(raw)
	if values == nil {
		return nil, &auth.Reason{Code: auth.ClaimInvalid,
			Detail: fmt.Sprintf("%q: claim %s must be a string or an array of strings", t.raw, name),
			Hint:   `list subjects as ["orders.eu", "orders.us"]`}
	}
	for _, v := range values {
		good := isToken(v)
		if t.whole {
			good = config.CheckSubjectTemplate(v) == "" && !strings.ContainsAny(v, "{} \t")
		}
		if !good {
			what := "one token of a NATS subject (no dots, wildcards or white space)"
			if t.whole {
				what = "a NATS subject"
			}
			return nil, &auth.Reason{Code: auth.ClaimInvalid,
				Detail: fmt.Sprintf("%q: claim %s holds %q, which is not %s", t.raw, name, auth.Truncate(v, 64), what),
				Hint:   "mint the token with valid subjects in the claim"}
		}
	}
	return values, nil
}

// isToken reports whether s can be one token of a subject.
func isToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ". \t\r\n*>")
}
