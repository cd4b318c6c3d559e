package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCatalogueIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/auth.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Catalogue {
		if !strings.Contains(string(doc), "| `"+string(c)+"` |") {
			t.Errorf("docs/auth.md has no entry for %s", c)
		}
	}
}

// TestEveryReasonIsExercisedEndToEnd: each code of the catalogue is produced
// by a test that runs a real server (outside this package), which checks what
// the client sees.
func TestEveryReasonIsExercisedEndToEnd(t *testing.T) {
	var corpus strings.Builder
	for _, dir := range []string{"../centrifuge", "../server", "../api", "../proxy", "../natscallout", "../actioncable", "../../cmd/herald"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			corpus.Write(b)
		}
	}
	all := corpus.String()
	for _, c := range Catalogue {
		// A test names the code as text or as the constant (auth.ProxyCircuitOpen).
		camel := ""
		for _, part := range strings.Split(string(c), "_") {
			camel += strings.ToUpper(part[:1]) + part[1:]
		}
		if !strings.Contains(all, string(c)) && !strings.Contains(all, "auth."+camel) {
			t.Errorf("no server-level test mentions %s", c)
		}
	}
}
