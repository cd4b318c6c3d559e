package auth

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	// Disabled marks a token found in a source that is switched off: it is
	// never used, but its presence explains a refusal.
	Disabled bool
	// Ticket, when set, is the reason a ticket could not be redeemed.
	Ticket *Reason
	// Malformed, when set, is why the place holds something that is not a
	// token as that place wants it (an Authorization header that is not
	// "Bearer <token>"); Token is then empty.
	Malformed *Reason
	// Param names the URL parameter of a query token.
	Param string
}

// Request is what a front door knows about a connection attempt.
type Request struct {
	Transport  string // "websocket", ...
	Tokens     []Candidate
	Origin     string
	RemoteAddr string
	// AnyCable, when set, verifies the token by AnyCable's JWT
	// identification rules (the ext claim) instead of Herald's
	// connection-token rules.
	AnyCable *AnyCableRules
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
	// Token facts kept for live revocation checks.
	JTI      string
	IssuedAt time.Time // zero when the token has no iat
	// Set by other authorities: the connect proxy's result data for the
	// client, and the auth callout's channel grants and connection limit.
	ConnectData    json.RawMessage
	Grants         *Grants
	MaxConnections int
	// Identifiers are Action Cable connection identifiers (an AnyCable
	// token's ext claim, or what the app's RPC connect answered): opaque
	// and kept byte for byte, since the app matches them exactly.
	Identifiers string
}

// SubscriptionGrant is an accepted subscription token.
type SubscriptionGrant struct {
	ExpireAt time.Time // zero means never
	Info     json.RawMessage
	Data     json.RawMessage
	Override *Override
}

// Rules are the claim rules of one kind of token.
type Rules struct {
	// Leeway is the clock-skew allowance for exp, nbf and iat.
	Leeway time.Duration
	// MaxLifetime refuses tokens issued longer ago than this; 0 = no limit.
	MaxLifetime time.Duration
	// Audience and Issuer, when set, list the accepted aud and iss values.
	Audience []string
	Issuer   []string
	// UserClaim names the claim (or dotted path) holding the user id; "" = sub.
	UserClaim string
	// InfoClaim and MetaClaim name the claims holding info and meta; "" = info, meta.
	InfoClaim string
	MetaClaim string
	// InfoMaxSize bounds the info/data JSON a token may carry; 0 = no bound.
	InfoMaxSize int
	// RequireExp refuses tokens without exp.
	RequireExp bool
	// MaxLifetimeWithoutExp, when set, makes a token without exp expire this
	// long after its iat (a token with neither is refused).
	MaxLifetimeWithoutExp time.Duration
	// Setting is the configuration path of these rules, for messages
	// ("client.token"); "" means client.token.
	Setting string
}

// setting names a key of the rules' configuration, for messages.
func (r *Rules) setting(key string) string {
	return orDefault(r.Setting, "client.token") + "." + key
}

// Policy holds the switches that decide what happens without a token, and
// the claim rules.
type Policy struct {
	// AllowAnonymous accepts connections without a token as anonymous.
	AllowAnonymous bool
	// DisallowAnonymousTokens refuses tokens with an empty user.
	DisallowAnonymousTokens bool
	// Rules apply to connection tokens, and to subscription tokens unless
	// Subscription is set.
	Rules
	Subscription *Rules
	// Sources are the places connections may present tokens; refusals of a
	// connection without a usable token name them. nil: the default places.
	Sources *Sources
}

// Verifier verifies connection, refresh and subscription tokens. It is safe
// for concurrent use; keys can be swapped at any time with SetKeys.
type Verifier struct {
	keys    keySetHolder
	subKeys keySetHolder // nil set: use keys
	policy  Policy
	now     func() time.Time
	cache   *verifiedCache
	macs    sync.Map // macPoolKey -> *sync.Pool of HMAC states
	revoked *Revocations
	// Refusals keeps the most recent refusals for /debug/auth.
	Refusals *RefusalLog
}

// NewVerifier returns a verifier with the given keys and policy.
func NewVerifier(keys *KeySet, p Policy) *Verifier {
	v := &Verifier{policy: p, now: time.Now, cache: newVerifiedCache(10000), Refusals: NewRefusalLog(200)}
	v.revoked = NewRevocations(func() time.Time { return v.now() })
	// Cached verifications never survive a revocation (they are checked
	// against the list anyway; this keeps the cache's promise simple).
	v.revoked.OnChange(v.cache.clear)
	v.keys.p.Store(keys)
	// Tokens are parsed by parseJWT and claims validated here, so that each
	// failure becomes its own Reason; golang-jwt checks asymmetric signatures.
	// The jku, x5u and jwk headers are never consulted: keys come only from
	// the configured set, and kid is only a lookup key into it.
	return v
}

// SetKeys swaps the connection key set atomically and forgets cached verifications.
func (v *Verifier) SetKeys(keys *KeySet) {
	v.keys.p.Store(keys)
	v.cache.clear()
	v.macs.Clear()
}

// SetSubscriptionKeys sets a separate key set for subscription tokens (nil:
// use the connection keys).
func (v *Verifier) SetSubscriptionKeys(keys *KeySet) {
	v.subKeys.p.Store(keys)
	v.cache.clear()
	v.macs.Clear()
}

// ForgetVerified drops every cached verification; key providers call it when
// their keys change, so a withdrawn key stops verifying at once.
func (v *Verifier) ForgetVerified() { v.cache.clear() }

// Keys returns the current connection key set.
func (v *Verifier) Keys() *KeySet { return v.keys.p.Load() }

// SubscriptionKeys returns the key set subscription tokens are verified with.
func (v *Verifier) SubscriptionKeys() *KeySet {
	if s := v.subKeys.p.Load(); s != nil {
		return s
	}
	return v.Keys()
}

// Revocations returns the revocation list.
func (v *Verifier) Revocations() *Revocations { return v.revoked }

// SetClock replaces the clock (tests).
func (v *Verifier) SetClock(now func() time.Time) { v.now = now }

// Policy returns the verifier's policy.
func (v *Verifier) Policy() Policy { return v.policy }

func (v *Verifier) subRules() *Rules {
	if v.policy.Subscription != nil {
		return v.policy.Subscription
	}
	return &v.policy.Rules
}

// pick chooses the token of a connection attempt: the enabled sources must
// agree, a token only in a disabled source is refused, and without any token
// the connection is anonymous or refused.
func (v *Verifier) pick(req *Request) (*Candidate, *Reason) {
	var chosen, disabled, malformed *Candidate
	for i := range req.Tokens {
		c := &req.Tokens[i]
		if c.Ticket != nil && !c.Disabled {
			r := *c.Ticket
			return nil, &r
		}
		if c.Malformed != nil {
			if malformed == nil {
				malformed = c
			}
			continue
		}
		if c.Token == "" {
			continue
		}
		if c.Disabled {
			if disabled == nil {
				disabled = c
			}
			continue
		}
		if chosen == nil {
			chosen = c
			continue
		}
		if subtleEqual(chosen.Token, c.Token) {
			continue
		}
		return nil, &Reason{Code: TokenAmbiguous, Source: chosen.Source,
			Detail: fmt.Sprintf("different tokens in %s and %s", describeSource(chosen.Source), describeSource(c.Source)),
			Hint:   "send the token in one place only"}
	}
	if chosen != nil {
		return chosen, nil
	}
	src := v.policy.Sources
	if src == nil {
		src = &defaultSources
	}
	browser := req.Origin != ""
	switch {
	case malformed != nil && !malformed.Disabled:
		r := *malformed.Malformed
		return nil, &r
	case disabled != nil:
		return nil, src.disabledReason(disabled, browser)
	case malformed != nil:
		return nil, src.disabledReason(malformed, browser)
	case v.policy.AllowAnonymous:
		return nil, nil
	}
	return nil, src.missingReason(browser)
}

// defaultSources explain refusals when the policy names no sources.
var defaultSources = Sources{Enabled: []Source{SourceConnectCommand, SourceHeader, SourceSubprotocol, SourceTicket},
	Cookie: "herald_token", QueryParam: "token"}

func subtleEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return ha == hb
}

// Connect decides a connection attempt.
func (v *Verifier) Connect(req *Request) (*Identity, *Reason) {
	if req.AnyCable != nil {
		return v.anyCableConnect(req)
	}
	cand, r := v.pick(req)
	if r != nil {
		return nil, r
	}
	if cand == nil {
		return &Identity{}, nil
	}
	return v.connectToken(cand.Token, cand.Source)
}

func (v *Verifier) connectToken(token string, src Source) (*Identity, *Reason) {
	claims, key, r := v.verify(token, src, v.Keys())
	if r != nil {
		return nil, r
	}
	id, r := v.connectionIdentity(claims, src)
	if r != nil {
		r.KeyFingerprint = key.Fingerprint
		r.annotate(claims, &v.policy.Rules)
		return nil, r
	}
	id.KeyFingerprint = key.Fingerprint
	return id, nil
}

// Refresh verifies a token sent to extend a live connection of user.
func (v *Verifier) Refresh(token string, user string) (*Identity, *Reason) {
	if token == "" {
		return nil, &Reason{Code: TokenMissing, Detail: "refresh without a token", Source: SourceRefreshCommand,
			Hint: "the client's getToken must return a new connection token"}
	}
	id, r := v.connectToken(token, SourceRefreshCommand)
	if r != nil {
		return nil, r
	}
	if id.User != user {
		return nil, &Reason{Code: TokenUserMismatch, Source: SourceRefreshCommand, KeyFingerprint: id.KeyFingerprint,
			Detail: fmt.Sprintf("refresh token is for user %q, connection is user %q", id.User, user),
			Hint:   "getToken must return a token for the same user as the connection"}
	}
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
	rules := v.subRules()
	claims, key, r := v.verify(req.Token, src, v.SubscriptionKeys())
	if r != nil {
		return nil, r
	}
	fail := func(code Code, hint, format string, args ...any) (*SubscriptionGrant, *Reason) {
		r := &Reason{Code: code, Detail: fmt.Sprintf(format, args...), Hint: hint, Source: src, KeyFingerprint: key.Fingerprint}
		r.annotate(claims, rules)
		return nil, r
	}
	ch, ok, err := claims.str("channel")
	if err != nil {
		return fail(ClaimInvalid, "", "subscription token claim channel %s", err)
	}
	if !ok || ch == "" {
		return fail(ClaimInvalid, "a connection token cannot be used to subscribe; mint a subscription token with a channel claim",
			"subscription token has no channel claim")
	}
	sub, r := claims.user(rules)
	if r != nil {
		r.Source, r.KeyFingerprint = src, key.Fingerprint
		return nil, r
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
	if r := v.checkClaims(claims, rules, src); r != nil {
		r.KeyFingerprint = key.Fingerprint
		return nil, r
	}
	g := &SubscriptionGrant{}
	if g.ExpireAt, r = v.expiry(claims, src, rules); r != nil {
		return nil, r
	}
	if g.Info, r = claims.rawJSON("info", "b64info", rules.InfoMaxSize, src); r != nil {
		return nil, r
	}
	if g.Data, r = claims.rawJSON("data", "b64data", rules.InfoMaxSize, src); r != nil {
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

// verify checks size, structure, algorithm and signature and returns the
// claims and the key that verified them.
func (v *Verifier) verify(token string, src Source, keys *KeySet) (claimSet, *Key, *Reason) {
	if len(token) > MaxTokenSize {
		return nil, nil, &Reason{Code: TokenTooLarge, Source: src,
			Detail: fmt.Sprintf("token is %d bytes, limit is %d", len(token), MaxTokenSize),
			Hint:   "keep large data out of the token; put it in info via your backend"}
	}
	if keys.Empty() {
		return nil, nil, &Reason{Code: KeysNotConfigured, Source: src,
			Detail: "a token was sent but no verification key is configured",
			Hint:   "set client.token.hmac_secret_key (or --hmac-secret) or client.token.keys"}
	}
	t, err := parseJWT(token)
	if err != nil {
		return nil, nil, parseReason(err, token, src, keys)
	}
	if r := keys.checkTyp(t); r != nil {
		r.Source, r.Alg, r.Kid = src, t.alg, t.kid
		r.annotate(t.claims, nil)
		return nil, nil, r
	}
	hmacToken := AlgFamily(t.alg) == FamilyHMAC
	if !hmacToken {
		if c, k, ok := v.cache.get(token, v.now()); ok && keys.has(k) {
			return c, k, nil
		}
	}
	tried, r := keys.Lookup(t.alg, t.kid, v.now())
	if r != nil {
		r.Source, r.Alg, r.Kid = src, t.alg, t.kid
		r.annotate(t.claims, nil)
		return nil, nil, r
	}
	key, r := v.signedBy(t, tried, keys, src)
	if r != nil {
		return nil, nil, r
	}
	if !hmacToken {
		// Asymmetric verification is the expensive part of a connect; a
		// reconnect storm with the same token pays it once.
		v.cache.put(token, t.claims, key, v.now())
	}
	return t.claims, key, nil
}

// signedBy returns the key of tried that verifies t's signature, or the
// reason none does.
func (v *Verifier) signedBy(t *rawToken, tried []*Key, keys *KeySet, src Source) (*Key, *Reason) {
	for _, k := range tried {
		if v.verifySignature(k, t) {
			return k, nil
		}
	}
	// A key that stopped verifying (a previous secret after its
	// valid_until) says so, rather than "a different key".
	for _, k := range keys.expired(t.alg, t.kid, v.now()) {
		if v.verifySignature(k, t) {
			r := &Reason{Code: SignatureInvalid, Source: src, KeyFingerprint: k.Fingerprint, Alg: t.alg, Kid: t.kid,
				Detail: fmt.Sprintf("key %s stopped verifying at %s", k.Fingerprint, k.NotAfter.UTC().Format(time.RFC3339)),
				Hint:   "sign with the current key; the previous one was valid only during the rotation"}
			r.annotate(t.claims, nil)
			return nil, r
		}
	}
	fps := make([]string, len(tried))
	for i, k := range tried {
		fps[i] = k.Fingerprint
	}
	fp := strings.Join(fps, ",")
	r := &Reason{Code: SignatureInvalid, Source: src, KeyFingerprint: fp, Alg: t.alg, Kid: t.kid,
		Detail: "signature does not match key " + fp,
		Hint:   "the token was signed with a different key; compare key fingerprints (herald keys, and the startup log)"}
	r.annotate(t.claims, nil)
	return nil, r
}

// verifySignature checks t's signature with k, whose pinned algorithms
// include t.alg (KeySet.Lookup made sure).
func (v *Verifier) verifySignature(k *Key, t *rawToken) bool {
	if k.Family == FamilyHMAC {
		return v.verifyHMAC(k, t.alg, t.signingInput, t.sig)
	}
	m := jwt.GetSigningMethod(t.alg)
	if m == nil {
		return false
	}
	return m.Verify(t.signingInput, t.sig, k.Material) == nil
}

// connectionIdentity turns verified connection claims into an Identity.
func (v *Verifier) connectionIdentity(c claimSet, src Source) (*Identity, *Reason) {
	rules := &v.policy.Rules
	bad := func(format string, args ...any) (*Identity, *Reason) {
		return nil, &Reason{Code: ClaimInvalid, Source: src, Detail: fmt.Sprintf(format, args...)}
	}
	user, r := c.user(rules)
	if r != nil {
		r.Source = src
		return nil, r
	}
	if _, ok := c["channel"]; ok {
		return nil, &Reason{Code: ClaimInvalid, Source: src,
			Detail: "connection JWT contains a channel claim (this looks like a subscription token)",
			Hint:   "connect with a connection token; use subscription tokens only in subscribe"}
	}
	if r := v.checkClaims(c, rules, src); r != nil {
		return nil, r
	}
	if user == "" && v.policy.DisallowAnonymousTokens {
		return nil, anonymousRefused(src)
	}
	id := &Identity{User: user, Source: src}
	id.JTI, _, _ = c.str("jti")
	if iat, ok, _ := c.num("iat"); ok {
		id.IssuedAt = time.Unix(iat, 0)
	}
	if r := v.revoked.Check(user, id.JTI, id.IssuedAt); r != nil {
		r.Source = src
		return nil, r
	}
	if id.ExpireAt, r = v.expiry(c, src, rules); r != nil {
		return nil, r
	}
	infoClaim, metaClaim := orDefault(rules.InfoClaim, "info"), orDefault(rules.MetaClaim, "meta")
	if infoClaim == "info" {
		if id.Info, r = c.rawJSON("info", "b64info", rules.InfoMaxSize, src); r != nil {
			return nil, r
		}
	} else if raw, ok := c.path(infoClaim); ok {
		if rules.InfoMaxSize > 0 && len(raw) > rules.InfoMaxSize {
			return bad("claim %s is %d bytes, limit %d", infoClaim, len(raw), rules.InfoMaxSize)
		}
		id.Info = compactJSON(raw)
	}
	if raw, ok := c.path(metaClaim); ok {
		id.Meta = compactJSON(raw)
	}
	for name, raw := range map[string][]byte{infoClaim: id.Info, metaClaim: id.Meta} {
		if at := InvalidUTF8At(raw); at >= 0 {
			return bad("claim %s is not valid UTF-8 (first invalid byte at offset %d); clients would fail the connection that carries it", name, at)
		}
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
			opts, err := decodeSubOptions(rawOpts, rules.InfoMaxSize)
			if err != nil {
				return bad("claim subs[%q]: %s", ch, err)
			}
			if InvalidUTF8At(opts.Info) >= 0 || InvalidUTF8At(opts.Data) >= 0 {
				return bad("claim subs[%q]: info or data is not valid UTF-8", ch)
			}
			id.Subs[ch] = opts
		}
		for ch := range id.Subs {
			if !slices.Contains(id.Channels, ch) {
				id.Channels = append(id.Channels, ch)
			}
		}
	}
	return id, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// RevokedIdentity reports whether a live connection's token has been revoked
// since it connected.
func (v *Verifier) RevokedIdentity(user, jti string, issuedAt time.Time) *Reason {
	return v.revoked.Check(user, jti, issuedAt)
}
