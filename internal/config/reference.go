package config

import (
	"fmt"
	"strings"
)

// ReferenceTable renders every key as a markdown table (the Keys section of
// docs/configuration.md; `herald config-keys` prints it).
func ReferenceTable() string {
	var b strings.Builder
	b.WriteString("| key | type | default | environment | meaning |\n|---|---|---|---|---|\n")
	for _, k := range Keys() {
		env, def := "—", "—"
		if k.Env != "" {
			env = "`" + k.Env + "`"
		}
		if k.Default != "" {
			def = "`" + k.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.Path, k.Type, def, env, strings.ReplaceAll(k.Doc, "|", "\\|"))
	}
	return b.String()
}
