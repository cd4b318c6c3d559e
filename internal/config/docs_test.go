package config

import (
	"os"
	"strings"
	"testing"
)

// TestReferenceDocumentsEveryKey keeps docs/configuration.md in step with the
// code: its Keys section must be exactly ReferenceTable() (herald config-keys).
func TestReferenceDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), ReferenceTable()) {
		t.Fatalf("docs/configuration.md is out of date: replace its key table with the output of `herald config-keys`")
	}
}
