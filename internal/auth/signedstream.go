package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
)

// Signed stream names, as Rails' ActiveSupport::MessageVerifier writes them
// (Turbo's signed_stream_name, AnyCable's signed streams):
//
//	base64(JSON(stream name)) + "--" + hex(HMAC-SHA256(key, base64 part))
//
// The signature binds no expiry, purpose or user: whoever holds the signed
// name may follow the stream until the key changes.

// TurboSalt is the salt of Rails' key generator for Turbo's verifier key.
const TurboSalt = "turbo/signed_stream_verifier_key"

// signedDigestLen is the length of the hex HMAC-SHA256 digest.
const signedDigestLen = 2 * sha256.Size

// TurboKey derives Turbo's verifier key from an app's secret_key_base as
// Rails does (Rails.application.key_generator.generate_key(TurboSalt)):
// PBKDF2-HMAC with 1000 iterations and 64 bytes of output, with SHA-256
// (Rails 7.0+ defaults) or SHA-1 (key_generator_hash_digest_class of apps on
// older defaults).
func TurboKey(secretKeyBase, digest string) ([]byte, error) {
	var h func() hash.Hash
	switch digest {
	case "sha256", "":
		h = sha256.New
	case "sha1":
		h = sha1.New
	default:
		return nil, fmt.Errorf("unknown key digest %q (sha256 or sha1)", digest)
	}
	return pbkdf2.Key(h, secretKeyBase, []byte(TurboSalt), 1000, 64)
}

// SignStream signs a stream name as Rails' MessageVerifier does.
func SignStream(name string, key []byte) string {
	b, _ := json.Marshal(name)
	data := base64.StdEncoding.EncodeToString(b)
	return data + "--" + streamDigest(data, key)
}

func streamDigest(data string, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifySignedStream checks a signed stream name with key and returns the
// stream name. what names the key in reasons ("actioncable.streams.secret").
// Each failed check has its own detail: the format, the digest, the payload's
// base64 and the payload's JSON.
func VerifySignedStream(signed string, key []byte, what string) (string, *Reason) {
	malformed := func(format string, args ...any) (string, *Reason) {
		return "", &Reason{Code: SignedStreamMalformed, Detail: fmt.Sprintf(format, args...),
			Hint: "send the signed name exactly as the app generated it (turbo_stream_from / signed_stream_name, or AnyCable::Streams.signed)"}
	}
	if len(key) == 0 {
		return "", &Reason{Code: KeysNotConfigured, Detail: "a signed stream name was sent but no key verifies signed stream names",
			Hint: fmt.Sprintf("set %s to the key the app signs stream names with", what)}
	}
	if len(signed) > MaxIdentifiers {
		return malformed("signed stream name is %d bytes, limit %d", len(signed), MaxIdentifiers)
	}
	n := len(signed) - signedDigestLen - 2
	if n < 1 || signed[n:n+2] != "--" {
		return malformed("format: not <base64 payload>--<64 hex digits of HMAC-SHA256>")
	}
	data, digest := signed[:n], signed[n+2:]
	got, err := hex.DecodeString(digest)
	if err != nil {
		return malformed("format: the digest after -- is not hex")
	}
	want, _ := hex.DecodeString(streamDigest(data, key))
	if !hmac.Equal(got, want) {
		fp := Fingerprint(key)
		return "", &Reason{Code: SignedStreamInvalid, KeyFingerprint: fp,
			Detail: fmt.Sprintf("digest: the HMAC-SHA256 does not match key %s (%s)", fp, what),
			Hint:   "the app signed the name with another key: compare key fingerprints (printf %s \"$KEY\" | sha256sum | cut -c1-8); Turbo signs with config.turbo.signed_stream_verifier_key, else a key derived from secret_key_base (actioncable.turbo.secret_key_base)"}
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		// Some signers use the URL-safe alphabet; the digest covers the text
		// as sent, so either decoding is as trustworthy.
		if raw, err = base64.URLEncoding.DecodeString(data); err != nil {
			return malformed("payload: not base64 (standard or URL-safe)")
		}
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		kind := "invalid JSON"
		if json.Valid(raw) {
			kind = jsonKind(raw)
		}
		return malformed("payload: must be a JSON string (the stream name), got %s", kind)
	}
	if name == "" || strings.ContainsAny(name, "\r\n") {
		return malformed("payload: the stream name is empty or has a line break")
	}
	return name, nil
}
