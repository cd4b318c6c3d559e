package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/heraldhub/herald/internal/auth"
)

// verdict is what a call tells the circuit breaker about the backend.
type verdict int

const (
	success verdict = iota // the backend answered (even wrongly): it is alive
	failure                // timeout, unreachable, 5xx
	neutral                // says nothing about the backend (the caller gave up)
)

type breakerState int

const (
	stClosed breakerState = iota
	stOpen
	stHalfOpen
)

// change is a state change of the breaker, for the log.
type change int

const (
	unchanged change = iota
	opened
	reopened
	closed
)

// breaker opens after threshold consecutive failures, refuses calls for
// cooldown, then lets one trial call through (half-open): its success closes
// the circuit, its failure opens it again.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	mu       sync.Mutex
	state    breakerState
	failures int // consecutive, while closed
	openedAt time.Time
	trial    bool // a half-open trial call is in flight
}

// allow says whether a call may go; trial marks the half-open trial call.
func (b *breaker) allow(shown string) (trial bool, r *auth.Reason) {
	b.mu.Lock()
	defer b.mu.Unlock()
	hint := "check the backend's health and logs; Herald tries again on its own after the cool-down"
	switch b.state {
	case stOpen:
		left := b.cooldown - b.now().Sub(b.openedAt)
		if left > 0 {
			return false, reason(auth.ProxyCircuitOpen,
				fmt.Sprintf("backend %s failed %d times in a row; calls are paused for %s (next trial in %s)",
					shown, b.threshold, b.cooldown, left.Round(time.Millisecond)), hint)
		}
		b.state = stHalfOpen
		b.trial = true
		return true, nil
	case stHalfOpen:
		if b.trial {
			return false, reason(auth.ProxyCircuitOpen,
				fmt.Sprintf("backend %s failed %d times in a row; one trial call is in flight and other calls wait for its answer",
					shown, b.threshold), hint)
		}
		b.trial = true
		return true, nil
	}
	return false, nil
}

// record notes a call's verdict and returns the state change, if any.
func (b *breaker) record(trial bool, v verdict) change {
	b.mu.Lock()
	defer b.mu.Unlock()
	if trial {
		b.trial = false
		switch v {
		case success:
			b.state, b.failures = stClosed, 0
			return closed
		case failure:
			b.state, b.openedAt = stOpen, b.now()
			return reopened
		}
		return unchanged // neutral: the next call becomes the trial
	}
	if b.state != stClosed {
		return unchanged // a call that started before the circuit opened
	}
	switch v {
	case success:
		b.failures = 0
	case failure:
		b.failures++
		if b.failures >= b.threshold {
			b.state, b.openedAt, b.failures = stOpen, b.now(), 0
			return opened
		}
	}
	return unchanged
}

// transportReason explains a failed exchange: the caller gave up, the
// backend did not answer in time, or it could not be reached.
func (p *Proxy) transportReason(parent context.Context, err error) (*auth.Reason, verdict) {
	if errors.Is(parent.Err(), context.Canceled) {
		return reason(auth.ProxyTimeout,
			fmt.Sprintf("the call to backend %s was canceled by Herald before the backend answered (the client went away)", p.shown),
			"nothing to fix unless this is frequent: then the backend is too slow for the clients"), neutral
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		if errors.Is(parent.Err(), context.DeadlineExceeded) {
			return reason(auth.ProxyTimeout,
				fmt.Sprintf("backend %s did not answer before the caller's deadline (proxy timeout %s)", p.shown, p.timeout),
				"make the backend answer faster"), failure
		}
		return reason(auth.ProxyTimeout,
			fmt.Sprintf("backend %s did not answer within %s", p.shown, p.timeout),
			"make the backend answer faster, or raise the proxy's timeout"), failure
	}
	return reason(auth.ProxyUnreachable,
		fmt.Sprintf("backend %s unreachable: %s", p.shown, cause(err)), p.unreachableHint(err)), failure
}

// unreachableHint says how to fix a failed connection; for a certificate
// Herald does not trust, where to give it the CA.
func (p *Proxy) unreachableHint(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknownCA) || (errors.As(err, &verify) && errors.As(verify.Err, &unknownCA)):
		if p.caFile != "" {
			return fmt.Sprintf("the CA that signed the backend's certificate is neither in %s.ca_file (%s) nor in the system's roots; add it to that PEM file", p.setting, p.caFile)
		}
		return fmt.Sprintf("give Herald the CA that signed the backend's certificate: set %s.ca_file to a PEM bundle holding it, or point the SSL_CERT_FILE environment variable at one (Go reads it at start, instead of the system's roots)", p.setting)
	case errors.As(err, &hostErr):
		return "the certificate is not issued for the endpoint's host name: use the name it is issued for in the endpoint, or reissue it"
	case errors.As(err, &invalid):
		return "the backend's certificate is expired or not valid for a server; renew it"
	}
	return "check that the backend runs and that Herald reaches the endpoint's host and port (DNS, firewall, TLS certificate, http vs https)"
}

// cause names why a connection failed, briefly and without the URL.
func cause(err error) string {
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var rec tls.RecordHeaderError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the backend"
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return fmt.Sprintf("DNS: no such host %q", oneLine(dns.Name, 64))
		}
		return "DNS: " + oneLine(dns.Error(), 100)
	case errors.As(err, &unknownCA):
		return "TLS: the certificate is signed by an unknown authority"
	case errors.As(err, &hostErr):
		return "TLS: " + oneLine(hostErr.Error(), 100)
	case errors.As(err, &invalid):
		return "TLS: " + oneLine(invalid.Error(), 100)
	case errors.As(err, &verify):
		return "TLS: " + oneLine(verify.Err.Error(), 100)
	case errors.As(err, &rec):
		return "TLS: the backend did not answer TLS (is the endpoint http:// rather than https://?)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection closed before a complete response"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop the URL, which may carry a query
	}
	return errText(err)
}
