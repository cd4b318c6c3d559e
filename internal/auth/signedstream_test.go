package auth

import (
	"encoding/hex"
	"strings"
	"testing"
)

// The vectors come from an independent PBKDF2 and HMAC (Python's hashlib),
// with Rails' parameters: salt turbo/signed_stream_verifier_key, 1000
// iterations, 64 bytes.
func TestTurboKeyIsDerivedAsRailsDoes(t *testing.T) {
	for digest, want := range map[string]string{
		"sha256": "0db2fa719f622e3ce80910e7d1e74952d5382c95240ef4873d373603764f7efcb0105b4e60e901cf41eb8c1548590467704795907e511687197ce62257cfbb1d",
		"sha1":   "b67bf2298db11507620320e4b6d88c6c123f8a125133881ddc459092e7e65179a7d2d650fb78e2a52dd37204756c5143fdcb0731b8acce6fe710a82684ac7fd0",
	} {
		k, err := TurboKey("my-secret-key-base", digest)
		if err != nil || hex.EncodeToString(k) != want {
			t.Errorf("%s: %x %v", digest, k, err)
		}
	}
	if _, err := TurboKey("x", "md5"); err == nil {
		t.Error("md5 must be refused")
	}
	k, _ := TurboKey("my-secret-key-base", "sha256")
	signed := "IloybGtPaTh2WVhCd0wxSnZiMjB2TVE6bWVzc2FnZXMi--ef84948d9d8302b2ae39ac649163a85c976629fbc164844e62a747e9e2d9ff22"
	if name, r := VerifySignedStream(signed, k, "turbo"); r != nil || name != "Z2lkOi8vYXBwL1Jvb20vMQ:messages" {
		t.Fatalf("got %q %v", name, r)
	}
	if SignStream("Z2lkOi8vYXBwL1Jvb20vMQ:messages", k) != signed {
		t.Fatal("SignStream must write what Rails writes")
	}
}

func TestVerifySignedStreamNamesTheFailedCheck(t *testing.T) {
	key := []byte("stream-key")
	good := SignStream("chat/2023", key)
	if !strings.HasPrefix(good, "ImNoYXQvMjAyMyI=--") {
		t.Fatalf("payload %q", good)
	}
	// URL-safe base64 (the Ruby SDK's AnyCable::Streams.signed): "a>b" is ImE+YiI= in standard base64.
	urlSafe := "ImE-YiI="
	urlSigned := urlSafe + "--" + streamDigest(urlSafe, key)
	if name, r := VerifySignedStream(urlSigned, key, "k"); r != nil || name != "a>b" {
		t.Fatalf("URL-safe: %q %v", name, r)
	}
	notString := "eyJhIjoxfQ==" // {"a":1}
	cases := []struct {
		signed string
		code   Code
		detail string
	}{
		{"plain", SignedStreamMalformed, "format"},
		{strings.Replace(good, "--", "-+", 1), SignedStreamMalformed, "format"},
		{good[:len(good)-1] + "z", SignedStreamMalformed, "not hex"},
		{good[:len(good)-1] + flip(good[len(good)-1]), SignedStreamInvalid, "digest"},
		{"!!!!--" + streamDigest("!!!!", key), SignedStreamMalformed, "payload: not base64"},
		{notString + "--" + streamDigest(notString, key), SignedStreamMalformed, "got object"},
	}
	for _, c := range cases {
		_, r := VerifySignedStream(c.signed, key, "k")
		if r == nil || r.Code != c.code || !strings.Contains(r.Detail, c.detail) {
			t.Errorf("%q: got %v, want %s with %q", c.signed, r, c.code, c.detail)
		}
	}
	if _, r := VerifySignedStream(good, nil, "actioncable.streams.secret"); r == nil || r.Code != KeysNotConfigured || !strings.Contains(r.Hint, "actioncable.streams.secret") {
		t.Errorf("no key: %v", r)
	}
	if _, r := VerifySignedStream(good, []byte("other"), "k"); r == nil || r.KeyFingerprint != Fingerprint([]byte("other")) {
		t.Errorf("a digest mismatch names the key tried: %v", r)
	}
}

func flip(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

func TestUserOfIdentifiers(t *testing.T) {
	cases := []struct{ ids, key, want string }{
		{`{"user_id":"42"}`, "", "42"},
		{`{"user_id":42}`, "", "42"},
		{`{"current_user":"Z2lk","tenant":"a"}`, "", `{"current_user":"Z2lk","tenant":"a"}`},
		{`{"current_user":"Z2lk","tenant":"a"}`, "current_user", "Z2lk"},
		{`{"current_user":"Z2lk"}`, "missing", `{"current_user":"Z2lk"}`},
		{`not json`, "", "not json"},
		{`{"u":{"id":1}}`, "", `{"id":1}`},
	}
	for _, c := range cases {
		if got := UserOf(c.ids, c.key); got != c.want {
			t.Errorf("UserOf(%s, %q) = %q, want %q", c.ids, c.key, got, c.want)
		}
	}
}
