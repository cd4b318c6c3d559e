// Package natstest starts real NATS servers (the nats-server module,
// in-process) configured for the auth callout, in centralized and operator
// mode, for the tests and the benchmark harness of the callout service.
package natstest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Server is a running NATS server.
type Server struct {
	*server.Server
	URL string
	Log *Lines
}

// Start runs a NATS server with the configuration text conf, written to a
// file in dir, on a free loopback port (conf should say listen: 127.0.0.1:-1).
func Start(dir, conf string) (*Server, error) {
	path := filepath.Join(dir, fmt.Sprintf("nats-%d.conf", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("nats config: %w", err)
	}
	opts.NoSigs = true
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	lines := &Lines{}
	ns.SetLogger(lines, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats server did not start")
	}
	return &Server{Server: ns, URL: ns.ClientURL(), Log: lines}, nil
}

// Stop shuts the server down.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// Lines collects the server's log lines.
type Lines struct {
	mu    sync.Mutex
	lines []string
}

func (l *Lines) add(level, format string, v ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(format, v...))
	l.mu.Unlock()
}

// The server.Logger methods.
func (l *Lines) Noticef(format string, v ...any) { l.add("[INF]", format, v...) }
func (l *Lines) Warnf(format string, v ...any)   { l.add("[WRN]", format, v...) }
func (l *Lines) Fatalf(format string, v ...any)  { l.add("[FTL]", format, v...) }
func (l *Lines) Errorf(format string, v ...any)  { l.add("[ERR]", format, v...) }
func (l *Lines) Debugf(format string, v ...any)  { l.add("[DBG]", format, v...) }
func (l *Lines) Tracef(format string, v ...any)  { l.add("[TRC]", format, v...) }

// String returns every line so far.
func (l *Lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Keys are a fresh account nkey (the callout issuer) and xkey.
type Keys struct {
	IssuerSeed, IssuerPub string
	XKeySeed, XKeyPub     string
}

// NewKeys makes fresh keys.
func NewKeys() Keys {
	var k Keys
	k.IssuerSeed, k.IssuerPub = seedAndPub(nkeys.CreateAccount)
	k.XKeySeed, k.XKeyPub = seedAndPub(nkeys.CreateCurveKeys)
	return k
}

func seedAndPub(create func() (nkeys.KeyPair, error)) (string, string) {
	kp, err := create()
	if err != nil {
		panic(err) // only when the system has no randomness
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	return string(seed), pub
}

// CalloutUser and CalloutPassword are the callout user of Centralized.
const (
	CalloutUser     = "herald"
	CalloutPassword = "callout-password"
)

// Centralized is a server configuration with accounts AUTH (the callout
// user), APP and OTHER, whose logins are decided by a callout signing with
// issuerPub; xkeyPub, when set, makes the server encrypt.
func Centralized(issuerPub, xkeyPub string) string {
	xkey := ""
	if xkeyPub != "" {
		xkey = "\n    xkey: " + xkeyPub
	}
	return fmt.Sprintf(`listen: 127.0.0.1:-1
server_name: herald-test
accounts {
  AUTH { users: [ { user: %s, password: %s } ] }
  APP {}
  OTHER {}
}
authorization {
  timeout: 3
  auth_callout {
    issuer: %s
    account: AUTH
    auth_users: [ %s ]%s
  }
}
`, CalloutUser, CalloutPassword, issuerPub, CalloutUser, xkey)
}

// Operator is an operator-mode setup: an operator, a system account, the
// callout account AUTH (whose key signs the answers), the account APP with a
// signing key that signs its users, a callout user and a sentinel user.
type Operator struct {
	Config string
	// AuthSeed/AuthPub: the callout account; AppPub and AppSigningSeed: the
	// account users are placed in and the signing key of its users;
	// OtherPub/OtherSeed: an account the callout account does not allow.
	AuthSeed, AuthPub           string
	AppPub, AppSigningSeed      string
	OtherPub, OtherSeed         string
	CalloutCreds, SentinelCreds string
}

// NewOperator writes the credentials files into dir and returns the setup;
// xkeyPub, when set, makes the server encrypt the requests.
func NewOperator(dir, xkeyPub string) (*Operator, error) {
	o := &Operator{}
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "HERALD-TEST"
	ojwt, err := oc.Encode(okp)
	if err != nil {
		return nil, err
	}
	account := func(name string, edit func(*jwt.AccountClaims)) (string, string, string, error) {
		seed, pub := seedAndPub(nkeys.CreateAccount)
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if edit != nil {
			edit(ac)
		}
		tok, err := ac.Encode(okp)
		return seed, pub, tok, err
	}
	_, sysPub, sysJWT, err := account("SYS", nil)
	if err != nil {
		return nil, err
	}
	appSigningSeed, appSigningPub := seedAndPub(nkeys.CreateAccount)
	_, appPub, appJWT, err := account("APP", func(ac *jwt.AccountClaims) { ac.SigningKeys.Add(appSigningPub) })
	if err != nil {
		return nil, err
	}
	otherSeed, otherPub, otherJWT, err := account("OTHER", nil)
	if err != nil {
		return nil, err
	}
	calloutUserSeed, calloutUserPub := seedAndPub(nkeys.CreateUser)
	authSeed, authPub, authJWT, err := account("AUTH", func(ac *jwt.AccountClaims) {
		ac.EnableExternalAuthorization(calloutUserPub)
		ac.Authorization.AllowedAccounts.Add(appPub)
		ac.Authorization.XKey = xkeyPub
	})
	if err != nil {
		return nil, err
	}
	akp, _ := nkeys.FromSeed([]byte(authSeed))
	user := func(file, seed, pub, name string, sentinel bool) (string, error) {
		uc := jwt.NewUserClaims(pub)
		uc.Name = name
		if sentinel {
			uc.BearerToken = true
			uc.Pub.Deny.Add(">")
			uc.Sub.Deny.Add(">")
		}
		tok, err := uc.Encode(akp)
		if err != nil {
			return "", err
		}
		creds, err := jwt.FormatUserConfig(tok, []byte(seed))
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, file)
		return path, os.WriteFile(path, creds, 0o600)
	}
	if o.CalloutCreds, err = user("callout.creds", calloutUserSeed, calloutUserPub, "herald-callout", false); err != nil {
		return nil, err
	}
	sentinelSeed, sentinelPub := seedAndPub(nkeys.CreateUser)
	if o.SentinelCreds, err = user("sentinel.creds", sentinelSeed, sentinelPub, "sentinel", true); err != nil {
		return nil, err
	}
	o.AuthSeed, o.AuthPub, o.AppPub, o.AppSigningSeed, o.OtherPub, o.OtherSeed = authSeed, authPub, appPub, appSigningSeed, otherPub, otherSeed
	o.Config = fmt.Sprintf(`listen: 127.0.0.1:-1
server_name: herald-operator-test
authorization { timeout: 3 }
operator: %s
system_account: %s
resolver: MEMORY
resolver_preload: {
  %s: %s
  %s: %s
  %s: %s
  %s: %s
}
`, ojwt, sysPub, sysPub, sysJWT, authPub, authJWT, appPub, appJWT, otherPub, otherJWT)
	return o, nil
}
