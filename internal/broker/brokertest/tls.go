package brokertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are PEM files made for a test: a private CA, a server
// certificate it signed for 127.0.0.1 and localhost with its key (good for
// a client too, as Redis's nodes use it with each other), the same
// certificate expired, and another CA that signed nothing (a wrong CA to
// trust).
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
	ExpiredCertFile           string // for KeyFile too
	OtherCAFile               string
}

// NewTLSFiles makes the CAs and the server certificate in a temporary
// directory.
func NewTLSFiles(t testing.TB) *TLSFiles {
	t.Helper()
	dir := t.TempDir()
	f := &TLSFiles{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "server.pem"),
		KeyFile: filepath.Join(dir, "server-key.pem"), ExpiredCertFile: filepath.Join(dir, "expired.pem"),
		OtherCAFile: filepath.Join(dir, "other-ca.pem")}
	caKey := newKey(t)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Herald test CA"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER := sign(t, ca, ca, &caKey.PublicKey, caKey)
	writePEM(t, f.CAFile, "CERTIFICATE", caDER)
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}

	srvKey := newKey(t)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	writePEM(t, f.CertFile, "CERTIFICATE", sign(t, srv, caCert, &srvKey.PublicKey, caKey))
	expired := *srv
	expired.SerialNumber = big.NewInt(4)
	expired.NotBefore, expired.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	writePEM(t, f.ExpiredCertFile, "CERTIFICATE", sign(t, &expired, caCert, &srvKey.PublicKey, caKey))
	der, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, f.KeyFile, "EC PRIVATE KEY", der)

	otherKey := newKey(t)
	other := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "Some other CA"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	writePEM(t, f.OtherCAFile, "CERTIFICATE", sign(t, other, other, &otherKey.PublicKey, otherKey))
	return f
}

// helperTLS is how the helpers (readiness, Call, Do, Info) talk to a server
// that serves TLS: they check that it answers, not its certificate, which
// is what the tests of the broker check (and an expired one must serve).
// They present the server's certificate as theirs, for a server that asks
// clients for one.
func helperTLS(t testing.TB, f *TLSFiles) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
}

// StartRedisTLS starts a private redis-server that accepts TLS only, with
// the certificate and key of f (made by NewTLSFiles), and extra
// configuration lines.
func StartRedisTLS(t testing.TB, f *TLSFiles, extra ...string) *RedisServer {
	t.Helper()
	return startRedis(t, f, extra...)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
