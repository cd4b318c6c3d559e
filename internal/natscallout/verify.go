package natscallout

import (
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/heraldhub/herald/internal/auth"
)

// checkAnswer makes, before the answer leaves Herald, every check NATS will
// make of it (nats-server's processClientOrLeafCallout), so that a
// misconfiguration is reported here, naming the keys, instead of reaching the
// client as a bare "Authorization Violation".
func (s *Service) checkAnswer(rc *jwt.AuthorizationRequestClaims, a *answer, now time.Time) *auth.Reason {
	bad := func(hint, format string, args ...any) *auth.Reason {
		return &auth.Reason{Code: auth.NATSAnswerInvalid, Detail: fmt.Sprintf(format, args...), Hint: hint}
	}
	resp := a.resp
	if resp.Subject != rc.UserNkey {
		return bad("an answer is good for one login attempt only; never reuse one",
			"the answer is for user key %s, but this login attempt's key is %s", resp.Subject, rc.UserNkey)
	}
	if resp.Audience != rc.Server.ID {
		return bad("an answer is good for the server that asked only",
			"the answer is for server %s, but server %s asked", resp.Audience, rc.Server.ID)
	}
	if resp.Expires != 0 && resp.Expires < now.Unix() {
		return bad("compare the clocks of the NATS server and Herald", "the answer expired at %s", time.Unix(resp.Expires, 0).UTC().Format(time.RFC3339))
	}
	// The request's subject is the key NATS expects answers from: its
	// auth_callout.issuer (centralized) or the callout account (operator).
	expected := rc.Subject
	switch {
	case !s.keys.operator && a.signer.pub != expected:
		return bad(fmt.Sprintf("set nats_callout.issuer_seed to the seed of %s, or the server's auth_callout.issuer to %s", expected, a.signer.pub),
			"the answer is signed by %s (nats_callout.issuer_seed), but NATS expects %s (its auth_callout.issuer)", a.signer.pub, expected)
	case s.keys.operator && orSelf(resp.IssuerAccount, a.signer.pub) != expected:
		return bad(fmt.Sprintf("set nats_callout.issuer_seed to the seed of the callout account %s or of one of its signing keys (with nats_callout.issuer_account)", expected),
			"the answer is signed by %s for account %s, but NATS expects the callout account %s or one of its signing keys",
			a.signer.pub, orSelf(resp.IssuerAccount, a.signer.pub), expected)
	}
	if a.user == nil {
		return nil
	}
	return s.checkUser(rc, a, now)
}

// checkUser checks the user JWT of an accepting answer.
func (s *Service) checkUser(rc *jwt.AuthorizationRequestClaims, a *answer, now time.Time) *auth.Reason {
	bad := func(hint, format string, args ...any) *auth.Reason {
		return &auth.Reason{Code: auth.NATSAnswerInvalid, Detail: fmt.Sprintf(format, args...), Hint: hint}
	}
	uc := a.user
	if uc.Subject != rc.UserNkey {
		return bad("a user JWT is good for one login attempt only",
			"the user JWT is for user key %s, but this login attempt's key is %s", uc.Subject, rc.UserNkey)
	}
	if uc.Expires != 0 && uc.Expires < now.Unix() {
		return bad("", "the user JWT expired at %s", time.Unix(uc.Expires, 0).UTC().Format(time.RFC3339))
	}
	if !s.keys.operator {
		if a.userSigner.pub != rc.Subject {
			return bad(fmt.Sprintf("in centralized mode the user JWT must be signed by auth_callout.issuer %s", rc.Subject),
				"the user JWT is signed by %s, but NATS expects %s", a.userSigner.pub, rc.Subject)
		}
		if uc.Audience == "" {
			return bad("set nats_callout.account", "the user JWT names no account (aud)")
		}
		return nil
	}
	account := orSelf(uc.IssuerAccount, a.userSigner.pub)
	if _, ok := s.keys.accounts[account]; !ok && account != rc.Subject {
		return &auth.Reason{Code: auth.NATSAccountNotAllowed,
			Detail: fmt.Sprintf("the user JWT is signed by %s for account %s, which is not nats_callout.account or one of nats_callout.accounts", a.userSigner.pub, account),
			Hint:   "place users only in the accounts the callout account allows"}
	}
	return nil
}

func orSelf(v, self string) string {
	if v == "" {
		return self
	}
	return v
}
