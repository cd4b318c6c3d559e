package centrifuge

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
)

// --- subscribe ---

func (s *session) handleSubscribe(id uint32, req *SubscribeRequest) *Disconnect {
	s.mu.Lock()
	_, already := s.subs[req.Channel]
	s.mu.Unlock()
	if already {
		s.replyError(id, ErrAlreadySubscribed)
		return nil
	}
	hreq := &hub.SubscribeRequest{Channel: req.Channel, Token: req.Token, Data: req.Data,
		Positioned: req.Positioned, Recoverable: req.Recoverable, JoinLeave: req.JoinLeave,
		RejectUnrecovered: req.Flag&flagRejectUnrecovered != 0, ChannelLimit: s.h.cfg.Client.ChannelLimit,
		Delta: s.deltaAllowed(req)}
	if req.Recover {
		hreq.Recover = &broker.StreamPosition{Offset: req.Offset, Epoch: req.Epoch}
	}
	sub, result, herr := s.subscribeHub(hreq)
	if herr != nil {
		return s.subscribeRefused(id, req.Channel, herr)
	}
	s.reply(&Reply{ID: id, Subscribe: result})
	s.activate(sub)
	return nil
}

// deltaAllowed reports whether a subscription gets delta compression: the
// client asks for fossil and the channel's namespace allows it. Otherwise
// the subscribe result says delta is off and publications come whole.
func (s *session) deltaAllowed(req *SubscribeRequest) bool {
	if req.Delta == "" {
		return false
	}
	ns, err := s.h.hub.Namespaces().Resolve(req.Channel)
	if err != nil {
		return false // the hub refuses the channel
	}
	if req.Delta != "fossil" || !slices.Contains(ns.AllowedDeltaTypes, req.Delta) {
		s.log().Debug("delta compression not negotiated", slog.String("channel", req.Channel), slog.String("delta", req.Delta),
			slog.String("hint", "allowed_delta_types: [fossil] in "+ns.Label()+" allows it"))
		return false
	}
	return true
}

// subscribeRefused answers a refused subscription.
func (s *session) subscribeRefused(id uint32, channel string, herr *hub.Error) *Disconnect {
	r := herr.Reason
	if r == nil {
		s.log().Info("subscription refused", slog.String("channel", channel), slog.String("error", herr.Error()))
		s.replyError(id, hubError(herr))
		return nil
	}
	s.refused("subscription refused", r, channel)
	shown := s.h.shown(r)
	switch {
	case r.Code == auth.TokenExpired, r.Code == auth.TokenNotYetValid:
		s.replyError(id, ErrTokenExpired.With(shown))
	case r.Code == auth.JWKSUnavailable:
		s.replyError(id, ErrInternal.With(shown))
	case r.Code == auth.SubscriptionTokenMismatch && !s.h.cfg.Client.SubscriptionTokenMismatchError:
		return withReason(DisconnectInvalidToken, r, shown)
	default:
		return s.replyDenied(id, r)
	}
	return nil
}

// subscribeHub asks the hub for a subscription of this connection and
// builds the protocol's result. The caller queues the result and then
// calls activate, which delivers what arrived meanwhile.
func (s *session) subscribeHub(req *hub.SubscribeRequest) (*subscription, *SubscribeResult, *hub.Error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, &hub.Error{Kind: hub.ErrClosing, Msg: "connection is closing"}
	}
	req.Client, req.Conn, req.ConnInfo = s, s.authConn, s.info
	s.mu.Unlock()
	hres, herr := s.h.hub.Subscribe(context.Background(), req)
	if herr != nil {
		return nil, nil, herr
	}
	sub := &subscription{hs: hres.Sub, channel: req.Channel, serverSide: req.ServerSide, expireAt: hres.Grant.ExpireAt}
	s.mu.Lock()
	if s.closed || s.subs[req.Channel] != nil {
		s.mu.Unlock()
		s.h.hub.Unsubscribe(hres.Sub)
		return nil, nil, &hub.Error{Kind: hub.ErrAlreadySubscribed, Msg: "already subscribed"}
	}
	s.subs[req.Channel] = sub
	s.mu.Unlock()
	res := &SubscribeResult{Data: hres.Grant.Data, Delta: req.Delta}
	if req.Delta {
		// Deliveries wait for Activate, so the state is in place before any.
		s.startDelta(hres.Sub, hres.Publications, hres.Position.Epoch)
	}
	if !sub.expireAt.IsZero() && !s.subRefreshedByProxy(sub) {
		res.Expires = true
		res.TTL = ttlUntil(sub.expireAt, time.Now())
	}
	if hres.Positioned {
		res.Positioned, res.Recoverable = true, hres.Recoverable
		res.Epoch, res.Offset = hres.Position.Epoch, hres.Position.Offset
		res.WasRecovering, res.Recovered = hres.WasRecovering, hres.Recovered
		for _, p := range hres.Publications {
			res.Publications = append(res.Publications, wirePub(p, req.Delta && !s.proto))
		}
	}
	return sub, res, nil
}

// subscribe makes a server-side subscription (token channels, the server API).
func (s *session) subscribe(req *hub.SubscribeRequest) (*subscription, *SubscribeResult, *Error) {
	sub, res, herr := s.subscribeHub(req)
	if herr != nil {
		return nil, nil, hubError(herr)
	}
	return sub, res, nil
}

// activate switches a subscription whose answer is queued to live delivery.
func (s *session) activate(sub *subscription) {
	s.h.hub.Activate(sub.hs)
	s.mu.Lock()
	if s.subs[sub.channel] == sub {
		s.armSubExpiryLocked(sub)
	}
	s.mu.Unlock()
}

// removeSub ends a subscription (presence and leave included) without
// telling the client.
func (s *session) removeSub(sub *subscription) {
	s.mu.Lock()
	if s.subs[sub.channel] != sub {
		s.mu.Unlock()
		return
	}
	delete(s.subs, sub.channel)
	s.stopDeltaLocked(sub.hs)
	if sub.timer != nil {
		sub.timer.Stop()
	}
	s.mu.Unlock()
	s.h.hub.Unsubscribe(sub.hs)
}

// endSub ends a subscription and tells the client: an unsubscribe push, or
// for a server-side subscription (which the client cannot resubscribe) a
// disconnect.
func (s *session) endSub(sub *subscription, code uint32, reason string, serverSide Disconnect) {
	if sub.serverSide {
		s.closeWith(serverSide)
		return
	}
	s.removeSub(sub)
	s.push(&Push{Channel: sub.channel, Unsubscribe: &UnsubscribePush{Code: code, Reason: reason}})
}

func (s *session) armSubExpiryLocked(sub *subscription) {
	if sub.timer != nil {
		sub.timer.Stop()
		sub.timer = nil
	}
	if sub.expireAt.IsZero() {
		return
	}
	grace := s.h.cfg.Client.ExpiredSubCloseDelay.D()
	if s.subRefreshedByProxy(sub) {
		sub.timer = time.AfterFunc(time.Until(sub.expireAt), func() { s.subRefreshViaProxy(sub) })
		return
	}
	sub.timer = time.AfterFunc(time.Until(sub.expireAt)+grace, func() {
		s.mu.Lock()
		current := s.subs[sub.channel] == sub
		expired := current && !sub.expireAt.IsZero() && !time.Now().Before(sub.expireAt.Add(grace))
		s.mu.Unlock()
		if !expired {
			return
		}
		s.log().Info("subscription expired and was not refreshed", slog.String("channel", sub.channel))
		s.endSub(sub, UnsubscribeSubscriptionExpired, "subscription expired", DisconnectSubExpired)
	})
}

// --- unsubscribe ---

func (s *session) handleUnsubscribe(id uint32, req *UnsubscribeRequest) *Disconnect {
	s.mu.Lock()
	sub := s.subs[req.Channel]
	s.mu.Unlock()
	if sub != nil {
		s.removeSub(sub)
	}
	s.reply(&Reply{ID: id, Unsubscribe: &struct{}{}})
	return nil
}

// --- sub_refresh ---

func (s *session) handleSubRefresh(id uint32, req *SubRefreshRequest) *Disconnect {
	s.mu.Lock()
	sub := s.subs[req.Channel]
	s.mu.Unlock()
	if sub == nil {
		s.replyError(id, ErrPermissionDenied.With(fmt.Sprintf("not subscribed to %q", req.Channel)))
		return nil
	}
	grant, reason := s.h.engine.Verifier().Subscription(auth.SubscriptionRequest{Token: req.Token, Source: auth.SourceSubRefreshCommand,
		Channel: req.Channel, User: s.user, Client: s.clientID})
	if reason != nil {
		s.refused("sub_refresh refused", reason, req.Channel)
		if reason.Code == auth.TokenExpired || reason.Code == auth.TokenNotYetValid {
			return withReason(DisconnectSubExpired, reason, s.h.shown(reason))
		}
		return withReason(DisconnectInvalidToken, reason, s.h.shown(reason))
	}
	if grant.Info != nil {
		sub.hs.SetChanInfo(grant.Info)
	}
	s.mu.Lock()
	sub.expireAt = grant.ExpireAt
	s.armSubExpiryLocked(sub)
	s.mu.Unlock()
	res := &RefreshResult{}
	if !grant.ExpireAt.IsZero() {
		res.Expires = true
		res.TTL = ttlUntil(grant.ExpireAt, time.Now())
	}
	s.reply(&Reply{ID: id, SubRefresh: res})
	return nil
}

// subRefreshedByProxy reports whether the sub_refresh proxy extends sub.
func (s *session) subRefreshedByProxy(sub *subscription) bool {
	return s.h.proxies.SubRefresh != nil && sub.hs.Namespace().SubRefreshProxyEnabled
}
