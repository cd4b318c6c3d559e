// Package proxy calls the team's backend to decide connect, refresh,
// subscribe, publish, sub_refresh and rpc, using Centrifugo's proxy protocol
// (HTTP POST with JSON), so a backend written for Centrifugo works unchanged.
//
// Every response is checked strictly, and every deviation is explained: a
// failure is an *auth.Reason with a proxy_* code, a one-line Detail that names
// the exact problem (a key path, the JSON kind found and the type expected, the
// keys of a wrapped envelope, the HTTP status and the first bytes of the body)
// and a Hint for the fix. Request tokens, cookies and forwarded header values
// never appear in a Reason or a log line.
//
// Each Proxy bounds its in-flight requests (ProxyOverloaded over the limit)
// and has a circuit breaker that pauses calls to a failing backend
// (ProxyCircuitOpen), then lets one trial call through after a cool-down.
package proxy
