package config

import (
	"bytes"
	"reflect"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Redacted renders the effective configuration as YAML that Load accepts
// back, with the value of every non-empty secret replaced by "<redacted>". It
// is meant for `herald serve --print-config` style debugging.
func (c *Config) Redacted() string {
	root := structNode(reflect.ValueOf(c).Elem())
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return "# cannot render the configuration: " + err.Error() + "\n"
	}
	if err := enc.Close(); err != nil {
		return "# cannot render the configuration: " + err.Error() + "\n"
	}
	return b.String()
}

// structNode renders a struct as a YAML mapping in declaration order.
func structNode(v reflect.Value) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, f := range fieldsOf(v.Type()) {
		n.Content = append(n.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.key},
			valueNode(v.FieldByIndex(f.index), f))
	}
	return n
}

// valueNode renders one value; secrets are redacted.
func valueNode(v reflect.Value, f field) *yaml.Node {
	scalar := func(tag, s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s}
	}
	switch f.kind {
	case kindString:
		if f.secret && v.String() != "" {
			return scalar("!!str", redacted)
		}
		return scalar("!!str", v.String())
	case kindBool:
		return scalar("!!bool", strconv.FormatBool(v.Bool()))
	case kindInt:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10))
	case kindDuration:
		return scalar("!!str", Duration(v.Int()).String())
	case kindStruct:
		return structNode(v)
	case kindStrings, kindStructList:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if v.Len() == 0 {
			n.Style = yaml.FlowStyle
		}
		for i := 0; i < v.Len(); i++ {
			if f.kind == kindStrings {
				n.Content = append(n.Content, scalar("!!str", v.Index(i).String()))
			} else {
				n.Content = append(n.Content, structNode(v.Index(i)))
			}
		}
		return n
	}
	return scalar("!!null", "null")
}
