package centrifuge

import (
	"encoding/json"
	"reflect"
	"testing"
)

var fastDecodeSeeds = []string{
	`{}`,
	` { } `,
	`{"id":1,"connect":{"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig"}}`,
	`{"id":1,"connect":{"token":"t","name":"js","version":"5.8.0"}}`,
	`{"id":1,"connect":{}}`,
	`{"connect":{"token":"t"},"id":7}`,
	`{"id":2,"subscribe":{"channel":"news"}}`,
	`{"id":3,"subscribe":{"channel":"chat:1","token":"x","recover":true,"offset":18446744073709551615,"epoch":"AbCd","positioned":false,"recoverable":true,"join_leave":true,"flag":2}}`,
	"{\"id\":\t4 ,\r\"subscribe\" : { \"channel\" : \"a\" } }",
	// Every one of these must fall back to encoding/json.
	`{"id":4294967296,"subscribe":{"channel":"a"}}`,
	`{"id":-1}`,
	`{"id":01}`,
	`{"id":1.0}`,
	`{"id":1e2}`,
	`{"id":1,"id":2}`,
	`{"ID":1}`,
	`{"id":1,"connect":{"token":"t","token":"u"}}`,
	`{"id":1,"connect":{"token":"a\"b"}}`,
	`{"id":1,"connect":{"token":"caf\u00e9"}}`,
	"{\"id\":1,\"connect\":{\"token\":\"caf\xc3\xa9\"}}",
	"{\"id\":1,\"connect\":{\"token\":\"\xff\"}}",
	`{"id":1,"connect":{"token":null}}`,
	`{"id":1,"connect":null}`,
	`{"id":1,"connect":{"token":"t","data":{"x":1}}}`,
	`{"id":1,"connect":{"token":"t"},"subscribe":{"channel":"a"}}`,
	`{"id":1,"publish":{"channel":"a","data":{}}}`,
	`{"id":1,"subscribe":{"channel":"a","flag":-2}}`,
	`{"id":1,"subscribe":{"channel":"a","recover":1}}`,
	`{"id":1,"subscribe":{"channel":"a","offset":1.5}}`,
	`{"id":1}x`,
	`{"id":1`,
	`{"id":1,}`,
	`{,}`,
	`{"id" 1}`,
	`[]`,
	``,
	`{"id":1,"subscribe":{"channel":"a",}}`,
	`{"id":1,"ping":{}}`,
}

// Whatever fastDecode accepts, encoding/json decodes to the same command.
func FuzzFastDecodeMatchesEncodingJSON(f *testing.F) {
	for _, s := range fastDecodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := fastDecode(b)
		if !ok {
			return
		}
		var want Command
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("fast path accepted %q, which encoding/json refuses: %v", b, err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q: fast path %+v, encoding/json %+v", b, *got, want)
		}
	})
}

// The commands clients send all the time take the fast path; the others
// do not.
func TestFastDecodeCoverage(t *testing.T) {
	fast := map[string]bool{
		`{}`: true,
		`{"id":1,"connect":{"token":"t","name":"js","version":"5.8.0"}}`:                      true,
		`{"id":2,"subscribe":{"channel":"news"}}`:                                             true,
		`{"id":3,"subscribe":{"channel":"c","recover":true,"offset":5,"epoch":"e","flag":2}}`: true,
		`{"id":1,"connect":{"token":"t","subs":{"a":{}}}}`:                                    false,
		`{"id":1,"publish":{"channel":"a","data":{}}}`:                                        false,
		`{"id":1,"connect":{"token":"t\u0041"}}`:                                              false,
		`{"id":4294967296,"connect":{}}`:                                                      false,
	}
	for line, want := range fast {
		if _, ok := fastDecode([]byte(line)); ok != want {
			t.Errorf("%s: fast path %v, want %v", line, ok, want)
		}
		// decodeFrame gives encoding/json's result either way.
		cmds, err := decodeFrame([]byte(line))
		var ref Command
		refErr := json.Unmarshal([]byte(line), &ref)
		if (err != nil) != (refErr != nil) || (err == nil && !reflect.DeepEqual(*cmds[0], ref)) {
			t.Errorf("%s: decodeFrame %+v %v, encoding/json %+v %v", line, cmds, err, ref, refErr)
		}
	}
}

func BenchmarkDecodeConnectFrame(b *testing.B) {
	line := []byte(`{"id":1,"connect":{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyMSIsImV4cCI6MTc5NTU0OTE3MX0.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","name":"js"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeFrame(line); err != nil {
			b.Fatal(err)
		}
	}
}

// Whatever fastEncodeReply encodes, encoding/json encodes to the same bytes.
func FuzzFastEncodeMatchesEncodingJSON(f *testing.F) {
	f.Add(uint32(1), "0ffb5421-d185-4b47-be90-93ad33298116", "0.1.0-dev", uint32(0), uint32(25), uint64(0), uint8(0b0101))
	f.Add(uint32(2), "", "", uint32(60), uint32(0), uint64(7), uint8(0b1111_1111))
	f.Add(uint32(0), "a<b", "é", uint32(1), uint32(1), uint64(1<<63), uint8(0b1000_0000))
	f.Fuzz(func(t *testing.T, id uint32, s1, s2 string, n1, n2 uint32, off uint64, bits uint8) {
		bit := func(i int) bool { return bits&(1<<i) != 0 }
		r := &Reply{ID: id}
		if bit(7) {
			r.Subscribe = &SubscribeResult{Expires: bit(0), TTL: n1, Recoverable: bit(1), Epoch: s1, Recovered: bit(2),
				Offset: off, Positioned: bit(3), WasRecovering: bit(4)}
		} else {
			r.Connect = &ConnectResult{Client: s1, Version: s2, Expires: bit(0), TTL: n1, Ping: n2, Pong: bit(1)}
		}
		got, ok := fastEncodeReply(r)
		if !ok {
			return
		}
		want, err := json.Marshal(r)
		if err != nil || string(got) != string(want) {
			t.Fatalf("fast %s, encoding/json %s (%v)", got, want, err)
		}
	})
}

func TestFastEncodeCoverage(t *testing.T) {
	for _, c := range []struct {
		r    *Reply
		fast bool
	}{
		{&Reply{ID: 1, Connect: &ConnectResult{Client: "c", Version: "v", Ping: 25, Pong: true}}, true},
		{&Reply{ID: 2, Subscribe: &SubscribeResult{}}, true},
		{&Reply{ID: 2, Subscribe: &SubscribeResult{Recoverable: true, Epoch: "e", Offset: 3, Positioned: true}}, true},
		{&Reply{ID: 1, Connect: &ConnectResult{Client: "c", Data: json.RawMessage(`{}`)}}, false},
		{&Reply{ID: 1, Connect: &ConnectResult{Client: "c", Subs: map[string]*SubscribeResult{"a": {}}}}, false},
		{&Reply{ID: 2, Subscribe: &SubscribeResult{Publications: []*Publication{}}}, false},
		{&Reply{ID: 3, Error: ErrInternal}, false},
		{&Reply{ID: 1, Connect: &ConnectResult{Client: "<c>"}}, false},
	} {
		got, ok := fastEncodeReply(c.r)
		want, _ := json.Marshal(c.r)
		if ok != c.fast || (ok && string(got) != string(want)) || string(encodeReply(c.r)) != string(want) {
			t.Errorf("%s: fast %v %s", want, ok, got)
		}
	}
}

func BenchmarkEncodeConnectReply(b *testing.B) {
	r := &Reply{ID: 1, Connect: &ConnectResult{Client: "0ffb5421-d185-4b47-be90-93ad33298116", Version: "0.1.0-dev", Ping: 25, Pong: true}}
	b.ReportAllocs()
	for b.Loop() {
		_ = encodeReply(r)
	}
}
