package natscallout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/heraldhub/herald/internal/auth"
)

// The wire names of the auth callout (NATS server 2.10+).
const (
	// Subject is where NATS servers send authorization requests.
	Subject = "$SYS.REQ.USER.AUTH"
	// XKeyHeader carries the server's xkey when the request is encrypted.
	XKeyHeader = "Nats-Server-Xkey"
	// requestAudience is the aud of every authorization request.
	requestAudience = "nats-authorization-request"
	// maxError bounds the error text of a refusal answer (NATS logs it).
	maxError = 256
	// defaultWait bounds the decision of a request without an expiry
	// (NATS's default authorization timeout).
	defaultWait = 2 * time.Second
)

// Outcomes of one request, for the counters.
const (
	outcomeAccepted = iota
	outcomeRefused
	outcomeInvalid
)

// Token sources: the connect options a token may be read from.
const (
	SourceAuthToken auth.Source = "nats.auth_token"
	SourcePassword  auth.Source = "nats.pass"
	SourceJWT       auth.Source = "nats.jwt"
)

var sourceByName = map[string]auth.Source{"auth_token": SourceAuthToken, "password": SourcePassword, "jwt": SourceJWT}

// Decision is what became of one authorization request.
type Decision struct {
	// UserNkey is the per-attempt user key NATS generated; ServerID the
	// server that asked. Empty when the request did not verify.
	UserNkey, ServerID string
	// User and Account are the accepted user and the account it was placed in.
	User, Account string
	// Reason is set when the login was refused or the request was invalid.
	Reason *auth.Reason
	// Encrypted reports that the request and the answer were encrypted.
	Encrypted bool
	// Source and KeyFingerprint say where the accepted token was and which
	// key verified it.
	Source         auth.Source
	KeyFingerprint string
}

// request is a verified authorization request.
type request struct {
	claims     *jwt.AuthorizationRequestClaims
	serverXKey string // "" when not encrypted
}

// Answer decides one authorization request (the message's header and data as
// NATS sent them) and returns the answer to send back: a signed (and, when
// the request was encrypted, encrypted) authorization response, or nil when
// the request itself did not verify and no answer can be addressed (an empty
// reply makes NATS refuse the login at once).
func (s *Service) Answer(serverXKey string, data []byte) ([]byte, *Decision) {
	out, d, n := s.timedAnswer(serverXKey, data)
	s.record(n)
	return out, d
}

// timedAnswer is Answer without its log lines, which the caller writes with
// record once the answer is on its way: the login need not wait for them.
func (s *Service) timedAnswer(serverXKey string, data []byte) ([]byte, *Decision, *note) {
	start := time.Now()
	n := &note{}
	out, d := s.answer(serverXKey, data, n)
	outcome := outcomeAccepted
	switch {
	case d.UserNkey == "":
		outcome = outcomeInvalid
	case d.Reason != nil:
		outcome = outcomeRefused
	}
	s.stats.observe(time.Since(start), outcome)
	n.d = d
	return out, d, n
}

// note is what Herald logs about one answer.
type note struct {
	rc      *jwt.AuthorizationRequestClaims // nil when the request did not verify
	refused []*auth.Reason                  // each refusal, in order; none: accepted
	d       *Decision
}

// record logs the outcome of an answer and adds its refusals to the
// recent-refusals feed.
func (s *Service) record(n *note) {
	for _, r := range n.refused {
		s.refuse(n.rc, r)
	}
	if len(n.refused) > 0 {
		return
	}
	d, rc := n.d, n.rc
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "nats login accepted", slog.String("user", d.User),
		slog.String("account", d.Account), slog.String("token_source", string(d.Source)), slog.String("key_fingerprint", d.KeyFingerprint),
		slog.String("nats_server", rc.Server.Name), slog.String("remote_addr", rc.ClientInformation.Host),
		slog.Uint64("nats_client_id", rc.ClientInformation.ID))
}

func (s *Service) answer(serverXKey string, data []byte, n *note) ([]byte, *Decision) {
	req, r := s.readRequest(serverXKey, data)
	if r != nil {
		n.refused = append(n.refused, r)
		return nil, &Decision{Reason: r}
	}
	rc := req.claims
	n.rc = rc
	d := &Decision{UserNkey: rc.UserNkey, ServerID: rc.Server.ID, Encrypted: req.serverXKey != ""}
	ans, r := s.decide(rc, d)
	if r == nil {
		r = s.checkAnswer(rc, ans, s.now())
	}
	if r != nil {
		d.Reason = r
		n.refused = append(n.refused, r)
		ans = s.refusal(rc, r)
	}
	out, err := s.encode(ans, req.serverXKey)
	if err != nil {
		r := &auth.Reason{Code: auth.NATSAnswerInvalid, Detail: "cannot sign or encrypt the answer: " + err.Error(),
			Hint: "check nats_callout.issuer_seed, account_signing_seed and xkey_seed"}
		d.Reason = r
		n.refused = append(n.refused, r)
		return []byte{}, d
	}
	return out, d
}

// readRequest decrypts and verifies an authorization request.
func (s *Service) readRequest(serverXKey string, data []byte) (*request, *auth.Reason) {
	bad := func(hint, format string, args ...any) (*request, *auth.Reason) {
		return nil, &auth.Reason{Code: auth.NATSRequestInvalid, Detail: fmt.Sprintf(format, args...), Hint: hint}
	}
	if len(data) > maxRequest {
		return bad("", "the request is %d bytes, limit %d", len(data), maxRequest)
	}
	if serverXKey != "" {
		if s.keys.xkey == nil {
			return bad("set nats_callout.xkey_seed to the seed of the server's auth_callout.xkey, or remove auth_callout.xkey",
				"NATS encrypts its requests (auth_callout.xkey), but nats_callout.xkey_seed is not set")
		}
		plain, err := s.keys.xkey.Open(data, serverXKey)
		if err != nil {
			return bad(fmt.Sprintf("set the server's auth_callout.xkey to %s, the public key of nats_callout.xkey_seed", s.keys.xpub),
				"cannot decrypt the request with xkey %s (%v): the server encrypts for another xkey", s.keys.xpub, err)
		}
		data = plain
	} else if !bytes.HasPrefix(data, []byte("eyJ")) && len(data) > 0 {
		return bad("set the server's auth_callout.xkey, or check that only NATS servers publish on "+Subject,
			"the request is neither a JWT nor announced as encrypted (no %s header)", XKeyHeader)
	}
	rc, err := decodeRequest(data)
	if err != nil {
		return bad("only NATS servers (2.10 or later) may publish on "+Subject, "not an authorization request: %s", auth.Truncate(err.Error(), 120))
	}
	// Decoding checked that a server key signed the request; Validate checks
	// its user_nkey and its times.
	var vr jwt.ValidationResults
	rc.Validate(&vr)
	switch {
	case len(vr.Issues) > 0 && vr.Issues[0].TimeCheck:
		return bad("compare the clocks of the NATS server and Herald", "the request does not validate: %s", vr.Issues[0].Description)
	case len(vr.Issues) > 0:
		return bad("only NATS servers may publish on "+Subject, "the request does not validate: %s", vr.Issues[0].Description)
	case rc.Server.ID != rc.Issuer:
		return bad("only NATS servers may publish on "+Subject, "the request names server %s but is signed by %s", rc.Server.ID, rc.Issuer)
	case rc.Audience != requestAudience:
		return bad("", "the request's aud is %q, not %q", rc.Audience, requestAudience)
	case serverXKey != "" && rc.Server.XKey != serverXKey:
		return bad("", "the request's server xkey %s differs from its %s header %s", rc.Server.XKey, XKeyHeader, serverXKey)
	}
	return &request{claims: rc, serverXKey: serverXKey}, nil
}

// answer is an authorization response before it is signed.
type answer struct {
	resp   *jwt.AuthorizationResponseClaims
	signer *signer
	// user is the user JWT's claims and the key that signs it (nil for a refusal).
	user       *jwt.UserClaims
	userSigner *signer
}

// decide verifies the client's credential and builds the user JWT.
func (s *Service) decide(rc *jwt.AuthorizationRequestClaims, d *Decision) (*answer, *auth.Reason) {
	tokens, r := s.candidates(&rc.ConnectOptions)
	if r != nil {
		return nil, r
	}
	// A connect proxy or callout asked on the way may take only as long as
	// NATS waits for the answer.
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(rc.Expires, 0))
	if rc.Expires == 0 {
		ctx, cancel = context.WithTimeout(context.Background(), defaultWait)
	}
	defer cancel()
	co := &rc.ConnectOptions
	id, r := s.engine.Authenticate(ctx, &auth.ConnectRequest{
		Request:  auth.Request{Transport: "nats", Tokens: tokens, RemoteAddr: rc.ClientInformation.Host},
		Protocol: "nats", Name: co.Name, Version: co.Version})
	if r != nil && r.Code == auth.TokenMissing && len(tokens) == 0 {
		r = noToken()
	}
	if r != nil {
		return nil, r
	}
	if id.User == "" {
		if id.Source == "" {
			return nil, &auth.Reason{Code: auth.TokenMissing, Detail: "no token in the connect options, and NATS logins need a user",
				Hint: "send the token as the NATS auth_token (nats.Token in nats.go)"}
		}
		return nil, &auth.Reason{Code: auth.AnonymousTokenRefused, Source: id.Source, KeyFingerprint: id.KeyFingerprint,
			Detail: "the token has an empty user, and NATS logins need a user", Hint: "put the user id in the token's user claim"}
	}
	d.User, d.Source, d.KeyFingerprint = id.User, id.Source, id.KeyFingerprint
	token := tokenOf(tokens, id.Source)
	claim := func(path string) (json.RawMessage, bool) { return auth.ClaimOf(token, path) }
	place, r := s.placement(claim, id)
	if r != nil {
		return nil, r
	}
	d.Account = place.name
	uc := jwt.NewUserClaims(rc.UserNkey)
	uc.Name = id.User
	if s.keys.operator {
		uc.IssuerAccount = place.issuerAccount
	} else {
		uc.Audience = place.name
	}
	if r := s.perms.apply(uc, id.User, claim); r != nil {
		r.Source, r.KeyFingerprint, r.Subject = id.Source, id.KeyFingerprint, id.User
		return nil, r
	}
	if r := s.expiry(uc, id); r != nil {
		return nil, r
	}
	resp := s.response(rc)
	return &answer{resp: resp, signer: s.keys.issuer, user: uc, userSigner: place.signer}, nil
}

// placement picks the account of an accepted user.
func (s *Service) placement(claim claimReader, id *auth.Identity) (*placement, *auth.Reason) {
	if s.cfg.AccountClaim == "" {
		return s.keys.def, nil
	}
	raw, ok := claim(s.cfg.AccountClaim)
	if !ok {
		return s.keys.def, nil
	}
	var name string
	if json.Unmarshal(raw, &name) != nil {
		return nil, &auth.Reason{Code: auth.ClaimInvalid, Source: id.Source, KeyFingerprint: id.KeyFingerprint, Subject: id.User,
			Detail: fmt.Sprintf("claim %s (nats_callout.account_claim) must be a string", s.cfg.AccountClaim)}
	}
	p, ok := s.keys.accounts[name]
	if !ok {
		return nil, &auth.Reason{Code: auth.NATSAccountNotAllowed, Source: id.Source, KeyFingerprint: id.KeyFingerprint, Subject: id.User,
			Detail: fmt.Sprintf("claim %s names account %q, which is not nats_callout.account or one of nats_callout.accounts", s.cfg.AccountClaim, auth.Truncate(name, 64)),
			Hint:   "add the account to nats_callout.accounts (and, in operator mode, to the callout account's allowed accounts)"}
	}
	return p, nil
}

// expiry sets the user JWT's exp: the token's exp, capped by max_expiry.
func (s *Service) expiry(uc *jwt.UserClaims, id *auth.Identity) *auth.Reason {
	now := s.now()
	exp := id.ExpireAt
	if m := s.cfg.MaxExpiry.D(); m > 0 && (exp.IsZero() || exp.After(now.Add(m))) {
		exp = now.Add(m)
	}
	if exp.IsZero() {
		return nil
	}
	if exp.Unix() < now.Unix() {
		return &auth.Reason{Code: auth.TokenExpired, Source: id.Source, KeyFingerprint: id.KeyFingerprint, Subject: id.User, Expiry: id.ExpireAt.Unix(),
			Detail: fmt.Sprintf("token expired at %s (within the leeway, but a NATS login cannot start after its expiry)", id.ExpireAt.UTC().Format(time.RFC3339)),
			Hint:   "fetch a fresh token before connecting"}
	}
	uc.Expires = exp.Unix()
	return nil
}

// response starts the authorization response to rc.
func (s *Service) response(rc *jwt.AuthorizationRequestClaims) *jwt.AuthorizationResponseClaims {
	resp := jwt.NewAuthorizationResponseClaims(rc.UserNkey)
	resp.Audience = rc.Server.ID
	if s.keys.operator {
		resp.IssuerAccount = s.keys.issuerAccount
	}
	// The answer is good only as long as NATS waits for it.
	resp.Expires = rc.Expires
	return resp
}

// refusal is the answer that refuses a login: NATS logs its error.
func (s *Service) refusal(rc *jwt.AuthorizationRequestClaims, r *auth.Reason) *answer {
	resp := s.response(rc)
	resp.Error = auth.Truncate("herald: "+r.Error(), maxError)
	return &answer{resp: resp, signer: s.keys.issuer}
}

// encode signs the user JWT and the response, and encrypts the response for
// the server when it encrypted its request.
func (s *Service) encode(a *answer, serverXKey string) ([]byte, error) {
	iat := time.Now().Unix()
	if a.user != nil {
		ujwt, err := encodeUser(a.user, a.userSigner, iat)
		if err != nil {
			return nil, fmt.Errorf("user JWT: %w", err)
		}
		a.resp.Jwt = ujwt
	}
	out, err := encodeResponse(a.resp, a.signer, iat)
	if err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	if serverXKey == "" {
		return out, nil
	}
	return s.keys.xkey.Seal(out, serverXKey)
}

// refuse logs a refusal and records it in the recent-refusals feed.
func (s *Service) refuse(rc *jwt.AuthorizationRequestClaims, r *auth.Reason) {
	attrs := r.LogAttrs()
	remote := ""
	level, msg := slog.LevelInfo, "nats login refused"
	if rc != nil {
		remote = rc.ClientInformation.Host
		attrs = append(attrs, slog.String("remote_addr", remote), slog.String("nats_server", rc.Server.Name),
			slog.Uint64("nats_client_id", rc.ClientInformation.ID))
	}
	switch r.Code {
	case auth.NATSRequestInvalid:
		level, msg = slog.LevelWarn, "nats authorization request refused"
	case auth.NATSAnswerInvalid:
		level, msg = slog.LevelError, "nats callout answer would be rejected by NATS; this is a configuration problem, not the client's"
	}
	// The feed first: whoever sees the log line finds the refusal there.
	if s.refusals != nil {
		s.refusals.Add(r, "nats", remote, "")
	}
	s.log.LogAttrs(context.Background(), level, msg, attrs...)
}
