package natscallout

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Hand-written encoding of the two JWTs Herald signs per login: the user JWT
// and the authorization response. nats-io/jwt encodes them with
// reflection-based encoding/json, twice per JWT (once for the jti hash, once
// for the payload), and joins the parts with fmt: 24 of the 58 µs that Herald
// spent per login besides the three ed25519 operations (120 µs), against a
// target of 200 µs per login (bench/README.md, NATS auth callout). No library
// encodes these claims faster, so Herald writes the same bytes itself: for the
// same claims and iat the output is byte for byte what nats-io/jwt writes, jti
// and signature included (TestEncodeMatchesLibrary, FuzzEncodeUser,
// FuzzEncodeResponse), so NATS and every tool read it as they read the
// library's. Claims the fast path cannot take (a signer that is not an account
// key, a subject that is not a user key) go through the library, which
// refuses them with its own error.

// jwtHeader is the header of every JWT that nats-io/jwt v2 writes,
// {"typ":"JWT","alg":"ed25519-nkey"}, in base64url.
const jwtHeader = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ"

var (
	b64 = base64.RawURLEncoding
	// b32 encodes the jti as nats-io/jwt does.
	b32 = base32.StdEncoding.WithPadding(base32.NoPadding)
	// jsonBufs are scratch buffers for the claims' JSON.
	jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
)

// encodeUser is (*jwt.UserClaims).Encode with k, at iat (Unix seconds).
func encodeUser(uc *jwt.UserClaims, k *signer, iat int64) (string, error) {
	if !k.account || !nkeys.IsValidPublicUserKey(uc.Subject) {
		return uc.Encode(k.kp)
	}
	uc.Type = jwt.UserClaim
	uc.Version = 2
	return string(signClaims(&uc.ClaimsData, k, iat, func(e *jsonEnc) { e.user(&uc.User) })), nil
}

// encodeResponse is (*jwt.AuthorizationResponseClaims).Encode with k, at iat.
func encodeResponse(rc *jwt.AuthorizationResponseClaims, k *signer, iat int64) ([]byte, error) {
	if !k.account || rc.Subject == "" {
		s, err := rc.Encode(k.kp)
		return []byte(s), err
	}
	rc.Type = jwt.AuthorizationResponseClaim
	rc.Version = 2
	return signClaims(&rc.ClaimsData, k, iat, func(e *jsonEnc) { e.response(&rc.AuthorizationResponse) }), nil
}

// signClaims sets iss, iat and jti as nats-io/jwt does when it encodes, and
// returns the signed JWT whose payload is c followed by what nats writes.
func signClaims(c *jwt.ClaimsData, k *signer, iat int64, nats func(*jsonEnc)) []byte {
	buf := jsonBufs.Get().(*[]byte)
	defer jsonBufs.Put(buf)
	e := jsonEnc{b: (*buf)[:0]}
	c.Issuer, c.IssuedAt, c.ID = k.pub, iat, ""
	// The jti is the hash of the standard claims without it.
	e.open()
	e.claims(c)
	e.close()
	sum := sha512.Sum512_256(e.b)
	c.ID = b32.EncodeToString(sum[:])

	e.b = e.b[:0]
	e.open()
	e.claims(c)
	e.key("nats")
	nats(&e)
	e.close()
	*buf = e.b

	out := make([]byte, 0, len(jwtHeader)+2+b64.EncodedLen(len(e.b))+b64.EncodedLen(ed25519.SignatureSize))
	out = append(out, jwtHeader...)
	out = append(out, '.')
	out = b64.AppendEncode(out, e.b)
	sig := ed25519.Sign(k.priv, out)
	out = append(out, '.')
	return b64.AppendEncode(out, sig)
}

// jsonEnc writes JSON as encoding/json writes the claims structs: fields in
// declaration order, omitempty fields left out when empty.
type jsonEnc struct {
	b     []byte
	comma bool // a value was written: the next key needs a comma
}

func (e *jsonEnc) open() { e.b, e.comma = append(e.b, '{'), false }

func (e *jsonEnc) close() { e.b, e.comma = append(e.b, '}'), true }

func (e *jsonEnc) key(k string) {
	if e.comma {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
	e.comma = false
}

// str writes a string field with omitempty.
func (e *jsonEnc) str(k, v string) {
	if v != "" {
		e.key(k)
		e.b = appendJSONString(e.b, v)
		e.comma = true
	}
}

// int writes an integer field with omitempty.
func (e *jsonEnc) int(k string, v int64) {
	if v != 0 {
		e.key(k)
		e.b = strconv.AppendInt(e.b, v, 10)
		e.comma = true
	}
}

func (e *jsonEnc) bool(k string, v bool) {
	if v {
		e.key(k)
		e.b = append(e.b, "true"...)
		e.comma = true
	}
}

// list writes a list of strings with omitempty.
func (e *jsonEnc) list(k string, v []string) {
	if len(v) == 0 {
		return
	}
	e.key(k)
	e.b = append(e.b, '[')
	for i, s := range v {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = appendJSONString(e.b, s)
	}
	e.b = append(e.b, ']')
	e.comma = true
}

// claims writes the fields of jwt.ClaimsData.
func (e *jsonEnc) claims(c *jwt.ClaimsData) {
	e.str("aud", c.Audience)
	e.int("exp", c.Expires)
	e.str("jti", c.ID)
	e.int("iat", c.IssuedAt)
	e.str("iss", c.Issuer)
	e.str("name", c.Name)
	e.int("nbf", c.NotBefore)
	e.str("sub", c.Subject)
}

func (e *jsonEnc) generic(g *jwt.GenericFields) {
	e.list("tags", g.Tags)
	e.str("type", string(g.Type))
	e.int("version", int64(g.Version))
}

// permission writes a jwt.Permission: a struct, so present even when empty.
func (e *jsonEnc) permission(k string, p *jwt.Permission) {
	e.key(k)
	e.open()
	e.list("allow", p.Allow)
	e.list("deny", p.Deny)
	e.close()
}

// user writes jwt.User, the "nats" object of a user JWT.
func (e *jsonEnc) user(u *jwt.User) {
	e.open()
	e.permission("pub", &u.Pub)
	e.permission("sub", &u.Sub)
	if r := u.Resp; r != nil {
		e.key("resp")
		e.b = append(e.b, `{"max":`...)
		e.b = strconv.AppendInt(e.b, int64(r.MaxMsgs), 10)
		e.b = append(e.b, `,"ttl":`...)
		e.b = strconv.AppendInt(e.b, int64(r.Expires), 10)
		e.b = append(e.b, '}')
		e.comma = true
	}
	e.list("src", u.Src)
	if len(u.Times) > 0 {
		e.key("times")
		e.b = append(e.b, '[')
		for i, t := range u.Times {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.open()
			e.str("start", t.Start)
			e.str("end", t.End)
			e.close()
		}
		e.b = append(e.b, ']')
		e.comma = true
	}
	e.str("times_location", u.Locale)
	e.int("subs", u.Subs)
	e.int("data", u.Data)
	e.int("payload", u.Payload)
	e.bool("bearer_token", u.BearerToken)
	e.bool("proxy_required", u.ProxyRequired)
	e.list("allowed_connection_types", u.AllowedConnectionTypes)
	e.str("issuer_account", u.IssuerAccount)
	e.generic(&u.GenericFields)
	e.close()
}

// response writes jwt.AuthorizationResponse, the "nats" object of an
// authorization response.
func (e *jsonEnc) response(r *jwt.AuthorizationResponse) {
	e.open()
	e.str("jwt", r.Jwt)
	e.str("error", r.Error)
	e.str("issuer_account", r.IssuerAccount)
	e.generic(&r.GenericFields)
	e.close()
}

// appendJSONString appends s quoted as encoding/json quotes it (HTML
// characters escaped). Keys, subjects, account names and JWTs are printable
// ASCII and take the loop; anything else (quotes, control characters,
// non-ASCII) is quoted by encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	mark := len(b)
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			continue
		}
		var esc string
		switch c {
		case '<':
			esc = `\u003c`
		case '>':
			esc = `\u003e`
		case '&':
			esc = `\u0026`
		default:
			q, _ := json.Marshal(s)
			return append(b[:mark], q...)
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
