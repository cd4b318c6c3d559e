package hub

import (
	"encoding/json"
	"time"

	"github.com/heraldhub/herald/internal/broker"
)

// Client is a connection as the hub sees it, whatever protocol it speaks.
// Front doors implement it.
type Client interface {
	ID() string
	User() string
	// Deliver hands a delivery of one of the client's subscriptions to it.
	// It must not block: queue the encoded message.
	Deliver(sub *Subscription, d *Delivery)
	// Control applies an intent addressed to the connection. It must not
	// block for long (start a goroutine for a close handshake).
	Control(in Intent)
}

// IntentKind is what the server wants done to a connection.
type IntentKind uint8

// Intent kinds.
const (
	// IntentDisconnect: close the connection.
	IntentDisconnect IntentKind = iota + 1
	// IntentUnsubscribe: end the subscription to Channel and tell the client.
	IntentUnsubscribe
	// IntentSubscribe: subscribe the connection to Channel on behalf of the server.
	IntentSubscribe
	// IntentRefresh: change the connection's expiry or info.
	IntentRefresh
	// IntentSend: deliver Data to the client outside any channel.
	IntentSend
	// IntentCheckRevoked: close the connection if its token was revoked.
	IntentCheckRevoked
)

// Why says why an intent was made, so each front door can map it to its
// own code (Centrifugo close codes, an Action Cable disconnect reason, an
// HTTP stream closed).
type Why uint8

// Reasons for intents.
const (
	// WhyServer: the server API asked for it.
	WhyServer Why = iota + 1
	// WhyShutdown: the node is shutting down; clients reconnect elsewhere.
	WhyShutdown
	// WhyRevoked: the connection's token was revoked.
	WhyRevoked
	// WhyExpired: the connection or subscription expired.
	WhyExpired
	// WhySlow: the client did not keep up with its deliveries.
	WhySlow
	// WhyInsufficientState: the subscription missed publications (a gap in
	// the stream, a changed epoch, or the broker lost its connection); the
	// client must resubscribe and recover.
	WhyInsufficientState
)

// Intent is a protocol-neutral instruction to a connection.
type Intent struct {
	Kind IntentKind
	Why  Why
	// Code and Reason, when set, are the close code and reason the server
	// API asked for (Centrifugo's 3000-4999 range); front doors without
	// such codes use Reason as text.
	Code   uint32
	Reason string
	// Channel of IntentUnsubscribe and IntentSubscribe.
	Channel   string
	Subscribe *ServerSubscription
	Refresh   *ServerRefresh
	// Data of IntentSend.
	Data []byte
}

// ServerSubscription is a subscription made on behalf of the server.
type ServerSubscription struct {
	Info         json.RawMessage        `json:"info,omitempty"`
	Data         json.RawMessage        `json:"data,omitempty"`
	ExpireAt     time.Time              `json:"expire_at,omitzero"`
	RecoverSince *broker.StreamPosition `json:"recover_since,omitempty"`
}

// ServerRefresh is a refresh made by the server API.
type ServerRefresh struct {
	Expired  bool            `json:"expired,omitempty"`
	ExpireAt time.Time       `json:"expire_at,omitzero"` // zero: unchanged unless Expired
	Info     json.RawMessage `json:"info,omitempty"`
}
