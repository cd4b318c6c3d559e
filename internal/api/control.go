package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/cfcodes"
	"github.com/heraldhub/herald/internal/hub"
)

// Control methods send an intent to a user's connections (or one of them)
// through the hub, which reaches the node that holds each connection; each
// front door maps the intent to its protocol.

func (a *Handler) control(user, client string, except []string, in hub.Intent) (any, *Error) {
	if err := a.hub.Control(user, client, except, in); err != nil {
		return nil, controlError(err)
	}
	return struct{}{}, nil
}

func controlError(err error) *Error {
	if he, ok := err.(*hub.Error); ok {
		return hubError(he)
	}
	return errInternal(err.Error())
}

func (a *Handler) subscribe(_ context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		User         string                 `json:"user"`
		Channel      string                 `json:"channel"`
		Client       string                 `json:"client"`
		Info         json.RawMessage        `json:"info"`
		Data         json.RawMessage        `json:"data"`
		ExpireAt     int64                  `json:"expire_at"`
		RecoverSince *broker.StreamPosition `json:"recover_since"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if _, e := a.resolve(req.Channel); e != nil {
		return nil, e
	}
	opts := &hub.ServerSubscription{RecoverSince: req.RecoverSince, ExpireAt: unixTime(req.ExpireAt)}
	var err error
	if len(req.Info) > 0 {
		if opts.Info, err = hub.NormalizeData(req.Info); err != nil {
			return nil, errBadRequest("info: " + err.Error())
		}
	}
	if len(req.Data) > 0 {
		if opts.Data, err = hub.NormalizeData(req.Data); err != nil {
			return nil, errBadRequest("data: " + err.Error())
		}
	}
	return a.control(req.User, req.Client, nil, hub.Intent{Kind: hub.IntentSubscribe, Why: hub.WhyServer, Channel: req.Channel, Subscribe: opts})
}

func (a *Handler) unsubscribe(_ context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		User    string `json:"user"`
		Channel string `json:"channel"`
		Client  string `json:"client"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if _, e := a.resolve(req.Channel); e != nil {
		return nil, e
	}
	return a.control(req.User, req.Client, nil, hub.Intent{Kind: hub.IntentUnsubscribe, Why: hub.WhyServer, Channel: req.Channel})
}

func (a *Handler) disconnect(_ context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		User       string   `json:"user"`
		Client     string   `json:"client"`
		Whitelist  []string `json:"whitelist"`
		Disconnect *struct {
			Code   uint32 `json:"code"`
			Reason string `json:"reason"`
		} `json:"disconnect"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	in := hub.Intent{Kind: hub.IntentDisconnect, Why: hub.WhyServer}
	if d := req.Disconnect; d != nil {
		if d.Code < 3000 || d.Code > 4999 {
			return nil, errBadRequest(fmt.Sprintf("disconnect code %d is out of range (3000-4999; applications use 4000-4999)", d.Code))
		}
		if len(d.Reason) > cfcodes.MaxCloseReason {
			return nil, errBadRequest(fmt.Sprintf("disconnect reason is longer than %d bytes (the WebSocket close-reason limit)", cfcodes.MaxCloseReason))
		}
		in.Code, in.Reason = d.Code, d.Reason
	}
	return a.control(req.User, req.Client, req.Whitelist, in)
}

func (a *Handler) refresh(_ context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		User     string          `json:"user"`
		Client   string          `json:"client"`
		Expired  bool            `json:"expired"`
		ExpireAt int64           `json:"expire_at"`
		Info     json.RawMessage `json:"info"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	r := &hub.ServerRefresh{Expired: req.Expired, ExpireAt: unixTime(req.ExpireAt)}
	if len(req.Info) > 0 {
		info, err := hub.NormalizeData(req.Info)
		if err != nil {
			return nil, errBadRequest("info: " + err.Error())
		}
		r.Info = info
	}
	return a.control(req.User, req.Client, nil, hub.Intent{Kind: hub.IntentRefresh, Why: hub.WhyServer, Refresh: r})
}

// send delivers an asynchronous message push to a user's connections (or one
// client). It is a Herald extension: the SDKs emit it as a "message" event.
func (a *Handler) send(_ context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		User   string          `json:"user"`
		Client string          `json:"client"`
		Data   json.RawMessage `json:"data"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if len(req.Data) == 0 || string(req.Data) == "null" {
		return nil, errBadRequest("data is required")
	}
	data, err := hub.NormalizeData(req.Data)
	if err != nil {
		return nil, errBadRequest(err.Error())
	}
	return a.control(req.User, req.Client, nil, hub.Intent{Kind: hub.IntentSend, Why: hub.WhyServer, Data: data})
}

// defaultRevocationKeep is how long a revocation is kept when the request
// does not say when the revoked tokens expire.
const defaultRevocationKeep = 30 * 24 * time.Hour

func revocationUntil(expireAt int64) (time.Time, *Error) {
	switch {
	case expireAt < 0:
		return time.Time{}, errBadRequest("expire_at must be a unix time in seconds")
	case expireAt == 0:
		return time.Now().Add(defaultRevocationKeep), nil
	}
	return time.Unix(expireAt, 0), nil
}

// revokeToken revokes one token by its jti ("uid"), for new and live
// connections, on every node.
func (a *Handler) revokeToken(_ context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		UID      string `json:"uid"`
		ExpireAt int64  `json:"expire_at"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.UID == "" {
		return nil, errBadRequest("uid (the token's jti) is required")
	}
	until, e := revocationUntil(req.ExpireAt)
	if e != nil {
		return nil, e
	}
	a.log.Info("token revoked", slog.String("jti", req.UID), slog.Time("until", until))
	if err := a.hub.Revoke(hub.Revocation{JTI: req.UID, Until: until}); err != nil {
		return nil, controlError(err)
	}
	return struct{}{}, nil
}

// invalidateUserTokens revokes every token of a user issued before a time
// (default now), for new and live connections, on every node.
func (a *Handler) invalidateUserTokens(_ context.Context, body json.RawMessage) (any, *Error) {
	var req struct {
		User         string `json:"user"`
		IssuedBefore int64  `json:"issued_before"`
		ExpireAt     int64  `json:"expire_at"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.User == "" {
		return nil, errBadRequest("user is required")
	}
	before := time.Now()
	if req.IssuedBefore > 0 {
		before = time.Unix(req.IssuedBefore, 0)
	}
	until, e := revocationUntil(req.ExpireAt)
	if e != nil {
		return nil, e
	}
	a.log.Info("user tokens revoked", slog.String("user", req.User), slog.Time("issued_before", before), slog.Time("until", until))
	if err := a.hub.Revoke(hub.Revocation{User: req.User, IssuedBefore: before, Until: until}); err != nil {
		return nil, controlError(err)
	}
	return struct{}{}, nil
}
