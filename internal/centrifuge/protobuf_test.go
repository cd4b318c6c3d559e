package centrifuge_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"testing"
	"time"

	"github.com/centrifugal/protocol"

	"github.com/heraldhub/herald/internal/testutil"
)

func TestProtobufOverWebSocket(t *testing.T) {
	srv := testutil.Start(t, nil)
	for _, how := range []string{"", "?format=protobuf", "?cf_protocol=protobuf"} {
		t.Run("select"+how, func(t *testing.T) {
			c := dialProtobuf(t, srv, how)
			if how == "" && c.conn.Subprotocol() != "centrifuge-protobuf" {
				t.Fatalf("subprotocol %q, want centrifuge-protobuf echoed", c.conn.Subprotocol())
			}
			r := c.call(&protocol.Command{Connect: &protocol.ConnectRequest{Token: testutil.UserToken(t, "pb")}})
			if r.Connect == nil || r.Connect.Client == "" || !r.Connect.Pong || r.Connect.Ping == 0 {
				t.Fatalf("connect reply %+v", r)
			}
		})
	}

	c := dialProtobuf(t, srv, "")
	c.call(&protocol.Command{Connect: &protocol.ConnectRequest{Token: testutil.UserToken(t, "pb")}})
	if r := c.call(&protocol.Command{Subscribe: &protocol.SubscribeRequest{Channel: "news", Recoverable: true}}); r.Subscribe == nil || !r.Subscribe.Recoverable {
		t.Fatalf("subscribe reply %+v", r)
	}
	js := srv.Dial(t, nil)
	js.Connect(testutil.UserToken(t, "js"))
	js.Call("subscribe", map[string]any{"channel": "news"})

	// JSON through the API reaches a Protobuf client as its JSON bytes.
	if status, _ := srv.API(t, "publish", map[string]any{"channel": "news", "data": map[string]any{"text": "hi"}}); status != 200 {
		t.Fatalf("api publish %d", status)
	}
	p := c.push()
	if p.Channel != "news" || p.Pub == nil || string(p.Pub.Data) != `{"text":"hi"}` || p.Pub.Offset != 1 {
		t.Fatalf("push %+v", p)
	}
	js.WaitPush(5 * time.Second)

	// Binary data from a Protobuf client reaches Protobuf subscribers byte
	// for byte, and JSON subscribers as a JSON string of its base64.
	bin := []byte{0, 1, 2, 0xff, '\n'}
	if r := c.call(&protocol.Command{Publish: &protocol.PublishRequest{Channel: "news", Data: bin}}); r.Publish == nil || r.Error != nil {
		t.Fatalf("publish reply %+v", r)
	}
	if p := c.push(); !bytes.Equal(p.Pub.Data, bin) || p.Pub.Info == nil || p.Pub.Info.User != "pb" {
		t.Fatalf("binary push %+v", p)
	}
	jp := js.WaitPush(5 * time.Second)
	pub := jp["pub"].(map[string]any)
	if pub["data"] != base64.StdEncoding.EncodeToString(bin) {
		t.Fatalf("JSON subscriber got %v, want the base64 string", pub["data"])
	}

	// Binary data through the API (b64data) likewise.
	if status, _ := srv.API(t, "publish", map[string]any{"channel": "news", "b64data": base64.StdEncoding.EncodeToString(bin)}); status != 200 {
		t.Fatalf("api b64data publish %d", status)
	}
	if p := c.push(); !bytes.Equal(p.Pub.Data, bin) {
		t.Fatalf("b64data push %+v", p)
	}
	if jp := js.WaitPush(5 * time.Second); jp["pub"].(map[string]any)["data"] != base64.StdEncoding.EncodeToString(bin) {
		t.Fatalf("JSON subscriber got %v for b64data", jp)
	}

	// History, presence and presence_stats.
	r := c.call(&protocol.Command{History: &protocol.HistoryRequest{Channel: "news", Limit: -1}})
	if r.History == nil || len(r.History.Publications) != 3 || !bytes.Equal(r.History.Publications[1].Data, bin) || r.History.Epoch == "" {
		t.Fatalf("history %+v", r)
	}
	r = c.call(&protocol.Command{Presence: &protocol.PresenceRequest{Channel: "news"}})
	if r.Presence == nil || len(r.Presence.Presence) != 2 {
		t.Fatalf("presence %+v", r)
	}
	r = c.call(&protocol.Command{PresenceStats: &protocol.PresenceStatsRequest{Channel: "news"}})
	if r.PresenceStats == nil || r.PresenceStats.NumUsers != 2 {
		t.Fatalf("presence stats %+v", r)
	}
	// Errors are Protobuf errors.
	r = c.call(&protocol.Command{Subscribe: &protocol.SubscribeRequest{Channel: "news"}})
	if r.Error == nil || r.Error.Code != 105 {
		t.Fatalf("second subscribe %+v", r)
	}
	if r := c.call(&protocol.Command{Unsubscribe: &protocol.UnsubscribeRequest{Channel: "news"}}); r.Unsubscribe == nil {
		t.Fatalf("unsubscribe %+v", r)
	}
}

func TestProtobufPingPong(t *testing.T) {
	cfg := testutil.Config()
	cfg.Client.PingInterval = 200 * 1e6
	cfg.Client.PongTimeout = 150 * 1e6
	srv := testutil.Start(t, cfg)
	c := dialProtobuf(t, srv, "")
	c.call(&protocol.Command{Connect: &protocol.ConnectRequest{Token: testutil.UserToken(t, "pb")}})
	// The ping is the empty reply: the single byte 0x00 in a binary frame.
	for i := 0; i < 3; i++ {
		r, err := c.next(2 * time.Second)
		if err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		if r.Id != 0 || r.Push != nil || !bytes.Equal(c.lastRaw, []byte{0}) {
			t.Fatalf("ping frame % x", c.lastRaw)
		}
		c.sendRaw([]byte{0}) // pong: the empty command
	}
	// Without pongs the server closes with 3012.
	if code := c.expectClose(3 * time.Second); code != 3012 {
		t.Fatalf("close %d, want 3012", code)
	}
}

func TestProtobufBadInput(t *testing.T) {
	srv := testutil.Start(t, nil)
	connect := delimit(&protocol.Command{Id: 1, Connect: &protocol.ConnectRequest{Token: testutil.UserToken(t, "pb")}})
	// An unknown field (number 99, varint) inside the connect command is ignored.
	cmdBytes := connect[1:]
	unknown := append(append([]byte{}, cmdBytes...), 0x98, 0x06, 0x01)
	withUnknown := append(binary.AppendUvarint(nil, uint64(len(unknown))), unknown...)
	c := dialProtobuf(t, srv, "")
	c.sendRaw(withUnknown)
	if r, err := c.next(5 * time.Second); err != nil || r.Connect == nil {
		t.Fatalf("connect with an unknown field: %+v %v", r, err)
	}

	cases := []struct {
		name  string
		frame []byte
		code  int
	}{
		{"empty frame", []byte{}, 3501},
		{"truncated varint", []byte{0x80}, 3501},
		{"length over the limit", binary.AppendUvarint(nil, 1<<20), 3501},
		{"length past the frame", []byte{0x05, 0x08, 0x01}, 3501},
		{"undecodable command", []byte{0x02, 0x22, 0x05}, 3501},
		{"connect data that is not JSON", delimit(&protocol.Command{Id: 1, Connect: &protocol.ConnectRequest{Data: []byte{0xff}}}), 3501},
		{"message over the size limit", make([]byte, 70000), 1009},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialProtobuf(t, srv, "")
			c.sendRaw(tc.frame)
			if code := c.expectClose(5 * time.Second); code != tc.code {
				t.Fatalf("close %d, want %d", code, tc.code)
			}
		})
	}
	// The connection serving the connect with an unknown field is still fine.
	if r := c.call(&protocol.Command{Subscribe: &protocol.SubscribeRequest{Channel: "ok"}}); r.Subscribe == nil {
		t.Fatalf("subscribe after %+v", r)
	}
}
