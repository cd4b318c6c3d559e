package api_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/testutil"
)

func TestPublish(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	cases := []struct {
		name  string
		body  string
		code  int    // 0: success
		msg   string // substring of the error message
		check func(t *testing.T, res map[string]any)
	}{
		{name: "history on gives offset and epoch", body: `{"channel":"news","data":{"text":"hi"}}`, check: func(t *testing.T, res map[string]any) {
			if num(t, res["offset"]) != 1 {
				t.Errorf("offset %v, want 1", res["offset"])
			}
			if e, _ := res["epoch"].(string); e == "" {
				t.Errorf("no epoch in %v", res)
			}
		}},
		{name: "namespace with history", body: `{"channel":"chat:room","data":{"text":"hi"}}`, check: func(t *testing.T, res map[string]any) {
			if num(t, res["offset"]) != 1 || res["epoch"] == "" {
				t.Errorf("want offset 1 and an epoch, got %v", res)
			}
		}},
		{name: "history off gives empty result", body: `{"channel":"plain:x","data":{"text":"hi"}}`, check: func(t *testing.T, res map[string]any) {
			if len(res) != 0 {
				t.Errorf("want {}, got %v", res)
			}
		}},
		{name: "skip_history gives empty result", body: `{"channel":"skipped","data":{"text":"hi"},"skip_history":true}`, check: func(t *testing.T, res map[string]any) {
			if len(res) != 0 {
				t.Errorf("want {}, got %v", res)
			}
		}},
		{name: "string data", body: `{"channel":"scalar","data":"hello"}`},
		{name: "zero data", body: `{"channel":"scalar0","data":0}`},
		{name: "false data", body: `{"channel":"scalarf","data":false}`},
		{name: "array data", body: `{"channel":"arr","data":[]}`},
		{name: "data and b64data", body: `{"channel":"both","data":{"a":1},"b64data":"aGk="}`},
		{name: "tags", body: `{"channel":"tagged","data":{},"tags":{"k":"v"}}`},
		{name: "channel of max_length", body: fmt.Sprintf(`{"channel":%q,"data":1}`, strings.Repeat("a", 255))},
		{name: "private channel", body: `{"channel":"$secret","data":1}`},
		{name: "unknown namespace", body: `{"channel":"nope:x","data":{}}`, code: 102, msg: "nope"},
		{name: "unknown namespace of private channel", body: `{"channel":"$nope:x","data":{}}`, code: 102, msg: "nope"},
		{name: "empty channel", body: `{"channel":"","data":{}}`, code: 107, msg: "channel"},
		{name: "missing channel", body: `{"data":{}}`, code: 107, msg: "channel"},
		{name: "non-ASCII channel", body: `{"channel":"новости","data":{}}`, code: 107, msg: "non-ASCII"},
		{name: "control byte in channel", body: `{"channel":"a\tb","data":{}}`, code: 107},
		{name: "channel longer than max_length", body: fmt.Sprintf(`{"channel":%q,"data":1}`, strings.Repeat("a", 256)), code: 107, msg: "max_length"},
		{name: "missing data", body: `{"channel":"news"}`, code: 107, msg: "data"},
		{name: "null data", body: `{"channel":"news","data":null}`, code: 107, msg: "data"},
		{name: "b64data only", body: `{"channel":"bin","b64data":"aGVsbG8="}`},
		{name: "b64data that is not base64", body: `{"channel":"news","b64data":"not base64!"}`, code: 107, msg: "b64data"},
		{name: "channel of wrong type", body: `{"channel":5,"data":{}}`, code: 107, msg: `"channel"`},
		{name: "skip_history of wrong type", body: `{"channel":"news","data":{},"skip_history":"yes"}`, code: 107, msg: `"skip_history"`},
		{name: "tags of wrong type", body: `{"channel":"news","data":{},"tags":["a"]}`, code: 107, msg: "tags"},
		{name: "tag value of wrong type", body: `{"channel":"news","data":{},"tags":{"k":1}}`, code: 107, msg: "tags"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.code != 0 {
				code, msg := apiError(t, srv, "publish", tc.body)
				if code != tc.code {
					t.Fatalf("code %d (%s), want %d", code, msg, tc.code)
				}
				if !strings.Contains(msg, tc.msg) {
					t.Errorf("message %q does not contain %q", msg, tc.msg)
				}
				return
			}
			res := result(t, srv, "publish", tc.body)
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}

	t.Run("offsets grow within one epoch", func(t *testing.T) {
		t.Parallel()
		var epoch string
		for i := 1; i <= 3; i++ {
			res := result(t, srv, "publish", `{"channel":"seq","data":{}}`)
			if got := num(t, res["offset"]); got != float64(i) {
				t.Fatalf("publish %d: offset %v", i, got)
			}
			if i == 1 {
				epoch, _ = res["epoch"].(string)
			} else if res["epoch"] != epoch {
				t.Fatalf("epoch changed from %q to %v", epoch, res["epoch"])
			}
		}
	})
	t.Run("skip_history keeps the publication out of history", func(t *testing.T) {
		t.Parallel()
		result(t, srv, "publish", `{"channel":"skip2","data":{"n":1}}`)
		result(t, srv, "publish", `{"channel":"skip2","data":{"n":2},"skip_history":true}`)
		h := result(t, srv, "history", `{"channel":"skip2","limit":-1}`)
		pubs, _ := h["publications"].([]any)
		if len(pubs) != 1 || num(t, h["offset"]) != 1 {
			t.Fatalf("want only the first publication at offset 1, got %v", h)
		}
	})
}

func TestPublishDelivery(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	c, _ := connect(t, srv, "reader")
	clientSubscribe(t, c, "feed")

	body := "{\"channel\":\"feed\",\n \"data\": {\n\t\"a\" : 1,\n  \"b\": [ 1,\n 2 ],\n  \"s\": \"line1\\nline2 ü\"\n },\n \"tags\": {\"k\": \"v\", \"x\": \"y z\"}\n}"
	res := result(t, srv, "publish", body)
	offset := num(t, res["offset"])

	// Read raw lines: a raw newline inside data would split the JSON object.
	var line string
	deadline := time.Now().Add(waitTimeout)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no publication line")
		}
		l, err := c.ReadLine(time.Until(deadline))
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if l == "{}" { // ping
			continue
		}
		line = l
		break
	}
	var msg struct {
		Push struct {
			Channel string `json:"channel"`
			Pub     struct {
				Data   json.RawMessage   `json:"data"`
				Offset float64           `json:"offset"`
				Tags   map[string]string `json:"tags"`
			} `json:"pub"`
		} `json:"push"`
	}
	if err := json.Unmarshal([]byte(line), &msg); err != nil {
		t.Fatalf("line %q is not one JSON object (raw newline in data?): %v", line, err)
	}
	const want = `{"a":1,"b":[1,2],"s":"line1\nline2 ü"}`
	if got := string(msg.Push.Pub.Data); got != want {
		t.Errorf("delivered data %s, want compacted %s", got, want)
	}
	if !strings.Contains(line, `"data":`+want) {
		t.Errorf("line %q does not carry the compacted data", line)
	}
	if msg.Push.Channel != "feed" || msg.Push.Pub.Offset != offset {
		t.Errorf("push channel %q offset %v, want feed %v", msg.Push.Channel, msg.Push.Pub.Offset, offset)
	}
	if !reflect.DeepEqual(msg.Push.Pub.Tags, map[string]string{"k": "v", "x": "y z"}) {
		t.Errorf("tags %v", msg.Push.Pub.Tags)
	}

	// History stores the compacted data too.
	h := result(t, srv, "history", `{"channel":"feed","limit":-1}`)
	pubs, _ := h["publications"].([]any)
	if len(pubs) != 1 {
		t.Fatalf("history %v", h)
	}
	p := pubs[0].(map[string]any)
	if got := compactJSON(t, p["data"]); got != want {
		t.Errorf("history data %s, want %s", got, want)
	}
	if !reflect.DeepEqual(p["tags"], map[string]any{"k": "v", "x": "y z"}) {
		t.Errorf("history tags %v", p["tags"])
	}

	// Without history the publication is delivered too, without an offset.
	clientSubscribe(t, c, "plain:feed")
	result(t, srv, "publish", `{"channel":"plain:feed","data":{"n":2}}`)
	pub := expectPub(t, c, "plain:feed")
	if _, ok := pub["offset"]; ok {
		t.Errorf("publication without history has an offset: %v", pub)
	}
	if compactJSON(t, pub["data"]) != `{"n":2}` {
		t.Errorf("data %v", pub["data"])
	}
}

// --- broadcast ---

func TestBroadcast(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	t.Run("responses in order with per-channel errors", func(t *testing.T) {
		t.Parallel()
		c, _ := connect(t, srv, "bc")
		clientSubscribe(t, c, "b1")
		clientSubscribe(t, c, "b2")
		res := result(t, srv, "broadcast", `{"channels":["b1","nope:x","b2","","plain:b3"],"data":{"v":1},"tags":{"t":"1"}}`)
		resp, _ := res["responses"].([]any)
		if len(resp) != 5 {
			t.Fatalf("want 5 responses, got %v", res)
		}
		wantErr := []int{0, 102, 0, 107, 0}
		for i, r := range resp {
			m := r.(map[string]any)
			if code := testutil.ErrorCode(m); code != wantErr[i] {
				t.Errorf("response %d: error code %d, want %d (%v)", i, code, wantErr[i], m)
			}
			if wantErr[i] == 0 {
				if _, ok := m["result"].(map[string]any); !ok {
					t.Errorf("response %d: no result: %v", i, m)
				}
			} else if _, ok := m["result"]; ok {
				t.Errorf("response %d: error with a result: %v", i, m)
			}
		}
		if r0 := resp[0].(map[string]any)["result"].(map[string]any); num(t, r0["offset"]) != 1 || r0["epoch"] == "" {
			t.Errorf("b1 result %v, want offset 1 and an epoch", r0)
		}
		if r4 := resp[4].(map[string]any)["result"].(map[string]any); len(r4) != 0 {
			t.Errorf("plain:b3 result %v, want {}", r4)
		}
		for _, ch := range []string{"b1", "b2"} {
			pub := expectPub(t, c, ch)
			if compactJSON(t, pub["data"]) != `{"v":1}` || !reflect.DeepEqual(pub["tags"], map[string]any{"t": "1"}) {
				t.Errorf("%s: publication %v", ch, pub)
			}
		}
	})

	errCases := []struct {
		name string
		body string
		msg  string
	}{
		{"empty channels", `{"channels":[],"data":{}}`, "channels"},
		{"missing channels", `{"data":{}}`, "channels"},
		{"channels of wrong type", `{"channels":"b1","data":{}}`, `"channels"`},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, msg := apiError(t, srv, "broadcast", tc.body)
			if code != 107 {
				t.Fatalf("code %d (%s), want 107", code, msg)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not contain %q", msg, tc.msg)
			}
		})
	}
}

// --- server-side subscribe / unsubscribe / disconnect / refresh ---

func TestServerSubscribe(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	t.Run("subscribe push then publications", func(t *testing.T) {
		t.Parallel()
		alice, _ := connect(t, srv, "alice")
		bob, _ := connect(t, srv, "bob")
		clientSubscribe(t, bob, "bobs")

		res := result(t, srv, "subscribe", `{"user":"alice","channel":"chat:news","info":{"role":"reader"}}`)
		if len(res) != 0 {
			t.Errorf("subscribe result %v, want {}", res)
		}
		p := alice.WaitPush(waitTimeout)
		if p["channel"] != "chat:news" {
			t.Fatalf("push %v, want channel chat:news", p)
		}
		if _, ok := p["subscribe"].(map[string]any); !ok {
			t.Fatalf("push %v is not a subscribe push", p)
		}
		result(t, srv, "publish", `{"channel":"chat:news","data":{"n":1}}`)
		pub := expectPub(t, alice, "chat:news")
		if compactJSON(t, pub["data"]) != `{"n":1}` {
			t.Errorf("data %v", pub["data"])
		}
		// The channel info given to subscribe appears in presence.
		eventually(t, "presence with chan_info", func() (bool, string) {
			pr := result(t, srv, "presence", `{"channel":"chat:news"}`)
			m, _ := pr["presence"].(map[string]any)
			for _, v := range m {
				e := v.(map[string]any)
				if e["user"] == "alice" && compactJSON(t, e["chan_info"]) == `{"role":"reader"}` {
					return true, ""
				}
			}
			return false, compactJSON(t, pr)
		})
		// Bob was not subscribed: his next push is from his own channel.
		result(t, srv, "publish", `{"channel":"bobs","data":{"n":2}}`)
		expectPub(t, bob, "bobs")
		// Subscribing again is harmless.
		result(t, srv, "subscribe", `{"user":"alice","channel":"chat:news"}`)
	})

	t.Run("client targets one connection", func(t *testing.T) {
		t.Parallel()
		c1, id1 := connect(t, srv, "carol")
		c2, _ := connect(t, srv, "carol")
		clientSubscribe(t, c2, "carol2")
		result(t, srv, "subscribe", map[string]any{"user": "carol", "client": id1, "channel": "carolx"})
		if p := c1.WaitPush(waitTimeout); p["channel"] != "carolx" || p["subscribe"] == nil {
			t.Fatalf("c1 push %v", p)
		}
		result(t, srv, "publish", `{"channel":"carolx","data":1}`)
		expectPub(t, c1, "carolx")
		result(t, srv, "publish", `{"channel":"carol2","data":2}`)
		expectPub(t, c2, "carol2") // c2 got neither the subscribe push nor carolx
	})

	t.Run("user without connections", func(t *testing.T) {
		t.Parallel()
		if res := result(t, srv, "subscribe", `{"user":"nobody","channel":"x"}`); len(res) != 0 {
			t.Errorf("result %v, want {}", res)
		}
	})

	errCases := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"unknown namespace", `{"user":"alice","channel":"nope:x"}`, 102, "nope"},
		{"empty channel", `{"user":"alice","channel":""}`, 107, "channel"},
		{"non-ASCII channel", `{"user":"alice","channel":"ü"}`, 107, ""},
		{"user of wrong type", `{"user":1,"channel":"x"}`, 107, `"user"`},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, msg := apiError(t, srv, "subscribe", tc.body)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("got %d %q, want %d containing %q", code, msg, tc.code, tc.msg)
			}
		})
	}
}

func TestServerUnsubscribe(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	c, id := connect(t, srv, "dave")
	clientSubscribe(t, c, "chat:room")
	clientSubscribe(t, c, "other")
	eventually(t, "dave in presence", func() (bool, string) {
		st := result(t, srv, "presence_stats", `{"channel":"chat:room"}`)
		return num(t, st["num_clients"]) == 1, compactJSON(t, st)
	})

	if res := result(t, srv, "unsubscribe", `{"user":"dave","channel":"chat:room"}`); len(res) != 0 {
		t.Errorf("result %v, want {}", res)
	}
	p := c.WaitPush(waitTimeout)
	u, ok := p["unsubscribe"].(map[string]any)
	if !ok || p["channel"] != "chat:room" {
		t.Fatalf("push %v, want an unsubscribe push for chat:room", p)
	}
	if num(t, u["code"]) != 2000 {
		t.Errorf("unsubscribe code %v, want 2000", u["code"])
	}
	// No more publications from chat:room; other still flows.
	result(t, srv, "publish", `{"channel":"chat:room","data":1}`)
	result(t, srv, "publish", `{"channel":"other","data":2}`)
	expectPub(t, c, "other")
	eventually(t, "dave left presence", func() (bool, string) {
		pr := result(t, srv, "presence", `{"channel":"chat:room"}`)
		m, _ := pr["presence"].(map[string]any)
		_, still := m[id]
		return !still, compactJSON(t, pr)
	})
	// Unsubscribing again, or from a channel never subscribed, is harmless.
	result(t, srv, "unsubscribe", `{"user":"dave","channel":"chat:room"}`)
	if code, _ := apiError(t, srv, "unsubscribe", `{"user":"dave","channel":"nope:x"}`); code != 102 {
		t.Errorf("unknown namespace: code %d, want 102", code)
	}
	if code, _ := apiError(t, srv, "unsubscribe", `{"user":"dave","channel":""}`); code != 107 {
		t.Errorf("empty channel: code %d, want 107", code)
	}
	// The client can subscribe again.
	clientSubscribe(t, c, "chat:room")
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	type conn struct {
		c  *testutil.Client
		id string
	}
	cases := []struct {
		name string
		// body builds the request from the user's two connections.
		body func(user string, conns []conn) any
		code int // API error code; 0: success
		// closed: per connection, the expected close code (0: stays connected).
		closed     []int
		reason     string // expected close reason of closed connections
		errMessage string
	}{
		{name: "default 3503", body: func(u string, _ []conn) any { return map[string]any{"user": u} },
			closed: []int{3503, 3503}, reason: "force disconnect"},
		{name: "custom 4000 x", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 4000, "reason": "x"}}
		}, closed: []int{4000, 4000}, reason: "x"},
		{name: "custom terminal 4500", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 4500, "reason": "bye"}}
		}, closed: []int{4500, 4500}, reason: "bye"},
		{name: "one client", body: func(u string, cs []conn) any {
			return map[string]any{"user": u, "client": cs[1].id}
		}, closed: []int{0, 3503}, reason: "force disconnect"},
		{name: "whitelist keeps a client", body: func(u string, cs []conn) any {
			return map[string]any{"user": u, "whitelist": []string{cs[0].id}}
		}, closed: []int{0, 3503}, reason: "force disconnect"},
		{name: "code 1000 out of range", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 1000, "reason": "x"}}
		}, code: 107, closed: []int{0, 0}, errMessage: "1000"},
		{name: "code 5000 out of range", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 5000, "reason": "x"}}
		}, code: 107, closed: []int{0, 0}, errMessage: "5000"},
		{name: "code 2999 out of range", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 2999}}
		}, code: 107, closed: []int{0, 0}, errMessage: "2999"},
		{name: "reason over 123 bytes", body: func(u string, _ []conn) any {
			return map[string]any{"user": u, "disconnect": map[string]any{"code": 4000, "reason": strings.Repeat("r", 124)}}
		}, code: 107, closed: []int{0, 0}, errMessage: "123"},
		{name: "whitelist of wrong type", body: func(u string, _ []conn) any {
			return fmt.Sprintf(`{"user":%q,"whitelist":"abc"}`, u)
		}, code: 107, closed: []int{0, 0}, errMessage: `"whitelist"`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user := fmt.Sprintf("disc-%d", i)
			var conns []conn
			for range 2 {
				c, id := connect(t, srv, user)
				conns = append(conns, conn{c, id})
			}
			bystander, _ := connect(t, srv, user+"-other")

			body := tc.body(user, conns)
			if tc.code != 0 {
				code, msg := apiError(t, srv, "disconnect", body)
				if code != tc.code || !strings.Contains(msg, tc.errMessage) {
					t.Fatalf("got %d %q, want %d containing %q", code, msg, tc.code, tc.errMessage)
				}
			} else if res := result(t, srv, "disconnect", body); len(res) != 0 {
				t.Errorf("result %v, want {}", res)
			}
			for j, want := range tc.closed {
				if want == 0 {
					continue
				}
				code, reason := conns[j].c.ExpectClose(waitTimeout)
				if code != want || reason != tc.reason {
					t.Errorf("connection %d closed with %d %q, want %d %q", j, code, reason, want, tc.reason)
				}
			}
			for j, want := range tc.closed {
				if want == 0 {
					alive(t, conns[j].c, "alive")
				}
			}
			alive(t, bystander, "alive")
		})
	}

	t.Run("user without connections", func(t *testing.T) {
		t.Parallel()
		if res := result(t, srv, "disconnect", `{"user":"ghost"}`); len(res) != 0 {
			t.Errorf("result %v, want {}", res)
		}
	})
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())

	t.Run("expired closes with 3005", func(t *testing.T) {
		t.Parallel()
		c, _ := connect(t, srv, "erin")
		other, _ := connect(t, srv, "erin-other")
		if res := result(t, srv, "refresh", `{"user":"erin","expired":true}`); len(res) != 0 {
			t.Errorf("result %v, want {}", res)
		}
		if code, _ := c.ExpectClose(waitTimeout); code != 3005 {
			t.Errorf("close code %d, want 3005", code)
		}
		alive(t, other, "alive")
	})
	t.Run("expire_at in the future keeps the connection", func(t *testing.T) {
		t.Parallel()
		c, _ := connect(t, srv, "frank")
		result(t, srv, "refresh", map[string]any{"user": "frank", "expire_at": time.Now().Add(time.Hour).Unix(), "info": map[string]any{"v": 2}})
		alive(t, c, "alive")
	})
	t.Run("expired of wrong type", func(t *testing.T) {
		t.Parallel()
		code, msg := apiError(t, srv, "refresh", `{"user":"frank","expired":"yes"}`)
		if code != 107 || !strings.Contains(msg, `"expired"`) {
			t.Errorf("got %d %q, want 107 naming expired", code, msg)
		}
	})
}

// --- presence ---
