package natscallout

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"strconv"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Hand-written decoding of the authorization request, for the same reason as
// the encoding in jwtenc.go: nats-io/jwt reads the request with
// reflection-based encoding/json, twice (once for its type, once whole):
// 16 of those 58 µs.
// decodeRequest reads the requests NATS servers send (no white space, every
// key once and spelled as nats-io/jwt spells it, strings without escapes,
// integers) and checks the signature exactly as the library does; anything
// else, and every request that does not verify, goes to the library, which
// decides and words the error. What the fast path accepts equals what the
// library returns for the same token (TestDecodeRequestMatchesLibrary,
// FuzzDecodeRequest, TestRealRequestsTakeFastPath).

// decodeRequest is jwt.DecodeAuthorizationRequestClaims of the message's data.
func decodeRequest(token []byte) (*jwt.AuthorizationRequestClaims, error) {
	if rc := fastRequest(token); rc != nil {
		return rc, nil
	}
	return jwt.DecodeAuthorizationRequestClaims(string(token))
}

// fastRequest decodes and verifies a request as the library does, or returns
// nil when the library must.
func fastRequest(token []byte) *jwt.AuthorizationRequestClaims {
	if len(token) > jwt.MaxTokenSize || len(token) <= len(jwtHeader) || string(token[:len(jwtHeader)]) != jwtHeader ||
		token[len(jwtHeader)] != '.' {
		return nil
	}
	rest := token[len(jwtHeader)+1:]
	dot := bytes.IndexByte(rest, '.')
	if dot < 0 || bytes.IndexByte(rest[dot+1:], '.') >= 0 {
		return nil
	}
	payload := make([]byte, b64.DecodedLen(dot))
	n, err := b64.Decode(payload, rest[:dot])
	if err != nil {
		return nil
	}
	p := reqParser{s: string(payload[:n])}
	rc := p.request()
	if rc == nil {
		return nil
	}
	var sig [ed25519.SignatureSize]byte
	if enc := rest[dot+1:]; len(enc) != b64.EncodedLen(len(sig)) {
		return nil
	} else if n, err = b64.Decode(sig[:], enc); err != nil || n != len(sig) {
		return nil
	}
	// The library verifies with the key of the claims' issuer, which must be
	// a server key (the first base32 character of a valid server key is N).
	kp, err := nkeys.FromPublicKey(rc.Issuer)
	if err != nil || rc.Issuer[0] != 'N' || kp.Verify(token[:len(jwtHeader)+1+dot], sig[:n]) != nil {
		return nil
	}
	return rc
}

// reqParser reads the JSON of a request into jwt.AuthorizationRequestClaims,
// exactly as encoding/json would, or gives up (bad).
type reqParser struct {
	s   string
	i   int
	bad bool
}

func (p *reqParser) fail() { p.bad, p.i = true, len(p.s) }

// next consumes c, or fails.
func (p *reqParser) next(c byte) {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return
	}
	p.fail()
}

func (p *reqParser) peek(c byte) bool { return p.i < len(p.s) && p.s[p.i] == c }

// object reads an object, calling field for each key; field reads the value.
// A key seen twice, which encoding/json would merge or overwrite, fails:
// seen records the keys by the bit field returns for them.
func (p *reqParser) object(field func(key string) uint32) {
	p.next('{')
	if p.peek('}') {
		p.i++
		return
	}
	var seen uint32
	for !p.bad {
		k := p.str()
		p.next(':')
		if p.bad {
			return
		}
		bit := field(k)
		if bit == 0 || seen&bit != 0 {
			p.fail()
			return
		}
		seen |= bit
		if p.peek(',') {
			p.i++
			continue
		}
		p.next('}')
		return
	}
}

// str reads a string. One with escapes, control or non-ASCII characters is
// read by encoding/json, so that it reads exactly as the library reads it.
func (p *reqParser) str() string {
	if !p.peek('"') {
		p.fail()
		return ""
	}
	start := p.i + 1
	for j := start; j < len(p.s); j++ {
		switch c := p.s[j]; {
		case c == '"':
			p.i = j + 1
			return p.s[start:j]
		case c == '\\' || c < 0x20 || c >= 0x80:
			return p.slowStr()
		}
	}
	p.fail()
	return ""
}

func (p *reqParser) slowStr() string {
	for j := p.i + 1; j < len(p.s); j++ {
		switch p.s[j] {
		case '\\':
			j++
		case '"':
			var v string
			if json.Unmarshal([]byte(p.s[p.i:j+1]), &v) != nil {
				p.fail()
				return ""
			}
			p.i = j + 1
			return v
		}
	}
	p.fail()
	return ""
}

// number reads an integer literal as JSON writes it (no fraction, exponent
// or leading zero; encoding/json refuses the first two for an integer field,
// and the third is not JSON).
func (p *reqParser) number() string {
	start, j := p.i, p.i
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	switch {
	case j < len(p.s) && p.s[j] == '0':
		j++
	case j < len(p.s) && p.s[j] >= '1' && p.s[j] <= '9':
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
	default:
		p.fail()
		return ""
	}
	if j < len(p.s) && (p.s[j] == '.' || p.s[j] == 'e' || p.s[j] == 'E') {
		p.fail()
		return ""
	}
	p.i = j
	return p.s[start:j]
}

// int reads an integer of bits bits, as encoding/json does (strconv).
func (p *reqParser) int(bits int) int64 {
	v, err := strconv.ParseInt(p.number(), 10, bits)
	if err != nil {
		p.fail()
	}
	return v
}

func (p *reqParser) uint() uint64 {
	v, err := strconv.ParseUint(p.number(), 10, 64)
	if err != nil {
		p.fail()
	}
	return v
}

// list reads an array of strings ([] is an empty list, as encoding/json
// makes it, not nil).
func (p *reqParser) list() []string {
	p.next('[')
	out := []string{}
	if p.peek(']') {
		p.i++
		return out
	}
	for !p.bad {
		out = append(out, p.str())
		if p.peek(',') {
			p.i++
			continue
		}
		p.next(']')
		break
	}
	return out
}

// request reads the whole request, or returns nil.
func (p *reqParser) request() *jwt.AuthorizationRequestClaims {
	rc := &jwt.AuthorizationRequestClaims{}
	c, r := &rc.ClaimsData, &rc.AuthorizationRequest
	p.object(func(k string) uint32 {
		switch k {
		case "aud":
			c.Audience = p.str()
			return 1 << 0
		case "exp":
			c.Expires = p.int(64)
			return 1 << 1
		case "jti":
			c.ID = p.str()
			return 1 << 2
		case "iat":
			c.IssuedAt = p.int(64)
			return 1 << 3
		case "iss":
			c.Issuer = p.str()
			return 1 << 4
		case "name":
			c.Name = p.str()
			return 1 << 5
		case "nbf":
			c.NotBefore = p.int(64)
			return 1 << 6
		case "sub":
			c.Subject = p.str()
			return 1 << 7
		case "nats":
			p.nats(r)
			return 1 << 8
		}
		return 0
	})
	// The library reads the claims by their type, and verifies version 1
	// claims differently: only version 2 requests take this path.
	if p.bad || p.i != len(p.s) || r.Type != jwt.AuthorizationRequestClaim || r.Version != 2 || c.Issuer == "" {
		return nil
	}
	return rc
}

func (p *reqParser) nats(r *jwt.AuthorizationRequest) {
	p.object(func(k string) uint32 {
		switch k {
		case "server_id":
			p.server(&r.Server)
			return 1 << 0
		case "user_nkey":
			r.UserNkey = p.str()
			return 1 << 1
		case "client_info":
			p.client(&r.ClientInformation)
			return 1 << 2
		case "connect_opts":
			p.connect(&r.ConnectOptions)
			return 1 << 3
		case "request_nonce":
			r.RequestNonce = p.str()
			return 1 << 4
		case "tags":
			r.Tags = p.list()
			return 1 << 5
		case "type":
			r.Type = jwt.ClaimType(p.str())
			return 1 << 6
		case "version":
			r.Version = int(p.int(strconv.IntSize))
			return 1 << 7
		}
		// client_tls (certificate chains) is left to the library.
		return 0
	})
}

func (p *reqParser) server(s *jwt.ServerID) {
	p.object(func(k string) uint32 {
		switch k {
		case "name":
			s.Name = p.str()
			return 1 << 0
		case "host":
			s.Host = p.str()
			return 1 << 1
		case "id":
			s.ID = p.str()
			return 1 << 2
		case "version":
			s.Version = p.str()
			return 1 << 3
		case "cluster":
			s.Cluster = p.str()
			return 1 << 4
		case "tags":
			s.Tags = p.list()
			return 1 << 5
		case "xkey":
			s.XKey = p.str()
			return 1 << 6
		}
		return 0
	})
}

func (p *reqParser) client(c *jwt.ClientInformation) {
	p.object(func(k string) uint32 {
		switch k {
		case "host":
			c.Host = p.str()
			return 1 << 0
		case "id":
			c.ID = p.uint()
			return 1 << 1
		case "user":
			c.User = p.str()
			return 1 << 2
		case "name":
			c.Name = p.str()
			return 1 << 3
		case "tags":
			c.Tags = p.list()
			return 1 << 4
		case "name_tag":
			c.NameTag = p.str()
			return 1 << 5
		case "kind":
			c.Kind = p.str()
			return 1 << 6
		case "type":
			c.Type = p.str()
			return 1 << 7
		case "mqtt_id":
			c.MQTT = p.str()
			return 1 << 8
		case "nonce":
			c.Nonce = p.str()
			return 1 << 9
		}
		return 0
	})
}

func (p *reqParser) connect(o *jwt.ConnectOptions) {
	p.object(func(k string) uint32 {
		switch k {
		case "jwt":
			o.JWT = p.str()
			return 1 << 0
		case "nkey":
			o.Nkey = p.str()
			return 1 << 1
		case "sig":
			o.SignedNonce = p.str()
			return 1 << 2
		case "auth_token":
			o.Token = p.str()
			return 1 << 3
		case "user":
			o.Username = p.str()
			return 1 << 4
		case "pass":
			o.Password = p.str()
			return 1 << 5
		case "name":
			o.Name = p.str()
			return 1 << 6
		case "lang":
			o.Lang = p.str()
			return 1 << 7
		case "version":
			o.Version = p.str()
			return 1 << 8
		case "protocol":
			o.Protocol = int(p.int(strconv.IntSize))
			return 1 << 9
		}
		return 0
	})
}

// stringOrList reads a claim that is a string or an array of strings, as
// encoding/json reads it into a string or a []string; nil if it is neither.
func stringOrList(raw []byte) []string {
	p := reqParser{s: string(raw)}
	var out []string
	if p.peek('"') {
		out = []string{p.str()}
	} else {
		out = p.list()
	}
	if !p.bad && p.i == len(p.s) {
		return out
	}
	// White space, or not a string or list: encoding/json decides.
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return []string{s}
		}
	} else if out = nil; json.Unmarshal(raw, &out) == nil && out != nil {
		return out
	}
	return nil
}
