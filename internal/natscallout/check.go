package natscallout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhub/herald/internal/auth"
)

// Finding is one line of a configuration check.
type Finding struct {
	Status string // PASS, FAIL, WARN or INFO
	Name   string
	Detail string
}

// Check validates the callout configuration against a running NATS server:
// it connects as the callout user, subscribes to the requests, makes one
// probe login with probeToken (a token Herald accepts, when one can be
// minted) and reports what it finds at each step. probeOpts are added to
// the probe's connection (a sentinel user's credentials in operator mode).
func (s *Service) Check(probeToken string, probeOpts []nats.Option, timeout time.Duration) []Finding {
	var out []Finding
	add := func(status, name, format string, args ...any) {
		out = append(out, Finding{Status: status, Name: name, Detail: fmt.Sprintf(format, args...)})
	}
	add("INFO", "issuer", "answers are signed by %s: the server's auth_callout.issuer (centralized) or the callout account (operator) must be this key", s.keys.issuer.pub)
	if s.keys.xpub != "" {
		add("INFO", "xkey", "Herald's xkey is %s: the server's auth_callout.xkey must be this key", s.keys.xpub)
	}
	opts, err := ConnectOptions(s.cfg, nil)
	if err != nil {
		add("FAIL", "connect", "%v", err)
		return out
	}
	nc, err := nats.Connect(s.cfg.URL, append(opts, nats.NoReconnect(), nats.Timeout(timeout))...)
	if err != nil {
		add("FAIL", "connect", "cannot connect to %s as the callout user: %v%s", s.cfg.URL, err, connectHint(err))
		return out
	}
	defer nc.Close()
	add("PASS", "connect", "connected to %s as the callout user (server %s, version %s)", nc.ConnectedUrlRedacted(), nc.ConnectedServerName(), nc.ConnectedServerVersion())
	requests := make(chan *nats.Msg, 4)
	sub, err := nc.ChanSubscribe(Subject, requests)
	if err == nil {
		err = nc.FlushTimeout(timeout)
	}
	if err == nil {
		err = nc.LastError()
	}
	if err != nil {
		add("FAIL", "subscribe", "cannot subscribe to %s: %v%s", Subject, err, connectHint(err))
		return out
	}
	defer sub.Unsubscribe()
	add("PASS", "subscribe", "the callout user may subscribe to %s (it is in auth_users)", Subject)
	out = append(out, s.probe(probeToken, probeOpts, requests, timeout)...)
	return out
}

// probe makes one login through the callout and reports the request and
// the outcome.
func (s *Service) probe(probeToken string, probeOpts []nats.Option, requests <-chan *nats.Msg, timeout time.Duration) []Finding {
	var out []Finding
	add := func(status, name, format string, args ...any) {
		out = append(out, Finding{Status: status, Name: name, Detail: fmt.Sprintf(format, args...)})
	}
	tok := probeToken
	if tok == "" {
		tok = "herald-check-probe"
	}
	result := make(chan error, 1)
	go func() {
		pc, err := nats.Connect(s.cfg.URL, append([]nats.Option{nats.Token(tok), nats.NoReconnect(), nats.Timeout(timeout), nats.Name("herald-check-probe")}, probeOpts...)...)
		if err == nil {
			pc.Close()
		}
		result <- err
	}()
	var m *nats.Msg
	select {
	case m = <-requests:
	case err := <-result:
		add("FAIL", "request", "no authorization request arrived for the probe login (%v): in operator mode pass the sentinel user's credentials (--sentinel-creds), and check that auth_callout names this account", err)
		return out
	case <-time.After(timeout):
		add("FAIL", "request", "no authorization request arrived within %s", timeout)
		return out
	}
	xkey := ""
	if m.Header != nil {
		xkey = m.Header.Get(XKeyHeader)
	}
	req, r := s.readRequest(xkey, m.Data)
	if r != nil {
		add("FAIL", "request", "%s (%s)", r.Detail, r.Hint)
	} else {
		rc := req.claims
		enc := "not encrypted"
		if xkey != "" {
			enc = "encrypted for xkey " + s.keys.xpub + ", decrypted"
		}
		add("PASS", "request", "the request from server %s (%s) verifies; %s", rc.Server.Name, rc.Server.ID, enc)
		if xkey == "" && s.keys.xkey != nil {
			add("WARN", "xkey", "nats_callout.xkey_seed is set but the server does not encrypt: set its auth_callout.xkey to %s", s.keys.xpub)
		}
		if r := s.checkAnswer(rc, &answer{resp: s.response(rc), signer: s.keys.issuer}, time.Now()); r != nil {
			add("FAIL", "issuer", "%s (%s)", r.Detail, r.Hint)
		} else {
			add("PASS", "issuer", "NATS expects answers signed by %s, the key of nats_callout.issuer_seed", rc.Subject)
		}
	}
	ans, d := s.Answer(xkey, m.Data)
	_ = m.Respond(ans)
	err := <-result
	switch {
	case err == nil:
		add("PASS", "login", "a probe login through the callout was accepted (user %s, account %s)", d.User, d.Account)
	case probeToken != "":
		why := "NATS refused Herald's answer"
		if d.Reason != nil {
			why = "Herald refused: " + d.Reason.Error()
		}
		add("FAIL", "login", "the probe login with a valid token was refused (%v); %s", err, why)
	case d.Reason != nil && d.Reason.Code != auth.NATSAnswerInvalid && d.Reason.Code != auth.NATSRequestInvalid &&
		(errors.Is(err, nats.ErrAuthorization) || strings.Contains(err.Error(), "Authorization Violation")):
		add("PASS", "login", "the callout round trip works: the probe was refused as expected (%s); configure an HMAC key to probe an accepted login", d.Reason.Code)
	default:
		add("FAIL", "login", "the probe login failed: %v", err)
	}
	return out
}
