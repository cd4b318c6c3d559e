package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/heraldhub/herald/internal/actioncable"
	"github.com/heraldhub/herald/internal/api"
	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/centrifuge"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/conn"
	"github.com/heraldhub/herald/internal/hub"
	"github.com/heraldhub/herald/internal/mercure"
	"github.com/heraldhub/herald/internal/metrics"
	"github.com/heraldhub/herald/internal/natscallout"
)

// wsPath is the Centrifugo WebSocket endpoint.
const wsPath = "/connection/websocket"

// Server is one Herald node.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	verifier *auth.Verifier
	engine   *auth.Engine
	hub      *hub.Hub
	pool     *conn.Pool
	workers  *conn.Workers
	ws       *centrifuge.Handler
	api      *api.Handler
	httpSrv  *http.Server
	pending  *pendingLimit
	args     []string // the command line, for /debug/pprof/cmdline (secrets redacted there)
	ln       net.Listener
	draining atomic.Bool
	doors    []frontDoor

	keys      *keyManager
	sources   *auth.Sources
	stopWatch context.CancelFunc

	broker      nodeBroker       // what connects this node to the others
	mercure     *mercure.Handler // nil when mercure.enabled is off
	mercureMu   sync.Mutex
	mercureStop context.CancelFunc // stops the Mercure JWKS providers

	natsCallout *natscallout.Service // nil when nats_callout.enabled is off

	cable     *actioncable.Handler // nil when actioncable.enabled is off
	cableStop context.CancelFunc   // stops the JWKS providers of AnyCable tokens

	metrics     *metrics.Metrics
	metricsLn   net.Listener // metrics.listen, when set
	metricsSrv  *http.Server
	stopRefusal func() // stops counting refusals
	admin       interface{ Close() }
	version     string

	watch brokerWatch // the broker's health, as monitorBroker last saw it
}

// frontDoor is one entry of the table of what the server serves: a path
// (a prefix when it ends with "/"), its handler, and whether the listener
// serves its GET requests itself, before net/http (upgrades and streams).
type frontDoor struct {
	path    string
	handler http.Handler
	fast    bool
	// fastPost: the listener serves its POST requests too (streams whose
	// connect request is the body).
	fastPost bool
}

// New builds a server from configuration. The configuration must be valid.
func New(cfg *config.Config, log *slog.Logger, version string) (*Server, error) {
	nodeID := cfg.NodeID
	if nodeID == "" {
		nodeID = uuid.NewString()
	}
	if cfg.Broker.Type != "memory" {
		// Several nodes log to one place: every line says which node wrote it.
		log = log.With(slog.String("node", nodeID))
	}
	// Metrics are always counted (the cost is measured in bench/); whether
	// and where /metrics serves them is configuration.
	m := metrics.New()
	m.BuildInfo(version)
	sources := BuildSources(cfg)
	policy := BuildPolicy(cfg)
	policy.Sources = sources
	verifier := auth.NewVerifier(auth.NewKeySet(), policy)
	keys := &keyManager{verifier: verifier, log: log, onFetch: m.JWKSFetch}
	if err := keys.apply(cfg); err != nil {
		return nil, err
	}
	ns, err := hub.NewNamespaces(&cfg.Channel, config.NamespaceOptions{})
	if err != nil {
		return nil, err
	}
	proxies, err := buildProxies(cfg, log, m)
	if err != nil {
		return nil, err
	}
	authorities := proxies.Authorities(verifier.Policy().AllowAnonymous, cfg.Client.Proxy.ConnectMode == "always")
	co, err := buildCallout(cfg, nodeID, m)
	if err != nil {
		return nil, err
	}
	if co != nil {
		authorities.Callout = co
		// The callout reads the headers it includes from the upgrade request.
		for _, h := range cfg.Client.Callout.HTTPHeaders {
			proxies.Headers = append(proxies.Headers, http.CanonicalHeaderKey(h))
		}
	}
	engine := auth.NewEngine(verifier, authorities, cfg.Dev)
	// Mercure's index of every publication, for Last-Event-ID; none when
	// Mercure is off or keeps no history (then publications cost the broker
	// less and reach only the nodes with subscribers of their channel).
	var index *broker.IndexOptions
	if cfg.Mercure.Enabled && cfg.Mercure.HistorySize > 0 {
		index = &broker.IndexOptions{Size: cfg.Mercure.HistorySize, TTL: cfg.Mercure.HistoryTTL.D(), MaxBytes: cfg.Mercure.HistoryMaxBytes}
	}
	b, err := BuildBroker(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	// The hub sees the broker through the metrics, which time its operations.
	mb, presence := m.Broker(cfg.Broker.Type, b, b)
	h, err := hub.New(hub.Options{Broker: mb, Presence: presence, Namespaces: ns, Auth: engine, Logger: log, Metrics: m,
		NodeID: nodeID, NodeName: cfg.NodeName, Version: version, RecoveryLimit: cfg.Client.RecoveryMaxPublicationLimit,
		Index: index, MatchCacheSize: cfg.Mercure.TopicCacheSize, OnRevocation: applyRevocation(verifier), Records: sharedRecords(b)})
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	if cfg.Broker.AtStart == "exit" {
		// Stop here, before serving anything, when the broker does not
		// answer within a few seconds. With wait, the node serves at once:
		// /health says it is not ready and publications are refused until
		// the broker answers (monitorBroker logs the wait).
		if err := waitBroker(context.Background(), b, cfg); err != nil {
			_ = h.Close()
			return nil, err
		}
	}
	s := &Server{cfg: cfg, log: log, verifier: verifier, engine: engine, hub: h, broker: b, keys: keys, sources: sources, args: os.Args,
		pool: conn.NewPool(max(2, runtime.GOMAXPROCS(0)), cfg.Client.WriteLag.D()), workers: conn.NewWorkers(), metrics: m, version: version}
	s.pool.Instrument(m)
	s.stopRefusal = verifier.Refusals.Listen(func(r auth.Refusal) { m.Refused(string(r.Code), r.Transport) })
	s.nodeGauges()
	s.ws = centrifuge.NewHandler(centrifuge.Options{Config: cfg, Hub: h, Engine: engine, Sources: s.sources, Proxies: proxies,
		Logger: log, Version: version, Pool: s.pool, Workers: s.workers})
	// A revocation applies at once to live connections.
	verifier.Revocations().OnChange(func() {
		for _, c := range h.Clients() {
			c.Control(hub.Intent{Kind: hub.IntentCheckRevoked, Why: hub.WhyRevoked})
		}
	})
	if cfg.Mercure.Enabled {
		s.mercure = mercure.New(mercure.Options{Config: cfg, Verifier: verifier, Hub: h, Pool: s.pool, Logger: log})
		if err := s.applyMercureKeys(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.ActionCable.Enabled {
		if s.cable, err = actioncable.New(actioncable.Options{Config: cfg, Hub: h, Engine: engine, Logger: log, Pool: s.pool, Workers: s.workers}); err != nil {
			return nil, err
		}
		if err := s.applyCableKeys(cfg); err != nil {
			return nil, err
		}
	}
	s.stopWatch = func() {}
	watchCtx, cancel := context.WithCancel(context.Background())
	s.stopWatch = cancel
	s.watchKeyFiles(watchCtx)
	go s.monitorBroker(watchCtx)
	s.api = api.New(cfg, h, verifier.Refusals, log, version)
	if err := s.startNATSCallout(); err != nil {
		cancel()
		keys.stop()
		_ = h.Close()
		s.pool.Stop()
		s.workers.Stop()
		return nil, err
	}

	s.doors = []frontDoor{
		{path: wsPath, handler: s.ws, fast: true},
		{path: "/connection/http_stream", handler: s.ws.HTTPStream(), fastPost: true},
		{path: "/connection/sse", handler: s.ws.SSE(), fast: true, fastPost: true},
		{path: "/emulation", handler: s.ws.Emulation()},
		{path: "/connection/uni_websocket", handler: s.ws.UniWebSocket(), fast: true},
		{path: "/connection/uni_sse", handler: s.ws.UniSSE(), fast: true, fastPost: true},
		{path: "/connection/uni_http_stream", handler: s.ws.UniHTTPStream(), fastPost: true},
		{path: "/api", handler: s.api},
		{path: "/api/", handler: s.api},
		{path: "/health", handler: http.HandlerFunc(s.health)},
		{path: "/auth/ticket", handler: http.HandlerFunc(s.ticket)},
		{path: "/debug/", handler: s.debugHandler()},
	}
	if cfg.Metrics.Enabled && cfg.Metrics.Listen == "" {
		s.doors = append(s.doors, frontDoor{path: "/metrics", handler: s.metricsHandler(true)})
	}
	if cfg.Admin.Enabled {
		s.doors = append(s.doors, s.adminDoors()...)
	}
	if s.mercure != nil {
		s.doors = append(s.doors, frontDoor{path: cfg.Mercure.Path, handler: s.mercure, fast: true})
		if cfg.Mercure.Subscriptions {
			s.doors = append(s.doors, frontDoor{path: cfg.Mercure.Path + "/subscriptions", handler: s.mercure},
				frontDoor{path: cfg.Mercure.Path + "/subscriptions/", handler: s.mercure})
		}
	}
	if s.cable != nil {
		s.doors = append(s.doors, frontDoor{path: cfg.ActionCable.Path, handler: s.cable, fast: true})
		if p := cfg.ActionCable.Broadcast.Path; p != "" {
			s.doors = append(s.doors, frontDoor{path: p, handler: s.cable.Broadcaster()})
		}
	}
	mux := http.NewServeMux()
	for _, d := range s.doors {
		mux.Handle(d.path, d.handler)
	}
	s.httpSrv = httpServer(cfg, mux, log)
	s.pending = newPendingLimit(cfg.HTTP.MaxPendingConns, cfg.HTTP.MaxPendingConnsPerIP, log)
	s.metrics.GaugeFunc("http_pending_connections", "Connections not upgraded to a WebSocket or a stream (reading a request, being answered, idle between requests); counted when http.max_pending_conns or http.max_pending_conns_per_ip is set.",
		func() float64 { return float64(s.pending.count()) })
	return s, nil
}

// applyRevocation applies a revocation made on any node to this node's
// auth engine; its OnChange then checks the live connections.
func applyRevocation(v *auth.Verifier) func(hub.Revocation) {
	return func(r hub.Revocation) {
		if r.JTI != "" {
			v.Revocations().RevokeToken(r.JTI, r.Until)
		}
		if r.User != "" {
			v.Revocations().RevokeUser(r.User, r.IssuedBefore, r.Until)
		}
	}
}

// httpServer is the net/http server of the requests that are not upgrades.
// Its timeouts apply to requests it serves; net/http clears them when a
// WebSocket or a Mercure stream takes its connection over (Hijack), and the
// listener's own upgrades never set them (TestHTTPTimeoutsCloseIdleAndSlowConnections
// checks both).
func httpServer(cfg *config.Config, mux http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout.D(),
		ReadTimeout:       cfg.HTTP.ReadTimeout.D(),
		WriteTimeout:      cfg.HTTP.WriteTimeout.D(),
		IdleTimeout:       cfg.HTTP.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		ConnState:         connState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"shutting down"}` + "\n"))
		return
	}
	if hc, ok := s.broker.(broker.HealthChecker); ok {
		if err := s.observeBroker(hc); err != nil {
			// Readiness follows the broker: a node that cannot reach it
			// would accept publications it cannot deliver.
			w.WriteHeader(http.StatusServiceUnavailable)
			body, _ := json.Marshal(map[string]string{"status": "broker unavailable", "error": err.Error()})
			_, _ = w.Write(append(body, '\n'))
			return
		}
	}
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// Handler returns the HTTP handler (for tests with httptest).
func (s *Server) Handler() http.Handler { return s.httpSrv.Handler }

// Hub returns the node's hub.
func (s *Server) Hub() *hub.Hub { return s.hub }

// Verifier returns the auth engine.
func (s *Server) Verifier() *auth.Verifier { return s.verifier }

// Listen binds the configured address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	if err := s.listenMetrics(); err != nil {
		_ = ln.Close()
		return err
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address (after Listen).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// LogStartup writes the startup lines: address, keys by fingerprint, and a
// warning for each setting that commonly surprises users.
func (s *Server) LogStartup() {
	cfg := s.cfg
	logKeys(s.log, s.verifier)
	s.logMercureStartup()
	warnQuotedSecrets(s.log, s.keySets())
	s.logCableStartup()
	if cfg.Metrics.Enabled && cfg.Metrics.Listen == "" && cfg.Dev {
		s.log.Warn("development mode: /metrics is open to anyone who reaches this listener")
	}
	if cfg.Admin.Enabled {
		s.log.Info("admin page enabled at /admin (log in with admin.key)")
	}
	if cfg.Dev {
		s.log.Warn("development mode: anonymous connections are allowed and every client may subscribe, publish and read history and presence on any channel; tokens are still verified in full")
	}
	if s.mercureOnly() {
		// The warnings below concern the Centrifugo endpoints, which this
		// deployment does not use.
		s.log.Info("only the Mercure hub is configured: /connection/websocket refuses every connection and /api every request (set client.token keys and http_api.key to use them)")
		return
	}
	switch {
	case cfg.Client.Callout.Enabled:
		// The callout decides every connection, tokens included.
	case s.verifier.Keys().Empty():
		s.log.Warn("no token key configured: every connection token will be refused (set client.token.hmac_secret_key or --hmac-secret)")
	}
	if cfg.HTTPAPI.Insecure {
		s.log.Warn("http_api.insecure is on: /api accepts requests without a key")
	} else if cfg.HTTPAPI.Key == "" {
		s.log.Warn("http_api.key is empty: /api refuses every request (set http_api.key or --api-key)")
	}
	for _, o := range cfg.Client.AllowedOrigins {
		if o == "*" {
			s.log.Warn("client.allowed_origins contains \"*\": pages on any site may open connections")
		}
	}
	if len(cfg.Client.AllowedOrigins) == 0 {
		s.log.Info("client.allowed_origins is empty: connections from browsers (which send Origin) are refused")
	}
}

// mercureOnly reports whether the server is configured for the Mercure hub
// alone: Mercure keys, and nothing that would let a client connect to the
// Centrifugo endpoints or call /api.
func (s *Server) mercureOnly() bool {
	cfg := s.cfg
	m := &cfg.Mercure
	return s.mercure != nil && (m.Publisher.Configured() || m.Subscriber.Configured()) &&
		s.verifier.Keys().Empty() && !cfg.Client.Callout.Enabled && !cfg.Client.Proxy.Connect.Enabled &&
		!s.verifier.Policy().AllowAnonymous && cfg.HTTPAPI.Key == "" && !cfg.HTTPAPI.Insecure
}

// Serve serves on the bound listener until Shutdown.
func (s *Server) Serve() error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.serveMetrics()
	s.log.Info("herald listening", slog.String("addr", s.ln.Addr().String()), slog.String("node_id", s.hub.NodeID()),
		slog.String("broker", describeBroker(s.cfg)))
	var routes []fastRoute
	for _, d := range s.doors {
		if d.fast {
			routes = append(routes, fastRoute{http.MethodGet, d.path, d.handler})
		}
		if d.fastPost {
			routes = append(routes, fastRoute{http.MethodPost, d.path, d.handler})
		}
	}
	ln := newUpgradeListener(s.ln, routes, s.httpSrv.ReadHeaderTimeout, s.httpSrv.MaxHeaderBytes, s.pending)
	err := s.httpSrv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown drains the node and stops it within the configured shutdown
// timeout. First publications are refused (503, never acknowledged and then
// lost) and /health answers 503; then every client is disconnected (3001 on
// WebSocket, so SDKs reconnect elsewhere; streams end) while the listener
// still answers, so a load balancer sees the drain; then the listener closes
// and the in-flight requests finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.hub.Drain()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout.D())
	defer cancel()
	s.log.Info("shutting down: draining clients", slog.Int("sessions", s.ws.NumSessions()), slog.Int("mercure_subscribers", s.MercureSubscribers()),
		slog.Int("actioncable_sessions", s.ActionCableSessions()))
	if s.mercure != nil {
		s.mercure.Shutdown(ctx)
	}
	cableErr := make(chan error, 1)
	go func() {
		if s.cable == nil {
			cableErr <- nil
			return
		}
		cableErr <- s.cable.Shutdown(ctx)
	}()
	wsErr := s.ws.Shutdown(ctx)
	if err := <-cableErr; err != nil && wsErr == nil {
		wsErr = err
	}
	if s.admin != nil {
		s.admin.Close() // its live feeds would hold the listener's shutdown
	}
	err := s.httpSrv.Shutdown(ctx)
	if s.natsCallout != nil {
		s.natsCallout.Close()
	}
	if s.metricsSrv != nil {
		_ = s.metricsSrv.Shutdown(ctx)
		_ = s.metricsLn.Close() // when Serve never ran
	}
	s.stopRefusal()
	_ = s.hub.Close()
	s.pool.Stop()
	s.workers.Stop()
	s.stopWatch()
	s.keys.stop()
	s.mercureMu.Lock()
	if s.mercureStop != nil {
		s.mercureStop()
	}
	if s.cableStop != nil {
		s.cableStop()
	}
	s.mercureMu.Unlock()
	if wsErr != nil {
		return wsErr
	}
	return err
}

// Mercure returns the Mercure hub, or nil when mercure.enabled is off.
func (s *Server) Mercure() *mercure.Handler { return s.mercure }
