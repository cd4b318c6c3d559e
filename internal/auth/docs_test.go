package auth

import (
	"os"
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
