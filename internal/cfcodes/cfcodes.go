package cfcodes

import (
	"github.com/heraldhub/herald/internal/auth"
)

// Error is a reply error. Codes and temporary flags follow the protocol table;
// SDKs decide whether to retry from them.
type Error struct {
	Code      uint32 `json:"code"`
	Message   string `json:"message"`
	Temporary bool   `json:"temporary,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// MaxErrorMessage bounds the message of an error reply.
const MaxErrorMessage = 256

// With returns a copy of e whose message adds detail ("permission denied: ...").
func (e *Error) With(detail string) *Error {
	c := *e
	if detail != "" {
		c.Message = auth.Truncate(e.Message+": "+detail, MaxErrorMessage)
	}
	return &c
}

// The client error table.
var (
	ErrInternal              = &Error{Code: 100, Message: "internal server error", Temporary: true}
	ErrUnauthorized          = &Error{Code: 101, Message: "unauthorized"}
	ErrUnknownChannel        = &Error{Code: 102, Message: "unknown channel"}
	ErrPermissionDenied      = &Error{Code: 103, Message: "permission denied"}
	ErrMethodNotFound        = &Error{Code: 104, Message: "method not found"}
	ErrAlreadySubscribed     = &Error{Code: 105, Message: "already subscribed"}
	ErrLimitExceeded         = &Error{Code: 106, Message: "limit exceeded"}
	ErrBadRequest            = &Error{Code: 107, Message: "bad request"}
	ErrNotAvailable          = &Error{Code: 108, Message: "not available"}
	ErrTokenExpired          = &Error{Code: 109, Message: "token expired"}
	ErrExpired               = &Error{Code: 110, Message: "expired"}
	ErrTooManyRequests       = &Error{Code: 111, Message: "too many requests", Temporary: true}
	ErrUnrecoverablePosition = &Error{Code: 112, Message: "unrecoverable position"}
)

// Disconnect is a server-initiated close: a WebSocket close code and a short reason.
type Disconnect struct {
	Code   uint32
	Reason string
}

// MaxCloseReason is the WebSocket limit on a close frame's reason.
const MaxCloseReason = 123

// With returns a copy whose reason adds detail, within the close-reason limit.
func (d Disconnect) With(detail string) Disconnect {
	if detail != "" {
		d.Reason = auth.Truncate(d.Reason+": "+detail, MaxCloseReason)
	}
	return d
}

// The disconnect table. 3000-3499 reconnect, 3500-3999 are terminal.
var (
	DisconnectConnectionClosed      = Disconnect{3000, "connection closed"}
	DisconnectShutdown              = Disconnect{3001, "shutdown"}
	DisconnectServerError           = Disconnect{3004, "internal server error"}
	DisconnectExpired               = Disconnect{3005, "connection expired"}
	DisconnectSubExpired            = Disconnect{3006, "subscription expired"}
	DisconnectSlow                  = Disconnect{3008, "slow"}
	DisconnectWriteError            = Disconnect{3009, "write error"}
	DisconnectInsufficientState     = Disconnect{3010, "insufficient state"}
	DisconnectForceReconnect        = Disconnect{3011, "force reconnect"}
	DisconnectNoPong                = Disconnect{3012, "no pong"}
	DisconnectTooManyRequests       = Disconnect{3013, "too many requests"}
	DisconnectInvalidToken          = Disconnect{3500, "invalid token"}
	DisconnectBadRequest            = Disconnect{3501, "bad request"}
	DisconnectStale                 = Disconnect{3502, "stale"}
	DisconnectForceNoReconnect      = Disconnect{3503, "force disconnect"}
	DisconnectConnectionLimit       = Disconnect{3504, "connection limit"}
	DisconnectChannelLimit          = Disconnect{3505, "channel limit"}
	DisconnectInappropriateProtocol = Disconnect{3506, "inappropriate protocol"}
	DisconnectPermissionDenied      = Disconnect{3507, "permission denied"}
	DisconnectNotAvailable          = Disconnect{3508, "not available"}
	DisconnectTooManyErrors         = Disconnect{3509, "too many errors"}
)

// Unsubscribe push codes: >= 2500 make the SDK resubscribe.
const (
	UnsubscribeServer              uint32 = 2000
	UnsubscribeInsufficientState   uint32 = 2500
	UnsubscribeSubscriptionExpired uint32 = 2501
)
