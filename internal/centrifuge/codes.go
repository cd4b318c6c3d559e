package centrifuge

import (
	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/cfcodes"
	"github.com/heraldhub/herald/internal/hub"
)

// The protocol's codes, from the shared table.
type (
	// Error is a reply error.
	Error = cfcodes.Error
	// Disconnect is a server-initiated close.
	Disconnect = cfcodes.Disconnect
)

const (
	maxErrorMessage = cfcodes.MaxErrorMessage
	maxCloseReason  = cfcodes.MaxCloseReason

	UnsubscribeServer              = cfcodes.UnsubscribeServer
	UnsubscribeInsufficientState   = cfcodes.UnsubscribeInsufficientState
	UnsubscribeSubscriptionExpired = cfcodes.UnsubscribeSubscriptionExpired
)

var (
	ErrInternal              = cfcodes.ErrInternal
	ErrUnauthorized          = cfcodes.ErrUnauthorized
	ErrUnknownChannel        = cfcodes.ErrUnknownChannel
	ErrPermissionDenied      = cfcodes.ErrPermissionDenied
	ErrMethodNotFound        = cfcodes.ErrMethodNotFound
	ErrAlreadySubscribed     = cfcodes.ErrAlreadySubscribed
	ErrLimitExceeded         = cfcodes.ErrLimitExceeded
	ErrBadRequest            = cfcodes.ErrBadRequest
	ErrNotAvailable          = cfcodes.ErrNotAvailable
	ErrTokenExpired          = cfcodes.ErrTokenExpired
	ErrExpired               = cfcodes.ErrExpired
	ErrTooManyRequests       = cfcodes.ErrTooManyRequests
	ErrUnrecoverablePosition = cfcodes.ErrUnrecoverablePosition

	DisconnectShutdown          = cfcodes.DisconnectShutdown
	DisconnectServerError       = cfcodes.DisconnectServerError
	DisconnectExpired           = cfcodes.DisconnectExpired
	DisconnectSubExpired        = cfcodes.DisconnectSubExpired
	DisconnectSlow              = cfcodes.DisconnectSlow
	DisconnectWriteError        = cfcodes.DisconnectWriteError
	DisconnectInsufficientState = cfcodes.DisconnectInsufficientState
	DisconnectNoPong            = cfcodes.DisconnectNoPong
	DisconnectInvalidToken      = cfcodes.DisconnectInvalidToken
	DisconnectBadRequest        = cfcodes.DisconnectBadRequest
	DisconnectStale             = cfcodes.DisconnectStale
	DisconnectForceNoReconnect  = cfcodes.DisconnectForceNoReconnect
	DisconnectConnectionLimit   = cfcodes.DisconnectConnectionLimit
	DisconnectChannelLimit      = cfcodes.DisconnectChannelLimit
	DisconnectPermissionDenied  = cfcodes.DisconnectPermissionDenied
	DisconnectNotAvailable      = cfcodes.DisconnectNotAvailable
)

// connectOutcome maps a refused connection token to the protocol: an error
// reply (the connection stays open but unusable) or a disconnect. shown is
// what the client may see of the reason.
func connectOutcome(r *auth.Reason, shown string) (*Error, *Disconnect) {
	switch r.Code {
	case auth.TokenExpired, auth.TokenNotYetValid:
		return ErrTokenExpired.With(shown), nil
	case auth.TokenMissing:
		return nil, withReason(DisconnectBadRequest, r, shown)
	case auth.AnonymousTokenRefused:
		return nil, withReason(DisconnectPermissionDenied, r, shown)
	case auth.JWKSUnavailable:
		// The key endpoint is down: a temporary failure, the SDK retries.
		return ErrInternal.With(shown), nil
	default:
		return nil, withReason(DisconnectInvalidToken, r, shown)
	}
}

// backendOutcome passes the backend's own error or disconnect to the client.
func backendOutcome(b *auth.BackendReply) (*Error, *Disconnect) {
	if b.Disconnect {
		return nil, &Disconnect{Code: b.Code, Reason: auth.Truncate(b.Message, maxCloseReason)}
	}
	return &Error{Code: b.Code, Message: auth.Truncate(b.Message, maxErrorMessage), Temporary: b.Temporary}, nil
}

// hubError maps a refused hub operation that is not a permission decision.
func hubError(e *hub.Error) *Error {
	switch e.Kind {
	case hub.ErrBadChannel, hub.ErrBadRequest:
		return ErrBadRequest.With(e.Msg)
	case hub.ErrUnknownNamespace:
		return ErrUnknownChannel.With(e.Msg)
	case hub.ErrAlreadySubscribed:
		return ErrAlreadySubscribed
	case hub.ErrLimit:
		return ErrLimitExceeded.With(e.Msg)
	case hub.ErrExpired:
		return ErrExpired.With(e.Msg)
	case hub.ErrUnrecoverable:
		return ErrUnrecoverablePosition.With(e.Msg)
	case hub.ErrNotAvailable:
		return ErrNotAvailable.With(e.Msg)
	case hub.ErrUnavailable, hub.ErrShuttingDown:
		return ErrInternal.With(e.Msg) // temporary: the SDK retries
	case hub.ErrClosing:
		return ErrInternal.With("connection is closing")
	}
	return ErrInternal
}

// intentDisconnect maps a disconnect intent to the protocol's close code.
func intentDisconnect(in hub.Intent) Disconnect {
	if in.Code != 0 {
		return Disconnect{Code: in.Code, Reason: auth.Truncate(in.Reason, maxCloseReason)}
	}
	var d Disconnect
	switch in.Why {
	case hub.WhyShutdown:
		d = DisconnectShutdown
	case hub.WhyExpired:
		d = DisconnectExpired
	case hub.WhySlow:
		d = DisconnectSlow
	case hub.WhyInsufficientState:
		d = DisconnectInsufficientState
	case hub.WhyRevoked:
		d = DisconnectInvalidToken
	default:
		d = DisconnectForceNoReconnect
	}
	return d.With(in.Reason)
}

// withReason returns a copy of d whose close reason adds what the client
// may see of r (shown: the code alone, or all of it). A close reason holds
// 123 bytes: when all of it does not fit, the code and the detail go first
// and the hint is left out whole, never cut in the middle.
func withReason(d Disconnect, r *auth.Reason, shown string) *Disconnect {
	if shown == string(r.Code) {
		d = d.With(shown)
		return &d
	}
	d.Reason += ": " + r.Compact(maxCloseReason-len(d.Reason)-2)
	return &d
}
