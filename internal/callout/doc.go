// Package callout asks the team's backend to authorize a connection with a
// signed exchange (as NATS's auth callout does): Herald sends a JWT signed
// with its own secret, carrying a fresh nonce; the backend answers with a JWT
// signed by its key, for this node and this nonce, carrying the identity and
// the channel grants. Anything else is refused with its own reason; failures
// to reach the backend refuse the connection (fail closed, temporary).
package callout
