package actioncable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

// AnyCable's RPC over HTTP: Herald asks the Rails app (anycable-rails with
// http_rpc: true) to identify connections and to run its channels:
// POST <endpoint>/connect, /command and /disconnect, JSON with the protocol's
// snake_case field names and integer statuses. This client is written for
// Herald rather than taken from the proxy package because the protocol's
// answers differ in every way that matters (statuses, transmissions, state
// deltas) and its transport rules are AnyCable's (a bounded pool that waits,
// retries of an unreachable app within the timeout).
//
// Every answer is checked strictly: a non-2xx status, a body that is not
// JSON, a field of the wrong type, a transmission that is not a JSON frame,
// each is its own reason, with the field path and a hint.

// RPC statuses.
const (
	statusError   = 0
	statusSuccess = 1
	statusFailure = 2
)

// maxRPCBody bounds an answer of the app.
const maxRPCBody = 1 << 20

type rpcEnv struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Cstate  map[string]string `json:"cstate,omitempty"`
	Istate  map[string]string `json:"istate,omitempty"`
}

type connectRequest struct {
	Env rpcEnv `json:"env"`
}

type commandRequest struct {
	Command               string `json:"command"`
	Identifier            string `json:"identifier"`
	ConnectionIdentifiers string `json:"connection_identifiers,omitempty"`
	Data                  string `json:"data,omitempty"`
	Env                   rpcEnv `json:"env"`
}

type disconnectRequest struct {
	Identifiers   string   `json:"identifiers,omitempty"`
	Subscriptions []string `json:"subscriptions,omitempty"`
	Env           rpcEnv   `json:"env"`
}

// rpcReply is a checked answer of the app.
type rpcReply struct {
	Status         int
	Identifiers    string
	Transmissions  [][]byte
	ErrorMsg       string
	Disconnect     bool
	StopStreams    bool
	Streams        []string
	StoppedStreams []string
	Cstate, Istate map[string]string
	Presence       *rpcPresence
}

type rpcPresence struct {
	Type, ID, Info string
}

// rpcClient calls the app.
type rpcClient struct {
	base    string // endpoint without a trailing /
	shown   string // endpoint without credentials or query, for details
	secret  string
	timeout time.Duration
	sem     chan struct{}
	client  *http.Client
	log     *slog.Logger

	pending sync.WaitGroup // disconnect calls
	warned  sync.Map       // unknown answer keys, logged once
}

func newRPCClient(c *config.ActionCableRPC, secret string, hc *http.Client, log *slog.Logger) (*rpcClient, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("actioncable.rpc.endpoint is not a URL")
	}
	shown := u.Scheme + "://" + u.Host + u.Path
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = c.Concurrency
		hc = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &rpcClient{base: strings.TrimRight(c.Endpoint, "/"), shown: shown, secret: secret, timeout: c.Timeout.D(),
		sem: make(chan struct{}, c.Concurrency), client: hc, log: log}, nil
}

func rpcReason(code auth.Code, detail, hint string) *auth.Reason {
	return &auth.Reason{Code: code, Detail: auth.Truncate(strings.ReplaceAll(detail, "\n", " "), 300), Hint: hint}
}

// call makes one RPC call: method is connect, command or disconnect.
func (c *rpcClient) call(ctx context.Context, method, sid string, body any) (*rpcReply, *auth.Reason) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, rpcReason(auth.RPCBadJSON, "could not encode the "+method+" request: "+err.Error(), "")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, rpcReason(auth.RPCTimeout, fmt.Sprintf("no free RPC slot within %s: %d calls to the app are in flight (actioncable.rpc.concurrency)", c.timeout, cap(c.sem)),
			"the app answers too slowly for the load; raise its RPC capacity or actioncable.rpc.concurrency")
	}
	defer func() { <-c.sem }()
	for attempt := 0; ; attempt++ {
		rep, r, retry := c.roundTrip(ctx, method, sid, payload)
		if !retry {
			return rep, r
		}
		// Connection refused or reset: the app may be restarting.
		wait := min(100*time.Millisecond<<attempt, time.Second)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, r
		}
	}
}

// roundTrip does one HTTP exchange; retry says the app was unreachable.
func (c *rpcClient) roundTrip(ctx context.Context, method, sid string, payload []byte) (*rpcReply, *auth.Reason, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+method, bytes.NewReader(payload))
	if err != nil {
		return nil, rpcReason(auth.RPCUnreachable, "cannot build the request: "+err.Error(), "check actioncable.rpc.endpoint"), false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Anycable-Meta-Sid", sid)
	req.Header.Set("X-Anycable-Meta-Protov", "v1")
	if c.secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.secret)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return c.transportReason(ctx, method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCBody+1))
	if err != nil {
		_, r, _ := c.transportReason(ctx, method, err)
		return nil, r, false
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.statusReason(method, resp.StatusCode, data), false
	}
	if len(data) > maxRPCBody {
		return nil, rpcReason(auth.RPCBadResponse, fmt.Sprintf("the app's %s answer is larger than %d bytes", method, maxRPCBody), ""), false
	}
	rep, r := c.decode(method, data)
	return rep, r, false
}

// transportReason explains a failed exchange; refused and reset
// connections are retried.
func (c *rpcClient) transportReason(ctx context.Context, method string, err error) (*rpcReply, *auth.Reason, bool) {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return nil, rpcReason(auth.RPCTimeout, fmt.Sprintf("the app (%s) did not answer %s within %s", c.shown, method, c.timeout),
			"make the app's channel code faster, or raise actioncable.rpc.timeout"), false
	}
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, rpcReason(auth.RPCUnreachable, fmt.Sprintf("the app (%s) refused the connection", c.shown),
			"start the Rails app, and check actioncable.rpc.endpoint (host and port of the app, path of its AnyCable HTTP RPC mount, usually /_anycable)"), true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, rpcReason(auth.RPCUnreachable, fmt.Sprintf("the app (%s) closed the connection before answering %s", c.shown, method),
			"check the app's log; is the endpoint http:// where the app expects https://?"), true
	case errors.As(err, &dns):
		return nil, rpcReason(auth.RPCUnreachable, fmt.Sprintf("the app's host is unknown: DNS %s", auth.Truncate(dns.Error(), 100)),
			"check the host of actioncable.rpc.endpoint"), false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return nil, rpcReason(auth.RPCUnreachable, fmt.Sprintf("the app (%s) could not be reached: %s", c.shown, auth.Truncate(err.Error(), 120)),
		"check actioncable.rpc.endpoint and that Herald reaches the app (TLS, firewall)"), false
}

// statusReason explains a non-2xx answer.
func (c *rpcClient) statusReason(method string, status int, body []byte) *auth.Reason {
	snip := strings.TrimSpace(string(body))
	if !utf8.ValidString(snip) {
		snip = "(binary)"
	}
	detail := fmt.Sprintf("the app answered %s with %d %s", method, status, http.StatusText(status))
	if snip != "" {
		detail += ": " + auth.Truncate(snip, 80)
	}
	if status == http.StatusUnauthorized {
		fp := "(none: Herald sent no secret)"
		if c.secret != "" {
			fp = auth.Fingerprint([]byte(c.secret))
		}
		return rpcReason(auth.RPCUnauthorized, fmt.Sprintf("the app refused Herald's RPC secret (fingerprint %s)", fp),
			"the app compares Authorization: Bearer with its http_rpc_secret (ANYCABLE_HTTP_RPC_SECRET), else with hex HMAC-SHA256(secret, \"rpc-cable\"): "+
				"set actioncable.rpc.secret to the first, or actioncable.secret to the app's AnyCable secret. "+
				"Compute the app's fingerprint: printf %s \"$ANYCABLE_HTTP_RPC_SECRET\" | sha256sum | cut -c1-8")
	}
	hint := "check the app's log"
	switch {
	case status == http.StatusNotFound:
		hint = "the app has no AnyCable HTTP RPC at " + c.shown + ": set http_rpc: true in its config/anycable.yml (ANYCABLE_HTTP_RPC=true), and check the mount path (http_rpc_mount_path, default /_anycable)"
	case status == http.StatusForbidden:
		hint = "Rails refused the request's host: add the RPC host to config.hosts"
	case status == http.StatusUnprocessableEntity || status == http.StatusBadRequest:
		hint = "the app could not read Herald's request; check the anycable-rails version (1.5 or later) and the app's log"
	case status >= 300 && status < 400:
		hint = "the app redirects (force_ssl?); configure the final URL as actioncable.rpc.endpoint"
	case status >= 500:
		hint = "the app failed; its log has the exception"
	}
	return rpcReason(auth.RPCHTTPStatus, detail, hint)
}
