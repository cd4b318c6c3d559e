package actioncable

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/hub"
)

// The app's channels over RPC. A subscribe, unsubscribe or perform is one
// command call; its answer says which streams the identifier follows (in the
// hub, before the app's confirm goes out, so no broadcast falls in between),
// the state deltas to keep, the frames to send as they are, and whether to
// close. A connection's calls go one at a time, in the client's order.

// rpcConnect is the app's RPC connect as the auth engine's connect
// authority for one connection; it keeps what the answer carries besides
// the identity.
type rpcConnect struct {
	s             *session
	transmissions [][]byte
	cstate        map[string]string
}

// AuthorizeConnect implements auth.ConnectAuthority.
func (rc *rpcConnect) AuthorizeConnect(ctx context.Context, _ *auth.ConnectRequest, _ *auth.Identity) (*auth.Identity, *auth.Reason) {
	s := rc.s
	rep, r := s.h.rpc.call(ctx, "connect", s.sid, &connectRequest{Env: rpcEnv{URL: s.url, Headers: s.headers}})
	if r != nil {
		return nil, r
	}
	rc.transmissions = rep.Transmissions
	switch rep.Status {
	case statusSuccess:
		rc.cstate = mergeState(nil, rep.Cstate)
		return &auth.Identity{User: auth.UserOf(rep.Identifiers, s.h.ac.UserIdentifier), Identifiers: rep.Identifiers, Source: "rpc"}, nil
	case statusFailure:
		detail := "the app's connection class rejected the connection (reject_unauthorized_connection)"
		if rep.ErrorMsg != "" {
			detail += ": " + rep.ErrorMsg
		}
		return nil, rpcReason(auth.RPCDenied, detail,
			"the app decided; common causes: the session cookie does not reach Herald's host (cookie domain), the app's secret_key_base differs so its encrypted cookie cannot be read, or the connection class needs a header missing from actioncable.rpc.headers")
	}
	return nil, rpcReason(auth.RPCError, "the app raised an error in its connection class: "+orNone(rep.ErrorMsg), "the app's log has the exception")
}

func orNone(s string) string {
	if s == "" {
		return "(no error_msg)"
	}
	return s
}

// mergeState applies a state delta: an empty value deletes the key.
func mergeState(dst, delta map[string]string) map[string]string {
	for k, v := range delta {
		if v == "" {
			delete(dst, k)
			continue
		}
		if dst == nil {
			dst = map[string]string{}
		}
		dst[k] = v
	}
	return dst
}

// command calls the app with a command of sub's identifier.
func (s *session) command(name string, sub *subscription, data string) (*rpcReply, *auth.Reason) {
	s.mu.Lock()
	s.rpcInterest = true
	req := &commandRequest{Command: name, Identifier: sub.id, ConnectionIdentifiers: s.identifiers, Data: data,
		Env: rpcEnv{URL: s.url, Headers: s.headers, Cstate: maps.Clone(s.cstate), Istate: maps.Clone(sub.istate)}}
	s.mu.Unlock()
	rep, r := s.h.rpc.call(context.Background(), "command", s.sid, req)
	if r == nil && rep.Status == statusError {
		r = rpcReason(auth.RPCError, fmt.Sprintf("the app raised an error in %s of %s: %s", name, auth.Truncate(sub.channel, 64), orNone(rep.ErrorMsg)),
			"the app's log has the exception (a channel class the app does not have answers this way too)")
	}
	if r != nil {
		s.refused("the app's "+name+" failed; nothing is sent to the client", r, sub.id, "")
		return nil, r
	}
	return rep, nil
}

func (s *session) subscribeRPC(id, channel string) bool {
	sub := &subscription{id: id, channel: channel, rpc: true}
	rep, r := s.command("subscribe", sub, "")
	if r != nil {
		return false
	}
	if rep.Status != statusSuccess {
		s.log().Info("subscription rejected by the app", slog.String("identifier", auth.Truncate(id, 200)), slog.String("error_msg", rep.ErrorMsg))
		s.mu.Lock()
		s.cstate = mergeState(s.cstate, rep.Cstate)
		s.mu.Unlock()
		s.finish(sub, rep, nil)
		return false
	}
	s.mu.Lock()
	if s.closed || s.subs[id] != nil {
		s.mu.Unlock()
		return false
	}
	s.subs[id] = sub
	s.mu.Unlock()
	s.finish(sub, rep, s.applyStreams(sub, rep))
	return true
}

func (s *session) unsubscribeRPC(sub *subscription) {
	rep, r := s.command("unsubscribe", sub, "")
	if r != nil {
		return // the subscription stays
	}
	s.drop(sub)
	s.mu.Lock()
	s.cstate = mergeState(s.cstate, rep.Cstate)
	s.mu.Unlock()
	s.finish(nil, rep, nil)
}

func (s *session) performRPC(sub *subscription, data string) {
	rep, r := s.command("message", sub, data)
	if r != nil {
		return
	}
	s.finish(sub, rep, s.applyStreams(sub, rep))
}

// applyStreams applies an answer's streams and state deltas to sub, in
// AnyCable's order: stop, start, istate, cstate. It returns the new hub
// subscriptions, to activate once the app's frames are queued.
func (s *session) applyStreams(sub *subscription, rep *rpcReply) []*hub.Subscription {
	s.mu.Lock()
	stop := rep.StoppedStreams
	if rep.StopStreams {
		stop = append([]string(nil), sub.streams...)
	}
	s.mu.Unlock()
	for _, name := range stop {
		s.unfollow(sub, name)
	}
	var fresh []*hub.Subscription
	for _, name := range rep.Streams {
		hs, herr := s.follow(sub, name)
		if herr != nil {
			s.log().Warn("the app's stream could not be followed", slog.String("identifier", auth.Truncate(sub.id, 200)),
				slog.String("stream", auth.Truncate(name, 100)), slog.String("error", herr.Error()))
			continue
		}
		if hs != nil {
			fresh = append(fresh, hs)
		}
	}
	s.mu.Lock()
	sub.istate = mergeState(sub.istate, rep.Istate)
	sub.whisper, sub.presence = sub.istate["$w"], sub.istate["$p"]
	s.cstate = mergeState(s.cstate, rep.Cstate)
	s.mu.Unlock()
	return fresh
}

// finish sends the app's frames, activates the new streams, applies the
// presence change and closes when the app said so.
func (s *session) finish(sub *subscription, rep *rpcReply, fresh []*hub.Subscription) {
	if rep.Disconnect {
		for _, hs := range fresh {
			s.h.hub.Activate(hs)
		}
		s.disconnect("", false, nil, websocketNormal, "Command Failed", rep.Transmissions...)
		s.kicked.Store(true)
		return
	}
	for _, t := range rep.Transmissions {
		s.enqueue(t)
	}
	for _, hs := range fresh {
		s.h.hub.Activate(hs)
	}
	if p := rep.Presence; p != nil && sub != nil && sub.presence != "" {
		if p.Type == "leave" {
			s.leavePresence(sub)
			return
		}
		var info json.RawMessage
		if p.Info != "" {
			if json.Valid([]byte(p.Info)) {
				info = auth.CompactJSON(json.RawMessage(p.Info))
			} else {
				info, _ = json.Marshal(p.Info)
			}
		}
		s.joinAs(sub, p.ID, info)
	}
}

// disconnectRPC tells the app a connection closed, as the disconnect mode
// says, without holding up the connection's teardown.
func (s *session) disconnectRPC(subs []*subscription) {
	mode := s.h.ac.RPC.DisconnectMode
	s.mu.Lock()
	interest := s.rpcInterest
	req := &disconnectRequest{Identifiers: s.identifiers, Env: rpcEnv{URL: s.url, Headers: s.headers, Cstate: maps.Clone(s.cstate)}}
	for _, sub := range subs {
		req.Subscriptions = append(req.Subscriptions, sub.id)
		if len(sub.istate) > 0 {
			if req.Env.Istate == nil {
				req.Env.Istate = map[string]string{}
			}
			b, _ := json.Marshal(sub.istate)
			req.Env.Istate[sub.id] = string(b)
		}
	}
	s.mu.Unlock()
	if mode == "never" || (mode == "auto" && !interest) {
		return
	}
	c := s.h.rpc
	c.pending.Add(1)
	go func() {
		defer c.pending.Done()
		rep, r := c.call(context.Background(), "disconnect", s.sid, req)
		if r == nil && rep.Status == statusError {
			r = rpcReason(auth.RPCError, "the app raised an error in disconnect: "+orNone(rep.ErrorMsg), "the app's log has the exception")
		}
		if r != nil {
			s.log().Info("the app's disconnect failed", r.LogAttrs()...)
		}
	}()
}

// waitDisconnects waits for the pending disconnect calls, or ctx.
func (c *rpcClient) waitDisconnects(ctx context.Context) {
	done := make(chan struct{})
	go func() { c.pending.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(c.timeout + time.Second):
	}
}
