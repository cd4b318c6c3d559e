package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenSize is the largest token accepted; larger ones are refused before parsing.
const MaxTokenSize = 16 << 10

// maxExpiry caps any connection or subscription expiry at now + 1 year.
const maxExpiry = 365 * 24 * time.Hour

// Candidate is a token and where the front door found it.
type Candidate struct {
	Source Source
	Token  string
}

// Request is what a front door knows about a connection attempt.
type Request struct {
	Transport  string // "websocket", ...
	Tokens     []Candidate
	Header     http.Header
	Origin     string
	RemoteAddr string
}

// SubOptions are the per-channel options of a server-side subscription from
// a connection token's subs claim.
type SubOptions struct {
	Info     json.RawMessage
	Data     json.RawMessage
	Override *Override
}

// Override switches namespace options for one subscription.
type Override struct {
	Presence           *bool
	JoinLeave          *bool
	ForcePushJoinLeave *bool
	ForceRecovery      *bool
	ForcePositioning   *bool
}

// Identity is an accepted connection.
type Identity struct {
	User string // "" for anonymous
	// ExpireAt is when the connection expires; zero means never.
	ExpireAt time.Time
	Info     json.RawMessage
	Meta     json.RawMessage
	// Channels are server-side subscriptions, in token order; Subs carries
	// per-channel options for those named in the subs claim.
	Channels       []string
	Subs           map[string]SubOptions
	Source         Source // where the token came from; "" for anonymous without token
	KeyFingerprint string
}

// SubscriptionGrant is an accepted subscription token.
type SubscriptionGrant struct {
	ExpireAt time.Time // zero means never
	Info     json.RawMessage
	Data     json.RawMessage
	Override *Override
}

// Policy holds the switches that decide what happens without a token.
type Policy struct {
	// AllowAnonymous accepts connections without a token as anonymous.
	AllowAnonymous bool
	// DisallowAnonymousTokens refuses tokens with an empty sub.
	DisallowAnonymousTokens bool
	// Leeway is the clock-skew allowance for exp and nbf.
	Leeway time.Duration
	// InfoMaxSize bounds the info/data JSON a token may carry; 0 = no bound.
	InfoMaxSize int
}

// Verifier verifies connection, refresh and subscription tokens.
// It is safe for concurrent use; keys can be swapped with SetKeys.
type Verifier struct {
	keys   keySetHolder
	policy Policy
	now    func() time.Time
	parser *jwt.Parser
}

// NewVerifier returns a verifier with the given keys and policy.
func NewVerifier(keys *KeySet, p Policy) *Verifier {
	v := &Verifier{policy: p, now: time.Now}
	v.keys.p.Store(keys)
	// Claims are validated here, not by the library, so that each failure
	// becomes its own Reason; the library checks structure and signature.
	v.parser = jwt.NewParser(jwt.WithoutClaimsValidation())
	return v
}

// SetKeys swaps the key set atomically.
func (v *Verifier) SetKeys(keys *KeySet) { v.keys.p.Store(keys) }

// Keys returns the current key set.
func (v *Verifier) Keys() *KeySet { return v.keys.p.Load() }

// SetClock replaces the clock (tests).
func (v *Verifier) SetClock(now func() time.Time) { v.now = now }

// Policy returns the verifier's policy.
func (v *Verifier) Policy() Policy { return v.policy }

// Connect decides a connection attempt.
func (v *Verifier) Connect(req *Request) (*Identity, *Reason) {
	var cand *Candidate
	for i := range req.Tokens {
		if req.Tokens[i].Token != "" {
			cand = &req.Tokens[i]
			break
		}
	}
	if cand == nil {
		if v.policy.AllowAnonymous {
			return &Identity{}, nil
		}
		return nil, &Reason{
			Code:   TokenMissing,
			Detail: "no credentials: the client sent no token and anonymous access is off",
			Hint:   "send a connection JWT in connect.token, or set client.allow_anonymous_connect_without_token (or --dev)",
		}
	}
	claims, fp, r := v.verify(cand.Token, cand.Source)
	if r != nil {
		return nil, r
	}
	id, r := v.connectionIdentity(claims, cand.Source)
	if r != nil {
		r.KeyFingerprint = fp
		return nil, r
	}
	id.KeyFingerprint = fp
	return id, nil
}

// Refresh verifies a token sent to extend a live connection of user.
func (v *Verifier) Refresh(token string, user string) (*Identity, *Reason) {
	if token == "" {
		return nil, &Reason{Code: TokenMissing, Detail: "refresh without a token", Source: SourceRefreshCommand,
			Hint: "the client's getToken must return a new connection token"}
	}
	claims, fp, r := v.verify(token, SourceRefreshCommand)
	if r != nil {
		return nil, r
	}
	id, r := v.connectionIdentity(claims, SourceRefreshCommand)
	if r != nil {
		return nil, r
	}
	if id.User != user {
		return nil, &Reason{Code: TokenUserMismatch, Source: SourceRefreshCommand, KeyFingerprint: fp,
			Detail: fmt.Sprintf("refresh token is for user %q, connection is user %q", id.User, user),
			Hint:   "getToken must return a token for the same user as the connection"}
	}
	id.KeyFingerprint = fp
	return id, nil
}

// SubscriptionRequest is what a subscription token must match.
type SubscriptionRequest struct {
	Token   string
	Source  Source
	Channel string
	User    string
	Client  string
}

// Subscription verifies a subscription token for a channel.
func (v *Verifier) Subscription(req SubscriptionRequest) (*SubscriptionGrant, *Reason) {
	src := req.Source
	if src == "" {
		src = SourceSubscribeCommand
	}
	claims, fp, r := v.verify(req.Token, src)
	if r != nil {
		return nil, r
	}
	fail := func(code Code, hint, format string, args ...any) (*SubscriptionGrant, *Reason) {
		return nil, &Reason{Code: code, Detail: fmt.Sprintf(format, args...), Hint: hint, Source: src, KeyFingerprint: fp}
	}
	ch, ok, err := claims.str("channel")
	if err != nil {
		return fail(ClaimInvalid, "", "subscription token claim channel %s", err)
	}
	if !ok || ch == "" {
		return fail(ClaimInvalid, "a connection token cannot be used to subscribe; mint a subscription token with a channel claim",
			"subscription token has no channel claim")
	}
	sub, _, err := claims.userClaim()
	if err != nil {
		return fail(ClaimInvalid, "", "subscription token claim sub %s", err)
	}
	if ch != req.Channel {
		return fail(SubscriptionTokenMismatch, "mint the subscription token for the channel being subscribed",
			"sub token channel %q != channel %q", ch, req.Channel)
	}
	if sub != req.User {
		return fail(SubscriptionTokenMismatch, "the sub claim of a subscription token must equal the connection's user",
			"sub token user %q != connection user %q", sub, req.User)
	}
	client, _, err := claims.str("client")
	if err != nil {
		return fail(ClaimInvalid, "", "subscription token claim client %s", err)
	}
	if client != "" && client != req.Client {
		return fail(SubscriptionTokenMismatch, "the client claim must be this connection's client id",
			"sub token client %q != client %q", client, req.Client)
	}
	if r := v.checkTimes(claims, src); r != nil {
		r.KeyFingerprint = fp
		return nil, r
	}
	g := &SubscriptionGrant{}
	if g.ExpireAt, r = v.expiry(claims, src); r != nil {
		return nil, r
	}
	if g.Info, r = claims.rawJSON("info", "b64info", v.policy.InfoMaxSize, src); r != nil {
		return nil, r
	}
	if g.Data, r = claims.rawJSON("data", "b64data", v.policy.InfoMaxSize, src); r != nil {
		return nil, r
	}
	if raw, ok := claims["override"]; ok {
		o, err := decodeOverride(raw)
		if err != nil {
			return fail(ClaimInvalid, "", "claim override: %s", err)
		}
		g.Override = o
	}
	return g, nil
}

// verify checks size, structure, algorithm and signature and returns the claims.
func (v *Verifier) verify(token string, src Source) (claimSet, string, *Reason) {
	if len(token) > MaxTokenSize {
		return nil, "", &Reason{Code: TokenTooLarge, Source: src,
			Detail: fmt.Sprintf("token is %d bytes, limit is %d", len(token), MaxTokenSize),
			Hint:   "keep large data out of the token; put it in info via your backend"}
	}
	keys := v.keys.p.Load()
	if keys.Empty() {
		return nil, "", &Reason{Code: KeysNotConfigured, Source: src,
			Detail: "a token was sent but no verification key is configured",
			Hint:   "set client.token.hmac_secret_key (or --hmac-secret)"}
	}
	var reason *Reason
	var tried []*Key
	claims := claimSet{}
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		alg, _ := t.Header["alg"].(string)
		kid, _ := t.Header["kid"].(string)
		tried = keys.forAlg(alg, kid)
		if len(tried) == 0 {
			if alg == "" {
				alg = "(none)"
			}
			reason = &Reason{Code: AlgNotAllowed, Source: src,
				Detail: fmt.Sprintf("token alg %s has no configured key; accepted: %s", alg, keys.algs()),
				Hint:   "sign tokens with an algorithm of a configured key"}
			return nil, errors.New(string(AlgNotAllowed))
		}
		set := jwt.VerificationKeySet{}
		for _, k := range tried {
			set.Keys = append(set.Keys, k.material)
		}
		return set, nil
	})
	if reason != nil {
		return nil, "", reason
	}
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenSignatureInvalid):
			fps := make([]string, len(tried))
			for i, k := range tried {
				fps[i] = k.Fingerprint
			}
			fp := strings.Join(fps, ",")
			return nil, fp, &Reason{Code: SignatureInvalid, Source: src, KeyFingerprint: fp,
				Detail: "signature does not match key " + fp,
				Hint:   "the token was signed with a different secret; compare key fingerprints (herald prints them at start)"}
		default:
			return nil, "", &Reason{Code: TokenMalformed, Source: src,
				Detail: "not a valid JWT: " + malformedDetail(err),
				Hint:   "send the compact JWT (header.payload.signature) without a Bearer prefix or quotes"}
		}
	}
	fp := ""
	if len(tried) == 1 {
		fp = tried[0].Fingerprint
	}
	return claims, fp, nil
}

func malformedDetail(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "token is malformed: ")
	return Truncate(msg, 80)
}

// connectionIdentity turns verified connection claims into an Identity.
func (v *Verifier) connectionIdentity(c claimSet, src Source) (*Identity, *Reason) {
	bad := func(format string, args ...any) (*Identity, *Reason) {
		return nil, &Reason{Code: ClaimInvalid, Source: src, Detail: fmt.Sprintf(format, args...)}
	}
	user, _, err := c.userClaim()
	if err != nil {
		return bad("claim sub %s", err)
	}
	if _, ok := c["channel"]; ok {
		r := &Reason{Code: ClaimInvalid, Source: src,
			Detail: "connection JWT contains a channel claim (this looks like a subscription token)",
			Hint:   "connect with a connection token; use subscription tokens only in subscribe"}
		return nil, r
	}
	if r := v.checkTimes(c, src); r != nil {
		return nil, r
	}
	if user == "" && v.policy.DisallowAnonymousTokens {
		return nil, &Reason{Code: AnonymousTokenRefused, Source: src,
			Detail: "token has an empty sub and anonymous tokens are disallowed",
			Hint:   "put the user id in sub, or unset client.disallow_anonymous_connection_tokens"}
	}
	id := &Identity{User: user, Source: src}
	var r *Reason
	if id.ExpireAt, r = v.expiry(c, src); r != nil {
		return nil, r
	}
	if id.Info, r = c.rawJSON("info", "b64info", v.policy.InfoMaxSize, src); r != nil {
		return nil, r
	}
	if raw, ok := c["meta"]; ok && !isNull(raw) {
		id.Meta = compactJSON(raw)
	}
	if raw, ok := c["channels"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &id.Channels); err != nil {
			return bad("claim channels must be an array of strings")
		}
	}
	if raw, ok := c["subs"]; ok && !isNull(raw) {
		var subs map[string]json.RawMessage
		if err := json.Unmarshal(raw, &subs); err != nil {
			return bad("claim subs must be an object of channel to options")
		}
		id.Subs = make(map[string]SubOptions, len(subs))
		for ch, rawOpts := range subs {
			opts, err := decodeSubOptions(rawOpts, v.policy.InfoMaxSize)
			if err != nil {
				return bad("claim subs[%q]: %s", ch, err)
			}
			id.Subs[ch] = opts
		}
		for ch := range id.Subs {
			if !contains(id.Channels, ch) {
				id.Channels = append(id.Channels, ch)
			}
		}
	}
	return id, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkTimes applies exp and nbf with the configured leeway.
func (v *Verifier) checkTimes(c claimSet, src Source) *Reason {
	now := v.now()
	exp, hasExp, err := c.num("exp")
	if err != nil {
		return &Reason{Code: ClaimInvalid, Source: src, Detail: "claim exp " + err.Error()}
	}
	if hasExp && now.After(time.Unix(exp, 0).Add(v.policy.Leeway)) {
		ago := now.Sub(time.Unix(exp, 0)).Truncate(time.Second)
		return &Reason{Code: TokenExpired, Source: src,
			Detail: fmt.Sprintf("token expired %s ago", ago),
			Hint:   "get a fresh token (the SDK calls getToken on this code)"}
	}
	nbf, hasNbf, err := c.num("nbf")
	if err != nil {
		return &Reason{Code: ClaimInvalid, Source: src, Detail: "claim nbf " + err.Error()}
	}
	if hasNbf && now.Add(v.policy.Leeway).Before(time.Unix(nbf, 0)) {
		return &Reason{Code: TokenNotYetValid, Source: src,
			Detail: fmt.Sprintf("token not valid for another %s (nbf)", time.Unix(nbf, 0).Sub(now).Truncate(time.Second)),
			Hint:   "check the clocks of the issuer and the server, or configure client.token.leeway"}
	}
	return nil
}

// expiry returns when the connection or subscription expires: expire_at when
// present (0 = never), else exp; capped at now + 1 year.
func (v *Verifier) expiry(c claimSet, src Source) (time.Time, *Reason) {
	at, has, err := c.num("expire_at")
	if err != nil {
		return time.Time{}, &Reason{Code: ClaimInvalid, Source: src, Detail: "claim expire_at " + err.Error()}
	}
	if !has {
		at, has, _ = c.num("exp")
	}
	if !has || at == 0 {
		return time.Time{}, nil
	}
	t := time.Unix(at, 0)
	if limit := v.now().Add(maxExpiry); t.After(limit) {
		t = limit
	}
	return t, nil
}

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
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, fmt.Errorf("must be a string, got %s", jsonKind(raw))
	}
	return s, true, nil
}

func (c claimSet) userClaim() (string, bool, error) { return c.str("sub") }

func (c claimSet) num(name string) (int64, bool, error) {
	raw, ok := c[name]
	if !ok || isNull(raw) {
		return 0, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, true, fmt.Errorf("must be a number (unix seconds), got %s", jsonKind(raw))
	}
	return int64(f), true, nil
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
