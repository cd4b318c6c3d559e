package centrifuge

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
	"github.com/heraldhub/herald/internal/proxy"
)

// --- publish, presence, history ---

// refusedOp answers a refused publish, presence or history command.
func (s *session) refusedOp(id uint32, what, channel string, herr *hub.Error) *Disconnect {
	r := herr.Reason
	if r == nil {
		level := slog.LevelDebug
		if herr.Kind == hub.ErrInternal || herr.Kind == hub.ErrUnavailable {
			level = slog.LevelWarn
		}
		s.log().LogAttrs(context.Background(), level, what+" refused", slog.String("channel", channel), slog.String("error", herr.Error()))
		s.replyError(id, hubError(herr))
		return nil
	}
	s.refused(what+" refused", r, channel)
	return s.replyDenied(id, r)
}

// replyDenied answers a channel operation the auth engine refused: the
// backend's own answer when it gave one, error 100 (temporary) when the
// backend could not be asked, else 103.
func (s *session) replyDenied(id uint32, r *auth.Reason) *Disconnect {
	switch {
	case r.Reply != nil:
		e, d := backendOutcome(r.Reply)
		if d != nil {
			return d
		}
		s.replyError(id, e)
	case proxy.Temporary(r):
		s.replyError(id, ErrInternal.With(s.h.shown(r)))
	case r.Code == auth.ChannelNotPermitted:
		s.replyError(id, ErrPermissionDenied.With(s.h.deniedText(r)))
	default:
		s.replyError(id, ErrPermissionDenied.With(s.h.shown(r)))
	}
	return nil
}

func (s *session) connState() (*auth.Conn, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authConn, s.info
}

func (s *session) handlePublish(id uint32, req *PublishRequest) *Disconnect {
	var data []byte
	enc := broker.EncodingJSON
	if req.raw {
		// A Protobuf client's data goes on byte for byte: JSON when it is
		// JSON (JSON subscribers get it as JSON), binary otherwise.
		data = req.Data
		if len(data) == 0 {
			s.replyError(id, ErrBadRequest.With("publication data is empty"))
			return nil
		}
		if !json.Valid(data) {
			enc = broker.EncodingBinary
		}
	} else {
		var err error
		if data, err = hub.NormalizeData(req.Data); err != nil {
			s.replyError(id, ErrBadRequest.With(err.Error()))
			return nil
		}
	}
	c, info := s.connState()
	if _, herr := s.h.hub.Publish(context.Background(), &hub.PublishRequest{Channel: req.Channel, Data: data, Encoding: enc,
		Client: s, Conn: c, ConnInfo: info}); herr != nil {
		return s.refusedOp(id, "publication", req.Channel, herr)
	}
	s.reply(&Reply{ID: id, Publish: &struct{}{}})
	return nil
}

func (s *session) read(channel string) *hub.ReadRequest {
	c, _ := s.connState()
	return &hub.ReadRequest{Channel: channel, Client: s, Conn: c}
}

func (s *session) handlePresence(id uint32, req *ChannelRequest) *Disconnect {
	p, herr := s.h.hub.Presence(context.Background(), s.read(req.Channel))
	if herr != nil {
		return s.refusedOp(id, "presence", req.Channel, herr)
	}
	s.reply(&Reply{ID: id, Presence: &PresenceResult{Presence: p}})
	return nil
}

func (s *session) handlePresenceStats(id uint32, req *ChannelRequest) *Disconnect {
	st, herr := s.h.hub.PresenceStats(context.Background(), s.read(req.Channel))
	if herr != nil {
		return s.refusedOp(id, "presence_stats", req.Channel, herr)
	}
	s.reply(&Reply{ID: id, PresenceStats: &st})
	return nil
}

func (s *session) handleHistory(id uint32, req *HistoryRequest) *Disconnect {
	r := s.read(req.Channel)
	r.Limit, r.Since, r.Reverse, r.MaxLimit = req.Limit, req.Since, req.Reverse, s.h.cfg.Client.HistoryMaxPublicationLimit
	pubs, top, herr := s.h.hub.History(context.Background(), r)
	if herr != nil {
		return s.refusedOp(id, "history", req.Channel, herr)
	}
	res := &HistoryResult{Epoch: top.Epoch, Offset: top.Offset}
	for _, p := range pubs {
		res.Publications = append(res.Publications, wirePub(p, false))
	}
	s.reply(&Reply{ID: id, History: res})
	return nil
}
