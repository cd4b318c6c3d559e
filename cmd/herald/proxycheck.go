package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/proxy"
)

// headerFlags collects repeated --header "Name: value" flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// capture records the exchange so proxy-check can print it.
type capture struct {
	next              http.RoundTripper
	req               *http.Request
	reqBody, respBody []byte
	resp              *http.Response
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	c.req = r
	if r.Body != nil {
		c.reqBody, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(c.reqBody))
	}
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	c.resp = resp
	c.respBody, _ = io.ReadAll(io.LimitReader(resp.Body, proxy.MaxBodySize+1))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(c.respBody))
	return resp, nil
}

// redactHeader hides credentials in printed headers.
func redactHeader(name, v string) string {
	switch strings.ToLower(name) {
	case "authorization":
		if scheme, _, ok := strings.Cut(v, " "); ok {
			return scheme + " ***"
		}
		return "***"
	case "cookie":
		var parts []string
		for _, c := range strings.Split(v, ";") {
			k, _, _ := strings.Cut(strings.TrimSpace(c), "=")
			parts = append(parts, k+"=***")
		}
		return strings.Join(parts, "; ")
	}
	return v
}

// proxyCheck sends a sample request to a proxy endpoint, exactly as Herald
// would, and explains what Herald makes of the answer.
func proxyCheck(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxy-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "configuration file; the proxy of --type is taken from it")
	endpoint := fs.String("endpoint", "", "proxy endpoint URL (instead of --config)")
	caFile := fs.String("ca-file", "", "with --endpoint: PEM bundle of CA certificates trusted for an https endpoint (the proxy's ca_file)")
	kind := fs.String("type", "connect", "connect, refresh, subscribe, publish or rpc")
	user := fs.String("user", "", "user id for refresh, subscribe, publish and rpc")
	channel := fs.String("channel", "news", "channel for subscribe and publish")
	method := fs.String("method", "ping", "method for rpc")
	data := fs.String("data", `{}`, "JSON data the client sends")
	var headers headerFlags
	fs.Var(&headers, "header", `a header of the client's upgrade request, "Name: value" (repeatable)`)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*file == "") == (*endpoint == "") {
		fmt.Fprintln(stderr, "herald proxy-check: give exactly one of --config FILE and --endpoint URL")
		return 2
	}
	if !json.Valid([]byte(*data)) {
		fmt.Fprintln(stderr, "herald proxy-check: --data is not JSON")
		return 2
	}
	var pc config.Proxy
	allowAnon := false
	if *file != "" {
		cfg, err := config.Load(config.Source{File: *file, Env: env})
		if err != nil {
			fmt.Fprintf(stderr, "herald: invalid configuration:\n%v\n", err)
			return 2
		}
		allowAnon = cfg.Dev || cfg.Client.AllowAnonymousConnectWithoutToken
		switch *kind {
		case "connect":
			pc = cfg.Client.Proxy.Connect
		case "refresh":
			pc = cfg.Client.Proxy.Refresh
		case "subscribe":
			pc = cfg.Channel.Proxy.Subscribe
		case "publish":
			pc = cfg.Channel.Proxy.Publish
		case "rpc":
			pc = cfg.RPC.Proxy
		}
		if !pc.Enabled {
			fmt.Fprintf(stderr, "herald proxy-check: the %s proxy is not enabled in %s\n", *kind, *file)
			return 2
		}
	} else {
		pc = config.Proxy{Enabled: true, Endpoint: *endpoint, CAFile: *caFile}
	}
	transport := http.Header{}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(stderr, "herald proxy-check: --header %q must be \"Name: value\"\n", h)
			return 2
		}
		transport.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		if *endpoint != "" {
			pc.HTTPHeaders = append(pc.HTTPHeaders, strings.TrimSpace(name))
		}
	}
	tr, err := proxy.NewTransport(pc.CAFile)
	if err != nil {
		fmt.Fprintf(stderr, "herald proxy-check: %v\n", err)
		return 2
	}
	cap := &capture{next: tr}
	p, err := proxy.New(proxy.Config{Name: *kind, CAFile: pc.CAFile, Endpoint: pc.Endpoint, Timeout: pc.Timeout.D(), HTTPHeaders: pc.HTTPHeaders,
		EmulatedHeaders: pc.EmulatedHeaders, Client: &http.Client{Transport: cap, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}})
	if err != nil {
		fmt.Fprintf(stderr, "herald proxy-check: %v\n", err)
		return 2
	}
	base := proxy.Base{Client: "proxy-check", Transport: "websocket", Protocol: "json", Encoding: "json"}
	h := proxy.Headers{Transport: transport}
	ctx := context.Background()
	raw := json.RawMessage(*data)
	var (
		reason   *auth.Reason
		perr     *proxy.ErrorReply
		pdis     *proxy.DisconnectReply
		accepted string
	)
	switch *kind {
	case "connect":
		var r *proxy.ConnectResult
		if r, perr, pdis, reason = p.Connect(ctx, &proxy.ConnectRequest{Base: base, Name: "proxy-check", Data: raw}, h, allowAnon); r != nil {
			accepted = fmt.Sprintf("user %q, channels %v, expire_at %d", r.User, r.Channels, r.ExpireAt)
		}
	case "refresh":
		var r *proxy.RefreshResult
		if r, reason = p.Refresh(ctx, &proxy.RefreshRequest{Base: base, User: *user}, h); r != nil {
			accepted = fmt.Sprintf("expired %v, expire_at %d", r.Expired, r.ExpireAt)
		}
	case "subscribe":
		var r *proxy.SubscribeResult
		if r, perr, pdis, reason = p.Subscribe(ctx, &proxy.SubscribeRequest{Base: base, User: *user, Channel: *channel, Data: raw}, h); r != nil {
			accepted = fmt.Sprintf("subscription to %q, expire_at %d", *channel, r.ExpireAt)
		}
	case "publish":
		var r *proxy.PublishResult
		if r, perr, pdis, reason = p.Publish(ctx, &proxy.PublishRequest{Base: base, User: *user, Channel: *channel, Data: raw}, h); r != nil {
			accepted = fmt.Sprintf("publication to %q, data %s", *channel, orDash(r.Data))
		}
	case "rpc":
		var r *proxy.RPCResult
		if r, perr, pdis, reason = p.RPC(ctx, &proxy.RPCRequest{Base: base, User: *user, Method: *method, Data: raw}, h); r != nil {
			accepted = fmt.Sprintf("rpc result %s", orDash(r.Data))
		}
	default:
		fmt.Fprintf(stderr, "herald proxy-check: --type %q: use connect, refresh, subscribe, publish or rpc\n", *kind)
		return 2
	}
	if cap.req != nil {
		fmt.Fprintf(stdout, "request:\n  POST %s\n", p.Endpoint())
		for name, vs := range cap.req.Header {
			for _, v := range vs {
				fmt.Fprintf(stdout, "  %s: %s\n", name, redactHeader(name, v))
			}
		}
		fmt.Fprintf(stdout, "  %s\n", cap.reqBody)
	}
	if cap.resp != nil {
		body := cap.respBody
		if len(body) > 2048 {
			body = append(body[:2048:2048], "…"...)
		}
		fmt.Fprintf(stdout, "response:\n  %s\n  Content-Type: %s\n  %s\n", cap.resp.Status, cap.resp.Header.Get("Content-Type"), body)
	}
	fmt.Fprintln(stdout, "what Herald makes of it:")
	switch {
	case reason != nil:
		fmt.Fprintf(stdout, "  FAIL %s: %s\n", reason.Code, reason.Detail)
		if reason.Hint != "" {
			fmt.Fprintf(stdout, "       hint: %s\n", reason.Hint)
		}
		temporary := "no: the client gets a terminal error"
		if proxy.Temporary(reason) {
			temporary = "yes: the client retries with backoff"
		}
		fmt.Fprintf(stdout, "  temporary: %s\n", temporary)
		fmt.Fprintln(stdout, "decision: refused")
		return 1
	case pdis != nil:
		fmt.Fprintf(stdout, "  the backend asks to close the connection with %d %q\n", pdis.Code, pdis.Reason)
		fmt.Fprintln(stdout, "decision: disconnect")
		return 1
	case perr != nil:
		fmt.Fprintf(stdout, "  the backend refuses with error %d %q (temporary %v)\n", perr.Code, perr.Message, perr.Temporary)
		fmt.Fprintln(stdout, "decision: refused by the backend")
		return 1
	}
	fmt.Fprintf(stdout, "  PASS %s\n", accepted)
	fmt.Fprintln(stdout, "decision: accepted")
	return 0
}

func orDash(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "-"
	}
	return string(raw)
}
