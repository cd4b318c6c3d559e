package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/testutil"
)

func TestDebugEndpointsNeedTheAdminKey(t *testing.T) {
	off := testutil.Start(t, nil)
	if resp, err := http.Get("http://" + off.Addr + "/debug/vars"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("without admin.key: %v %v, want 404", err, resp)
	}
	cfg := testutil.Config()
	cfg.Admin.Key = "admin-secret"
	srv := testutil.Start(t, cfg)
	srv.Dial(t, nil).Connect(testutil.UserToken(t, "u"))
	get := func(key string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+srv.Addr+"/debug/vars", nil)
		if key != "" {
			req.Header.Set("X-Admin-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, key := range []string{"", "wrong"} {
		resp := get(key)
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusUnauthorized || body["error"] != string(auth.AdminKeyWrong) {
			t.Fatalf("key %q: status %d %v, want 401 admin_key_wrong", key, resp.StatusCode, body)
		}
	}
	resp := get("admin-secret")
	var vars map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil || resp.StatusCode != 200 {
		t.Fatalf("vars: %d %v", resp.StatusCode, err)
	}
	if vars["num_clients"].(float64) != 1 || vars["heap_inuse"].(float64) <= 0 {
		t.Fatalf("vars %v", vars)
	}
	// Allocation and GC counters, for allocations per operation without heap profiles.
	if m, f := vars["mallocs"].(float64), vars["frees"].(float64); m <= 0 || f > m {
		t.Fatalf("mallocs %v frees %v", vars["mallocs"], vars["frees"])
	}
	for _, k := range []string{"pause_total_ns", "gc_cpu_fraction"} {
		if _, ok := vars[k].(float64); !ok {
			t.Fatalf("%s missing: %v", k, vars)
		}
	}
}
