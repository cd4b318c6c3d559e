// Package centrifuge is Herald's Centrifugo-compatible front door: the
// client protocol v2 over WebSocket, its codec and session state machine,
// and the mapping of auth reasons, hub errors and control intents to the
// protocol's codes (internal/cfcodes).
package centrifuge
