package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// claimSet is the decoded claims of a token, kept raw so every claim can be
// checked for its type with a precise message.
type claimSet map[string]json.RawMessage

// The jwt.Claims methods; claims are validated by the Verifier, not the library.
func (claimSet) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (claimSet) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (claimSet) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (claimSet) GetIssuer() (string, error)                   { return "", nil }
func (claimSet) GetSubject() (string, error)                  { return "", nil }
func (claimSet) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func (c claimSet) str(name string) (string, bool, error) {
	raw, ok := c[name]
	if !ok || isNull(raw) {
		return "", false, nil
	}
	if raw[0] != '"' {
		return "", true, fmt.Errorf("must be a string, got %s", jsonKind(raw))
	}
	s, err := unquote(raw)
	if err != nil {
		return "", true, fmt.Errorf("must be a string, got %s", jsonKind(raw))
	}
	return s, true, nil
}

// path returns a claim by name, or by dotted path into nested objects
// ("user.id"). A name that exists as is wins, so URL-like claim names
// ("https://example.com/uid") work.
func (c claimSet) path(p string) (json.RawMessage, bool) {
	if raw, ok := c[p]; ok {
		if isNull(raw) {
			return nil, false
		}
		return raw, true
	}
	parts := strings.Split(p, ".")
	if len(parts) < 2 {
		return nil, false
	}
	cur, ok := c[parts[0]]
	if !ok {
		return nil, false
	}
	for _, part := range parts[1:] {
		var obj map[string]json.RawMessage
		if json.Unmarshal(cur, &obj) != nil {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	if isNull(cur) {
		return nil, false
	}
	return cur, true
}

// user returns the user id from the configured claim. The default claim sub
// may be missing (an anonymous token); a configured other claim must be present.
func (c claimSet) user(rules *Rules) (string, *Reason) {
	name := orDefault(rules.UserClaim, "sub")
	raw, ok := c.path(name)
	if !ok {
		if name != "sub" {
			return "", &Reason{Code: UserClaimMissing,
				Detail: fmt.Sprintf("token has no %s claim (client.token.user_claim)", name),
				Hint:   "mint tokens with the user claim, or point user_claim at the claim your issuer uses"}
		}
		return "", nil
	}
	s, err := unquote(raw)
	if err != nil {
		return "", &Reason{Code: ClaimInvalid, Detail: fmt.Sprintf("claim %s must be a string, got %s", name, jsonKind(raw)),
			Hint: "user ids are JSON strings: \"42\", not 42"}
	}
	return s, nil
}

// anonymousRefused is the refusal of a connection token without a user
// when client.disallow_anonymous_connection_tokens is set.
func anonymousRefused(src Source) *Reason {
	return &Reason{Code: AnonymousTokenRefused, Source: src,
		Detail: "token has an empty sub and anonymous tokens are disallowed",
		Hint:   "put the user id in sub, or unset client.disallow_anonymous_connection_tokens"}
}

// audiences returns aud as a list (it may be a string or an array).
func (c claimSet) audiences() ([]string, error) {
	raw, ok := c["aud"]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("must be a string or an array of strings, got %s", jsonKind(raw))
	}
	return many, nil
}

func (c claimSet) num(name string) (int64, bool, error) {
	raw, ok := c[name]
	if !ok || isNull(raw) {
		return 0, false, nil
	}
	n, err := numericDate(raw)
	if errors.Is(err, errNotNumber) {
		return 0, true, fmt.Errorf("must be a number (unix seconds), got %s", jsonKind(raw))
	}
	if err != nil {
		return 0, true, err
	}
	return n, true, nil
}

// rawJSON returns a JSON claim (or its base64 variant, which must hold JSON
// because JSON clients cannot carry binary), compacted to one line.
func (c claimSet) rawJSON(name, b64name string, max int, src Source) (json.RawMessage, *Reason) {
	if raw, ok := c[name]; ok && !isNull(raw) {
		if max > 0 && len(raw) > max {
			return nil, &Reason{Code: ClaimInvalid, Source: src, Detail: fmt.Sprintf("claim %s is %d bytes, limit %d", name, len(raw), max)}
		}
		return compactJSON(raw), nil
	}
	if raw, ok := c[b64name]; ok && !isNull(raw) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, &Reason{Code: ClaimInvalid, Source: src, Detail: "claim " + b64name + " must be a base64 string"}
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, &Reason{Code: ClaimInvalid, Source: src, Detail: "claim " + b64name + " is not valid base64"}
		}
		if !json.Valid(b) {
			return nil, &Reason{Code: ClaimInvalid, Source: src, Detail: "claim " + b64name + " must hold JSON for JSON clients"}
		}
		if max > 0 && len(b) > max {
			return nil, &Reason{Code: ClaimInvalid, Source: src, Detail: fmt.Sprintf("claim %s is %d bytes, limit %d", b64name, len(b), max)}
		}
		return compactJSON(b), nil
	}
	return nil, nil
}

// compactJSON removes insignificant whitespace (and so every raw newline,
// which would break the protocol's line framing).
func compactJSON(raw []byte) json.RawMessage {
	if !bytes.ContainsAny(raw, " \t\r\n") {
		return json.RawMessage(raw) // already compact (and validated by the parser)
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return json.RawMessage(raw)
	}
	return buf.Bytes()
}

func decodeSubOptions(raw json.RawMessage, max int) (SubOptions, error) {
	var m claimSet
	if err := json.Unmarshal(raw, &m); err != nil {
		return SubOptions{}, fmt.Errorf("must be an object")
	}
	var o SubOptions
	var r *Reason
	if o.Info, r = m.rawJSON("info", "b64info", max, ""); r != nil {
		return o, errors.New(r.Detail)
	}
	if o.Data, r = m.rawJSON("data", "b64data", max, ""); r != nil {
		return o, errors.New(r.Detail)
	}
	if ov, ok := m["override"]; ok {
		var err error
		if o.Override, err = decodeOverride(ov); err != nil {
			return o, fmt.Errorf("override: %s", err)
		}
	}
	return o, nil
}

// DecodeOverride reads an override object ({"presence":{"value":false},...}),
// as tokens and proxy results carry it.
func DecodeOverride(raw json.RawMessage) (*Override, error) { return decodeOverride(raw) }

func decodeOverride(raw json.RawMessage) (*Override, error) {
	if isNull(raw) {
		return nil, nil
	}
	type boolValue struct {
		Value bool `json:"value"`
	}
	var in struct {
		Presence           *boolValue `json:"presence"`
		JoinLeave          *boolValue `json:"join_leave"`
		ForcePushJoinLeave *boolValue `json:"force_push_join_leave"`
		ForceRecovery      *boolValue `json:"force_recovery"`
		ForcePositioning   *boolValue `json:"force_positioning"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("must be an object of {\"value\": bool} entries")
	}
	get := func(b *boolValue) *bool {
		if b == nil {
			return nil
		}
		v := b.Value
		return &v
	}
	return &Override{
		Presence: get(in.Presence), JoinLeave: get(in.JoinLeave), ForcePushJoinLeave: get(in.ForcePushJoinLeave),
		ForceRecovery: get(in.ForceRecovery), ForcePositioning: get(in.ForcePositioning),
	}, nil
}
