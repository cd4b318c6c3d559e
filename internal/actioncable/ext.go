package actioncable

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sort"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/hub"
)

// The extended protocol's commands: history, whisper and presence.

func (s *session) handleExt(cmd *command) {
	s.mu.Lock()
	sub := s.subs[cmd.Identifier]
	s.mu.Unlock()
	switch cmd.Command {
	case "history":
		if cmd.History == nil {
			s.log().Info("history without a history object", slog.String("identifier", auth.Truncate(cmd.Identifier, 200)))
			s.enqueue(rejectHistoryFrame(cmd.Identifier))
			return
		}
		s.history(cmd.Identifier, cmd.History)
	case "whisper":
		s.whisper(sub, cmd)
	case "join":
		s.join(sub, cmd)
	case "leave":
		if sub != nil {
			s.leavePresence(sub)
		}
	case "presence":
		s.presenceInfo(sub, cmd)
	}
}

// history sends the publications of the subscription's streams after the
// positions the client knows (or since a time), then confirm_history; when
// any stream cannot be served, reject_history and nothing else.
func (s *session) history(id string, req *historyRequest) {
	s.mu.Lock()
	sub := s.subs[id]
	var streams []string
	if sub != nil {
		streams = append(streams, sub.streams...)
	}
	s.mu.Unlock()
	reject := func(why string, attrs ...slog.Attr) {
		s.log().Info("history rejected: "+why, append(attrs, slog.String("identifier", auth.Truncate(id, 200)))...)
		s.enqueue(rejectHistoryFrame(id))
	}
	if sub == nil {
		reject("not subscribed")
		return
	}
	if req.Since <= 0 && len(req.Streams) == 0 {
		reject("the request names neither since nor stream positions")
		return
	}
	var frames [][]byte
	for _, name := range streams {
		rr := &hub.ReadRequest{Channel: name, Limit: -1, MaxLimit: s.h.cfg.Client.HistoryMaxPublicationLimit, OptionalNamespace: true}
		pos, known := req.Streams[name]
		if known {
			rr.Since = &broker.StreamPosition{Offset: pos.Offset, Epoch: pos.Epoch}
		} else if req.Since <= 0 {
			continue
		}
		pubs, top, herr := s.h.hub.History(context.Background(), rr)
		if herr != nil {
			reject(herr.Error(), slog.String("stream", name))
			return
		}
		for _, p := range pubs {
			if !known && p.Time.Unix() < req.Since {
				continue
			}
			frames = append(frames, dataFrame(id, hub.JSONData(p), name, top.Epoch, p.Offset))
		}
	}
	for _, f := range frames {
		s.enqueue(f)
	}
	s.enqueue(confirmHistoryFrame(id))
}

// whisper publishes the client's data to the subscription's whisper stream,
// for the other subscribers only, without storing it.
func (s *session) whisper(sub *subscription, cmd *command) {
	if sub == nil || sub.whisper == "" {
		s.log().Info("whisper ignored: the subscription has no whisper stream (public streams have one; signed ones with actioncable.streams.whisper; the app's channels with whispers_to)",
			slog.String("identifier", auth.Truncate(cmd.Identifier, 200)))
		return
	}
	data, err := hub.NormalizeData(cmd.Data)
	if err != nil {
		s.log().Info("whisper ignored: "+err.Error(), slog.String("identifier", auth.Truncate(cmd.Identifier, 200)))
		return
	}
	if _, herr := s.h.hub.Publish(context.Background(), &hub.PublishRequest{Channel: sub.whisper, Data: data, SkipHistory: true,
		Tags: map[string]string{tagExclude: s.sid}, OptionalNamespace: true}); herr != nil {
		s.log().Info("whisper failed", slog.String("stream", sub.whisper), slog.String("error", herr.Error()))
	}
}

// presenceEvent publishes a join or leave to the presence stream's
// subscribers (not stored).
func (s *session) presenceEvent(stream, typ, pid string, info json.RawMessage) {
	b := []byte(`{"type":`)
	b = appendString(b, typ)
	b = append(b, `,"id":`...)
	b = appendString(b, pid)
	if len(info) > 0 {
		b = append(b, `,"info":`...)
		b = append(b, info...)
	}
	b = append(b, '}')
	if _, herr := s.h.hub.Publish(context.Background(), &hub.PublishRequest{Channel: stream, Data: b, SkipHistory: true,
		Tags: map[string]string{tagType: "presence"}, OptionalNamespace: true}); herr != nil {
		s.log().Info("presence event not published", slog.String("stream", stream), slog.String("error", herr.Error()))
	}
}

// othersWith reports whether another connection is in stream's presence
// with the presence id pid (a join or leave is announced only for the first
// and the last).
func (s *session) othersWith(stream, pid string) bool {
	p, herr := s.h.hub.Presence(context.Background(), &hub.ReadRequest{Channel: stream, OptionalNamespace: true})
	if herr != nil {
		return false
	}
	for client, info := range p {
		if client != s.sid && info.User == pid {
			return true
		}
	}
	return false
}

// join puts the connection in the subscription's presence. An identified
// connection joins as its user, whatever id the client names (presence ids
// are otherwise the client's word).
func (s *session) join(sub *subscription, cmd *command) {
	fail := func(why string) {
		s.log().Info("presence join refused: "+why, slog.String("identifier", auth.Truncate(cmd.Identifier, 200)))
		s.enqueue(presenceFrame(cmd.Identifier, []byte(`{"type":"error"}`)))
	}
	if sub == nil || sub.presence == "" {
		fail("the subscription has no presence stream (public streams have one; signed ones with actioncable.streams.presence; the app's channels with join_presence)")
		return
	}
	if cmd.Presence == nil {
		fail("no presence object")
		return
	}
	pid := s.user
	if pid == "" {
		pid = cmd.Presence.ID
	}
	if pid == "" || len(pid) > 256 {
		fail("the presence id is empty or longer than 256 bytes")
		return
	}
	var info json.RawMessage
	if len(bytes.TrimSpace(cmd.Presence.Info)) > 0 && string(cmd.Presence.Info) != "null" {
		if len(cmd.Presence.Info) > s.h.cfg.Client.ConnectionInfoMaxSize {
			fail("info is larger than client.connection_info_max_size")
			return
		}
		info = auth.CompactJSON(cmd.Presence.Info)
	}
	s.joinAs(sub, pid, info)
}

func (s *session) joinAs(sub *subscription, pid string, info json.RawMessage) {
	hs := s.streamOf(sub.presence)
	if hs == nil {
		return
	}
	first := !s.othersWith(sub.presence, pid)
	if herr := s.h.hub.JoinPresence(hs, &broker.ClientInfo{User: pid, Client: s.sid, ChanInfo: info}); herr != nil {
		s.log().Info("presence join failed", slog.String("stream", sub.presence), slog.String("error", herr.Error()))
		s.enqueue(presenceFrame(sub.id, []byte(`{"type":"error"}`)))
		return
	}
	s.mu.Lock()
	already := sub.joined == pid
	sub.joined = pid
	s.mu.Unlock()
	s.log().Debug("presence joined", slog.String("stream", sub.presence), slog.String("presence_id", pid), slog.Bool("first", first))
	if first && !already {
		s.presenceEvent(sub.presence, "join", pid, info)
	}
}

// leavePresence takes the connection out of the subscription's presence.
func (s *session) leavePresence(sub *subscription) {
	s.mu.Lock()
	pid := sub.joined
	sub.joined = ""
	s.mu.Unlock()
	if pid == "" {
		return
	}
	if hs := s.streamOf(sub.presence); hs != nil {
		_ = s.h.hub.LeavePresence(hs)
	}
	if !s.othersWith(sub.presence, pid) {
		s.presenceEvent(sub.presence, "leave", pid, nil)
	}
}

// presenceInfo answers who is in the subscription's presence: one record
// per presence id.
func (s *session) presenceInfo(sub *subscription, cmd *command) {
	if sub == nil || sub.presence == "" {
		s.enqueue(presenceFrame(cmd.Identifier, []byte(`{"type":"error"}`)))
		return
	}
	// Records come unless the client asks for totals only (@anycable/core
	// sends an empty object).
	opts := struct {
		ReturnRecords bool `json:"return_records"`
	}{ReturnRecords: true}
	_ = json.Unmarshal(cmd.Data, &opts)
	p, herr := s.h.hub.Presence(context.Background(), &hub.ReadRequest{Channel: sub.presence, OptionalNamespace: true})
	if herr != nil {
		s.log().Info("presence info failed", slog.String("stream", sub.presence), slog.String("error", herr.Error()))
		s.enqueue(presenceFrame(cmd.Identifier, []byte(`{"type":"error"}`)))
		return
	}
	records := map[string]json.RawMessage{}
	for _, info := range p {
		if _, ok := records[info.User]; !ok {
			records[info.User] = info.ChanInfo
		}
	}
	ids := make([]string, 0, len(records))
	for id := range records {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	b := []byte(`{"type":"info","total":`)
	b = append(b, []byte(jsonInt(len(ids)))...)
	if opts.ReturnRecords {
		b = append(b, `,"records":[`...)
		for i, id := range ids {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendString(b, id)
			if info := records[id]; len(info) > 0 {
				b = append(b, `,"info":`...)
				b = append(b, info...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	s.log().Debug("presence info", slog.String("stream", sub.presence), slog.Int("total", len(ids)))
	s.enqueue(presenceFrame(cmd.Identifier, append(b, '}')))
}

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }
