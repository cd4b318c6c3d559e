package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/metrics"
)

// Metrics returns the node's metrics (tests read them; /metrics serves them).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// nodeGauges registers the gauges read from the hub when scraped.
func (s *Server) nodeGauges() {
	m, h := s.metrics, s.hub
	m.GaugeFunc("channels", "Channels with subscribers on this node.", func() float64 { return float64(h.Stats().NumChannels) })
	m.GaugeFunc("users", "Distinct users connected to this node.", func() float64 { return float64(h.Stats().NumUsers) })
	m.GaugeFunc("nodes", "Nodes this node knows of (itself included).", func() float64 { return float64(len(h.Nodes())) })
}

// metricsHandler serves the Prometheus text format. On the main listener
// (guarded) it asks for admin.key, except in development mode; on a
// listener of its own it is open: keep that address private.
func (s *Server) metricsHandler(guarded bool) http.Handler {
	h := promhttp.HandlerFor(s.metrics.Registry(), promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	if !guarded || s.cfg.Dev {
		return h
	}
	key := auth.NewSharedKey(s.cfg.Admin.Key)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.checkAdminKey(w, r, key, "/metrics") {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkAdminKey answers a request without the right admin key (404 when
// none is configured, 401 otherwise, recorded as a refusal) and reports
// whether it may go on.
func (s *Server) checkAdminKey(w http.ResponseWriter, r *http.Request, key *auth.SharedKey, what string) bool {
	if !key.Configured() {
		writeRefusal(w, http.StatusNotFound, "admin_disabled", what+" is off", "set admin.key (HERALD_ADMIN_KEY) to enable it")
		return false
	}
	if reason := key.CheckAdminKey(auth.AdminKeyOf(r.Header)); reason != nil {
		s.verifier.Refusals.Add(reason, "admin", r.RemoteAddr, "")
		w.Header().Set("WWW-Authenticate", `Bearer realm="herald admin"`)
		writeRefusal(w, http.StatusUnauthorized, string(reason.Code), reason.Detail, reason.Hint)
		return false
	}
	return true
}

// listenMetrics binds metrics.listen, when set.
func (s *Server) listenMetrics() error {
	addr := s.cfg.Metrics.Listen
	if !s.cfg.Metrics.Enabled || addr == "" || s.metricsLn != nil {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics.listen on %s: %w", addr, err)
	}
	s.metricsLn = ln
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.metricsHandler(false))
	s.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	return nil
}

// serveMetrics serves metrics.listen until Shutdown.
func (s *Server) serveMetrics() {
	if s.metricsSrv == nil {
		return
	}
	s.log.Info("metrics listening", slog.String("addr", s.metricsLn.Addr().String()), slog.String("path", "/metrics"))
	go func() {
		if err := s.metricsSrv.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener stopped", slog.String("error", err.Error()))
		}
	}()
}

// MetricsAddr returns the address of metrics.listen ("" when not set).
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}
