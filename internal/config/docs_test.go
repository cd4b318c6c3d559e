package config

import (
	"os"
	"strings"
	"testing"
)

// TestReferenceDocumentsEveryKey keeps docs/configuration.md in step with the code.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(doc), "| `"+k.Path+"` |") {
			t.Errorf("docs/configuration.md does not document %s", k.Path)
		}
	}
}
