package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/metrics"
	"github.com/heraldhub/herald/internal/proxy"
)

// buildProxies creates the configured backend proxies.
func buildProxies(cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (*proxy.Set, error) {
	out := &proxy.Set{}
	seen := map[string]bool{}
	mk := func(name, setting string, c *config.Proxy) (*proxy.Proxy, error) {
		if !c.Enabled {
			return nil, nil
		}
		pc := proxy.Config{
			Name: name, Setting: setting, CAFile: c.CAFile, Endpoint: c.Endpoint, Timeout: c.Timeout.D(),
			HTTPHeaders: c.HTTPHeaders, EmulatedHeaders: c.EmulatedHeaders, Cookies: c.Cookies,
			MaxConcurrent: c.MaxConcurrent, BreakerFailures: c.BreakerFailures, BreakerCooldown: c.BreakerCooldown.D(), Logger: log,
			Metrics: m,
		}
		if len(c.StaticHeaders) > 0 {
			pc.StaticHeaders = map[string]string{}
			for _, h := range c.StaticHeaders {
				k, v, _ := strings.Cut(h, ":")
				pc.StaticHeaders[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		for _, t := range c.StatusTransforms {
			st := proxy.StatusTransform{StatusCode: t.StatusCode}
			if t.ErrorCode != 0 {
				st.ToError = &proxy.ErrorReply{Code: uint32(t.ErrorCode), Message: t.ErrorMessage, Temporary: t.ErrorTemporary}
			} else {
				st.ToDisconnect = &proxy.DisconnectReply{Code: uint32(t.DisconnectCode), Reason: t.DisconnectReason}
			}
			pc.StatusTransforms = append(pc.StatusTransforms, st)
		}
		names := c.HTTPHeaders
		if len(c.Cookies) > 0 {
			names = append(append([]string(nil), names...), "Cookie")
		}
		for _, h := range names {
			if k := http.CanonicalHeaderKey(h); !seen[k] {
				seen[k] = true
				out.Headers = append(out.Headers, k)
			}
		}
		p, err := proxy.New(pc)
		if err != nil {
			return nil, fmt.Errorf("%s proxy: %w", name, err)
		}
		return p, nil
	}
	var err error
	if out.Connect, err = mk("connect", "client.proxy.connect", &cfg.Client.Proxy.Connect); err != nil {
		return nil, err
	}
	if out.Refresh, err = mk("refresh", "client.proxy.refresh", &cfg.Client.Proxy.Refresh); err != nil {
		return nil, err
	}
	if out.Subscribe, err = mk("subscribe", "channel.proxy.subscribe", &cfg.Channel.Proxy.Subscribe); err != nil {
		return nil, err
	}
	if out.Publish, err = mk("publish", "channel.proxy.publish", &cfg.Channel.Proxy.Publish); err != nil {
		return nil, err
	}
	if out.SubRefresh, err = mk("sub_refresh", "channel.proxy.sub_refresh", &cfg.Channel.Proxy.SubRefresh); err != nil {
		return nil, err
	}
	if out.RPC, err = mk("rpc", "rpc.proxy", &cfg.RPC.Proxy); err != nil {
		return nil, err
	}
	out.Named = map[string]*proxy.Proxy{}
	for i := range cfg.Proxies {
		np := cfg.Proxies[i].Proxy
		np.Enabled = true
		if out.Named[cfg.Proxies[i].Name], err = mk(cfg.Proxies[i].Name, fmt.Sprintf("proxies[%d]", i), &np); err != nil {
			return nil, err
		}
	}
	out.RPCNamespaces = map[string]*proxy.Proxy{}
	for _, rn := range cfg.RPC.Namespaces {
		out.RPCNamespaces[rn.Name] = out.Named[rn.ProxyName]
	}
	return out, nil
}
