// Package auth is Herald's one authentication engine. Front doors hand it a
// ConnectRequest (token candidates and where each came from) and get back an
// Identity or a Reason: a stable code, a one-line detail, a hint and the
// token source. Its Engine decides who a connection is (callout, token,
// connect proxy, anonymous) and what it may do on a channel; proxy and
// callout plug in as authorities. It knows nothing of any wire protocol.
package auth
