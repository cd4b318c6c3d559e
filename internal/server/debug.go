package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
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
	mux.HandleFunc("/debug/pprof/cmdline", s.debugCmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	key := auth.NewSharedKey(s.cfg.Admin.Key)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.checkAdminKey(w, r, key, "the /debug/ endpoints") {
			mux.ServeHTTP(w, r)
		}
	})
}

// debugCmdline serves /debug/pprof/cmdline as net/http/pprof does (the
// arguments separated by NUL bytes), with the values of secret flags
// (--api-key, --hmac-secret, --secret …) replaced by <redacted>.
func (s *Server) debugCmdline(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, strings.Join(redactArgs(s.args), "\x00"))
}

// redactArgs returns args with the value of every flag whose name says it
// holds a secret (key, secret, token, password) replaced by <redacted>,
// whether given as --name=value or --name value.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 1; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !secretFlag(name) {
			continue
		}
		if hasValue {
			out[i] = a[:strings.IndexByte(a, '=')+1] + "<redacted>"
		} else if i+1 < len(out) {
			out[i+1] = "<redacted>"
			i++
		}
	}
	return out
}

func secretFlag(name string) bool {
	name = strings.ToLower(name)
	for _, w := range []string{"key", "secret", "token", "password", "passwd"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
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
	s.brokerVars(vars)
	s.natsCalloutVars(vars)
	_ = json.NewEncoder(w).Encode(vars)
}

// debugAuth serves GET /debug/auth: recent refusals with every field, the
// keys by fingerprint (connection tokens in keys, every set in key_sets),
// the JWKS endpoints with their fetch state, and the revocation count.
func (s *Server) debugAuth(w http.ResponseWriter, r *http.Request) {
	type keyView struct {
		Fingerprint string   `json:"fingerprint"`
		Algs        []string `json:"algs"`
		Kid         string   `json:"kid,omitempty"`
		Origin      string   `json:"origin,omitempty"`
		NotAfter    string   `json:"not_after,omitempty"`
	}
	type providerView struct {
		For       string   `json:"for"`
		Name      string   `json:"name"`
		Kids      []string `json:"kids"`
		LastFetch string   `json:"last_fetch,omitempty"`
		NextFetch string   `json:"next_fetch,omitempty"`
		Error     string   `json:"error,omitempty"`
	}
	type setView struct {
		For   string    `json:"for"`
		Keys  []keyView `json:"keys"`
		Types []string  `json:"typ,omitempty"`
	}
	view := func(set *auth.KeySet) []keyView {
		out := []keyView{}
		for _, k := range set.Keys() {
			kv := keyView{Fingerprint: k.Fingerprint, Algs: k.Algs, Kid: k.ID, Origin: k.Origin}
			if !k.NotAfter.IsZero() {
				kv.NotAfter = k.NotAfter.UTC().Format(time.RFC3339)
			}
			out = append(out, kv)
		}
		return out
	}
	var sets []setView
	providers := []providerView{}
	for _, ns := range s.keySets() {
		sets = append(sets, setView{For: ns.name, Keys: view(ns.set), Types: ns.set.Types()})
		for _, p := range ns.set.Providers() {
			st := p.State()
			pv := providerView{For: ns.name, Name: p.Name(), Kids: st.Kids}
			if !st.Last.IsZero() {
				pv.LastFetch = st.Last.UTC().Format(time.RFC3339)
			}
			if !st.Next.IsZero() {
				pv.NextFetch = st.Next.UTC().Format(time.RFC3339)
			}
			if st.Err != nil {
				pv.Error = st.Err.Error()
			}
			providers = append(providers, pv)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	writeJSON(w, map[string]any{
		"refusals":    s.verifier.Refusals.Recent(),
		"keys":        view(s.verifier.Keys()),
		"key_sets":    sets,
		"providers":   providers,
		"revocations": s.verifier.Revocations().Len(),
	})
}

// namedSet is a key set and what it verifies.
type namedSet struct {
	name string
	set  *auth.KeySet
}

// keySets lists every key set of the server: connection tokens,
// subscription tokens when they have their own, the Mercure roles, and
// AnyCable tokens when they have their own.
func (s *Server) keySets() []namedSet {
	out := []namedSet{{"connection tokens", s.verifier.Keys()}}
	if sub := s.verifier.SubscriptionKeys(); sub != s.verifier.Keys() {
		out = append(out, namedSet{"subscription tokens", sub})
	}
	if s.mercure != nil {
		out = append(out, namedSet{"mercure publisher tokens", s.mercure.PublisherKeys()}, namedSet{"mercure subscriber tokens", s.mercure.SubscriberKeys()})
	}
	if s.cable != nil {
		if set := s.cable.JWTKeys(); set != s.verifier.Keys() {
			out = append(out, namedSet{"anycable tokens", set})
		}
	}
	return out
}
