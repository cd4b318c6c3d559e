package centrifuge_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/centrifugal/protocol"

	"github.com/heraldhub/herald/internal/testutil"
)

func connectFrame(t testing.TB, user string) []byte {
	b, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]any{"token": testutil.UserToken(t, user)}})
	return b
}

// Bidirectional emulation in JSON over HTTP streaming and SSE: connect on
// the stream, later commands on /emulation, replies and publications on the
// stream, and an in-stream disconnect push at the end.
func TestEmulationJSON(t *testing.T) {
	cfg := transportsConfig()
	cfg.Client.AllowedOrigins = []string{"http://app.example"}
	srv := testutil.Start(t, cfg)
	open := map[string]func() *stream{
		"http_stream": func() *stream {
			return openStream(t, srv, http.MethodPost, "/connection/http_stream", "application/json", connectFrame(t, "alice"))
		},
		"sse": func() *stream {
			return openStream(t, srv, http.MethodGet, "/connection/sse?cf_connect="+url.QueryEscape(string(connectFrame(t, "alice"))), "", nil)
		},
		"sse POST": func() *stream {
			return openStream(t, srv, http.MethodPost, "/connection/sse", "application/json", connectFrame(t, "alice"))
		},
	}
	for name, start := range open {
		t.Run(name, func(t *testing.T) {
			st := start()
			if st.resp.StatusCode != 200 || st.resp.Header.Get("X-Accel-Buffering") != "no" ||
				!strings.Contains(st.resp.Header.Get("Cache-Control"), "no-store") {
				t.Fatalf("status %d headers %v", st.resp.StatusCode, st.resp.Header)
			}
			if strings.HasPrefix(name, "sse") != st.sse {
				t.Fatalf("Content-Type %q", st.resp.Header.Get("Content-Type"))
			}
			res := st.nextWith("connect")["connect"].(map[string]any)
			session, node := res["session"].(string), res["node"].(string)
			if session == "" || node != srv.Hub().NodeID() || res["pong"] != true {
				t.Fatalf("connect result %v", res)
			}
			emulateJSON(t, srv, session, node, `{"id":2,"subscribe":{"channel":"room"}}`+"\n"+`{"id":3,"presence_stats":{"channel":"room"}}`)
			if r := st.nextWith("id"); r["id"].(float64) != 2 || r["subscribe"] == nil {
				t.Fatalf("subscribe reply %v", r)
			}
			if r := st.nextWith("id"); r["id"].(float64) != 3 || r["presence_stats"].(map[string]any)["num_clients"].(float64) != 1 {
				t.Fatalf("presence_stats reply %v", r)
			}
			if err := srv.HubPublish("room", []byte(`{"n":1}`)); err != nil {
				t.Fatal(err)
			}
			pub := st.nextWith("push")["push"].(map[string]any)["pub"].(map[string]any)
			if pub["data"].(map[string]any)["n"].(float64) != 1 {
				t.Fatalf("publication %v", pub)
			}
			emulateJSON(t, srv, session, node, `{"id":4,"publish":{"channel":"room","data":{"n":2}}}`)
			if r := st.nextWith("id"); r["publish"] == nil {
				t.Fatalf("publish reply %v", r)
			}
			// A server-side disconnect arrives in-stream, then the stream ends.
			if status, _ := srv.API(t, "disconnect", map[string]any{"user": "alice"}); status != 200 {
				t.Fatal("api disconnect")
			}
			d := st.nextWith("push")
			for d["push"].(map[string]any)["disconnect"] == nil {
				d = st.nextWith("push")
			}
			if code := d["push"].(map[string]any)["disconnect"].(map[string]any)["code"].(float64); code != 3503 {
				t.Fatalf("disconnect push %v", d)
			}
			st.ended(5 * time.Second)
			// The session is gone: /emulation says so.
			body, _ := json.Marshal(map[string]string{"session": session, "node": node, "data": "{}"})
			if status, b := emulate(t, srv, "application/json", body); status != 404 || !strings.Contains(b, "session_not_found") {
				t.Fatalf("/emulation after the end: %d %s", status, b)
			}
		})
	}
}

func TestEmulationPingPong(t *testing.T) {
	cfg := transportsConfig()
	cfg.Client.PingInterval = 300 * 1e6
	cfg.Client.PongTimeout = 250 * 1e6
	srv := testutil.Start(t, cfg)
	st := openStream(t, srv, http.MethodPost, "/connection/http_stream", "application/json", connectFrame(t, "bob"))
	res := st.nextWith("connect")["connect"].(map[string]any)
	session, node := res["session"].(string), res["node"].(string)
	for i := 0; i < 3; i++ {
		if m := st.next(2 * time.Second); len(m) != 0 {
			t.Fatalf("want the ping {}, got %v", m)
		}
		emulateJSON(t, srv, session, node, `{}`)
	}
	d := st.nextWith("push")["push"].(map[string]any)["disconnect"].(map[string]any)
	if d["code"].(float64) != 3012 {
		t.Fatalf("disconnect %v, want no pong 3012", d)
	}
	st.ended(5 * time.Second)
}

func TestEmulationProtobuf(t *testing.T) {
	srv := testutil.Start(t, transportsConfig())
	connect := delimit(&protocol.Command{Id: 1, Connect: &protocol.ConnectRequest{Token: testutil.UserToken(t, "carol")}})
	st := openStream(t, srv, http.MethodPost, "/connection/http_stream", "application/octet-stream", connect)
	r := st.nextProto(5 * time.Second)
	if r.Connect == nil || r.Connect.Session == "" || r.Connect.Node == "" {
		t.Fatalf("connect reply %+v", r)
	}
	send := func(cmds ...*protocol.Command) {
		var frame []byte
		for _, c := range cmds {
			frame = append(frame, delimit(c)...)
		}
		body, _ := (&protocol.EmulationRequest{Node: r.Connect.Node, Session: r.Connect.Session, Data: frame}).MarshalCF()
		if status, b := emulate(t, srv, "application/octet-stream", body); status != 204 {
			t.Fatalf("/emulation: %d %s", status, b)
		}
	}
	send(&protocol.Command{Id: 2, Subscribe: &protocol.SubscribeRequest{Channel: "bin"}},
		&protocol.Command{Id: 3, Publish: &protocol.PublishRequest{Channel: "bin", Data: []byte{1, 2, 3}}})
	var got []*protocol.Reply
	for len(got) < 3 {
		got = append(got, st.nextProto(5*time.Second))
	}
	var pub *protocol.Publication
	for _, x := range got {
		if x.Push != nil && x.Push.Pub != nil {
			pub = x.Push.Pub
		}
	}
	if got[0].Id != 2 || got[0].Subscribe == nil || pub == nil || !bytes.Equal(pub.Data, []byte{1, 2, 3}) {
		t.Fatalf("replies %+v", got)
	}
}

func TestEmulationBadRequests(t *testing.T) {
	cfg := transportsConfig()
	cfg.Client.AllowedOrigins = []string{"http://app.example"}
	cfg.Emulation.MaxRequestBodySize = 2048
	srv := testutil.Start(t, cfg)
	st := openStream(t, srv, http.MethodPost, "/connection/http_stream", "application/json", connectFrame(t, "dan"))
	res := st.nextWith("connect")["connect"].(map[string]any)
	session, node := res["session"].(string), res["node"].(string)
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }

	cases := []struct {
		name, ct string
		body     []byte
		status   int
		want     string
	}{
		{"not JSON", "application/json", []byte("{"), 400, "bad_emulation_request"},
		{"data not a string", "application/json", js(map[string]any{"session": session, "node": node, "data": map[string]any{}}), 400, "JSON string"},
		{"no session", "application/json", js(map[string]any{"node": node, "data": "{}"}), 400, "no session"},
		{"undecodable Protobuf", "application/octet-stream", []byte{0x0a, 0x7f}, 400, "Protobuf"},
		{"unknown session", "application/json", js(map[string]any{"session": "nope", "node": node, "data": "{}"}), 404, "session_not_found"},
		{"unknown node", "application/json", js(map[string]any{"session": session, "node": "elsewhere", "data": "{}"}), 404, "node_not_found"},
		{"body over the limit", "application/json", bytes.Repeat([]byte(" "), 4096), 413, "emulation.max_request_body_size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, b := emulate(t, srv, tc.ct, tc.body)
			if status != tc.status || !strings.Contains(b, tc.want) {
				t.Fatalf("%d %s, want %d with %q", status, b, tc.status, tc.want)
			}
		})
	}
	// A frame that breaks the protocol ends the session with 3501, in-stream.
	emulateJSON(t, srv, session, node, `not json`)
	if d := st.nextWith("push")["push"].(map[string]any)["disconnect"].(map[string]any); d["code"].(float64) != 3501 {
		t.Fatalf("disconnect %v", d)
	}

	// Methods, preflight and CORS.
	req, _ := http.NewRequest(http.MethodOptions, "http://"+srv.Addr+"/emulation", nil)
	req.Header.Set("Origin", "http://app.example")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "http://app.example" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" || resp.Header.Get("Access-Control-Allow-Headers") != "content-type" ||
		resp.Header.Get("Access-Control-Max-Age") != "300" {
		t.Fatalf("preflight %d %v", resp.StatusCode, resp.Header)
	}
	for _, path := range []string{"/emulation", "/connection/http_stream"} {
		resp, err = httpClient.Get("http://" + srv.Addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Fatalf("GET %s: %d, want 405", path, resp.StatusCode)
		}
	}
	req, _ = http.NewRequest(http.MethodPost, "http://"+srv.Addr+"/connection/http_stream", strings.NewReader("{}"))
	req.Header.Set("Origin", "http://evil.example")
	resp, err = httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "origin_not_allowed") {
		t.Fatalf("foreign origin: %d %s", resp.StatusCode, b)
	}
}

func TestSSERequests(t *testing.T) {
	cfg := transportsConfig()
	cfg.SSE.MaxRequestBodySize = 1024
	srv := testutil.Start(t, cfg)
	get := func(method, path string, body io.Reader) (int, string) {
		req, _ := http.NewRequest(method, "http://"+srv.Addr+path, body)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, b := get(http.MethodGet, "/connection/sse", nil); status != 400 || !strings.Contains(b, "cf_connect") {
		t.Fatalf("GET without cf_connect: %d %s", status, b)
	}
	if status, _ := get(http.MethodPut, "/connection/sse", nil); status != 405 {
		t.Fatalf("PUT: %d", status)
	}
	if status, b := get(http.MethodPost, "/connection/sse", strings.NewReader(strings.Repeat(" ", 2000))); status != 413 {
		t.Fatalf("POST over the limit: %d %s", status, b)
	}
	// A connect frame that is not JSON is answered in-stream with 3501.
	st := openStream(t, srv, http.MethodGet, "/connection/sse?cf_connect=nope", "", nil)
	if d := st.nextWith("push")["push"].(map[string]any)["disconnect"].(map[string]any); d["code"].(float64) != 3501 {
		t.Fatalf("disconnect %v", d)
	}
	st.ended(5 * time.Second)
	// The body starts with an empty line.
	resp, err := httpClient.Get("http://" + srv.Addr + "/connection/sse?cf_connect=" + url.QueryEscape(string(connectFrame(t, "eve"))))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 2)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "\r\n" {
		t.Fatalf("first bytes %q %v", first, err)
	}
}

// A transport that is off answers with its setting, and the log says so.
func TestDisabledTransportsNameTheirSetting(t *testing.T) {
	srv := testutil.Start(t, nil)
	for path, setting := range map[string]string{
		"/connection/http_stream": "http_stream.enabled", "/connection/sse": "sse.enabled",
		"/connection/uni_websocket": "uni_websocket.enabled", "/connection/uni_sse": "uni_sse.enabled",
		"/connection/uni_http_stream": "uni_http_stream.enabled", "/emulation": "http_stream.enabled or sse.enabled",
	} {
		resp, err := httpClient.Post("http://"+srv.Addr+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body map[string]string
		if resp.StatusCode != 404 || json.Unmarshal(b, &body) != nil || body["error"] != "transport_disabled" || !strings.Contains(body["hint"], setting) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
	if logs := srv.Logs.String(); !strings.Contains(logs, "level=INFO msg=\"request to a transport that is off\" transport=uni_sse") {
		t.Fatalf("log lacks the info line:\n%s", logs)
	}
}

// An emulation request that reached another node arrives at the session's
// node as a control message of the broker; the commands apply there in
// the order they were forwarded.
func TestEmulationForwardedByControl(t *testing.T) {
	srv := testutil.Start(t, transportsConfig())
	st := openStream(t, srv, http.MethodPost, "/connection/http_stream", "application/json", connectFrame(t, "fwd"))
	session := st.nextWith("connect")["connect"].(map[string]any)["session"].(string)
	for i, frame := range []string{`{"id":2,"subscribe":{"channel":"f"}}`, `{"id":3,"presence":{"channel":"f"}}`} {
		if err := srv.Hub().SendControl(srv.Hub().NodeID(), "centrifuge_emulation",
			map[string]any{"session": session, "data": []byte(frame)}); err != nil {
			t.Fatal(err)
		}
		if r := st.nextWith("id"); r["id"].(float64) != float64(i+2) {
			t.Fatalf("reply %v", r)
		}
	}
}
