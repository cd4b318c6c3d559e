package actioncable

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/hub"
	"github.com/heraldhub/herald/internal/proxy"
)

// Identification: who a connection is, decided by the auth engine before
// any client message is read. In order: a restorable session of the
// extended protocol (its sid, bound to the credential that identified it);
// the auth callout when configured; an AnyCable token (the ext claim); the
// app's RPC connect when configured; anonymous when allowed.

// forwardedHeaders are the upgrade request's headers the app's RPC gets:
// actioncable.rpc.headers (cookies filtered by actioncable.rpc.cookies),
// the AnyCable token header, and REMOTE_ADDR.
func (h *Handler) forwardedHeaders(r *http.Request) map[string]string {
	if h.rpc == nil {
		return nil
	}
	out := map[string]string{}
	for _, name := range h.ac.RPC.Headers {
		name = strings.ToLower(name)
		v := r.Header.Get(name)
		if name == "cookie" && len(h.ac.RPC.Cookies) > 0 {
			v = filterCookies(v, h.ac.RPC.Cookies)
		}
		if v != "" {
			out[name] = v
		}
	}
	jwtHeader := "x-" + strings.ToLower(h.ac.JWT.Param)
	if v := r.Header.Get(jwtHeader); v != "" {
		out[jwtHeader] = v
	} else {
		for _, p := range strings.Split(r.Header.Get("Sec-Websocket-Protocol"), ",") {
			if p = strings.TrimSpace(p); strings.HasPrefix(p, tokenSubprotocol) {
				out[jwtHeader] = strings.TrimPrefix(p, tokenSubprotocol)
				break
			}
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out["REMOTE_ADDR"] = host
	}
	return out
}

// filterCookies keeps the named cookies of a Cookie header.
func filterCookies(header string, keep []string) string {
	var kept []string
	for _, part := range strings.Split(header, ";") {
		part = strings.TrimSpace(part)
		name, _, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		for _, k := range keep {
			if name == k {
				kept = append(kept, part)
				break
			}
		}
	}
	return strings.Join(kept, "; ")
}

// identify decides the connection and answers it: a welcome, or a
// disconnect and a close.
func (s *session) identify() {
	h := s.h
	if s.restoreSID != "" && h.restore != nil && s.tryRestore() {
		return
	}
	req := &auth.ConnectRequest{
		Request:    auth.Request{Transport: "actioncable", Tokens: s.tokens, Origin: s.origin, RemoteAddr: s.remoteAddr, AnyCable: h.rules()},
		Client:     s.sid,
		Protocol:   "actioncable",
		Encoding:   "json",
		OwnBackend: true,
	}
	var rc *rpcConnect
	if h.rpc != nil {
		rc = &rpcConnect{s: s}
		req.Backend = rc
	}
	ident, reason := h.engine.Authenticate(context.Background(), req)
	if reason != nil {
		s.connectRefused(reason, rc)
		return
	}
	s.accept(ident, rc)
}

// connectRefused answers a refused connection as AnyCable does: the app's
// transmissions when it refused (its own disconnect message), a disconnect
// message with the reason clients act on (unauthorized, token_expired), or
// for an error of the app nothing but a close.
func (s *session) connectRefused(r *auth.Reason, rc *rpcConnect) {
	s.refused("action cable connection refused", r, "", "")
	switch {
	case r.Code == auth.RPCDenied:
		if len(rc.transmissions) == 0 {
			s.disconnect("unauthorized", false, r, websocketNormal, "Auth Failed")
			return
		}
		s.disconnect("", false, r, websocketNormal, "Auth Failed", rc.transmissions...)
		s.kicked.Store(true)
	case strings.HasPrefix(string(r.Code), "rpc_"), r.Code == auth.JWKSUnavailable, proxy.Temporary(r), r.Code == auth.CalloutUnavailable:
		text := "Auth Error"
		if s.h.cfg.FullReasons() {
			text += ": " + r.Short(100)
		}
		s.disconnect("", false, r, websocketError, text)
	case r.Code == auth.TokenExpired:
		s.disconnect("token_expired", false, r, websocketNormal, "Auth Failed")
	default:
		s.disconnect("unauthorized", false, r, websocketNormal, "Auth Failed")
	}
}

// credentialOf is what binds a restorable session: the hash of the token
// that identified it, or of the cookies the app identified it by.
func credentialOf(parts ...string) string {
	m := sha256.New()
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// accept registers an identified connection and welcomes it.
func (s *session) accept(ident *auth.Identity, rc *rpcConnect) {
	h := s.h
	var cred string
	switch {
	case ident.Source == "rpc":
		cred = credentialOf("rpc", s.headers["cookie"], s.headers["x-"+strings.ToLower(h.ac.JWT.Param)])
	case ident.Source != "":
		for _, c := range s.tokens {
			if c.Source == ident.Source {
				cred = credentialOf("token", c.Token)
			}
		}
	}
	s.mu.Lock()
	s.user, s.identifiers, s.credential, s.expireAt = ident.User, ident.Identifiers, cred, ident.ExpireAt
	s.jti, s.issuedAt = ident.JTI, ident.IssuedAt
	s.authConn = &auth.Conn{Client: s.sid, User: ident.User, Transport: "actioncable", Protocol: "actioncable", Encoding: "json",
		Meta: ident.Meta, Grants: ident.Grants}
	if rc != nil && ident.Source == "rpc" {
		s.cstate = rc.cstate
		s.rpcInterest = true
	}
	s.mu.Unlock()
	if herr := h.hub.AddClient(s, h.cfg.Client.UserConnectionLimit); herr != nil {
		s.log().Info("action cable connection refused: user connection limit", slog.String("user", ident.User), slog.String("detail", herr.Msg),
			slog.Int("user_connection_limit", h.cfg.Client.UserConnectionLimit))
		s.disconnect("unauthorized", false, &auth.Reason{Code: auth.ChannelNotPermitted, Detail: herr.Msg,
			Hint: "client.user_connection_limit bounds a user's connections on this node"}, websocketNormal, "Auth Failed")
		return
	}
	s.mu.Lock()
	s.connected = true
	s.who.Store(&[2]string{s.sid, s.user})
	s.schedulePingLocked()
	s.mu.Unlock()
	if rc != nil && ident.Source == "rpc" {
		// The app's transmissions hold its welcome.
		for _, t := range rc.transmissions {
			s.enqueue(s.withSid(t))
		}
	} else {
		s.enqueue(welcomeFrame(s.sid, nil, false))
	}
	s.log().Info("action cable client connected", slog.String("protocol", s.protocol), slog.String("token_source", string(ident.Source)),
		slog.String("key_fingerprint", ident.KeyFingerprint))
}

// withSid adds the session id to an app's welcome that lacks one, which
// clients of the extended protocol need to restore their session.
func (s *session) withSid(t []byte) []byte {
	if !s.ext {
		return t
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(t, &m) != nil || string(m["type"]) != `"welcome"` {
		return t
	}
	if _, ok := m["sid"]; ok {
		return t
	}
	m["sid"], _ = json.Marshal(s.sid)
	b, err := json.Marshal(m)
	if err != nil {
		return t
	}
	return b
}

// tryRestore restores a session of the extended protocol from its sid:
// its identity, subscriptions and states, without asking the app. The sid
// is a bearer credential, so it only works with the credential that
// identified the session, and never after the token expired.
func (s *session) tryRestore() bool {
	h := s.h
	e := h.restore.take(s.restoreSID)
	if e == nil {
		s.log().Debug("session not restored: unknown or expired sid")
		return false
	}
	var cred string
	if e.credential != "" {
		cred = credentialOf("rpc", s.headers["cookie"], s.headers["x-"+strings.ToLower(h.ac.JWT.Param)])
		if cred != e.credential {
			cred = ""
			for _, c := range s.tokens {
				if credentialOf("token", c.Token) == e.credential {
					cred = e.credential
				}
			}
		}
		if cred != e.credential {
			s.log().Info("session not restored: the connection presents other credentials than the session had")
			return false
		}
	}
	if !e.expireAt.IsZero() && !e.expireAt.After(time.Now()) {
		s.log().Info("session not restored: its token expired")
		return false
	}
	s.mu.Lock()
	s.user, s.identifiers, s.credential, s.cstate, s.expireAt = e.user, e.identifiers, e.credential, e.cstate, e.expireAt
	s.jti, s.issuedAt, s.rpcInterest = e.jti, e.issuedAt, e.rpcInterest
	s.authConn = &auth.Conn{Client: s.sid, User: e.user, Transport: "actioncable", Protocol: "actioncable", Encoding: "json"}
	s.mu.Unlock()
	if herr := h.hub.AddClient(s, h.cfg.Client.UserConnectionLimit); herr != nil {
		return false
	}
	s.mu.Lock()
	s.connected = true
	s.who.Store(&[2]string{s.sid, s.user})
	s.mu.Unlock()
	var ids []string
	var activate []*hub.Subscription
	for _, rs := range e.subs {
		sub := &subscription{id: rs.id, channel: rs.channel, rpc: rs.rpc, istate: rs.istate, whisper: rs.whisper, presence: rs.presence}
		s.mu.Lock()
		s.subs[sub.id] = sub
		s.mu.Unlock()
		for _, st := range rs.streams {
			hs, herr := s.follow(sub, st)
			if herr != nil {
				s.log().Info("restored subscription lost a stream", slog.String("stream", st), slog.String("error", herr.Error()))
				continue
			}
			if hs != nil {
				activate = append(activate, hs)
			}
		}
		ids = append(ids, sub.id)
	}
	s.enqueue(welcomeFrame(s.sid, ids, true))
	for _, hs := range activate {
		h.hub.Activate(hs)
	}
	s.mu.Lock()
	s.schedulePingLocked()
	s.mu.Unlock()
	s.log().Info("action cable session restored", slog.String("previous_sid", auth.Truncate(s.restoreSID, 64)), slog.Int("subscriptions", len(ids)))
	return true
}
