package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/config"
)

// keyWatchInterval is how often key files are checked for changes.
var keyWatchInterval = 2 * time.Second

// BuildPolicy turns configuration into the auth engine's policy.
func BuildPolicy(cfg *config.Config) auth.Policy {
	p := auth.Policy{
		AllowAnonymous:          cfg.Dev || cfg.Client.AllowAnonymousConnectWithoutToken,
		DisallowAnonymousTokens: cfg.Client.DisallowAnonymousConnectionTokens,
		Rules:                   rules(&cfg.Client.Token, cfg.Client.ConnectionInfoMaxSize),
	}
	p.Rules.Setting = "client.token"
	if st := &cfg.Client.SubscriptionToken; st.Enabled {
		r := rules(&st.Token, cfg.Client.ConnectionInfoMaxSize)
		r.Setting = "client.subscription_token"
		p.Subscription = &r
	}
	return p
}

func rules(t *config.Token, infoMax int) auth.Rules {
	return auth.Rules{
		Leeway: t.Leeway.D(), MaxLifetime: t.MaxLifetime.D(),
		Audience: t.Audience, Issuer: t.Issuer,
		UserClaim: t.UserClaim, InfoClaim: t.InfoClaim, MetaClaim: t.MetaClaim,
		InfoMaxSize: infoMax,
		RequireExp:  t.RequireExp, MaxLifetimeWithoutExp: t.MaxLifetimeWithoutExp.D(),
	}
}

// BuildSources turns configuration into the token sources.
func BuildSources(cfg *config.Config) *auth.Sources {
	s := &auth.Sources{Cookie: cfg.Client.TokenCookie, QueryParam: cfg.Client.TokenQueryParam}
	for _, name := range cfg.Client.TokenSources {
		if src, ok := auth.ParseSource(name); ok {
			s.Enabled = append(s.Enabled, src)
		}
	}
	// When the connect proxy forwards Authorization, that header carries the
	// app's own credentials for the backend, not a token for Herald.
	if cp := &cfg.Client.Proxy.Connect; cp.Enabled {
		for _, h := range cp.HTTPHeaders {
			if strings.EqualFold(h, "Authorization") {
				s.NoHeader = true
				enabled := s.Enabled[:0]
				for _, src := range s.Enabled {
					if src != auth.SourceHeader {
						enabled = append(enabled, src)
					}
				}
				s.Enabled = enabled
			}
		}
	}
	if s.Allows(auth.SourceTicket) {
		s.Tickets = auth.NewTickets(cfg.Client.TicketTTL.D(), 100000)
	}
	return s
}

// keySpecs splits the configured keys of one token kind into static specs
// and JWKS endpoints.
func keySpecs(t *config.Token) (static []auth.KeySpec, jwks []config.Key) {
	return splitKeys(t.Keys)
}

// splitKeys splits configured keys into static specs and JWKS endpoints.
func splitKeys(keys []config.Key) (static []auth.KeySpec, jwks []config.Key) {
	for _, k := range keys {
		if k.JWKSURL != "" {
			jwks = append(jwks, k)
			continue
		}
		ks := auth.KeySpec{Kid: k.Kid, Alg: k.Alg, Secret: k.Secret, Value: k.Value, Env: k.Env, File: k.File}
		if k.ValidUntil > 0 {
			ks.ValidUntil = time.Unix(k.ValidUntil, 0)
		}
		static = append(static, ks)
	}
	return static, jwks
}

// keyFiles lists the key files of a token configuration, for the watcher.
func keyFiles(t *config.Token) []string {
	var out []string
	for _, k := range t.Keys {
		if k.File != "" {
			out = append(out, k.File)
		}
	}
	return out
}

// NewVerifier builds the auth engine of cfg on its own (for the CLI tools);
// stop ends its JWKS providers.
func NewVerifier(cfg *config.Config, log *slog.Logger) (*auth.Verifier, func(), error) {
	v := auth.NewVerifier(auth.NewKeySet(), BuildPolicy(cfg))
	m := &keyManager{verifier: v, log: log}
	if err := m.apply(cfg); err != nil {
		return nil, nil, err
	}
	return v, m.stop, nil
}

// keyManager builds key sets from configuration, keeps the JWKS providers
// running, and swaps the verifier's sets on reload.
type keyManager struct {
	mu       sync.Mutex
	verifier *auth.Verifier
	log      *slog.Logger
	cancel   context.CancelFunc   // stops the current JWKS providers
	onFetch  func(outcome string) // counts JWKS fetches; may be nil
}

// jwksBase returns the options every JWKS provider of the manager starts
// from: its logger, forgetting cached verifications when keys change, and
// counting fetches.
func (m *keyManager) jwksBase() auth.JWKSOptions {
	return auth.JWKSOptions{Logger: m.log, OnChange: m.verifier.ForgetVerified, OnFetch: m.onFetch}
}

// buildSet builds a key set: the HMAC secrets of hmac_secret_key and
// hmac_previous_secret_key (which verify the whole HS256/384/512 family, as
// Centrifugo's do), the keys of keys (each pinned to its alg), and the JWKS
// providers, started with ctx.
func buildSet(ctx context.Context, t *config.Token, base auth.JWKSOptions) (*auth.KeySet, error) {
	var keys []*auth.Key
	if t.HMACSecretKey != "" {
		k, err := auth.NewHMACKey(t.HMACSecretKey)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if t.HMACPreviousSecretKey != "" {
		k, err := auth.NewHMACKey(t.HMACPreviousSecretKey)
		if err != nil {
			return nil, err
		}
		k.Origin = "hmac_previous_secret_key"
		if t.HMACPreviousSecretKeyValidUntil > 0 {
			k.NotAfter = time.Unix(t.HMACPreviousSecretKeyValidUntil, 0)
		}
		keys = append(keys, k)
	}
	static, jwks := keySpecs(t)
	set, err := assembleSet(ctx, keys, static, jwks, "keys (numbered from 0)", base)
	if err != nil {
		return nil, err
	}
	return set.WithTypes(t.Typ...), nil
}

// assembleSet makes a key set of keys, the keys loaded from static, and a
// provider per JWKS endpoint (started with ctx), with base's logger and
// hooks. what names the specs in errors.
func assembleSet(ctx context.Context, keys []*auth.Key, static []auth.KeySpec, jwks []config.Key, what string, base auth.JWKSOptions) (*auth.KeySet, error) {
	if len(static) > 0 {
		loaded, err := auth.LoadKeys(static, os.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		keys = append(keys, loaded...)
	}
	set := auth.NewKeySet(keys...)
	var providers []auth.KeyProvider
	for _, k := range jwks {
		o := base
		o.RefreshInterval, o.MinRefetch, o.Alg = k.RefreshInterval.D(), k.MinRefetch.D(), k.Alg
		p := auth.NewJWKS(k.JWKSURL, o)
		p.Start(ctx)
		providers = append(providers, p)
	}
	if len(providers) > 0 {
		set = set.WithProviders(providers...)
	}
	return set, nil
}

// apply builds the connection and subscription key sets of cfg and swaps
// them in. On error the current sets stay.
func (m *keyManager) apply(cfg *config.Config) error {
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := buildSet(ctx, &cfg.Client.Token, m.jwksBase())
	if err != nil {
		cancel()
		return fmt.Errorf("client.token: %w", err)
	}
	var sub *auth.KeySet
	if st := &cfg.Client.SubscriptionToken; st.Enabled {
		if sub, err = buildSet(ctx, &st.Token, m.jwksBase()); err != nil {
			cancel()
			return fmt.Errorf("client.subscription_token: %w", err)
		}
	}
	m.mu.Lock()
	old := m.cancel
	m.cancel = cancel
	m.verifier.SetKeys(conn)
	m.verifier.SetSubscriptionKeys(sub)
	m.mu.Unlock()
	if old != nil {
		old()
	}
	return nil
}

func (m *keyManager) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		m.cancel()
	}
}

// logKeys prints every key by fingerprint, so that a mismatch between the
// service that signs and Herald is visible at a glance.
func logKeys(log *slog.Logger, v *auth.Verifier) {
	for _, k := range v.Keys().Keys() {
		log.Info("token key loaded", slog.String("for", "connection and subscription tokens"), slog.String("algs", strings.Join(k.Algs, "/")),
			slog.String("key_fingerprint", k.Fingerprint), slog.String("kid", k.ID), slog.String("origin", k.Origin))
	}
	if sub := v.SubscriptionKeys(); sub != v.Keys() {
		for _, k := range sub.Keys() {
			log.Info("token key loaded", slog.String("for", "subscription tokens"), slog.String("algs", strings.Join(k.Algs, "/")),
				slog.String("key_fingerprint", k.Fingerprint), slog.String("kid", k.ID), slog.String("origin", k.Origin))
		}
	}
	for _, p := range v.Keys().Providers() {
		log.Info("token key provider", slog.String("provider", p.Name()), slog.Int("keys", len(p.Keys())))
	}
	for _, k := range v.Keys().Keys() {
		if m, ok := k.Material.([]byte); ok && len(m) < 32 {
			log.Warn("an HMAC secret is shorter than 32 bytes; use a long random secret", slog.String("key_fingerprint", k.Fingerprint))
		}
	}
}

// warnQuotedSecrets warns about HMAC secrets wrapped in quotes: a value
// copied from a shell command or a .env file keeps quotes that the shell
// would have removed, so Herald and the signer hold different secrets.
func warnQuotedSecrets(log *slog.Logger, sets []namedSet) {
	for _, ns := range sets {
		for _, k := range ns.set.Keys() {
			if fp, ok := auth.QuotedSecret(k); ok {
				log.Warn("an HMAC secret starts and ends with a quote, which is then part of the secret; remove the quotes unless the signer's secret has them too",
					slog.String("for", ns.name), slog.String("key_fingerprint", k.Fingerprint), slog.String("fingerprint_without_quotes", fp))
			}
		}
	}
}

// ReloadKeys rebuilds the key sets from cfg (re-reading key files and
// environment variables) and swaps them in atomically. A bad new key keeps
// the old sets, and the error says why.
func (s *Server) ReloadKeys(cfg *config.Config) error {
	if err := s.keys.apply(cfg); err != nil {
		s.log.Error("key reload failed; the previous keys stay in use", slog.String("error", err.Error()))
		return err
	}
	if err := s.applyMercureKeys(cfg); err != nil {
		s.log.Error("key reload failed; the previous keys stay in use", slog.String("error", err.Error()))
		return err
	}
	if err := s.applyCableKeys(cfg); err != nil {
		s.log.Error("key reload failed; the previous keys stay in use", slog.String("error", err.Error()))
		return err
	}
	s.log.Info("keys reloaded")
	logKeys(s.log, s.verifier)
	warnQuotedSecrets(s.log, s.keySets())
	return nil
}

// watchKeyFiles reloads the keys when a key file changes.
func (s *Server) watchKeyFiles(ctx context.Context) {
	files := append(keyFiles(&s.cfg.Client.Token), keyFiles(&s.cfg.Client.SubscriptionToken.Token)...)
	for _, k := range append(append(s.cfg.Mercure.Publisher.Keys, s.cfg.Mercure.Subscriber.Keys...), s.cfg.ActionCable.JWT.Keys...) {
		if k.File != "" {
			files = append(files, k.File)
		}
	}
	if len(files) == 0 {
		return
	}
	go auth.WatchFiles(ctx, files, keyWatchInterval, func() {
		s.log.Info("a key file changed; reloading keys", slog.Any("files", files))
		_ = s.ReloadKeys(s.cfg)
	})
}

// ticket serves POST /auth/ticket: a valid token in the Authorization header
// buys a one-time ticket to put in the WebSocket URL (?ticket=) instead of the token.
func (s *Server) ticket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeRefusal(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST", "")
		return
	}
	if s.sources.Tickets == nil {
		writeRefusal(w, http.StatusNotFound, string(auth.TokenSourceDisabled), "connection tickets are disabled",
			"add ticket to client.token_sources")
		return
	}
	tok, bad := auth.ParseAuthorization(r.Header.Get("Authorization"))
	if bad != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="herald", error="invalid_request"`)
		writeRefusal(w, http.StatusUnauthorized, string(bad.Code), bad.Detail, bad.Hint)
		return
	}
	if tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
		writeRefusal(w, http.StatusUnauthorized, string(auth.TokenMissing), "no token in the Authorization header",
			"send Authorization: Bearer <connection token>")
		return
	}
	if _, reason := s.verifier.Connect(&auth.Request{Transport: "ticket", Tokens: []auth.Candidate{{Source: auth.SourceHeader, Token: tok}}}); reason != nil {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "ticket refused", append(reason.LogAttrs(), slog.String("remote_addr", r.RemoteAddr))...)
		s.verifier.Refusals.Add(reason, "ticket", r.RemoteAddr, "")
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="herald", error="invalid_token", error_description=%q`, string(reason.Code)))
		detail, hint := reason.Detail, reason.Hint
		if !s.cfg.FullReasons() {
			detail, hint = "", ""
		}
		writeRefusal(w, http.StatusUnauthorized, string(reason.Code), detail, hint)
		return
	}
	id, err := s.sources.Tickets.Issue(tok)
	if err != nil {
		writeRefusal(w, http.StatusServiceUnavailable, "tickets_exhausted", err.Error(), "retry shortly")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `{"ticket":%q,"expires_in":%d}`+"\n", id, int(s.sources.Tickets.TTL()/time.Second))
}
