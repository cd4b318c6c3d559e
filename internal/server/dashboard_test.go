package server_test

// The Grafana dashboard and the alert rules in docs/ query only metrics
// that Herald registers, and docs/operations.md lists every one of them.

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/heraldhub/herald/internal/testutil"
)

// metricName finds the names a PromQL expression or a doc refers to.
var metricName = regexp.MustCompile(`\b(?:herald|go|process)_[a-zA-Z0-9_]+`)

// exists reports whether name is registered, reading a histogram's
// _bucket, _sum and _count series as its name.
func exists(names map[string]bool, name string) bool {
	if names[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// queries collects every "expr" and templating "query" string of a JSON document.
func queries(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && (k == "expr" || k == "query") {
				*out = append(*out, s)
			}
			queries(val, out)
		}
	case []any:
		for _, val := range x {
			queries(val, out)
		}
	}
}

func TestDashboardAndAlertsQueryRegisteredMetrics(t *testing.T) {
	srv := testutil.Start(t, metricsConfig())
	names := srv.Metrics().Names()

	raw, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("docs/grafana-dashboard.json is not JSON: %v", err)
	}
	var exprs []string
	queries(dash, &exprs)
	if len(exprs) < 20 {
		t.Fatalf("the dashboard has %d queries; expected its panels' queries", len(exprs))
	}

	raw, err = os.ReadFile("../../docs/prometheus-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("docs/prometheus-alerts.yml: %v", err)
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("rule %+v lacks an alert name or an expression", r)
			}
			exprs = append(exprs, r.Expr)
			alerts++
		}
	}
	if alerts < 5 {
		t.Fatalf("%d alert rules", alerts)
	}

	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			used[name] = true
			if !exists(names, name) {
				t.Errorf("%q queries %s, which Herald does not register", e, name)
			}
		}
	}
	for _, must := range []string{"herald_refusals_total", "herald_jwks_fetches_total", "herald_broker_up", "herald_slow_client_disconnects_total"} {
		if !used[must] {
			t.Errorf("neither the dashboard nor the alerts use %s", must)
		}
	}
}

func TestOperationsDocListsEveryMetric(t *testing.T) {
	srv := testutil.Start(t, metricsConfig())
	names := srv.Metrics().Names()
	raw, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	var missing []string
	for name := range names {
		if strings.HasPrefix(name, "herald_") && !strings.Contains(doc, "`"+name+"`") {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/operations.md does not list %v", missing)
	}
	for _, name := range metricName.FindAllString(doc, -1) {
		if strings.HasPrefix(name, "herald_") && !exists(names, name) {
			t.Errorf("docs/operations.md names %s, which Herald does not register", name)
		}
	}
}
