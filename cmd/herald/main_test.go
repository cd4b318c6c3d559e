package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "herald ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, errOut := runCLI("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := runCLI(); code != 2 {
		t.Fatalf("no command must exit 2")
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("listen: 127.0.0.1:9000\nchannel:\n  namespaces:\n    - name: chat\n      presence: true\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("chanels: {}\nclient:\n  channel_limit: lots\n  token:\n    hmac_secret_key: [\"s3cr3t-value\"]\n"), 0o600)

	if code, out, _ := runCLI("check-config", "--config", good); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("valid file: %d %q", code, out)
	}
	code, _, errOut := runCLI("check-config", "--config", bad)
	if code != 1 {
		t.Fatalf("invalid file exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one line per problem (3), got:\n%s", errOut)
	}
	for _, want := range []string{`unknown key "chanels"; did you mean "channel"?`, `client.channel_limit: value "lots" is not an integer`, "client.token.hmac_secret_key"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("output lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "s3cr3t-value") {
		t.Errorf("a secret value appears in the output:\n%s", errOut)
	}
	if code, _, _ := runCLI("check-config"); code != 2 {
		t.Fatalf("missing --config must exit 2")
	}
	if code, _, errOut := runCLI("check-config", "--config", filepath.Join(dir, "missing.yaml")); code != 1 || errOut == "" {
		t.Fatalf("missing file: %d %q", code, errOut)
	}
}

// buildBinary builds the herald binary once for the process tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "herald")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stderr *lockedBuffer
	done   chan error
}

func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	stdout, _ := cmd.StdoutPipe()
	p := &proc{cmd: cmd, stdout: bufio.NewReader(stdout), stderr: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	})
	return p
}

// cleanEnv drops HERALD_* variables of the developer's shell.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			out = append(out, kv)
		}
	}
	return out
}

// lockedBuffer is a bytes.Buffer safe for the process's writes and the test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// banner reads the development banner into a map of label -> value.
func (p *proc) banner(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := make(chan string)
	go func() {
		for {
			l, err := p.stdout.ReadString('\n')
			if err != nil {
				close(lines)
				return
			}
			lines <- l
		}
	}()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stdout closed before the banner ended: %v", out)
			}
			if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && out["Publish"] == "" {
				out[k] = strings.TrimSpace(v)
			}
			if out["Publish"] != "" {
				return out
			}
		case <-deadline:
			t.Fatalf("no banner; got %v", out)
		}
	}
}

func TestServeDevelopmentServerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	p := start(t, bin, nil, "serve", "--listen", "127.0.0.1:0")
	b := p.banner(t)
	wsURL := strings.Fields(b["WebSocket"])[0]
	token := strings.Fields(b["Token"])[0]
	apiKey := strings.Fields(b["API key"])[0]
	if len(strings.Fields(b["HMAC secret"])[0]) != 64 {
		t.Fatalf("HMAC secret %q: want 32 random bytes in hex", b["HMAC secret"])
	}
	if !strings.Contains(b["Publish"], "curl -X POST -H 'X-API-Key: "+apiKey+"'") || !strings.Contains(b["Publish"], "/api/publish") {
		t.Fatalf("publish line %q", b["Publish"])
	}
	if strings.Contains(p.stderr.String(), token) || strings.Contains(p.stderr.String(), apiKey) {
		t.Fatalf("the log (stderr) must not contain the token or the API key:\n%s", p.stderr.String())
	}

	// The development server serves Action Cable clients too, anonymous ones included.
	cableURL := strings.Fields(b["Action Cable"])[0]
	cable, _, err := (&websocket.Dialer{Subprotocols: []string{"actioncable-v1-json"}}).Dial(cableURL, nil)
	if err != nil {
		t.Fatalf("action cable %s: %v", cableURL, err)
	}
	_ = cable.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, welcome, err := cable.ReadMessage(); err != nil || !strings.HasPrefix(string(welcome), `{"type":"welcome"`) || cable.Subprotocol() != "actioncable-v1-json" {
		t.Fatalf("action cable welcome: %s %v", welcome, err)
	}
	cable.Close()

	conn, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`+"\n"+`{"id":2,"subscribe":{"channel":"news"}}`, token)))
	readUntil(t, conn, `"id":2`)

	// Publish exactly as the banner says (the curl line's URL and body).
	m := regexp.MustCompile(`-d '([^']+)' (\S+)`).FindStringSubmatch(b["Publish"])
	req, _ := http.NewRequest("POST", m[2], strings.NewReader(m[1]))
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // what curl -d sends
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("publish: %v %v", err, resp)
	}
	readUntil(t, conn, `"pub":{"data":{"text":"hello"}`)

	// Mercure: subscribe and publish exactly as the banner says.
	subURL := regexp.MustCompile(`curl -N -G --data-urlencode 'topic=([^']+)' (\S+)`).FindStringSubmatch(b["Mercure subscribe"])
	pm := regexp.MustCompile(`-H 'Authorization: Bearer (\S+)' -d '([^']+)' (\S+)`).FindStringSubmatch(b["Mercure publish"])
	if subURL == nil || pm == nil || strings.Contains(p.stderr.String(), pm[1]) {
		t.Fatalf("Mercure banner lines %q and %q (or the token in the log)", b["Mercure subscribe"], b["Mercure publish"])
	}
	sreq, _ := http.NewRequest("GET", subURL[2]+"?topic="+url.QueryEscape(subURL[1]), nil)
	sreq.Header.Set("Origin", "http://localhost:3000") // a page of a local dev server, anonymous
	sresp, err := http.DefaultClient.Do(sreq)
	if err != nil || sresp.StatusCode != 200 || sresp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Fatalf("Mercure subscribe from a local page: %v %v", err, sresp)
	}
	defer sresp.Body.Close()
	req, _ = http.NewRequest("POST", pm[3], strings.NewReader(pm[2]))
	req.Header.Set("Authorization", "Bearer "+pm[1])
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("Mercure publish: %v %v", err, resp)
	}
	sr := bufio.NewReader(sresp.Body)
	for {
		l, err := sr.ReadString('\n')
		if err != nil {
			t.Fatalf("Mercure stream: %v", err)
		}
		if l == "data: hello\n" {
			break
		}
	}

	// SIGTERM: the client is told to reconnect elsewhere (3001) and the process exits 0.
	p.cmd.Process.Signal(syscall.SIGTERM)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, 3001) {
				t.Fatalf("close: %v, want 3001", err)
			}
			break
		}
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit after SIGTERM")
	}
}

func readUntil(t *testing.T, conn *websocket.Conn, substr string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", substr, err)
		}
		if strings.Contains(string(data), substr) {
			return
		}
	}
}

func TestServePrecedenceAndRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "herald.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:0\nlog_format: json\nhttp_api:\n  key: filekey\n"), 0o600)

	// flag > env > file: the flag's key is accepted, the env and file keys are not.
	p := start(t, bin, []string{"HERALD_HTTP_API_KEY=envkey"}, "serve", "--config", file, "--api-key", "flagkey")
	addr := waitListening(t, p)
	for key, want := range map[string]int{"flagkey": 200, "envkey": 401, "filekey": 401} {
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/info", strings.NewReader("{}"))
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != want {
			t.Errorf("key %s: %v %v, want %d", key, err, resp, want)
		}
	}
	// env > file
	p2 := start(t, bin, []string{"HERALD_HTTP_API_KEY=envkey", "HERALD_CONFIG=" + file}, "serve")
	addr2 := waitListening(t, p2)
	req, _ := http.NewRequest("POST", "http://"+addr2+"/api/info", strings.NewReader("{}"))
	req.Header.Set("X-API-Key", "envkey")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("env key over file key: %v %v", err, resp)
	}

	// The implied development server refuses a non-loopback address.
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--listen", "0.0.0.0:0"}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "loopback") {
		t.Fatalf("implied dev on 0.0.0.0: %d %q", code, errb.String())
	}
	// A bad environment value is refused with the variable's name.
	errb.Reset()
	if code := run([]string{"serve"}, []string{"HERALD_CLIENT_CHANNEL_LIMIT=lots"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "HERALD_CLIENT_CHANNEL_LIMIT") {
		t.Fatalf("bad env value: %d %q", code, errb.String())
	}
}

func waitListening(t *testing.T, p *proc) string {
	t.Helper()
	re := regexp.MustCompile(`"msg":"herald listening".*?"addr":"([^"]+)"`)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.stderr.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server did not report its address:\n%s", p.stderr.String())
	return ""
}

func TestSIGHUPReloadsKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	file := filepath.Join(t.TempDir(), "herald.yaml")
	write := func(secret string) {
		os.WriteFile(file, []byte("listen: 127.0.0.1:0\nlog_format: json\nclient:\n  reason_detail: code\n  token:\n    hmac_secret_key: "+secret+"\n"), 0o600)
	}
	write("first-secret-first-secret-first-secret")
	p := start(t, bin, nil, "serve", "--config", file)
	addr := waitListening(t, p)
	connect := func(secret string) string {
		tok, _ := jwtFor(secret)
		conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/connection/websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, tok)))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := conn.ReadMessage()
		if err != nil {
			return err.Error()
		}
		return string(data)
	}
	if got := connect("first-secret-first-secret-first-secret"); !strings.Contains(got, `"connect"`) {
		t.Fatalf("first secret: %s", got)
	}
	write("second-secret-second-secret-second")
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.stderr.String(), "keys reloaded") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := connect("second-secret-second-secret-second"); !strings.Contains(got, `"connect"`) {
		t.Fatalf("new secret after SIGHUP: %s\n%s", got, p.stderr.String())
	}
	if got := connect("first-secret-first-secret-first-secret"); !strings.Contains(got, "signature_invalid") {
		t.Fatalf("old secret after SIGHUP must be refused: %s", got)
	}
	// A broken file keeps the keys in use.
	os.WriteFile(file, []byte("client: [\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(p.stderr.String(), "key reload failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := connect("second-secret-second-secret-second"); !strings.Contains(got, `"connect"`) {
		t.Fatalf("a bad reload must keep the keys: %s", got)
	}
}

func jwtFor(secret string) (string, error) {
	var out, errb bytes.Buffer
	if code := run([]string{"token", "--hmac-secret", secret, "--user", "u"}, nil, &out, &errb); code != 0 {
		return "", fmt.Errorf("token: %s", errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}
