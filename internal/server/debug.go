package server

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/heraldhub/herald/internal/auth"
)

// debugHandler serves the operator endpoints under /debug/, guarded by
// admin.key: /debug/vars (memory, goroutines, hub counters, for benchmarks
// and dashboards) and /debug/pprof/ (profiles).
func (s *Server) debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/vars", s.debugVars)
	mux.HandleFunc("/debug/auth", s.debugAuth)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	key := auth.NewSharedKey(s.cfg.Admin.Key)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !key.Configured() {
			writeRefusal(w, http.StatusNotFound, "admin_disabled", "the /debug/ endpoints are off", "set admin.key (HERALD_ADMIN_KEY) to enable them")
			return
		}
		if reason := key.CheckAdminKey(r.Header.Get("X-Admin-Key")); reason != nil {
			s.verifier.Refusals.Add(reason, "admin", r.RemoteAddr, "")
			w.Header().Set("WWW-Authenticate", `admin-key realm="herald"`)
			writeRefusal(w, http.StatusUnauthorized, string(reason.Code), reason.Detail, reason.Hint)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeRefusal(w http.ResponseWriter, status int, code, detail, hint string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "detail": detail, "hint": hint})
}

func writeJSON(w http.ResponseWriter, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) debugVars(w http.ResponseWriter, r *http.Request) {
	var ms runtime.MemStats
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	st := s.hub.Stats()
	w.Header().Set("Content-Type", "application/json")
	vars := map[string]any{
		"time":            time.Now().UTC().Format(time.RFC3339Nano),
		"goroutines":      runtime.NumGoroutine(),
		"heap_alloc":      ms.HeapAlloc,
		"heap_inuse":      ms.HeapInuse,
		"stack_inuse":     ms.StackInuse,
		"sys":             ms.Sys,
		"num_gc":          ms.NumGC,
		"total_alloc":     ms.TotalAlloc,
		"mallocs":         ms.Mallocs,
		"frees":           ms.Frees,
		"pause_total_ns":  ms.PauseTotalNs,
		"gc_cpu_fraction": ms.GCCPUFraction,
		"sessions":        s.ws.NumSessions(),
		"num_clients":     st.NumClients,
		"num_users":       st.NumUsers,
		"num_channels":    st.NumChannels,
		"num_subs":        st.NumSubs,
		"uptime_millis":   st.Uptime.Milliseconds(),
	}
	if s.mercure != nil {
		vars["mercure_subscribers_connected"] = s.mercure.NumSubscribers()
	}
	vars["num_selector_subs"] = st.NumSelectors
	s.natsCalloutVars(vars)
	_ = json.NewEncoder(w).Encode(vars)
}
