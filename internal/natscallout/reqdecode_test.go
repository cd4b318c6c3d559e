package natscallout

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/heraldhub/herald/internal/natscallout/natstest"
)

// serverRequest builds a request as a NATS server does, edited by edit.
func serverRequest(t testing.TB, server nkeys.KeyPair, edit func(*jwt.AuthorizationRequestClaims)) string {
	t.Helper()
	spub, _ := server.PublicKey()
	rc := jwt.NewAuthorizationRequestClaims("AAXM5Q4OW6UDZ5FHDHKDYHVQZPRKXAG4XUOZQXR3ONYDOLMLUDDHJHWH")
	rc.Audience = requestAudience
	rc.UserNkey = userKey(t)
	rc.Server = jwt.ServerID{Name: "n1", Host: "0.0.0.0", ID: spub, Version: "2.15.3", XKey: "XBQ"}
	rc.ClientInformation = jwt.ClientInformation{Host: "127.0.0.1", ID: 7, Kind: "Client", Type: "nats"}
	rc.ConnectOptions = jwt.ConnectOptions{Token: "eyJhbGciOiJIUzI1NiJ9.e30.x", Lang: "go", Version: "1.56.0", Protocol: 1}
	rc.Expires = time.Now().Add(time.Hour).Unix()
	if edit != nil {
		edit(rc)
	}
	s, err := rc.Encode(server)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameRequest decodes token with Herald's decoder and the library's and
// fails unless both accept the same claims or refuse with the same error;
// it reports whether the fast path took the token.
func sameRequest(t *testing.T, token string) bool {
	t.Helper()
	want, wantErr := jwt.DecodeAuthorizationRequestClaims(token)
	got, err := decodeRequest([]byte(token))
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("errors differ: library %v, Herald %v", wantErr, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("claims differ\nlibrary: %#v\nHerald:  %#v", want, got)
	}
	fast := fastRequest([]byte(token))
	if fast != nil && !reflect.DeepEqual(fast, want) {
		t.Fatalf("the fast path differs\nlibrary: %#v\nHerald:  %#v", want, fast)
	}
	return fast != nil
}

func TestDecodeRequestMatchesLibrary(t *testing.T) {
	server, _ := nkeys.CreateServer()
	for _, c := range []struct {
		name string
		edit func(*jwt.AuthorizationRequestClaims)
		fast bool
	}{
		{"as NATS sends it", nil, true},
		{"every field", func(rc *jwt.AuthorizationRequestClaims) {
			rc.Name, rc.NotBefore, rc.RequestNonce = "req", 5, "nonce"
			rc.Server.Cluster, rc.Server.Tags = "c1", jwt.TagList{"a", "b"}
			rc.Tags = jwt.TagList{}
			rc.ClientInformation = jwt.ClientInformation{Host: "::1", ID: 1<<64 - 1, User: "u", Name: "n", Tags: jwt.TagList{"t"},
				NameTag: "nt", Kind: "Client", Type: "websocket", MQTT: "m", Nonce: "nn"}
			rc.ConnectOptions = jwt.ConnectOptions{JWT: "j", Nkey: "k", SignedNonce: "s", Token: "t", Username: "u", Password: "p",
				Name: "n", Lang: "l", Version: "v", Protocol: -1}
		}, true},
		{"escaped and non-ASCII strings", func(rc *jwt.AuthorizationRequestClaims) {
			rc.ClientInformation.Name = "Zoë <app> & \"quotes\" \\ \n\t\u2028"
			rc.ConnectOptions.Password = "\xff\xfeinvalid UTF-8"
		}, true},
		{"a TLS client", func(rc *jwt.AuthorizationRequestClaims) {
			rc.TLS = &jwt.ClientTLS{Version: "1.3", Certs: jwt.StringList{"-----BEGIN CERTIFICATE-----"}}
		}, false},
		{"expired", func(rc *jwt.AuthorizationRequestClaims) { rc.Expires = 1 }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if fast := sameRequest(t, serverRequest(t, server, c.edit)); fast != c.fast {
				t.Fatalf("fast path taken: %v, want %v", fast, c.fast)
			}
		})
	}

	good := serverRequest(t, server, nil)
	h, rest, _ := strings.Cut(good, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	// The request as another kind of key would sign it (the library refuses
	// to encode it).
	signedBy := func(kp nkeys.KeyPair) string {
		spub, _ := server.PublicKey()
		pub, _ := kp.PublicKey()
		doc, _ := b64.DecodeString(payload)
		return signedPayload(kp, strings.ReplaceAll(string(doc), spub, pub))
	}
	account, _ := nkeys.CreateAccount()
	user, _ := nkeys.CreateUser()
	other, _ := nkeys.CreateServer()
	for name, token := range map[string]string{
		"bad signature":        h + "." + payload + "." + sig[:10] + "AAAA" + sig[14:],
		"signature of other":   serverRequest(t, server, func(rc *jwt.AuthorizationRequestClaims) { rc.Name = "x" })[:len(h)+len(payload)+1] + "." + sig,
		"signed by an account": signedBy(account),
		"signed by a user":     signedBy(user),
		"signed by another":    h + "." + payload + "." + strings.Split(signedBy(other), ".")[2],
		"four parts":           good + ".x",
		"long signature":       good + "AA",
		"short signature":      good[:len(good)-2],
		"no signature":         h + "." + payload + ".",
		"two parts":            h + "." + payload,
		"other header":         b64.EncodeToString([]byte(`{"typ":"jwt","alg":"ed25519-nkey"}`)) + "." + payload + "." + sig,
		"payload not base64":   h + ".!!." + sig,
		"empty":                "",
	} {
		t.Run(name, func(t *testing.T) {
			if sameRequest(t, token) {
				t.Fatal("the fast path took a request it must leave to the library")
			}
			if _, err := decodeRequest([]byte(token)); err == nil && name != "other header" {
				t.Fatal("accepted")
			}
		})
	}
}

// signedPayload is a request whose payload is the JSON doc, signed by server.
func signedPayload(server nkeys.KeyPair, doc string) string {
	tok := jwtHeader + "." + b64.EncodeToString([]byte(doc))
	sig, _ := server.Sign([]byte(tok))
	return tok + "." + b64.EncodeToString(sig)
}

// oddRequests are request payloads for the server key spub: the plain one,
// those the fast path leaves to the library (slow) and those it reads as
// encoding/json does (fast).
func oddRequests(spub, upub string) (base string, slow, fast map[string]string) {
	base = `{"aud":"nats-authorization-request","exp":9999999999,"iss":"` + spub + `","sub":"A","nats":{"server_id":{"name":"n","host":"h","id":"` +
		spub + `"},"user_nkey":"` + upub + `","client_info":{},"connect_opts":{"protocol":1},"type":"authorization_request","version":2}}`
	slow = map[string]string{
		"white space":        strings.Replace(base, `"sub":"A"`, `"sub": "A"`, 1),
		"trailing space":     base + " ",
		"duplicate key":      strings.Replace(base, `"sub":"A"`, `"sub":"A","sub":"B"`, 1),
		"duplicate nats key": strings.Replace(base, `"version":2`, `"version":2,"version":2`, 1),
		"other case":         strings.Replace(base, `"sub":"A"`, `"SUB":"A"`, 1),
		"unknown key":        strings.Replace(base, `"sub":"A"`, `"sub":"A","x":1`, 1),
		"null":               strings.Replace(base, `"sub":"A"`, `"sub":null`, 1),
		"fraction":           strings.Replace(base, `9999999999`, `9999999999.0`, 1),
		"exponent":           strings.Replace(base, `9999999999`, `1e10`, 1),
		"leading zero":       strings.Replace(base, `9999999999`, `09999999999`, 1),
		"overflow":           strings.Replace(base, `9999999999`, `99999999999999999999`, 1),
		"negative uint":      strings.Replace(base, `"client_info":{}`, `"client_info":{"id":-1}`, 1),
		"version 1":          strings.Replace(base, `"version":2`, `"version":1`, 1),
		"version 3":          strings.Replace(base, `"version":2`, `"version":3`, 1),
		"no version":         strings.Replace(base, `,"version":2`, ``, 1),
		"other type":         strings.Replace(base, `"authorization_request"`, `"user"`, 1),
		"top-level type":     strings.Replace(base, `"sub":"A"`, `"sub":"A","type":"authorization_request"`, 1),
		"string for int":     strings.Replace(base, `9999999999`, `"9999999999"`, 1),
		"unterminated":       base[:len(base)-1],
		"control character":  strings.Replace(base, `"sub":"A"`, "\"sub\":\"A\x01\"", 1),
		"array":              `[` + base + `]`,
		"client_tls":         strings.Replace(base, `"version":2`, `"version":2,"client_tls":{"version":"1.3"}`, 1),
	}
	fast = map[string]string{
		"escaped key":  strings.Replace(base, `"sub":"A"`, `"\u0073ub":"A"`, 1),
		"escapes":      strings.Replace(base, `"sub":"A"`, `"sub":"\u00e9\"\\\/\b\f\n\r\t\ud83d\ude00\ud800"`, 1),
		"empty lists":  strings.Replace(base, `"version":2`, `"version":2,"tags":[]`, 1),
		"lists":        strings.Replace(base, `"client_info":{}`, `"client_info":{"tags":["a","b\u003c"]}`, 1),
		"empty object": strings.Replace(base, `"connect_opts":{"protocol":1}`, `"connect_opts":{}`, 1),
		"minus zero":   strings.Replace(base, `"protocol":1`, `"protocol":-0`, 1),
	}
	return base, slow, fast
}

func TestDecodeRequestOddJSON(t *testing.T) {
	server, _ := nkeys.CreateServer()
	spub, _ := server.PublicKey()
	base, slow, fast := oddRequests(spub, userKey(t))
	if !sameRequest(t, signedPayload(server, base)) {
		t.Fatal("the fast path refused the plain request")
	}
	for name, doc := range slow {
		t.Run(name, func(t *testing.T) {
			if sameRequest(t, signedPayload(server, doc)) {
				t.Fatal("the fast path took a request it must leave to the library")
			}
		})
	}
	for name, doc := range fast {
		t.Run(name, func(t *testing.T) {
			if !sameRequest(t, signedPayload(server, doc)) {
				t.Fatal("the fast path refused a request it reads")
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	server, _ := nkeys.CreateServer()
	spub, _ := server.PublicKey()
	for _, edit := range []func(*jwt.AuthorizationRequestClaims){nil, func(rc *jwt.AuthorizationRequestClaims) {
		rc.Tags, rc.Server.Tags, rc.ClientInformation.Tags = jwt.TagList{}, jwt.TagList{"a"}, jwt.TagList{"b", "c"}
		rc.ClientInformation.Name = "é\"<\\"
	}} {
		tok := serverRequest(f, server, edit)
		payload, _ := b64.DecodeString(strings.Split(tok, ".")[1])
		f.Add(string(payload))
	}
	base, slow, fast := oddRequests(spub, userKey(f))
	f.Add(base)
	for _, m := range []map[string]string{slow, fast} {
		for _, doc := range m {
			f.Add(doc)
		}
	}
	f.Fuzz(func(t *testing.T, doc string) {
		sameRequest(t, signedPayload(server, doc))
	})
}

// TestRealRequestsTakeFastPath: the requests a real NATS server sends, plain,
// encrypted and in operator mode, take the fast path and read as the library
// reads them.
func TestRealRequestsTakeFastPath(t *testing.T) {
	for _, c := range []struct {
		name     string
		operator bool
		xkey     bool
	}{{"centralized", false, false}, {"centralized with xkey", false, true}, {"operator with xkey", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			var r *rig
			if c.operator {
				r, _ = operatorRig(t, c.xkey)
			} else {
				keys := natstest.NewKeys()
				cfg := baseConfig(keys)
				xpub := ""
				if c.xkey {
					cfg.XKeySeed, xpub = keys.XKeySeed, keys.XKeyPub
				}
				r = startRig(t, natstest.Centralized(keys.IssuerPub, xpub), cfg)
			}
			opts, err := ConnectOptions(r.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			spy, err := nats.Connect(r.nats.URL, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer spy.Close()
			sub, err := spy.SubscribeSync(Subject)
			if err != nil {
				t.Fatal(err)
			}
			if err := spy.Flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.connect(token(t, secret, "alice", time.Hour, map[string]any{"rooms": []string{"rooms.eu"}})); err != nil {
				t.Fatalf("login: %v", err)
			}
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			data := m.Data
			if x := m.Header.Get(XKeyHeader); x != "" {
				if data, err = r.svc.keys.xkey.Open(data, x); err != nil {
					t.Fatal(err)
				}
			} else if c.xkey {
				t.Fatal("the request is not encrypted")
			}
			if !sameRequest(t, string(data)) {
				payload, _ := b64.DecodeString(strings.Split(string(data), ".")[1])
				t.Fatalf("the fast path refused a real request: %s", payload)
			}
			var doc map[string]any
			payload, _ := b64.DecodeString(strings.Split(string(data), ".")[1])
			if err := json.Unmarshal(payload, &doc); err != nil || doc["nats"] == nil {
				t.Fatalf("the request's payload: %s (%v)", payload, err)
			}
		})
	}
}

// FuzzStringOrList compares the claim reader of the permission templates
// with encoding/json.
func FuzzStringOrList(f *testing.F) {
	for _, s := range []string{`"a"`, `["a","b.>"]`, `[]`, `[ "a" , "b" ]`, `null`, `5`, `"\u00e9"`, `["a",1]`, `["a"`, `"a" `, `{}`, `[null]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var want []string
		var s string
		if json.Unmarshal([]byte(raw), &s) == nil && strings.HasPrefix(raw, `"`) {
			want = []string{s}
		} else if json.Unmarshal([]byte(raw), &want) != nil {
			want = nil
		}
		if got := stringOrList([]byte(raw)); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %#v, want %#v", raw, got, want)
		}
	})
}
