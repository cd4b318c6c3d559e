package auth

import (
	"fmt"
	"strings"
	"time"
)

// claimCheck is one rule applied to verified claims. The verifier stops at
// the first failure; explain runs them all.
type claimCheck struct {
	name string
	fn   func(v *Verifier, c claimSet, rules *Rules) *Reason
}

// numericDateHint is the hint of a malformed exp, nbf, iat or expire_at.
const numericDateHint = "exp, nbf, iat and expire_at are unix seconds as a JSON number, such as 1767225600"

var claimChecks = []claimCheck{
	{"exp", checkExp},
	{"nbf", checkNbf},
	{"iat", checkIat},
	{"aud", checkAud},
	{"iss", checkIss},
}

// checkClaims applies every claim check; the first failure is returned.
func (v *Verifier) checkClaims(c claimSet, rules *Rules, src Source) *Reason {
	for _, chk := range claimChecks {
		if r := chk.fn(v, c, rules); r != nil {
			r.Source = src
			r.annotate(c, rules)
			return r
		}
	}
	return nil
}

func checkExp(v *Verifier, c claimSet, rules *Rules) *Reason {
	exp, has, err := c.num("exp")
	if err != nil {
		return &Reason{Code: ClaimInvalid, Detail: "claim exp " + err.Error(), Hint: numericDateHint}
	}
	now := v.now()
	if has && now.After(time.Unix(exp, 0).Add(rules.Leeway)) {
		ago := now.Sub(time.Unix(exp, 0)).Truncate(time.Second)
		return &Reason{Code: TokenExpired,
			Detail: fmt.Sprintf("token expired %s ago", ago),
			Hint:   "get a fresh token (the SDK calls getToken on this code)"}
	}
	if has {
		return nil
	}
	return checkNoExp(v, c, rules)
}

// checkNoExp applies the rules for a token without exp: refused with
// require_exp; with max_lifetime_without_exp it expires that long after iat.
func checkNoExp(v *Verifier, c claimSet, rules *Rules) *Reason {
	if rules.RequireExp {
		return &Reason{Code: ExpRequired, Detail: "token has no exp, and " + rules.setting("require_exp") + " is on",
			Hint: "mint tokens with exp (a short lifetime, refreshed by the client)"}
	}
	life := rules.MaxLifetimeWithoutExp
	if life <= 0 {
		return nil
	}
	iat, has, err := c.num("iat")
	if err != nil {
		return &Reason{Code: ClaimInvalid, Detail: "claim iat " + err.Error(), Hint: numericDateHint}
	}
	if !has {
		return &Reason{Code: ExpRequired, Detail: "token has neither exp nor iat; " + rules.setting("max_lifetime_without_exp") + " needs one of them",
			Hint: "mint tokens with exp, or at least with iat"}
	}
	if age := v.now().Sub(time.Unix(iat, 0)); age > life+rules.Leeway {
		return &Reason{Code: TokenExpired,
			Detail: fmt.Sprintf("token has no exp and was issued %s ago; %s is %s", age.Truncate(time.Second), rules.setting("max_lifetime_without_exp"), life),
			Hint:   "get a fresh token, or mint tokens with exp"}
	}
	return nil
}

func checkNbf(v *Verifier, c claimSet, rules *Rules) *Reason {
	nbf, has, err := c.num("nbf")
	if err != nil {
		return &Reason{Code: ClaimInvalid, Detail: "claim nbf " + err.Error(), Hint: numericDateHint}
	}
	now := v.now()
	if has && now.Add(rules.Leeway).Before(time.Unix(nbf, 0)) {
		return &Reason{Code: TokenNotYetValid,
			Detail: fmt.Sprintf("token not valid for another %s (nbf)", time.Unix(nbf, 0).Sub(now).Truncate(time.Second)),
			Hint:   "check the clocks of the issuer and the server, or raise client.token.leeway"}
	}
	return nil
}

func checkIat(v *Verifier, c claimSet, rules *Rules) *Reason {
	iat, has, err := c.num("iat")
	if err != nil {
		return &Reason{Code: ClaimInvalid, Detail: "claim iat " + err.Error(), Hint: numericDateHint}
	}
	now := v.now()
	if has && now.Add(rules.Leeway).Before(time.Unix(iat, 0)) {
		return &Reason{Code: TokenNotYetValid,
			Detail: fmt.Sprintf("token issued %s in the future (iat)", time.Unix(iat, 0).Sub(now).Truncate(time.Second)),
			Hint:   "check the clocks of the issuer and the server, or raise client.token.leeway"}
	}
	if rules.MaxLifetime > 0 {
		if !has {
			return &Reason{Code: TokenTooOld, Detail: "token has no iat, and client.token.max_lifetime needs one",
				Hint: "mint tokens with iat"}
		}
		if age := now.Sub(time.Unix(iat, 0)); age > rules.MaxLifetime+rules.Leeway {
			return &Reason{Code: TokenTooOld,
				Detail: fmt.Sprintf("token issued %s ago; max_lifetime is %s", age.Truncate(time.Second), rules.MaxLifetime),
				Hint:   "mint a fresh token"}
		}
	}
	return nil
}

func checkAud(v *Verifier, c claimSet, rules *Rules) *Reason {
	if len(rules.Audience) == 0 {
		return nil
	}
	auds, err := c.audiences()
	if err != nil {
		return &Reason{Code: ClaimInvalid, Detail: "claim aud " + err.Error()}
	}
	for _, a := range auds {
		for _, want := range rules.Audience {
			if a == want {
				return nil
			}
		}
	}
	got := "none"
	if len(auds) > 0 {
		got = strings.Join(auds, ",")
	}
	return &Reason{Code: AudienceMismatch,
		Detail: Truncate(fmt.Sprintf("aud %s, accepted %s", got, strings.Join(rules.Audience, ",")), 100),
		Hint:   "mint the token for this audience, or add it to client.token.audience"}
}

func checkIss(v *Verifier, c claimSet, rules *Rules) *Reason {
	if len(rules.Issuer) == 0 {
		return nil
	}
	iss, _, err := c.str("iss")
	if err != nil {
		return &Reason{Code: ClaimInvalid, Detail: "claim iss " + err.Error()}
	}
	for _, want := range rules.Issuer {
		if iss == want {
			return nil
		}
	}
	if iss == "" {
		iss = "none"
	}
	return &Reason{Code: IssuerMismatch,
		Detail: Truncate(fmt.Sprintf("iss %s, accepted %s", iss, strings.Join(rules.Issuer, ",")), 100),
		Hint:   "use a token of the configured issuer, or add it to client.token.issuer"}
}

// expiry returns when the connection or subscription expires: expire_at when
// present (0 = never), else exp, else iat + max_lifetime_without_exp when
// set; capped at now + 1 year.
func (v *Verifier) expiry(c claimSet, src Source, rules *Rules) (time.Time, *Reason) {
	leeway := rules.Leeway
	at, has, err := c.num("expire_at")
	if err != nil {
		return time.Time{}, &Reason{Code: ClaimInvalid, Source: src, Detail: "claim expire_at " + err.Error(), Hint: numericDateHint}
	}
	fromExp := false
	if !has {
		at, has, _ = c.num("exp")
		fromExp = has
	}
	if !has && rules.MaxLifetimeWithoutExp > 0 {
		if iat, ok, _ := c.num("iat"); ok {
			at, has, fromExp = time.Unix(iat, 0).Add(rules.MaxLifetimeWithoutExp).Unix(), true, true
		}
	}
	if !has || at == 0 {
		return time.Time{}, nil
	}
	t := time.Unix(at, 0)
	if fromExp && !t.After(v.now()) {
		// exp passed within the leeway (checkExp accepted it): the
		// connection expires when the leeway ends, and refreshes then.
		t = t.Add(leeway)
	}
	if limit := v.now().Add(maxExpiry); t.After(limit) {
		t = limit
	}
	return t, nil
}
