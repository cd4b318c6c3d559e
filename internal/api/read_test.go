package api_test

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/testutil"
)

func TestPresence(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	c1 := srv.Dial(t, nil)
	id1, _ := c1.Connect(testutil.Token(t, map[string]any{
		"sub": "alice", "exp": time.Now().Add(time.Hour).Unix(), "info": map[string]any{"name": "Alice"},
	}))["client"].(string)
	clientSubscribe(t, c1, "chat:p")

	eventually(t, "alice in presence", func() (bool, string) {
		pr := result(t, srv, "presence", `{"channel":"chat:p"}`)
		m, _ := pr["presence"].(map[string]any)
		e, _ := m[id1].(map[string]any)
		return len(m) == 1 && e["user"] == "alice" && e["client"] == id1 &&
			compactJSON(t, e["conn_info"]) == `{"name":"Alice"}`, compactJSON(t, pr)
	})
	stats := func(want string) {
		t.Helper()
		eventually(t, "presence_stats "+want, func() (bool, string) {
			got := compactJSON(t, result(t, srv, "presence_stats", `{"channel":"chat:p"}`))
			return got == want, got
		})
	}
	stats(`{"num_clients":1,"num_users":1}`)

	c2, _ := connect(t, srv, "alice")
	clientSubscribe(t, c2, "chat:p")
	stats(`{"num_clients":2,"num_users":1}`)

	c3, _ := connect(t, srv, "bob")
	clientSubscribe(t, c3, "chat:p")
	stats(`{"num_clients":3,"num_users":2}`)

	result(t, srv, "disconnect", `{"user":"bob"}`)
	c3.ExpectClose(waitTimeout)
	stats(`{"num_clients":2,"num_users":1}`)

	cases := []struct {
		name, body string
		code       int
	}{
		{name: "presence off", body: `{"channel":"plain:p"}`, code: 108},
		{name: "unknown namespace", body: `{"channel":"nope:p"}`, code: 102},
		{name: "empty channel", body: `{"channel":""}`, code: 107},
		{name: "channel of wrong type", body: `{"channel":1}`, code: 107},
	}
	for _, tc := range cases {
		for _, m := range []string{"presence", "presence_stats"} {
			t.Run(m+" "+tc.name, func(t *testing.T) {
				t.Parallel()
				if code, msg := apiError(t, srv, m, tc.body); code != tc.code {
					t.Errorf("code %d (%s), want %d", code, msg, tc.code)
				}
			})
		}
	}
	t.Run("channel without subscribers", func(t *testing.T) {
		t.Parallel()
		if got := compactJSON(t, result(t, srv, "presence", `{"channel":"chat:empty"}`)); got != `{"presence":{}}` {
			t.Errorf("presence %s", got)
		}
		if got := compactJSON(t, result(t, srv, "presence_stats", `{"channel":"chat:empty"}`)); got != `{"num_clients":0,"num_users":0}` {
			t.Errorf("presence_stats %s", got)
		}
	})
}

func TestPresenceAnonymous(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Client.AllowAnonymousConnectWithoutToken = true
	cfg.Channel.WithoutNamespace.AllowSubscribeForAnonymous = true
	srv := testutil.Start(t, cfg)

	stats := func(want string) {
		t.Helper()
		eventually(t, "presence_stats "+want, func() (bool, string) {
			got := compactJSON(t, result(t, srv, "presence_stats", `{"channel":"lobby"}`))
			return got == want, got
		})
	}
	a1, id := connect(t, srv, "")
	clientSubscribe(t, a1, "lobby")
	stats(`{"num_clients":1,"num_users":1}`)
	pr := result(t, srv, "presence", `{"channel":"lobby"}`)
	m, _ := pr["presence"].(map[string]any)
	if e, _ := m[id].(map[string]any); len(m) != 1 || e["client"] != id || (e["user"] != nil && e["user"] != "") {
		t.Errorf("presence %v, want one anonymous entry for %s", pr, id)
	}

	a2, _ := connect(t, srv, "")
	clientSubscribe(t, a2, "lobby")
	stats(`{"num_clients":2,"num_users":1}`)

	u, _ := connect(t, srv, "named")
	clientSubscribe(t, u, "lobby")
	stats(`{"num_clients":3,"num_users":2}`)
}

// --- history ---

func TestHistory(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	var epoch string
	for i := 1; i <= 5; i++ {
		res := result(t, srv, "publish", fmt.Sprintf(`{"channel":"h","data":{"n":%d},"tags":{"i":"%d"}}`, i, i))
		epoch, _ = res["epoch"].(string)
	}
	for i := 1; i <= 5; i++ {
		result(t, srv, "publish", fmt.Sprintf(`{"channel":"small:h","data":{"n":%d}}`, i))
	}
	smallEpoch, _ := result(t, srv, "history", `{"channel":"small:h"}`)["epoch"].(string)

	cases := []struct {
		name    string
		body    string
		code    int    // error code; 0: success
		msg     string // substring of the error message
		offsets []int  // expected publication offsets; nil: no publications key
		top     int    // expected stream offset
	}{
		{name: "limit 0 is the position only", body: `{"channel":"h","limit":0}`, top: 5},
		{name: "no limit is the position only", body: `{"channel":"h"}`, top: 5},
		{name: "limit -1 is all", body: `{"channel":"h","limit":-1}`, offsets: []int{1, 2, 3, 4, 5}, top: 5},
		{name: "limit 2 is the oldest two", body: `{"channel":"h","limit":2}`, offsets: []int{1, 2}, top: 5},
		{name: "limit over the count", body: `{"channel":"h","limit":100}`, offsets: []int{1, 2, 3, 4, 5}, top: 5},
		{name: "reverse all", body: `{"channel":"h","limit":-1,"reverse":true}`, offsets: []int{5, 4, 3, 2, 1}, top: 5},
		{name: "reverse limit 2 is the newest two", body: `{"channel":"h","limit":2,"reverse":true}`, offsets: []int{5, 4}, top: 5},
		{name: "since", body: fmt.Sprintf(`{"channel":"h","limit":-1,"since":{"offset":2,"epoch":%q}}`, epoch), offsets: []int{3, 4, 5}, top: 5},
		{name: "since with limit", body: fmt.Sprintf(`{"channel":"h","limit":1,"since":{"offset":2,"epoch":%q}}`, epoch), offsets: []int{3}, top: 5},
		{name: "since the top", body: fmt.Sprintf(`{"channel":"h","limit":-1,"since":{"offset":5,"epoch":%q}}`, epoch), top: 5},
		{name: "since 0", body: fmt.Sprintf(`{"channel":"h","limit":-1,"since":{"offset":0,"epoch":%q}}`, epoch), offsets: []int{1, 2, 3, 4, 5}, top: 5},
		{name: "since reverse", body: fmt.Sprintf(`{"channel":"h","limit":-1,"reverse":true,"since":{"offset":3,"epoch":%q}}`, epoch), offsets: []int{2, 1}, top: 5},
		{name: "since with a wrong epoch", body: `{"channel":"h","limit":-1,"since":{"offset":2,"epoch":"wrong"}}`, code: 112, msg: "epoch"},
		{name: "since with a wrong epoch and limit 0", body: `{"channel":"h","limit":0,"since":{"offset":2,"epoch":"wrong"}}`, code: 112},
		{name: "since beyond the top", body: fmt.Sprintf(`{"channel":"h","limit":-1,"since":{"offset":9,"epoch":%q}}`, epoch), code: 112},
		{name: "limit -2", body: `{"channel":"h","limit":-2}`, code: 107, msg: "limit"},
		{name: "limit of wrong type", body: `{"channel":"h","limit":"all"}`, code: 107, msg: `"limit"`},
		{name: "since of wrong type", body: `{"channel":"h","since":5}`, code: 107, msg: "since"},
		{name: "history off", body: `{"channel":"plain:h","limit":-1}`, code: 108, msg: "history"},
		{name: "unknown namespace", body: `{"channel":"nope:h"}`, code: 102},
		{name: "empty channel", body: `{"channel":""}`, code: 107},
		{name: "never published", body: `{"channel":"fresh","limit":-1}`, top: 0},
		{name: "evicted: only the newest history_size", body: `{"channel":"small:h","limit":-1}`, offsets: []int{4, 5}, top: 5},
		{name: "since an evicted position", body: fmt.Sprintf(`{"channel":"small:h","limit":-1,"since":{"offset":1,"epoch":%q}}`, smallEpoch), code: 112},
		{name: "since a kept position", body: fmt.Sprintf(`{"channel":"small:h","limit":-1,"since":{"offset":3,"epoch":%q}}`, smallEpoch), offsets: []int{4, 5}, top: 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.code != 0 {
				code, msg := apiError(t, srv, "history", tc.body)
				if code != tc.code || !strings.Contains(msg, tc.msg) {
					t.Fatalf("got %d %q, want %d containing %q", code, msg, tc.code, tc.msg)
				}
				return
			}
			res := result(t, srv, "history", tc.body)
			if got := num(t, res["offset"]); got != float64(tc.top) {
				t.Errorf("offset %v, want %d", got, tc.top)
			}
			if e, _ := res["epoch"].(string); e == "" {
				t.Errorf("no epoch in %v", res)
			}
			raw, has := res["publications"]
			if tc.offsets == nil {
				if has {
					t.Errorf("want no publications key, got %v", raw)
				}
				return
			}
			pubs, _ := raw.([]any)
			var got []int
			for _, p := range pubs {
				pm := p.(map[string]any)
				off := int(num(t, pm["offset"]))
				got = append(got, off)
				if d := compactJSON(t, pm["data"]); d != fmt.Sprintf(`{"n":%d}`, off) {
					t.Errorf("publication %d data %s", off, d)
				}
			}
			if !reflect.DeepEqual(got, tc.offsets) {
				t.Errorf("offsets %v, want %v", got, tc.offsets)
			}
		})
	}
	t.Run("epoch is the publish epoch and tags are kept", func(t *testing.T) {
		t.Parallel()
		res := result(t, srv, "history", `{"channel":"h","limit":1}`)
		if res["epoch"] != epoch {
			t.Errorf("epoch %v, want %q", res["epoch"], epoch)
		}
		p := res["publications"].([]any)[0].(map[string]any)
		if !reflect.DeepEqual(p["tags"], map[string]any{"i": "1"}) {
			t.Errorf("tags %v", p["tags"])
		}
	})
}

func TestHistoryRemove(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	var epoch string
	for i := 1; i <= 3; i++ {
		epoch, _ = result(t, srv, "publish", fmt.Sprintf(`{"channel":"chat:hr","data":{"n":%d}}`, i))["epoch"].(string)
	}
	if res := result(t, srv, "history_remove", `{"channel":"chat:hr"}`); len(res) != 0 {
		t.Errorf("history_remove result %v, want {}", res)
	}
	h := result(t, srv, "history", `{"channel":"chat:hr","limit":-1}`)
	if _, has := h["publications"]; has {
		t.Errorf("publications remain: %v", h)
	}
	if num(t, h["offset"]) != 3 || h["epoch"] != epoch {
		t.Errorf("position %v/%v, want 3/%s", h["offset"], h["epoch"], epoch)
	}
	res := result(t, srv, "publish", `{"channel":"chat:hr","data":{"n":4}}`)
	if num(t, res["offset"]) != 4 || res["epoch"] != epoch {
		t.Errorf("publish after remove: %v, want offset 4 epoch %s", res, epoch)
	}
	h = result(t, srv, "history", `{"channel":"chat:hr","limit":-1}`)
	if pubs, _ := h["publications"].([]any); len(pubs) != 1 {
		t.Errorf("history after publish: %v", h)
	}
	// Removing the history of a channel that never had one is fine.
	result(t, srv, "history_remove", `{"channel":"never"}`)
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"channel":"nope:x"}`, 102},
		{`{"channel":""}`, 107},
		{`{"channel":[]}`, 107},
	} {
		if code, msg := apiError(t, srv, "history_remove", tc.body); code != tc.code {
			t.Errorf("%s: code %d (%s), want %d", tc.body, code, msg, tc.code)
		}
	}
}

// --- channels, info ---

func TestChannelsAndInfo(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	c1, _ := connect(t, srv, "u1")
	c2, _ := connect(t, srv, "u2")
	clientSubscribe(t, c1, "chat:1")
	clientSubscribe(t, c1, "chat:2")
	clientSubscribe(t, c2, "chat:1")
	clientSubscribe(t, c2, "news")
	result(t, srv, "publish", `{"channel":"lonely","data":1}`) // no subscribers: not listed

	channels := func(pattern string) string {
		t.Helper()
		res := result(t, srv, "channels", map[string]any{"pattern": pattern})
		m, ok := res["channels"].(map[string]any)
		if !ok {
			t.Fatalf("no channels map: %v", res)
		}
		return compactJSON(t, m)
	}
	cases := []struct{ pattern, want string }{
		{"", `{"chat:1":{"num_clients":2},"chat:2":{"num_clients":1},"news":{"num_clients":1}}`},
		{"*", `{"chat:1":{"num_clients":2},"chat:2":{"num_clients":1},"news":{"num_clients":1}}`},
		{"chat:*", `{"chat:1":{"num_clients":2},"chat:2":{"num_clients":1}}`},
		{"*:1", `{"chat:1":{"num_clients":2}}`},
		{"news", `{"news":{"num_clients":1}}`},
		{"nomatch*", `{}`},
	}
	for _, tc := range cases {
		eventually(t, fmt.Sprintf("channels %q", tc.pattern), func() (bool, string) {
			got := channels(tc.pattern)
			return got == tc.want, got
		})
	}

	node := func() map[string]any {
		t.Helper()
		res := result(t, srv, "info", `{}`)
		nodes, _ := res["nodes"].([]any)
		if len(nodes) != 1 {
			t.Fatalf("want one node, got %v", res)
		}
		return nodes[0].(map[string]any)
	}
	n := node()
	if uid, _ := n["uid"].(string); uid == "" {
		t.Errorf("no uid: %v", n)
	}
	if n["name"] != "node-a" || n["version"] != "test" {
		t.Errorf("name/version %v/%v, want node-a/test", n["name"], n["version"])
	}
	if up := num(t, n["uptime"]); up < 0 {
		t.Errorf("uptime %v", up)
	}
	counts := func(n map[string]any) string {
		keys := []string{"num_clients", "num_users", "num_channels", "num_subs"}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, n[k]))
		}
		return strings.Join(parts, " ")
	}
	const want = "num_channels=3 num_clients=2 num_subs=4 num_users=2"
	eventually(t, "info counters", func() (bool, string) {
		got := counts(node())
		return got == want, got
	})

	// A client that goes away is no longer counted.
	result(t, srv, "disconnect", `{"user":"u2"}`)
	c2.ExpectClose(waitTimeout)
	eventually(t, "channels after disconnect", func() (bool, string) {
		got := channels("")
		return got == `{"chat:1":{"num_clients":1},"chat:2":{"num_clients":1}}`, got
	})
	const wantAfter = "num_channels=2 num_clients=1 num_subs=2 num_users=1"
	eventually(t, "info counters after disconnect", func() (bool, string) {
		got := counts(node())
		return got == wantAfter, got
	})
	if code, _ := apiError(t, srv, "channels", `{"pattern":1}`); code != 107 {
		t.Errorf("pattern of wrong type: code %d, want 107", code)
	}
}

// --- batch ---

func TestBatch(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	t.Run("mixed commands in order", func(t *testing.T) {
		t.Parallel()
		m := call(t, srv, "batch", `{"commands":[
			{"publish":{"channel":"bt","data":{"n":1}}},
			{"history":{"channel":"bt","limit":-1}},
			{"nope":{}},
			{"publish":{"channel":"bt","data":1},"history":{"channel":"bt"}},
			{},
			{"publish":{"channel":"nope:x","data":1}},
			{"publish":{"channel":"bt","data":{"n":2}}},
			{"presence_stats":{"channel":"bt"}},
			{"info":{}}
		]}`)
		if _, ok := m["result"]; ok {
			t.Errorf("batch reply is wrapped in result: %v", m)
		}
		replies, _ := m["replies"].([]any)
		if len(replies) != 9 {
			t.Fatalf("want 9 replies, got %v", m)
		}
		want := []struct {
			key  string // method key of a success
			code int    // error code
			msg  string
		}{
			{key: "publish"}, {key: "history"}, {code: 104, msg: "nope"}, {code: 107}, {code: 107},
			{code: 102}, {key: "publish"}, {key: "presence_stats"}, {key: "info"},
		}
		for i, w := range want {
			r := replies[i].(map[string]any)
			if len(r) != 1 {
				t.Errorf("reply %d has %d keys: %v", i, len(r), r)
			}
			if w.code != 0 {
				if code := testutil.ErrorCode(r); code != w.code || !strings.Contains(testutil.ErrorMessage(r), w.msg) {
					t.Errorf("reply %d: %v, want error %d containing %q", i, r, w.code, w.msg)
				}
				continue
			}
			if _, ok := r[w.key].(map[string]any); !ok {
				t.Errorf("reply %d: %v, want a %q reply", i, r, w.key)
			}
		}
		if off := num(t, replies[0].(map[string]any)["publish"].(map[string]any)["offset"]); off != 1 {
			t.Errorf("first publish offset %v, want 1", off)
		}
		// The history ran after the first publish and before the second.
		h := replies[1].(map[string]any)["history"].(map[string]any)
		if pubs, _ := h["publications"].([]any); len(pubs) != 1 {
			t.Errorf("history in batch: %v", h)
		}
		if off := num(t, replies[6].(map[string]any)["publish"].(map[string]any)["offset"]); off != 2 {
			t.Errorf("second publish offset %v, want 2", off)
		}
	})
	t.Run("empty commands", func(t *testing.T) {
		t.Parallel()
		m := call(t, srv, "batch", `{"commands":[]}`)
		if r, ok := m["replies"].([]any); !ok || len(r) != 0 {
			t.Errorf("want empty replies, got %v", m)
		}
	})
	t.Run("commands of wrong type", func(t *testing.T) {
		t.Parallel()
		m := call(t, srv, "batch", `{"commands":{"publish":{}}}`)
		if code := testutil.ErrorCode(m); code != 107 || !strings.Contains(testutil.ErrorMessage(m), "commands") {
			t.Errorf("want error 107 naming commands, got %v", m)
		}
	})
	t.Run("errors stay in replies in transport mode", func(t *testing.T) {
		t.Parallel()
		r := send(t, srv, request{path: "/api/batch", body: `{"commands":[{"publish":{"channel":"nope:x","data":1}}]}`,
			headers: withKey(map[string]string{"X-Centrifugo-Error-Mode": "transport"})})
		if r.status != 200 {
			t.Fatalf("status %d, body %s", r.status, r.body)
		}
		replies, _ := r.object(t)["replies"].([]any)
		if len(replies) != 1 || testutil.ErrorCode(replies[0].(map[string]any)) != 102 {
			t.Errorf("replies %v", replies)
		}
	})
}

// --- transport error mode ---

func TestTransportErrorMode(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	cases := []struct {
		name   string
		path   string
		body   string
		header string // header name; X-Centrifugo-Error-Mode when empty
		value  string // header value; "transport" when empty
		status int
		code   int // 0: success
	}{
		{name: "102 unknown channel", path: "/api/publish", body: `{"channel":"nope:x","data":1}`, status: 404, code: 102},
		{name: "107 bad request", path: "/api/publish", body: `{"channel":"","data":1}`, status: 400, code: 107},
		{name: "107 wrong field type", path: "/api/publish", body: `{"channel":5,"data":1}`, status: 400, code: 107},
		{name: "108 history off", path: "/api/history", body: `{"channel":"plain:x"}`, status: 400, code: 108},
		{name: "108 presence off", path: "/api/presence", body: `{"channel":"plain:x"}`, status: 400, code: 108},
		{name: "112 unrecoverable", path: "/api/history", body: `{"channel":"t","limit":-1,"since":{"offset":0,"epoch":"bogus"}}`, status: 416, code: 112},
		{name: "104 unknown method", path: "/api/nope", body: `{}`, status: 404, code: 104},
		{name: "X-Herald-Error-Mode", path: "/api/publish", body: `{"channel":"nope:x","data":1}`, header: "X-Herald-Error-Mode", status: 404, code: 102},
		{name: "header value case", path: "/api/publish", body: `{"channel":"","data":1}`, value: "Transport", status: 400, code: 107},
		{name: "success", path: "/api/publish", body: `{"channel":"t","data":1}`, status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			header, value := tc.header, tc.value
			if header == "" {
				header = "X-Centrifugo-Error-Mode"
			}
			if value == "" {
				value = "transport"
			}
			r := send(t, srv, request{path: tc.path, body: tc.body, headers: withKey(map[string]string{header: value})})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.status, r.body)
			}
			body := r.object(t)
			if tc.code == 0 {
				if _, ok := body["result"].(map[string]any); !ok {
					t.Errorf("want a result, got %s", r.body)
				}
				return
			}
			if _, wrapped := body["error"]; wrapped {
				t.Errorf("transport-mode body is wrapped in error: %s", r.body)
			}
			code, _ := body["code"].(float64)
			msg, _ := body["message"].(string)
			if int(code) != tc.code || msg == "" {
				t.Errorf("body %s, want {\"code\":%d,\"message\":...}", r.body, tc.code)
			}
		})
	}
	t.Run("default mode answers errors with 200", func(t *testing.T) {
		t.Parallel()
		for _, tc := range cases {
			if tc.code == 0 || tc.code == 104 || tc.header != "" {
				continue
			}
			m := call(t, srv, strings.TrimPrefix(tc.path, "/api/"), tc.body)
			if code := testutil.ErrorCode(m); code != tc.code {
				t.Errorf("%s: error %v, want code %d", tc.name, m, tc.code)
			}
		}
	})
}
