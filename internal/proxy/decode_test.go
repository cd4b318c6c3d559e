package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/auth"
)

// TestMalformedResponses: every malformed shape has its code and a detail
// that names the problem.
func TestMalformedResponses(t *testing.T) {
	cases := []struct {
		name   string
		method string // connect if empty
		ctype  string // application/json if empty
		body   string
		code   auth.Code
		want   []string
	}{
		{name: "html page", ctype: "text/html; charset=utf-8", body: "<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>",
			code: auth.ProxyBadJSON, want: []string{"backend answered 200", "Content-Type text/html; charset=utf-8", "not JSON", "syntax error at byte 1", "<!DOCTYPE html> <html><head><title>Sign in</title></head></html>"}},
		{name: "no content type", ctype: "-", body: "OK", code: auth.ProxyBadJSON, want: []string{"no Content-Type", ": OK"}},
		{name: "empty body", body: "", code: auth.ProxyBadJSON, want: []string{"empty body"}},
		{name: "truncated json", body: `{"result":{"user":"1"`, code: auth.ProxyBadJSON, want: []string{"not JSON", "syntax error", `{"result":{"user":"1"`}},
		{name: "trailing garbage", body: `{"result":{}} {"result":{}}`, code: auth.ProxyBadJSON, want: []string{"syntax error at byte"}},
		{name: "long html is cut", ctype: "text/html", body: "<html>" + strings.Repeat("x", 500) + "</html>", code: auth.ProxyBadJSON, want: []string{"<html>xxxx", "…"}},
		{name: "array", body: `[{"result":{}}]`, code: auth.ProxyBadResponse,
			want: []string{"connect proxy: the response is an array; expected an object with exactly one of result, error, disconnect"}},
		{name: "string", body: `"ok"`, code: auth.ProxyBadResponse, want: []string{"the response is a string"}},
		{name: "null", body: `null`, code: auth.ProxyBadResponse, want: []string{"the response is null"}},
		{name: "empty object", body: `{}`, code: auth.ProxyBadResponse, want: []string{"got keys []; expected exactly one of result, error, disconnect"}},
		{name: "wrapped result", body: `{"data":{"result":{"user":"56"}}}`, code: auth.ProxyBadResponse,
			want: []string{"got keys [data]; expected exactly one of result, error, disconnect", `the result is under "data": unwrap your framework's envelope`}},
		{name: "wrapped error", body: `{"ok":true,"payload":{"error":{"code":403,"message":"no"}}}`, code: auth.ProxyBadResponse,
			want: []string{"got keys [ok payload]", `the error is under "payload"`}},
		{name: "wrapped disconnect", method: "subscribe", body: `{"body":{"disconnect":{"code":4501}}}`, code: auth.ProxyBadResponse,
			want: []string{"subscribe proxy:", `the disconnect is under "body"`}},
		{name: "flat result", body: `{"user":"56","expire_at":1710000000}`, code: auth.ProxyBadResponse,
			want: []string{"got keys [user expire_at]", `[user expire_at] look like result fields: wrap them in {"result":{...}}`}},
		{name: "capitalised", body: `{"Result":{"user":"56"}}`, code: auth.ProxyBadResponse,
			want: []string{"got keys [Result]", `did you mean "result"?`}},
		{name: "plural", body: `{"results":{"user":"56"}}`, code: auth.ProxyBadResponse, want: []string{`did you mean "result"?`}},
		{name: "result null", body: `{"result":null}`, code: auth.ProxyBadResponse, want: []string{"got keys [result]", "; result is null"}},
		{name: "many keys bounded", body: `{"a1234567890":1,"b1234567890":2,"c1234567890":3,"d1234567890":4,"e1234567890":5,"f":6,"g":7}`,
			code: auth.ProxyBadResponse, want: []string{"got keys [a1234567890 b1234567890 c1234567890 d1234567890 …+3]"}},
		{name: "result and error", body: `{"result":{"user":"1"},"error":{"code":403,"message":"x"}}`, code: auth.ProxyBadResponse,
			want: []string{"the response has result and error; expected exactly one of result, error, disconnect", "Centrifugo would silently use error"}},
		{name: "all three", body: `{"result":{},"error":{"code":403},"disconnect":{"code":4000}}`, code: auth.ProxyBadResponse,
			want: []string{"result and error and disconnect", "Centrifugo would silently use disconnect"}},
		{name: "duplicate top key", body: `{"result":{"user":"a"},"result":{"user":"b"}}`, code: auth.ProxyBadResponse, want: []string{`the response has the key "result" twice`}},
		{name: "result string", body: `{"result":"ok"}`, code: auth.ProxyBadResponse, want: []string{"result is a string; expected an object"}},
		{name: "duplicate result key", body: `{"result":{"user":"a","user":"b"}}`, code: auth.ProxyBadResponse, want: []string{`result has the key "user" twice`}},
		{name: "user number", body: `{"result":{"user":56}}`, code: auth.ProxyBadResponse, want: []string{"connect proxy: result.user is a number; expected a string"}},
		{name: "user object", body: `{"result":{"user":{"id":"56"}}}`, code: auth.ProxyBadResponse, want: []string{"result.user is an object; expected a string"}},
		{name: "expire_at string", body: `{"result":{"user":"1","expire_at":"1710000000"}}`, code: auth.ProxyBadResponse,
			want: []string{"result.expire_at is a string; expected an integer (unix seconds)"}},
		{name: "expire_at float", body: `{"result":{"user":"1","expire_at":1710000000.25}}`, code: auth.ProxyBadResponse,
			want: []string{"result.expire_at is a number with a fraction or an exponent (1710000000.25)"}},
		{name: "expire_at negative", body: `{"result":{"user":"1","expire_at":-5}}`, code: auth.ProxyBadResponse, want: []string{"result.expire_at is negative (-5)"}},
		{name: "expire_at millis", body: `{"result":{"user":"1","expire_at":1710000000000}}`, code: auth.ProxyBadResponse,
			want: []string{"result.expire_at 1710000000000", "looks like milliseconds"}},
		{name: "expire_at huge", body: `{"result":{"user":"1","expire_at":99999999999999999999}}`, code: auth.ProxyBadResponse, want: []string{"result.expire_at is out of range"}},
		{name: "channels string", body: `{"result":{"user":"1","channels":"news"}}`, code: auth.ProxyBadResponse,
			want: []string{"result.channels is a string; expected a list of strings"}},
		{name: "channels number item", body: `{"result":{"user":"1","channels":["news",1]}}`, code: auth.ProxyBadResponse,
			want: []string{"result.channels[1] is a number; expected a string"}},
		{name: "channels empty item", body: `{"result":{"user":"1","channels":[""]}}`, code: auth.ProxyBadResponse,
			want: []string{"result.channels[0] is an empty string"}},
		{name: "subs array", body: `{"result":{"user":"1","subs":["chat:1"]}}`, code: auth.ProxyBadResponse, want: []string{"result.subs is an array; expected an object"}},
		{name: "subs override bool", body: `{"result":{"user":"1","subs":{"chat:1":{"override":true}}}}`, code: auth.ProxyBadResponse,
			want: []string{`result.subs["chat:1"].override is a boolean; expected an object`}},
		{name: "subs entry string", body: `{"result":{"user":"1","subs":{"chat:1":"yes"}}}`, code: auth.ProxyBadResponse,
			want: []string{`result.subs["chat:1"] is a string; expected an object`}},
		{name: "subs empty channel", body: `{"result":{"user":"1","subs":{"":{}}}}`, code: auth.ProxyBadResponse, want: []string{"result.subs has an empty channel name"}},
		{name: "meta string", body: `{"result":{"user":"1","meta":"tenant-a"}}`, code: auth.ProxyBadResponse, want: []string{"result.meta is a string; expected an object"}},
		{name: "b64data", body: `{"result":{"user":"1","b64data":"eyJ4IjoxfQ=="}}`, code: auth.ProxyBadResponse,
			want: []string{"result.b64data is Centrifugo's binary encoding", `expected "data" as JSON`}},
		{name: "error code string", body: `{"error":{"code":"403","message":"no"}}`, code: auth.ProxyBadResponse, want: []string{"error.code is a string; expected an integer"}},
		{name: "error code missing", body: `{"error":{"message":"no"}}`, code: auth.ProxyBadResponse, want: []string{"error.code is missing; expected an integer in 100-1999"}},
		{name: "error code too low", body: `{"error":{"code":50,"message":"no"}}`, code: auth.ProxyBadResponse, want: []string{"error.code 50 is outside 100-1999"}},
		{name: "error code too high", body: `{"error":{"code":3000,"message":"no"}}`, code: auth.ProxyBadResponse, want: []string{"error.code 3000 is outside 100-1999"}},
		{name: "error code fraction", body: `{"error":{"code":403.5}}`, code: auth.ProxyBadResponse, want: []string{"error.code is a number with a fraction"}},
		{name: "error message number", body: `{"error":{"code":403,"message":5}}`, code: auth.ProxyBadResponse, want: []string{"error.message is a number; expected a string"}},
		{name: "error temporary string", body: `{"error":{"code":403,"temporary":"yes"}}`, code: auth.ProxyBadResponse, want: []string{"error.temporary is a string; expected a boolean"}},
		{name: "error string", body: `{"error":"permission denied"}`, code: auth.ProxyBadResponse, want: []string{"error is a string; expected an object"}},
		{name: "disconnect code protocol range", body: `{"disconnect":{"code":3501,"reason":"bad"}}`, code: auth.ProxyBadResponse,
			want: []string{"disconnect.code 3501 is outside 4000-4999"}},
		{name: "disconnect code missing", body: `{"disconnect":{"reason":"bad"}}`, code: auth.ProxyBadResponse, want: []string{"disconnect.code is missing"}},
		{name: "disconnect reason number", body: `{"disconnect":{"code":4500,"reason":1}}`, code: auth.ProxyBadResponse,
			want: []string{"disconnect.reason is a number; expected a string"}},
		{name: "disconnect string", body: `{"disconnect":"bye"}`, code: auth.ProxyBadResponse, want: []string{"disconnect is a string; expected an object"}},
		{name: "publish tags number", method: "publish", body: `{"result":{"tags":{"a":1}}}`, code: auth.ProxyBadResponse,
			want: []string{`publish proxy: result.tags["a"] is a number; expected a string`}},
		{name: "publish skip_history string", method: "publish", body: `{"result":{"skip_history":"yes"}}`, code: auth.ProxyBadResponse,
			want: []string{"result.skip_history is a string; expected a boolean"}},
		{name: "refresh expired string", method: "refresh", body: `{"result":{"expired":"true"}}`, code: auth.ProxyBadResponse,
			want: []string{"refresh proxy: result.expired is a string; expected a boolean"}},
		{name: "refresh error ignored", method: "refresh", body: `{"error":{"code":1000,"message":"nope"}}`, code: auth.ProxyBadResponse,
			want: []string{`refresh proxy answered error 1000 "nope"; a refresh proxy may only answer a result`}},
		{name: "sub_refresh disconnect ignored", method: "sub_refresh", body: `{"disconnect":{"code":4500,"reason":"bye"}}`, code: auth.ProxyBadResponse,
			want: []string{`sub_refresh proxy answered disconnect 4500 "bye"`}},
		{name: "subscribe override string", method: "subscribe", body: `{"result":{"override":"x"}}`, code: auth.ProxyBadResponse,
			want: []string{"subscribe proxy: result.override is a string; expected an object"}},
		{name: "sub_refresh expire_at bool", method: "sub_refresh", body: `{"result":{"expire_at":true}}`, code: auth.ProxyBadResponse,
			want: []string{"result.expire_at is a boolean; expected an integer (unix seconds)"}},
		{name: "rpc b64data", method: "rpc", body: `{"result":{"b64data":"AAE="}}`, code: auth.ProxyBadResponse, want: []string{"result.b64data is Centrifugo's binary encoding"}},
		{name: "rpc flat", method: "rpc", body: `{"data":{"answer":42}}`, code: auth.ProxyBadResponse, want: []string{"[data] look like result fields"}},
		{name: "too large", body: `{"result":{"user":"1","data":"` + strings.Repeat("x", MaxBodySize) + `"}}`, code: auth.ProxyBadResponse,
			want: []string{"larger than the 1 MiB limit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				switch tc.ctype {
				case "":
					w.Header().Set("Content-Type", "application/json")
				case "-":
					w.Header()["Content-Type"] = nil
				default:
					w.Header().Set("Content-Type", tc.ctype)
				}
				_, _ = io.WriteString(w, tc.body)
			})
			p, _ := newProxy(t, Config{Endpoint: b.URL})
			method := tc.method
			if method == "" {
				method = "connect"
			}
			res, e, d, r := callMethod(t, p, method, Headers{})
			if e != nil || d != nil || !reflect.ValueOf(res).IsNil() {
				t.Fatalf("got result %v, error %v, disconnect %v alongside the reason", res, e, d)
			}
			wantReason(t, r, tc.code, tc.want...)
			t.Logf("%s: %s\n    hint: %s", r.Code, r.Detail, r.Hint)
			if Temporary(r) {
				t.Errorf("%s must not be temporary", r.Code)
			}
		})
	}
}

// TestWellFormed: a well-formed result, error and disconnect of each method decodes.
func TestWellFormed(t *testing.T) {
	cases := []struct {
		method, body string
		want         any
	}{
		{"connect", `{"result":{"user":"56","expire_at":1710000000,"info":{"name":"Alex"},"data":{"welcome":true},"channels":["news"],
			"subs":{"chat:1":{"info":{"a":1},"data":{"b":2},"override":{"presence":{"value":false}}}},"meta":{"tenant":"a"}}}`,
			&ConnectResult{User: "56", ExpireAt: 1710000000, Info: raw(`{"name":"Alex"}`), Data: raw(`{"welcome":true}`), Channels: []string{"news"},
				Subs: map[string]SubscribeOptions{"chat:1": {Info: raw(`{"a":1}`), Data: raw(`{"b":2}`), Override: raw(`{"presence":{"value":false}}`)}},
				Meta: raw(`{"tenant":"a"}`)}},
		{"connect", `{"result":{"user":"56","info":null,"expire_at":null},"error":null,"disconnect":null}`, &ConnectResult{User: "56"}},
		{"connect", `{"error":{"code":1000,"message":"custom","temporary":true}}`, &ErrorReply{Code: 1000, Message: "custom", Temporary: true}},
		{"connect", `{"disconnect":{"code":4501,"reason":"unauthorized"}}`, &DisconnectReply{Code: 4501, Reason: "unauthorized"}},
		{"refresh", `{"result":{"expired":false,"expire_at":1710000600,"info":{"n":1},"meta":{"m":2}}}`,
			&RefreshResult{ExpireAt: 1710000600, Info: raw(`{"n":1}`), Meta: raw(`{"m":2}`)}},
		{"refresh", `{"result":{"expired":true}}`, &RefreshResult{Expired: true}},
		{"subscribe", `{"result":{"info":{"i":1},"data":"hello","override":{"join_leave":{"value":true}},"expire_at":1710000000}}`,
			&SubscribeResult{Info: raw(`{"i":1}`), Data: raw(`"hello"`), Override: raw(`{"join_leave":{"value":true}}`), ExpireAt: 1710000000}},
		{"subscribe", `{"result":{}}`, &SubscribeResult{}},
		{"subscribe", `{"error":{"code":403,"message":"permission denied"}}`, &ErrorReply{Code: 403, Message: "permission denied"}},
		{"subscribe", `{"disconnect":{"code":4000,"reason":"go away"}}`, &DisconnectReply{Code: 4000, Reason: "go away"}},
		{"publish", `{"result":{"data":{"x":2},"skip_history":true,"tags":{"k":"v"}}}`,
			&PublishResult{Data: raw(`{"x":2}`), SkipHistory: true, Tags: map[string]string{"k": "v"}}},
		{"publish", `{"error":{"code":400,"message":"bad"}}`, &ErrorReply{Code: 400, Message: "bad"}},
		{"publish", `{"disconnect":{"code":4999,"reason":"spam"}}`, &DisconnectReply{Code: 4999, Reason: "spam"}},
		{"sub_refresh", `{"result":{"expired":false,"expire_at":1710000900,"info":[1,2]}}`, &SubRefreshResult{ExpireAt: 1710000900, Info: raw(`[1,2]`)}},
		{"rpc", `{"result":{"data":{"answer":42}}}`, &RPCResult{Data: raw(`{"answer":42}`)}},
		{"rpc", `{"result":{}}`, &RPCResult{}},
		{"rpc", `{"error":{"code":104,"message":"method not found"}}`, &ErrorReply{Code: 104, Message: "method not found"}},
		{"rpc", `{"disconnect":{"code":4400,"reason":"x"}}`, &DisconnectReply{Code: 4400, Reason: "x"}},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.method, i), func(t *testing.T) {
			b := newBackend(t, answer(200, tc.body))
			p, _ := newProxy(t, Config{Endpoint: b.URL + "/" + tc.method})
			res, e, d, r := callMethod(t, p, tc.method, Headers{})
			if r != nil {
				t.Fatalf("reason: %v (hint %s)", r, r.Hint)
			}
			var got any
			switch {
			case e != nil:
				got = e
			case d != nil:
				got = d
			default:
				got = res
			}
			if !reflect.DeepEqual(normalize(got), normalize(tc.want)) {
				t.Errorf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// normalize compares decoded values through JSON, ignoring whitespace in raw JSON.
func normalize(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRequestBodies: each method POSTs its request as JSON with the spec's field names.
func TestRequestBodies(t *testing.T) {
	b := newBackend(t, answer(200, `{"result":{"user":"u"}}`))
	p, _ := newProxy(t, Config{Endpoint: b.URL})
	c := tctx(t)
	check := func(want map[string]any) {
		t.Helper()
		req, body := b.lastRequest()
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("method %s, Content-Type %q", req.Method, req.Header.Get("Content-Type"))
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("request body %q: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("request body\n got %v\nwant %v", got, want)
		}
	}
	common := map[string]any{"client": "c1", "transport": "websocket", "protocol": "json", "encoding": "json"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range common {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	obj := func(s string) any {
		var v any
		_ = json.Unmarshal([]byte(s), &v)
		return v
	}
	p.Connect(c, &ConnectRequest{Base: base(), Name: "js", Version: "1.0", Data: raw(`{"from":"client"}`), Channels: []string{"news"}}, Headers{}, false)
	check(with("name", "js", "version", "1.0", "data", obj(`{"from":"client"}`), "channels", obj(`["news"]`)))
	p.Connect(c, &ConnectRequest{Base: base()}, Headers{}, false)
	check(with())
	p.Refresh(c, &RefreshRequest{Base: base(), User: "u1", Meta: raw(`{"m":1}`)}, Headers{})
	check(with("user", "u1", "meta", obj(`{"m":1}`)))
	p.Subscribe(c, &SubscribeRequest{Base: base(), User: "u1", Channel: "chat:1", Data: raw(`{"d":1}`)}, Headers{})
	check(with("user", "u1", "channel", "chat:1", "data", obj(`{"d":1}`)))
	p.Publish(c, &PublishRequest{Base: base(), User: "u1", Channel: "chat:1", Data: raw(`{"text":"hi"}`)}, Headers{})
	check(with("user", "u1", "channel", "chat:1", "data", obj(`{"text":"hi"}`)))
	p.SubRefresh(c, &SubRefreshRequest{Base: base(), User: "u1", Channel: "chat:1"}, Headers{})
	check(with("user", "u1", "channel", "chat:1"))
	p.RPC(c, &RPCRequest{Base: base(), User: "", Method: "ns:m", Data: raw(`[1]`)}, Headers{})
	check(with("user", "", "method", "ns:m", "data", obj(`[1]`)))

	// Invalid client data never reaches the backend.
	hits := b.hits.Load()
	_, _, _, r := p.Publish(c, &PublishRequest{Base: base(), Data: raw(`{nope`)}, Headers{})
	wantReason(t, r, auth.ProxyBadJSON, "could not encode the publish request", "the backend was not called")
	if b.hits.Load() != hits {
		t.Error("the backend was called with invalid data")
	}
}

func TestEmptyUser(t *testing.T) {
	b := newBackend(t, answer(200, `{"result":{"user":""}}`))
	p, logs := newProxy(t, Config{Endpoint: b.URL})
	res, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	if res != nil {
		t.Fatal("result with an empty user accepted while anonymous is off")
	}
	wantReason(t, r, auth.ProxyEmptyUser, "connect proxy result has an empty user; anonymous connections are not allowed")
	if !strings.Contains(r.Hint, `"user"`) {
		t.Errorf("hint %q", r.Hint)
	}

	res, _, _, r = p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, true)
	if r != nil || res == nil || res.User != "" {
		t.Fatalf("anonymous allowed: res %v, reason %v", res, r)
	}
	if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "anonymous") {
		t.Errorf("anonymous connection not logged at INFO:\n%s", logs)
	}

	// A missing user is an empty user too.
	b2 := newBackend(t, answer(200, `{"result":{}}`))
	p2, _ := newProxy(t, Config{Endpoint: b2.URL})
	_, _, _, r = p2.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
	wantReason(t, r, auth.ProxyEmptyUser)
}

// TestUnknownKeys: unknown keys are accepted and logged at WARN once, with the closest known key.
func TestUnknownKeys(t *testing.T) {
	b := newBackend(t, answer(200, `{"result":{"user":"1","usr":"1","expireAt":5,"zzz":1,"subs":{"a":{"overide":{}}},"caps":[]},"extra":1}`))
	p, logs := newProxy(t, Config{Endpoint: b.URL})
	for i := 0; i < 3; i++ {
		res, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false)
		if r != nil || res.User != "1" {
			t.Fatalf("res %v, reason %v", res, r)
		}
	}
	out := logs.String()
	for _, want := range []string{
		`connect proxy result has unknown key \"usr\"; did you mean \"user\"?`,
		`connect proxy result has unknown key \"expireAt\"; did you mean \"expire_at\"?`,
		`connect proxy result has unknown key \"zzz\"; known keys: user, expire_at`,
		`connect proxy result.subs[*] has unknown key \"overide\"; did you mean \"override\"?`,
		`connect proxy response has unknown key \"extra\"`,
		`connect proxy result.caps is not supported by Herald and is ignored`,
	} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("%d log lines with %s, want 1:\n%s", n, want, out)
		}
	}
	if !strings.Contains(out, "level=WARN") {
		t.Error("not logged at WARN")
	}
}

// TestUnknownKeysBounded: the set of warned keys is bounded.
func TestUnknownKeysBounded(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"result":{"user":"1"`)
	for i := 0; i < 2*maxWarnedKeys; i++ {
		fmt.Fprintf(&sb, `,"k%d":1`, i)
	}
	sb.WriteString(`}}`)
	b := newBackend(t, answer(200, sb.String()))
	p, logs := newProxy(t, Config{Endpoint: b.URL})
	for i := 0; i < 2; i++ {
		if _, _, _, r := p.Connect(tctx(t), &ConnectRequest{Base: base()}, Headers{}, false); r != nil {
			t.Fatal(r)
		}
	}
	if n := strings.Count(logs.String(), "has unknown key"); n != maxWarnedKeys {
		t.Errorf("%d warnings, want %d", n, maxWarnedKeys)
	}
	if len(p.warned) != maxWarnedKeys {
		t.Errorf("warned set has %d entries", len(p.warned))
	}
}

func TestClosest(t *testing.T) {
	known := []string{"user", "expire_at", "info", "data", "channels", "subs", "meta"}
	for key, want := range map[string]string{
		"usr": "user", "User": "user", "expireAt": "expire_at", "expires_at": "expire_at", "channel": "channels",
		"infos": "info", "zzz": "", "x": "", "EXPIRE-AT": "expire_at",
	} {
		if got := closest(key, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", key, got, want)
		}
	}
}
