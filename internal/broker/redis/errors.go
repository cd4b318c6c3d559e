package redis

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/rueidis"
)

// hinted is an error from Redis or the connection to it, with a hint for
// the configuration mistakes that Redis's or TLS's own words leave unclear.
// Its text never holds a password: neither Redis's replies nor the dial
// errors quote one.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() + " (" + h.hint + ")" }
func (h *hinted) Unwrap() error { return h.err }

// explain returns err with a hint when one helps.
func explain(err error) error {
	return withHint(err, hintFor(err))
}

// explainDial is explain for the first connection to Redis, where a
// connection closed at once or a handshake without answer most likely
// means TLS on one side only, or a server that wants a client certificate;
// tlsOn says whether the broker talks TLS.
func explainDial(err error, tlsOn bool) error {
	h := hintFor(err)
	var op *net.OpError
	switch {
	case h != "":
	case tlsOn && errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &op) && op.Op == "dial"):
		// Connected, but the handshake got no answer (a dial that timed
		// out is a host that does not answer at all: no hint).
		h = "no answer to the TLS handshake: does the server serve TLS on this port? Without TLS use redis://"
	case tlsOn && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "tls: certificate required")):
		// With TLS 1.3 the server checks the client's certificate after
		// the client took the handshake for done: the refusal comes as an
		// alert or a closed connection at the first command.
		h = "the server closed the connection after the TLS handshake: if it asks clients for a certificate (tls-auth-clients yes, Redis's default), set tls-auth-clients no or optional: Herald sends none"
	case !tlsOn && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)):
		h = "if the server serves TLS only, it closes plain connections: use rediss:// or broker.redis.tls: true"
	}
	return withHint(err, h)
}

func withHint(err error, h string) error {
	var already *hinted
	if err == nil || h == "" || errors.As(err, &already) {
		return err
	}
	return &hinted{err: err, hint: h}
}

func hintFor(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknownCA):
		return "the Redis server's certificate is signed by a CA Herald does not trust: set broker.redis.tls_ca_file to the PEM file of that CA"
	case errors.As(err, &hostErr):
		return "the Redis server's certificate is for other names: use one of them in the address, or set broker.redis.tls_server_name"
	case errors.As(err, &invalid):
		return "the Redis server's certificate is expired, not valid yet, or not a server certificate"
	}
	// Errors from Redis may come wrapped (a PUB/SUB connection's check).
	var re *rueidis.RedisError
	if errors.As(err, &re) && re != nil && !re.IsNil() {
		msg := re.Error()
		switch {
		case strings.HasPrefix(msg, "WRONGPASS"):
			return "check broker.redis.user and broker.redis.password, or the user and password in the address; without a user, the password is the default user's, set by requirepass"
		case strings.HasPrefix(msg, "NOAUTH"):
			return "Redis requires a password: set broker.redis.password, and broker.redis.user for an ACL user"
		case strings.HasPrefix(msg, "NOPERM"), strings.Contains(msg, "The user executing the script can't"):
			// The second: a command of one of Herald's scripts was denied.
			return "the Redis user lacks a permission Herald needs: set the ACL that docs/scaling.md gives, with broker.redis.prefix in its key and channel patterns"
		}
	}
	return ""
}
