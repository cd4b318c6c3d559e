// Package centrifuge is Herald's Centrifugo-compatible front door: the
// client protocol v2 in JSON and Protobuf (codec.go, protobuf.go), one
// session state machine over every transport (WebSocket, HTTP streaming and
// SSE with /emulation, the unidirectional ones: transport.go), fossil delta
// compression, and the mapping of auth reasons, hub errors and control
// intents to the protocol's codes (internal/cfcodes).
package centrifuge
