package hub

import (
	"errors"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
)

// ErrKind classifies why the hub refused an operation; each front door maps
// it to its own wire code.
type ErrKind uint8

// Error kinds.
const (
	// ErrBadChannel: an empty, too long or non-ASCII channel name, or one
	// failing the namespace's channel_regex (Centrifugo 107).
	ErrBadChannel ErrKind = iota + 1
	// ErrUnknownNamespace: the namespace before ":" is not configured (102).
	ErrUnknownNamespace
	// ErrDenied: the auth engine refused; Reason says why (103 and others).
	ErrDenied
	// ErrAlreadySubscribed: the connection is already subscribed (105).
	ErrAlreadySubscribed
	// ErrLimit: a per-connection or per-user limit (106, or a disconnect).
	ErrLimit
	// ErrExpired: the subscription's expiry is already in the past (110).
	ErrExpired
	// ErrUnrecoverable: a stream position is no longer in the stream (112).
	ErrUnrecoverable
	// ErrNotAvailable: the namespace does not keep what was asked (108).
	ErrNotAvailable
	// ErrBadRequest: bad parameters or data (107).
	ErrBadRequest
	// ErrUnavailable: the broker cannot be reached; try again later (100, temporary; HTTP 503).
	ErrUnavailable
	// ErrShuttingDown: the node is shutting down and takes no publications (HTTP 503).
	ErrShuttingDown
	// ErrClosing: the connection is going away.
	ErrClosing
	// ErrInternal: anything else (100).
	ErrInternal
)

// Error is a refused hub operation.
type Error struct {
	Kind   ErrKind
	Msg    string
	Reason *auth.Reason // ErrDenied
}

func (e *Error) Error() string {
	if e.Reason != nil && e.Msg == "" {
		return e.Reason.Error()
	}
	return e.Msg
}

// Temporary reports whether the operation may succeed if tried again.
func (e *Error) Temporary() bool { return e.Kind == ErrUnavailable || e.Kind == ErrShuttingDown }

// brokerError classifies an error of the broker.
func brokerError(err error) *Error {
	if errors.Is(err, broker.ErrUnavailable) {
		return &Error{Kind: ErrUnavailable, Msg: err.Error()}
	}
	return &Error{Kind: ErrInternal, Msg: err.Error()}
}

func channelError(err error) *Error {
	var ce *ChannelError
	if errors.As(err, &ce) && ce.Kind == UnknownNamespace {
		return &Error{Kind: ErrUnknownNamespace, Msg: ce.Msg}
	}
	return &Error{Kind: ErrBadChannel, Msg: err.Error()}
}

func denied(r *auth.Reason) *Error { return &Error{Kind: ErrDenied, Reason: r} }
