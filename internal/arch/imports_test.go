package arch

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/heraldhub/herald/"

// Front doors speak a wire protocol; each may use the core but never
// another door.
var frontDoors = []string{"internal/centrifuge", "internal/mercure", "internal/api", "internal/actioncable"}

// What each part of the core may not import, besides internal/server.
var forbidden = map[string][]string{
	"internal/hub":      frontDoors,
	"internal/auth":     append([]string{"internal/hub", "internal/broker", "internal/proxy", "internal/callout", "internal/conn"}, frontDoors...),
	"internal/broker":   append([]string{"internal/hub", "internal/auth", "internal/proxy", "internal/callout", "internal/conn"}, frontDoors...),
	"internal/proxy":    append([]string{"internal/hub", "internal/broker", "internal/conn"}, frontDoors...),
	"internal/callout":  append([]string{"internal/hub", "internal/broker", "internal/conn"}, frontDoors...),
	"internal/conn":     append([]string{"internal/hub", "internal/auth", "internal/broker"}, frontDoors...),
	"internal/cfcodes":  append([]string{"internal/hub", "internal/broker"}, frontDoors...),
	"internal/config":   append([]string{"internal/hub", "internal/auth", "internal/broker"}, frontDoors...),
	"internal/testutil": frontDoors,
	// The NATS callout asks the auth engine; it is no front door of the hub.
	"internal/natscallout": append([]string{"internal/hub", "internal/broker", "internal/proxy", "internal/callout", "internal/conn"}, frontDoors...),
	// Metrics are protocol-neutral: the core imports them, not the reverse.
	"internal/metrics": append([]string{"internal/hub", "internal/auth", "internal/conn", "internal/proxy", "internal/callout", "internal/config", "internal/admin"}, frontDoors...),
	// The admin page reads the core like a front door, and is none.
	"internal/admin": append([]string{"internal/conn", "internal/proxy", "internal/callout"}, frontDoors...),
}

// within reports whether pkg is dir or one of its subpackages.
func within(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// imports returns, for every package directory of the module, the module
// packages its non-test files import.
func imports(t *testing.T, root string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "node_modules" || name == "testdata" || (strings.HasPrefix(name, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) {
				if out[pkg] == nil {
					out[pkg] = map[string]bool{}
				}
				out[pkg][strings.TrimPrefix(p, module)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// violations lists the imports of graph that break the rules.
func violations(graph map[string]map[string]bool) []string {
	var bad []string
	for pkg, deps := range graph {
		for dep := range deps {
			switch {
			case within(dep, "internal/server") && !within(pkg, "cmd") && pkg != "internal/testutil":
				bad = append(bad, pkg+" imports internal/server (only cmd and tests may)")
			case isDoor(pkg) && isDoor(dep) && door(pkg) != door(dep):
				bad = append(bad, pkg+" imports "+dep+" (a front door never imports another)")
			}
			for part, no := range forbidden {
				if !within(pkg, part) {
					continue
				}
				for _, f := range no {
					if within(dep, f) {
						bad = append(bad, pkg+" imports "+dep+" (see DESIGN.md: the arrows point one way)")
					}
				}
			}
		}
	}
	return bad
}

func isDoor(pkg string) bool { return door(pkg) != "" }

func door(pkg string) string {
	for _, d := range frontDoors {
		if within(pkg, d) {
			return d
		}
	}
	return ""
}

// TestImportRules fails when an import breaks the rules of DESIGN.md.
func TestImportRules(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal("the module root is not two levels up:", err)
	}
	for _, v := range violations(imports(t, root)) {
		t.Error(v)
	}
}

// TestImportRulesCatchViolations: the check itself fails on each kind of
// violation, so it cannot pass by accident.
func TestImportRulesCatchViolations(t *testing.T) {
	graph := map[string]map[string]bool{
		"internal/mercure":         {"internal/centrifuge": true},
		"internal/hub":             {"internal/mercure": true},
		"internal/broker":          {"internal/hub": true},
		"internal/api":             {"internal/server": true},
		"cmd/herald":               {"internal/server": true, "internal/hub": true},
		"internal/testutil":        {"internal/server": true},
		"internal/actioncable/rpc": {"internal/actioncable": true},
	}
	got := strings.Join(violations(graph), "\n")
	for _, want := range []string{"internal/mercure imports internal/centrifuge", "internal/hub imports internal/mercure",
		"internal/broker imports internal/hub", "internal/api imports internal/server"} {
		if !strings.Contains(got, want) {
			t.Errorf("not caught: %s\n%s", want, got)
		}
	}
	for _, allowed := range []string{"cmd/herald imports", "internal/testutil imports", "internal/actioncable/rpc imports"} {
		if strings.Contains(got, allowed) {
			t.Errorf("refused although allowed: %s\n%s", allowed, got)
		}
	}
}
