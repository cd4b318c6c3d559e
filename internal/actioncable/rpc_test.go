package actioncable_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// fakeApp is an in-process stand-in for a Rails app with anycable-rails'
// HTTP RPC: a connection class that identifies users by a cookie, and a
// scripted ChatChannel. It records every request it gets.
type fakeApp struct {
	*httptest.Server
	secret string

	mu       sync.Mutex
	requests []appRequest
}

type appRequest struct {
	Path   string
	Sid    string
	Protov string
	Body   map[string]any
}

func newFakeApp(t *testing.T, secret string) *fakeApp {
	a := &fakeApp{secret: secret}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *fakeApp) endpoint() string { return a.URL + "/_anycable" }

func (a *fakeApp) recorded(path string) []appRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []appRequest
	for _, r := range a.requests {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func answer(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

func tx(frames ...string) []string { return frames }

func answerJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	answer(w, string(b))
}

func (a *fakeApp) serve(w http.ResponseWriter, r *http.Request) {
	if a.secret != "" && r.Header.Get("Authorization") != "Bearer "+a.secret {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "Unauthorized")
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	a.mu.Lock()
	a.requests = append(a.requests, appRequest{Path: strings.TrimPrefix(r.URL.Path, "/_anycable"), Sid: r.Header.Get("X-Anycable-Meta-Sid"),
		Protov: r.Header.Get("X-Anycable-Meta-Protov"), Body: body})
	a.mu.Unlock()
	env, _ := body["env"].(map[string]any)
	headers, _ := env["headers"].(map[string]any)
	cookie, _ := headers["cookie"].(string)
	switch r.URL.Path {
	case "/_anycable/connect":
		a.connect(w, cookie)
	case "/_anycable/command":
		a.command(w, body, env)
	case "/_anycable/disconnect":
		answer(w, `{"status":1}`)
	default:
		http.NotFound(w, r)
	}
}

func (a *fakeApp) connect(w http.ResponseWriter, cookie string) {
	user := strings.TrimPrefix(cookie, "user=")
	switch user {
	case "bad":
		answerJSON(w, map[string]any{"status": 2, "transmissions": tx(`{"type":"disconnect","reason":"unauthorized","reconnect":false}`)})
	case "silent-failure":
		answer(w, `{"status":2}`)
	case "boom":
		answer(w, `{"error_msg":"NoMethodError: undefined method 'id' for nil"}`) // ERROR: status left out
	case "slow":
		time.Sleep(700 * time.Millisecond)
		answer(w, `{"status":1}`)
	case "html":
		answer(w, `<html>oops</html>`)
	case "shape":
		answer(w, `{"status":"maybe"}`)
	case "types":
		answer(w, `{"status":1,"transmissions":"welcome"}`)
	case "frames":
		answer(w, `{"status":1,"transmissions":["not json"]}`)
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "Internal Server Error")
	case "":
		answerJSON(w, map[string]any{"status": 2, "transmissions": tx(`{"type":"disconnect","reason":"unauthorized","reconnect":false}`)})
	default:
		// anycable-rails' welcome has no sid over HTTP RPC.
		answerJSON(w, map[string]any{"status": 1, "identifiers": `{"current_user":"` + user + `"}`,
			"transmissions": tx(`{"type":"welcome"}`), "env": map[string]any{"cstate": map[string]string{"_s_": "session-of-" + user}},
			"unknown_future_field": true})
	}
}

func (a *fakeApp) command(w http.ResponseWriter, body, env map[string]any) {
	id, _ := body["identifier"].(string)
	var p map[string]any
	_ = json.Unmarshal([]byte(id), &p)
	channel, _ := p["channel"].(string)
	confirm := `{"identifier":` + jsonString(id) + `,"type":"confirm_subscription"}`
	switch body["command"] {
	case "subscribe":
		switch channel {
		case "ChatChannel":
			room, _ := p["room"].(string)
			answerJSON(w, map[string]any{"status": 1, "streams": []string{"chat_" + room}, "transmissions": tx(confirm),
				"env": map[string]any{"istate": map[string]string{"room": `"` + room + `"`, "$w": "chat_" + room, "$p": "chat_" + room}}})
		case "SecretChannel":
			answerJSON(w, map[string]any{"status": 2, "transmissions": tx(`{"identifier":` + jsonString(id) + `,"type":"reject_subscription"}`)})
		default:
			answer(w, `{"error_msg":"Channel not found: `+channel+`"}`)
		}
	case "message":
		data, _ := body["data"].(string)
		var action map[string]any
		_ = json.Unmarshal([]byte(data), &action)
		istate, _ := env["istate"].(map[string]any)
		cstate, _ := env["cstate"].(map[string]any)
		switch action["action"] {
		case "speak":
			msg := map[string]any{"echo": action["text"], "room": istate["room"], "session": cstate["_s_"]}
			mb, _ := json.Marshal(msg)
			answerJSON(w, map[string]any{"status": 1, "transmissions": tx(`{"identifier":` + jsonString(id) + `,"message":` + string(mb) + `}`)})
		case "follow":
			answerJSON(w, map[string]any{"status": 1, "streams": []string{"extra"}})
		case "stop":
			answerJSON(w, map[string]any{"status": 1, "stop_streams": true})
		case "join":
			answerJSON(w, map[string]any{"status": 1, "presence": map[string]any{"type": "join", "id": "app-user", "info": `{"name":"From App"}`}})
		case "bye":
			answerJSON(w, map[string]any{"status": 1, "disconnect": true,
				"transmissions": tx(`{"type":"disconnect","reason":"unauthorized","reconnect":false}`)})
		}
	case "unsubscribe":
		answer(w, `{"status":1}`)
	}
}

func rpcServer(t *testing.T, app *fakeApp, mutate func(*config.Config)) *testutil.Server {
	return startCable(t, func(c *config.Config) {
		c.ActionCable.RPC.Endpoint = app.endpoint()
		c.ActionCable.RPC.Secret = app.secret
		c.ActionCable.RPC.Timeout = config.Duration(500 * time.Millisecond)
		if mutate != nil {
			mutate(c)
		}
	})
}

func dialCookie(t *testing.T, srv *testutil.Server, protocol, cookie string) *cable {
	return dialCable(t, srv, dialOpts{protocols: []string{protocol}, header: http.Header{"Cookie": {cookie}}})
}

func TestRPCConnectAndChannels(t *testing.T) {
	app := newFakeApp(t, "rpc-secret")
	srv := rpcServer(t, app, nil)
	c := dialCookie(t, srv, protoExt, "user=alice")
	w := c.expect("welcome")
	sid, _ := w["sid"].(string)
	if sid == "" {
		t.Fatalf("Herald adds its sid to the app's welcome on the extended protocol: %v", w)
	}
	conn := app.recorded("/connect")
	if len(conn) != 1 || conn[0].Sid != sid || conn[0].Protov != "v1" {
		t.Fatalf("connect request %+v", conn)
	}
	env := conn[0].Body["env"].(map[string]any)
	headers := env["headers"].(map[string]any)
	if headers["cookie"] != "user=alice" || headers["REMOTE_ADDR"] != "127.0.0.1" || !strings.HasSuffix(env["url"].(string), "/cable") {
		t.Fatalf("env %v", env)
	}

	id := ident(map[string]any{"channel": "ChatChannel", "room": "42"})
	c.send(subscribe(id))
	c.expect("confirm_subscription")
	// The stream the app started is a hub channel: /_broadcast and the server API reach it.
	broadcast(t, srv, testAPIKey, map[string]any{"stream": "chat_42", "data": `{"text":"hello"}`})
	if m, raw := c.next(5 * time.Second); m["identifier"] != id || !strings.Contains(raw, `"text":"hello"`) {
		t.Fatalf("got %s", raw)
	}
	// perform: the app gets the data, the channel state and the connection state back.
	c.send(map[string]any{"command": "message", "identifier": id, "data": `{"action":"speak","text":"hi"}`})
	if m, raw := c.next(5 * time.Second); m["identifier"] != id || !strings.Contains(raw, `"echo":"hi"`) ||
		!strings.Contains(raw, `"room":"\"42\""`) || !strings.Contains(raw, `"session":"session-of-alice"`) {
		t.Fatalf("perform answer %s", raw)
	}
	cmds := app.recorded("/command")
	last := cmds[len(cmds)-1].Body
	if last["connection_identifiers"] != `{"current_user":"alice"}` || last["command"] != "message" {
		t.Fatalf("command %v", last)
	}
	// Presence from the app's answer, on the $p stream.
	c.send(map[string]any{"command": "message", "identifier": id, "data": `{"action":"join"}`})
	if m := c.expect("presence"); m["message"].(map[string]any)["id"] != "app-user" {
		t.Fatalf("presence %v", m)
	}
	// stop_streams: no more broadcasts.
	c.send(map[string]any{"command": "message", "identifier": id, "data": `{"action":"stop"}`})
	c.send(map[string]any{"command": "message", "identifier": id, "data": `{"action":"speak","text":"sync"}`})
	c.expectRaw()
	broadcast(t, srv, testAPIKey, map[string]any{"stream": "chat_42", "data": `{"text":"late"}`})
	c.quiet(200 * time.Millisecond)

	// A rejected subscription: the app's reject frame, nothing recorded.
	sec := ident(map[string]any{"channel": "SecretChannel"})
	c.send(subscribe(sec))
	c.expect("reject_subscription")
	// An error of the app: no frame at all (the Rails client retries).
	c.send(subscribe(ident(map[string]any{"channel": "NoSuchChannel"})))
	c.quiet(200 * time.Millisecond)
	waitLog(t, srv, "reason=rpc_error", "Channel not found: NoSuchChannel", "a field Herald does not know")

	// Closing: the app's disconnect with identifiers, subscriptions and states.
	_ = c.conn.Close()
	waitFor(t, "the disconnect call", func() bool { return len(app.recorded("/disconnect")) == 1 })
	d := app.recorded("/disconnect")[0].Body
	subs, _ := d["subscriptions"].([]any)
	istate := d["env"].(map[string]any)["istate"].(map[string]any)
	if d["identifiers"] != `{"current_user":"alice"}` || len(subs) != 1 || subs[0] != id || !strings.Contains(istate[id].(string), `"room":"\"42\""`) {
		t.Fatalf("disconnect %v", d)
	}
}

func TestRPCAppDisconnectsAndWhispers(t *testing.T) {
	app := newFakeApp(t, "")
	srv := rpcServer(t, app, nil)
	a := dialCookie(t, srv, protoExt, "user=a")
	a.expect("welcome")
	b := dialCookie(t, srv, protoExt, "user=b")
	b.expect("welcome")
	id := ident(map[string]any{"channel": "ChatChannel", "room": "7"})
	for _, c := range []*cable{a, b} {
		c.send(subscribe(id))
		c.expect("confirm_subscription")
	}
	// Whispers go to the $w stream the app named.
	a.send(map[string]any{"command": "whisper", "identifier": id, "data": map[string]any{"typing": "a"}})
	if _, raw := b.next(5 * time.Second); !strings.Contains(raw, `"typing":"a"`) {
		t.Fatalf("whisper %s", raw)
	}
	a.quiet(100 * time.Millisecond)
	// disconnect: true closes after the app's frames.
	a.send(map[string]any{"command": "message", "identifier": id, "data": `{"action":"bye"}`})
	code, _, msgs := a.expectClose()
	if code != 1000 || len(msgs) != 1 || msgs[0]["type"] != "disconnect" {
		t.Fatalf("close %d %v", code, msgs)
	}
}

func TestRPCConnectRefusals(t *testing.T) {
	app := newFakeApp(t, "rpc-secret")
	srv := rpcServer(t, app, nil)
	cases := []struct {
		cookie string
		code   int
		reason string // the disconnect message's reason; "" = none
		log    string
	}{
		{"user=bad", 1000, "unauthorized", "reason=rpc_denied"},
		{"user=silent-failure", 1000, "unauthorized", "reason=rpc_denied"},
		{"user=boom", 1011, "", "NoMethodError"},
		{"user=slow", 1011, "", "reason=rpc_timeout"},
		{"user=html", 1011, "", "reason=rpc_bad_json"},
		{"user=shape", 1011, "", `status must be 0 (ERROR), 1 (SUCCESS) or 2 (FAILURE)`},
		{"user=types", 1011, "", "transmissions must be an array of strings, got a string"},
		{"user=frames", 1011, "", "transmissions[0] must be a JSON object text"},
		{"user=500", 1011, "", "reason=rpc_http_status"},
	}
	for _, tc := range cases {
		t.Run(tc.cookie, func(t *testing.T) {
			c := dialCookie(t, srv, protoJSON, tc.cookie)
			code, text, msgs := c.expectClose()
			if code != tc.code {
				t.Fatalf("close %d %q", code, text)
			}
			if tc.reason == "" && len(msgs) != 0 || tc.reason != "" && (len(msgs) != 1 || msgs[0]["reason"] != tc.reason) {
				t.Fatalf("messages %v", msgs)
			}
			waitLog(t, srv, tc.log)
		})
	}
	waitLog(t, srv, "reason=rpc_error", "reason=rpc_bad_response")
}

func TestRPCSecretMismatchAndUnreachableApp(t *testing.T) {
	app := newFakeApp(t, "the-app-secret")
	srv := rpcServer(t, app, func(c *config.Config) { c.ActionCable.RPC.Secret = "herald-has-another" })
	c := dialCookie(t, srv, protoJSON, "user=alice")
	if code, _, _ := c.expectClose(); code != 1011 {
		t.Fatalf("close %d", code)
	}
	waitLog(t, srv, "reason=rpc_unauthorized", "ANYCABLE_HTTP_RPC_SECRET")

	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	gone := startCable(t, func(c *config.Config) {
		c.ActionCable.RPC.Endpoint = url + "/_anycable"
		c.ActionCable.RPC.Timeout = config.Duration(300 * time.Millisecond)
	})
	g := dialCookie(t, gone, protoJSON, "user=alice")
	if code, _, _ := g.expectClose(); code != 1011 {
		t.Fatalf("close %d", code)
	}
	waitLog(t, gone, "reason=rpc_unreachable", "refused the connection")

	// 404: the app has no HTTP RPC mounted.
	mis := startCable(t, func(c *config.Config) {
		c.ActionCable.RPC.Endpoint = app.URL + "/wrong"
		c.ActionCable.RPC.Secret = app.secret
	})
	m := dialCookie(t, mis, protoJSON, "user=alice")
	m.expectClose()
	waitLog(t, mis, "reason=rpc_http_status", "http_rpc: true")
}

func TestRPCIsSkippedForTokensAndRestore(t *testing.T) {
	app := newFakeApp(t, "")
	srv := rpcServer(t, app, nil)
	// An AnyCable token identifies without a connect call.
	dialWelcome(t, srv, protoJSON, "jid="+anyCableToken(t, cableSecret, `{"current_user":"tok"}`, time.Hour))
	time.Sleep(50 * time.Millisecond)
	if n := len(app.recorded("/connect")); n != 0 {
		t.Fatalf("%d connect calls for a token", n)
	}
	// $pubsub streams are Herald's even with an app.
	c, w := dialWelcome(t, srv, protoExt, "jid="+anyCableToken(t, cableSecret, `{"current_user":"tok"}`, time.Hour))
	c.send(subscribe(signedID("$pubsub", signStream("s"))))
	c.expect("confirm_subscription")
	if n := len(app.recorded("/command")); n != 0 {
		t.Fatalf("%d command calls for $pubsub", n)
	}
	_ = w
}
