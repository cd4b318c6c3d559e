package auth

import (
	"encoding/json"
	"log/slog"
	"strings"
	"unicode/utf8"
)

// Code is the stable, documented identifier of a refusal (see docs/auth.md).
type Code string

// The catalogue of refusal codes. Each is documented in docs/auth.md.
const (
	// TokenMissing: no token was presented and anonymous access is not allowed.
	TokenMissing Code = "token_missing"
	// TokenMalformed: the token is not a well-formed JWT (segments, base64, JSON).
	TokenMalformed Code = "token_malformed"
	// TokenTooLarge: the token is larger than the configured limit; it is refused before parsing.
	TokenTooLarge Code = "token_too_large"
	// AlgNotAllowed: the token's alg has no configured key (this includes "none").
	AlgNotAllowed Code = "alg_not_allowed"
	// SignatureInvalid: no configured key verifies the signature.
	SignatureInvalid Code = "signature_invalid"
	// TokenExpired: exp is in the past (beyond the leeway).
	TokenExpired Code = "token_expired"
	// TokenNotYetValid: nbf is in the future (beyond the leeway).
	TokenNotYetValid Code = "token_not_yet_valid"
	// ClaimInvalid: a claim has the wrong type or a forbidden value.
	ClaimInvalid Code = "claim_invalid"
	// AnonymousTokenRefused: the token has an empty sub and anonymous tokens are disallowed.
	AnonymousTokenRefused Code = "anonymous_token_refused"
	// KeysNotConfigured: a token was presented but no verification key is configured.
	KeysNotConfigured Code = "keys_not_configured"
	// SubscriptionTokenMismatch: a subscription token was issued for another channel, user or client.
	SubscriptionTokenMismatch Code = "subscription_token_mismatch"
	// TokenUserMismatch: a refresh token names a different user than the connection.
	TokenUserMismatch Code = "token_user_mismatch"
	// ChannelNotPermitted: the channel's rules do not let this connection do what it asked.
	ChannelNotPermitted Code = "channel_not_permitted"
	// OriginNotAllowed: the request's Origin matches none of client.allowed_origins.
	OriginNotAllowed Code = "origin_not_allowed"
	// UnknownKid: keys accept the token's alg, but none has its kid.
	UnknownKid Code = "unknown_kid"
	// JWKSUnavailable: a JWKS endpoint that would verify the token has never served keys.
	JWKSUnavailable Code = "jwks_unavailable"
	// TokenSourceDisabled: a token was found only in a source that is switched off.
	TokenSourceDisabled Code = "token_source_disabled"
	// TokenAmbiguous: two sources carried different tokens.
	TokenAmbiguous Code = "token_ambiguous"
	// TokenTooOld: the token was issued (iat) longer ago than client.token.max_lifetime, or has no iat while it is set.
	TokenTooOld Code = "token_too_old"
	// AudienceMismatch: aud does not name an accepted audience.
	AudienceMismatch Code = "audience_mismatch"
	// IssuerMismatch: iss is not an accepted issuer.
	IssuerMismatch Code = "issuer_mismatch"
	// UserClaimMissing: the configured user claim is absent although anonymous tokens are refused.
	UserClaimMissing Code = "user_claim_missing"
	// TokenRevoked: the token (jti), or every token of its user issued before a time, was revoked.
	TokenRevoked Code = "token_revoked"
	// TicketInvalid: a connection ticket is unknown, expired or already used.
	TicketInvalid Code = "ticket_invalid"
	// CritNotUnderstood: the token's crit header names an extension Herald does not understand (RFC 7515 §4.1.11).
	CritNotUnderstood Code = "crit_not_understood"
	// TypNotAllowed: the key set accepts only tokens of certain typ values, and the token's typ is another or missing.
	TypNotAllowed Code = "typ_not_allowed"
	// ExpRequired: the token has no exp, and exp is required (require_exp, or max_lifetime_without_exp without iat).
	ExpRequired Code = "exp_required"

	// Refusals of the backend proxies (internal/proxy). The first four are
	// temporary: the backend may come back, and clients retry with backoff.

	// ProxyTimeout: the backend did not answer within the proxy's timeout.
	ProxyTimeout Code = "proxy_timeout"
	// ProxyUnreachable: the connection to the backend failed (refused, DNS, TLS).
	ProxyUnreachable Code = "proxy_unreachable"
	// ProxyOverloaded: the proxy's concurrency limit was reached.
	ProxyOverloaded Code = "proxy_overloaded"
	// ProxyCircuitOpen: the backend failed repeatedly; calls pause for a cool-down.
	ProxyCircuitOpen Code = "proxy_circuit_open"
	// ProxyHTTPStatus: the backend answered with a non-2xx status.
	ProxyHTTPStatus Code = "proxy_http_status"
	// ProxyBadJSON: the backend's body is not JSON.
	ProxyBadJSON Code = "proxy_bad_json"
	// ProxyBadResponse: the JSON is not exactly one of result, error, disconnect, or has wrong types.
	ProxyBadResponse Code = "proxy_bad_response"
	// ProxyEmptyUser: a connect result has an empty user while anonymous connections are not allowed.
	ProxyEmptyUser Code = "proxy_empty_user"
	// ProxyDenied: the backend refused with an error or disconnect of its own, passed to the client.
	ProxyDenied Code = "proxy_denied"

	// Refusals of the signed auth callout (internal/callout).

	// CalloutUnavailable: the callout service did not answer in time, or not with 200 (temporary).
	CalloutUnavailable Code = "callout_unavailable"
	// CalloutUnsigned: the answer is not a JWT signed with a configured algorithm.
	CalloutUnsigned Code = "callout_unsigned"
	// CalloutBadSignature: the answer is signed by another key.
	CalloutBadSignature Code = "callout_bad_signature"
	// CalloutExpired: the answer is expired or has no exp.
	CalloutExpired Code = "callout_expired"
	// CalloutWrongAudience: the answer is for another Herald node.
	CalloutWrongAudience Code = "callout_wrong_audience"
	// CalloutReplay: the answer carries another request's nonce.
	CalloutReplay Code = "callout_replay"
	// CalloutDenied: the callout service refused the connection.
	CalloutDenied Code = "callout_denied"
	// CalloutBadResponse: the answer's claims are malformed (no user, bad types).
	CalloutBadResponse Code = "callout_bad_response"

	// Refusals of the server API and the operator endpoints.

	// APIKeyNotConfigured: http_api.key is empty (and http_api.insecure off): every API request is refused.
	APIKeyNotConfigured Code = "api_key_not_configured"
	// APIKeyMissing: an API request carries no key.
	APIKeyMissing Code = "api_key_missing"
	// APIKeyWrong: an API request's key does not match http_api.key.
	APIKeyWrong Code = "api_key_wrong"
	// AdminKeyWrong: an operator request's X-Admin-Key is missing or wrong.
	AdminKeyWrong Code = "admin_key_wrong"

	// Refusals of the Mercure front door (internal/mercure).

	// TopicNotPermitted: a valid Mercure token whose mercure.publish selectors do not cover every topic of the update.
	TopicNotPermitted Code = "topic_not_permitted"

	// Refusals of the NATS auth callout service (internal/natscallout).

	// NATSRequestInvalid: an authorization request from NATS does not verify (signature, issuer, audience, expiry, encryption).
	NATSRequestInvalid Code = "nats_request_invalid"
	// NATSAccountNotAllowed: the account a user would be placed in is not one of the configured accounts.
	NATSAccountNotAllowed Code = "nats_account_not_allowed"
	// NATSAnswerInvalid: Herald's own answer would fail a check NATS makes (signer, user key, server id, account, expiry).
	NATSAnswerInvalid Code = "nats_answer_invalid"
	// Refusals of the Action Cable front door (internal/actioncable).

	// SignedStreamMalformed: a signed stream name is not <base64 JSON string>--<hex HMAC-SHA256>.
	SignedStreamMalformed Code = "signed_stream_malformed"
	// SignedStreamInvalid: a signed stream name's digest does not match the configured key.
	SignedStreamInvalid Code = "signed_stream_invalid"

	// Refusals of the application's AnyCable RPC. The first two are
	// temporary: the app may come back.

	// RPCUnreachable: the app's RPC endpoint could not be reached (refused, DNS, TLS), retries included.
	RPCUnreachable Code = "rpc_unreachable"
	// RPCTimeout: the app did not answer within actioncable.rpc.timeout.
	RPCTimeout Code = "rpc_timeout"
	// RPCUnauthorized: the app answered 401: it refused Herald's RPC secret.
	RPCUnauthorized Code = "rpc_unauthorized"
	// RPCHTTPStatus: the app answered another non-2xx status.
	RPCHTTPStatus Code = "rpc_http_status"
	// RPCBadJSON: the app's body is not JSON.
	RPCBadJSON Code = "rpc_bad_json"
	// RPCBadResponse: the JSON is not an AnyCable RPC answer (a wrong type, an unknown status).
	RPCBadResponse Code = "rpc_bad_response"
	// RPCError: the app answered status ERROR (an exception in its connection or channel class).
	RPCError Code = "rpc_error"
	// RPCDenied: the app answered status FAILURE (reject_unauthorized_connection, a rejected subscription).
	RPCDenied Code = "rpc_denied"
)

// Catalogue lists every refusal code; docs/auth.md documents each one.
var Catalogue = []Code{
	TokenMissing, TokenMalformed, TokenTooLarge, AlgNotAllowed, SignatureInvalid, TokenExpired,
	TokenNotYetValid, ClaimInvalid, AnonymousTokenRefused, KeysNotConfigured, SubscriptionTokenMismatch,
	TokenUserMismatch, ChannelNotPermitted, OriginNotAllowed, UnknownKid, JWKSUnavailable,
	TokenSourceDisabled, TokenAmbiguous, TokenTooOld, AudienceMismatch, IssuerMismatch,
	UserClaimMissing, TokenRevoked, TicketInvalid, CritNotUnderstood, TypNotAllowed, ExpRequired,
	ProxyTimeout, ProxyUnreachable, ProxyOverloaded, ProxyCircuitOpen, ProxyHTTPStatus, ProxyBadJSON,
	ProxyBadResponse, ProxyEmptyUser, ProxyDenied, CalloutUnavailable, CalloutUnsigned, CalloutBadSignature,
	CalloutExpired, CalloutWrongAudience, CalloutReplay, CalloutDenied, CalloutBadResponse,
	APIKeyNotConfigured, APIKeyMissing, APIKeyWrong, AdminKeyWrong, TopicNotPermitted,
	NATSRequestInvalid, NATSAccountNotAllowed, NATSAnswerInvalid,
	SignedStreamMalformed, SignedStreamInvalid,
	RPCUnreachable, RPCTimeout, RPCUnauthorized, RPCHTTPStatus, RPCBadJSON, RPCBadResponse, RPCError, RPCDenied,
}

// Source says where a token was found.
type Source string

// Token sources.
const (
	// SourceHeader is the Authorization: Bearer header of the upgrade request.
	SourceHeader Source = "header"
	// SourceSubprotocol is a WebSocket subprotocol entry herald-token.<token>.
	SourceSubprotocol Source = "subprotocol"
	// SourceCookie is a named cookie.
	SourceCookie Source = "cookie"
	// SourceQuery is a URL query parameter.
	SourceQuery Source = "query"
	// SourceTicket is a one-time ticket from POST /auth/ticket in the URL.
	SourceTicket Source = "ticket"
	// SourceConnectCommand is the token field of the protocol's connect message.
	SourceConnectCommand Source = "connect.token"
	// SourceSubscribeCommand is the token field of a subscribe message.
	SourceSubscribeCommand Source = "subscribe.token"
	// SourceRefreshCommand is the token field of a refresh message.
	SourceRefreshCommand Source = "refresh.token"
	// SourceSubRefreshCommand is the token field of a sub_refresh message.
	SourceSubRefreshCommand Source = "sub_refresh.token"
)

// Reason explains a refusal. It is data, not a string: front doors map Code to
// their wire codes and may show Detail and Hint to the client; logs get all of it.
type Reason struct {
	Code   Code
	Detail string // one line, no secrets, no token
	Hint   string // how to fix it
	Source Source // where the token came from, if any
	// KeyFingerprint names the key that was tried, when one was.
	KeyFingerprint string
	// Facts about the token for the log (read from its claims, which are
	// unverified when the signature failed). Never the token itself.
	Alg, Kid, Issuer, Audience, Subject string
	Expiry                              int64 // exp, unix seconds; 0 if none
	// Reply is the answer the team's backend chose itself (ProxyDenied):
	// front doors whose protocol has such codes pass it to the client.
	Reply *BackendReply
}

// BackendReply is a refusal in the words of the team's backend: an error
// (code, message, temporary) or a disconnect (code, reason), in the
// Centrifugo client protocol's codes that the proxy protocol uses.
type BackendReply struct {
	Disconnect bool
	Code       uint32
	Message    string
	Temporary  bool
}

// annotate records the token facts of claims on the reason, for the log.
func (r *Reason) annotate(c claimSet, rules *Rules) {
	if c == nil {
		return
	}
	r.Issuer, _, _ = c.str("iss")
	if auds, err := c.audiences(); err == nil {
		r.Audience = strings.Join(auds, ",")
	}
	name := "sub"
	if rules != nil && rules.UserClaim != "" {
		name = rules.UserClaim
	}
	if raw, ok := c.path(name); ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			r.Subject = Truncate(s, 64)
		}
	}
	r.Expiry, _, _ = c.num("exp")
}

// Error makes a Reason usable as an error.
func (r *Reason) Error() string {
	if r.Detail == "" {
		return string(r.Code)
	}
	return string(r.Code) + ": " + r.Detail
}

// Short returns "code: detail" cut to at most max bytes on a UTF-8 boundary,
// for wire places with a size limit such as a WebSocket close reason (123 bytes).
func (r *Reason) Short(max int) string {
	return Truncate(r.Error(), max)
}

// Compact returns "code: detail (hint)" in at most max bytes, for places
// with a size limit such as a WebSocket close reason: what does not fit is
// dropped from the end, the hint as a whole, then the end of the detail at a
// word boundary, marked with "…". The code comes first and whole.
func (r *Reason) Compact(max int) string {
	s := string(r.Code)
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	if r.Hint != "" && len(s)+len(r.Hint)+3 <= max {
		return s + " (" + r.Hint + ")"
	}
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	if max < len(r.Code)+len(ellipsis)+2 {
		return Truncate(string(r.Code), max)
	}
	cut := Truncate(s, max-len(ellipsis))
	if i := strings.LastIndexByte(cut, ' '); i > len(r.Code)+1 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:") + ellipsis
}

// LogAttrs returns the structured fields for a log line about this refusal.
func (r *Reason) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("reason", string(r.Code)), slog.String("detail", r.Detail)}
	if r.Hint != "" {
		attrs = append(attrs, slog.String("hint", r.Hint))
	}
	if r.Source != "" {
		attrs = append(attrs, slog.String("token_source", string(r.Source)))
	}
	if r.KeyFingerprint != "" {
		attrs = append(attrs, slog.String("key_fingerprint", r.KeyFingerprint))
	}
	for _, f := range []struct{ k, v string }{{"alg", r.Alg}, {"kid", r.Kid}, {"iss", r.Issuer}, {"aud", r.Audience}, {"sub", r.Subject}} {
		if f.v != "" {
			attrs = append(attrs, slog.String(f.k, Truncate(f.v, 64)))
		}
	}
	if r.Expiry != 0 {
		attrs = append(attrs, slog.Int64("exp", r.Expiry))
	}
	return attrs
}

// Truncate cuts s to at most max bytes without splitting a UTF-8 sequence.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
