package proxy

import (
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/auth"
)

// TestTLSUnknownAuthorityHintNamesCAFile: a backend whose certificate is
// signed by a CA Herald does not trust is unreachable, and the hint says
// where to give Herald the CA; with ca_file holding it, the call works.
func TestTLSUnknownAuthorityHintNamesCAFile(t *testing.T) {
	s := httptest.NewUnstartedServer(answer(200, `{"result":{"user":"42"}}`))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	s.StartTLS()
	defer s.Close()

	p, _ := newProxy(t, Config{Endpoint: s.URL, Setting: "client.proxy.connect"})
	_, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyUnreachable, "unknown authority")
	for _, want := range []string{"client.proxy.connect.ca_file", "SSL_CERT_FILE"} {
		if !strings.Contains(r.Hint, want) {
			t.Fatalf("hint %q lacks %q", r.Hint, want)
		}
	}

	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _ = newProxy(t, Config{Endpoint: s.URL, Setting: "client.proxy.connect", CAFile: ca})
	res, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	if r != nil || res.User != "42" {
		t.Fatalf("with ca_file: %v %v", res, r)
	}

	// A file without a certificate is refused when the proxy is built.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := New(Config{Endpoint: s.URL, CAFile: bad}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("ca_file without a certificate: %v", err)
	}
}

// TestBackendRefusalsAreLogged: an error or disconnect answer of the backend
// is logged with its code and message.
func TestBackendRefusalsAreLogged(t *testing.T) {
	b := newBackend(t, answer(200, `{"error":{"code":403,"message":"banned user"}}`))
	p, logs := newProxy(t, Config{Endpoint: b.URL})
	for _, m := range []string{"connect", "subscribe", "publish", "rpc"} {
		if _, e, _, r := callMethod(t, p, m, Headers{}); e == nil || r != nil {
			t.Fatalf("%s: error %v reason %v", m, e, r)
		}
		if !strings.Contains(logs.String(), `msg="backend refused" proxy=test endpoint=`+b.URL+` method=`+m+` code=403 message="banned user"`) {
			t.Fatalf("%s: log lacks the refusal with its code and message:\n%s", m, logs.String())
		}
	}
	d := newBackend(t, answer(200, `{"disconnect":{"code":4501,"reason":"go away"}}`))
	p, logs = newProxy(t, Config{Endpoint: d.URL})
	if _, _, dis, _ := callMethod(t, p, "connect", Headers{}); dis == nil {
		t.Fatal("no disconnect")
	}
	if !strings.Contains(logs.String(), `msg="backend disconnected the client" proxy=test endpoint=`+d.URL+` method=connect code=4501 reason="go away"`) {
		t.Fatalf("log lacks the disconnect with its code and reason:\n%s", logs.String())
	}
}
