package callout

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/metrics"
)

// Audience is the aud of Herald's requests.
const Audience = "herald-callout"

// maxBody bounds the backend's answer.
const maxBody = 64 << 10

// Config configures a Caller.
type Config struct {
	Endpoint      string
	Timeout       time.Duration // default 1s
	NodeID        string        // the iss of requests and the aud answers must carry
	SigningSecret []byte        // HS256 secret Herald signs requests with
	ResponseKeys  *auth.KeySet  // keys the backend's answers must verify with
	IncludeTokens bool          // put the tokens found in the request
	Headers       []string      // upgrade-request headers to include
	Leeway        time.Duration
	Client        *http.Client
	Metrics       *metrics.Metrics // counts callouts by outcome and times them; may be nil
}

// Request is a connection attempt to authorize.
type Request struct {
	RemoteAddr string
	Transport  string
	Protocol   string
	Tokens     []auth.Candidate
	Header     http.Header
}

// Grants are the channel grants of an answer (glob patterns per operation).
type Grants = auth.Grants

// Result is an authorized connection.
type Result struct {
	User           string
	Info, Meta     json.RawMessage
	Grants         Grants
	MaxConnections int
	ExpireAt       time.Time // connection expiry (expire_at claim), zero = none
	validUntil     time.Time // the answer's exp: cache bound
}

// Caller performs callouts.
type Caller struct {
	cfg   Config
	mu    sync.Mutex
	cache map[[32]byte]*Result
}

// New returns a caller.
func New(c Config) (*Caller, error) {
	if !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		return nil, fmt.Errorf("callout endpoint %q must be an http:// or https:// URL", c.Endpoint)
	}
	if len(c.SigningSecret) == 0 {
		return nil, errors.New("callout needs a signing secret for its requests")
	}
	if c.ResponseKeys.Empty() {
		return nil, errors.New("callout needs the key(s) the backend signs its answers with")
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Caller{cfg: c, cache: map[[32]byte]*Result{}}, nil
}

func reason(code auth.Code, hint, format string, args ...any) *auth.Reason {
	return &auth.Reason{Code: code, Detail: auth.Truncate(fmt.Sprintf(format, args...), 200), Hint: hint}
}

// AuthorizeConnect implements auth.ConnectAuthority: the callout decides
// every connection alone, failing closed.
func (c *Caller) AuthorizeConnect(ctx context.Context, req *auth.ConnectRequest, _ *auth.Identity) (*auth.Identity, *auth.Reason) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, reason := c.Authorize(ctx, &Request{RemoteAddr: req.RemoteAddr, Transport: req.Transport, Protocol: req.Protocol,
		Tokens: req.Tokens, Header: req.Headers})
	if reason != nil {
		return nil, reason
	}
	g := res.Grants
	return &auth.Identity{User: res.User, Info: auth.CompactJSON(res.Info), Meta: auth.CompactJSON(res.Meta), ExpireAt: res.ExpireAt, Source: "callout",
		Grants: &g, MaxConnections: res.MaxConnections}, nil
}

// Authorize asks the backend about a connection attempt.
func (c *Caller) Authorize(ctx context.Context, req *Request) (_ *Result, refused *auth.Reason) {
	called := false
	defer func(start time.Time) {
		outcome := "ok"
		switch {
		case refused != nil:
			outcome = string(refused.Code)
		case !called:
			outcome = "cached"
		}
		c.cfg.Metrics.CalloutCall(outcome, time.Since(start), called)
	}(time.Now())
	key := cacheKey(req.Tokens)
	now := time.Now()
	if key != nil {
		c.mu.Lock()
		r := c.cache[*key]
		c.mu.Unlock()
		if r != nil && now.Before(r.validUntil) {
			return r, nil
		}
	}
	nonceBytes := make([]byte, 16)
	_, _ = rand.Read(nonceBytes)
	nonce := hex.EncodeToString(nonceBytes)
	claims := jwt.MapClaims{
		"iss": c.cfg.NodeID, "aud": Audience, "iat": now.Unix(), "exp": now.Add(c.cfg.Timeout + 30*time.Second).Unix(),
		"nonce": nonce, "client_addr": req.RemoteAddr, "transport": req.Transport, "protocol": req.Protocol,
	}
	var sources []string
	tokens := map[string]string{}
	for _, t := range req.Tokens {
		if t.Token == "" || t.Disabled {
			continue
		}
		sources = append(sources, string(t.Source))
		if c.cfg.IncludeTokens {
			tokens[string(t.Source)] = t.Token
		}
	}
	claims["token_sources"] = sources
	if c.cfg.IncludeTokens {
		claims["tokens"] = tokens
	}
	if len(c.cfg.Headers) > 0 {
		hdr := map[string]string{}
		for _, h := range c.cfg.Headers {
			if v := req.Header.Get(h); v != "" {
				hdr[http.CanonicalHeaderKey(h)] = v
			}
		}
		claims["headers"] = hdr
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.cfg.SigningSecret)
	if err != nil {
		return nil, reason(auth.CalloutUnavailable, "", "signing the callout request: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.Endpoint, strings.NewReader(signed))
	if err != nil {
		return nil, reason(auth.CalloutUnavailable, "", "callout request: %v", err)
	}
	hreq.Header.Set("Content-Type", "application/jwt")
	called = true
	resp, err := c.cfg.Client.Do(hreq)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Timeout") {
			return nil, reason(auth.CalloutUnavailable, "make the callout service answer within the timeout",
				"callout %s did not answer within %s", c.cfg.Endpoint, c.cfg.Timeout)
		}
		return nil, reason(auth.CalloutUnavailable, "check that Herald can reach the callout service",
			"callout %s unreachable: %v", c.cfg.Endpoint, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if resp.StatusCode/100 != 2 {
		return nil, reason(auth.CalloutUnavailable, "the callout service must answer 200 with a signed JWT",
			"callout answered %s", resp.Status)
	}
	if len(body) > maxBody {
		return nil, reason(auth.CalloutBadResponse, "", "callout answer is larger than %d bytes", maxBody)
	}
	res, r := c.verify(strings.TrimSpace(string(bytes.TrimSpace(body))), nonce, now)
	if r != nil {
		return nil, r
	}
	if key != nil {
		c.mu.Lock()
		if len(c.cache) > 10000 {
			c.cache = map[[32]byte]*Result{}
		}
		c.cache[*key] = res
		c.mu.Unlock()
	}
	return res, nil
}

// cacheKey identifies the tokens of a request; nil when there are none
// (such attempts are never cached).
func cacheKey(tokens []auth.Candidate) *[32]byte {
	h := sha256.New()
	n := 0
	for _, t := range tokens {
		if t.Token != "" && !t.Disabled {
			fmt.Fprintf(h, "%s\x00%s\x00", t.Source, t.Token)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return &k
}

// answer is the backend's signed answer.
type answer struct {
	jwt.RegisteredClaims
	Nonce          string          `json:"nonce"`
	User           *string         `json:"user"`
	Info           json.RawMessage `json:"info"`
	Meta           json.RawMessage `json:"meta"`
	Grants         Grants          `json:"grants"`
	MaxConnections int             `json:"max_connections"`
	ExpireAt       int64           `json:"expire_at"`
	Deny           string          `json:"deny"`
}

func (c *Caller) verify(tok, nonce string, now time.Time) (*Result, *auth.Reason) {
	if strings.Count(tok, ".") != 2 {
		return nil, reason(auth.CalloutUnsigned, "answer with a JWT signed by the callout's key",
			"callout answer is not a signed JWT (%d bytes, starts %q)", len(tok), auth.Truncate(tok, 16))
	}
	var a answer
	var keyErr *auth.Reason
	_, err := jwt.ParseWithClaims(tok, &a, func(t *jwt.Token) (any, error) {
		alg, _ := t.Header["alg"].(string)
		kid, _ := t.Header["kid"].(string)
		keys, r := c.cfg.ResponseKeys.Lookup(alg, kid, now)
		if r != nil {
			keyErr = r
			return nil, errors.New(string(r.Code))
		}
		set := jwt.VerificationKeySet{}
		for _, k := range keys {
			set.Keys = append(set.Keys, k.Material)
		}
		return set, nil
	}, jwt.WithAudience(c.cfg.NodeID), jwt.WithExpirationRequired(), jwt.WithLeeway(c.cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }))
	switch {
	case keyErr != nil && (keyErr.Code == auth.AlgNotAllowed):
		return nil, reason(auth.CalloutUnsigned, "sign answers with the configured key's algorithm", "callout answer: %s", keyErr.Detail)
	case keyErr != nil:
		return nil, reason(auth.CalloutBadSignature, "sign answers with the configured key", "callout answer: %s", keyErr.Detail)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, reason(auth.CalloutBadSignature, "sign answers with the key configured in client.callout.response_keys",
			"callout answer is signed by another key")
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return nil, reason(auth.CalloutExpired, "answers need a short exp in the future", "callout answer is expired or has no exp")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, reason(auth.CalloutWrongAudience, "set aud to the iss of Herald's request (its node id)",
			"callout answer is for another node (aud %v, this node %s)", a.Audience, c.cfg.NodeID)
	case err != nil:
		return nil, reason(auth.CalloutBadResponse, "", "callout answer: %v", err)
	}
	if a.Nonce != nonce {
		return nil, reason(auth.CalloutReplay, "echo the nonce of the request in the answer",
			"callout answer carries another nonce (a replayed or stale answer)")
	}
	if a.Deny != "" {
		return nil, reason(auth.CalloutDenied, "", "callout denied: %s", auth.Truncate(a.Deny, 100))
	}
	if auth.InvalidUTF8At(a.Info) >= 0 || auth.InvalidUTF8At(a.Meta) >= 0 {
		return nil, reason(auth.CalloutBadResponse, "encode info and meta in UTF-8", "callout answer: info or meta is not valid UTF-8")
	}
	if a.User == nil {
		return nil, reason(auth.CalloutBadResponse, "", "callout answer has no user claim (use \"\" for anonymous)")
	}
	res := &Result{User: *a.User, Info: a.Info, Meta: a.Meta, Grants: a.Grants, MaxConnections: a.MaxConnections}
	if a.ExpireAt > 0 {
		res.ExpireAt = time.Unix(a.ExpireAt, 0)
	}
	if a.ExpiresAt != nil {
		res.validUntil = a.ExpiresAt.Time
	}
	return res, nil
}
