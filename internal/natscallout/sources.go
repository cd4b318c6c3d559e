package natscallout

import (
	"fmt"

	"github.com/nats-io/jwt/v2"

	"github.com/heraldhub/herald/internal/auth"
)

// candidates collects the client's token from the configured connect
// options (none: the engine's connect proxy, if any, decides). A token only
// in an option that is not configured explains a refusal
// (token_source_disabled) instead of a bare token_missing.
func (s *Service) candidates(o *jwt.ConnectOptions) ([]auth.Candidate, *auth.Reason) {
	values := func(src auth.Source) string {
		switch src {
		case SourceAuthToken:
			return o.Token
		case SourcePassword:
			return o.Password
		case SourceJWT:
			return o.JWT
		}
		return ""
	}
	var out []auth.Candidate
	for _, src := range s.sources {
		if v := values(src); v != "" {
			out = append(out, auth.Candidate{Source: src, Token: v})
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	// The jwt option is no hint: in operator mode it carries the sentinel
	// user's NATS JWT, not an application token.
	for _, src := range []auth.Source{SourceAuthToken, SourcePassword} {
		if values(src) != "" {
			return nil, &auth.Reason{Code: auth.TokenSourceDisabled, Source: src,
				Detail: fmt.Sprintf("a credential was sent in the NATS connect option %s, which nats_callout.token_sources does not list", src),
				Hint:   "send the token where nats_callout.token_sources says (auth_token by default), or add that option to it"}
		}
	}
	return nil, nil
}

// noToken is the refusal of a login that presented no token (and that no
// connect proxy accepted).
func noToken() *auth.Reason {
	return &auth.Reason{Code: auth.TokenMissing, Detail: "no token in the NATS connect options (nats_callout.token_sources)",
		Hint: "send the token as the NATS auth_token (nats.Token in nats.go), or where nats_callout.token_sources says"}
}

// tokenOf returns the token of the candidate from src.
func tokenOf(tokens []auth.Candidate, src auth.Source) string {
	for _, c := range tokens {
		if c.Source == src {
			return c.Token
		}
	}
	return ""
}
