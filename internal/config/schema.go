package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/heraldhub/herald/internal/suggest"
)

// kind classifies the Go types a configuration key may have.
type kind int

const (
	kindUnsupported kind = iota
	kindString
	kindBool
	kindInt
	kindDuration
	kindStrings    // []string
	kindStructList // []struct, e.g. channel.namespaces
	kindStruct     // a group of keys
)

var durationType = reflect.TypeFor[Duration]()

func kindOf(t reflect.Type) kind {
	if t == durationType {
		return kindDuration
	}
	switch t.Kind() {
	case reflect.String:
		return kindString
	case reflect.Bool:
		return kindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return kindInt
	case reflect.Struct:
		return kindStruct
	case reflect.Slice:
		switch t.Elem().Kind() {
		case reflect.String:
			return kindStrings
		case reflect.Struct:
			return kindStructList
		}
	}
	return kindUnsupported
}

// typeName is the human name of a key's type, as shown by Keys.
func (k kind) typeName() string {
	switch k {
	case kindString:
		return "string"
	case kindBool:
		return "bool"
	case kindInt:
		return "int"
	case kindDuration:
		return "duration"
	case kindStrings:
		return "list of strings"
	case kindStructList:
		return "list"
	case kindStruct:
		return "map"
	}
	return "unsupported"
}

// field describes one key of a struct, with inline structs flattened.
type field struct {
	key    string
	index  []int
	typ    reflect.Type
	kind   kind
	doc    string
	secret bool
}

var fieldCache sync.Map // reflect.Type -> []field

// fieldsOf returns the keys of struct type t in declaration order.
func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" && hasOpt(opts, "inline") && sf.Type.Kind() == reflect.Struct {
			for _, sub := range fieldsOf(sf.Type) {
				sub.index = append([]int{i}, sub.index...)
				fs = append(fs, sub)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		fs = append(fs, field{
			key:    name,
			index:  []int{i},
			typ:    sf.Type,
			kind:   kindOf(sf.Type),
			doc:    sf.Tag.Get("doc"),
			secret: sf.Tag.Get("secret") == "true",
		})
	}
	fieldCache.Store(t, fs)
	return fs
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// fieldByKey finds the field named key among fs.
func fieldByKey(fs []field, key string) (field, bool) {
	for _, f := range fs {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

func fieldKeys(fs []field) []string {
	keys := make([]string, len(fs))
	for i, f := range fs {
		keys[i] = f.key
	}
	return keys
}

// leaf is a key that holds a value: every non-struct field reachable from
// Config, plus the fields of list elements (path "channel.namespaces[].name").
type leaf struct {
	path   string
	field  field
	inList bool // inside a list element; not settable on its own
}

// schema is the key index derived from the Config type.
type schema struct {
	leaves []leaf
	byPath map[string]leaf // settable leaves (not inside lists)
	byEnv  map[string]leaf
	envs   []string        // sorted names in byEnv
	groups map[string]bool // paths of key groups such as "client"
	// groupPaths lists the groups in declaration order.
	groupPaths []string
}

var getSchema = sync.OnceValue(func() *schema {
	s := &schema{byPath: map[string]leaf{}, byEnv: map[string]leaf{}, groups: map[string]bool{}}
	s.walk(reflect.TypeFor[Config](), "", false)
	for _, l := range s.leaves {
		if l.inList {
			continue
		}
		s.byPath[l.path] = l
		s.byEnv[EnvName(l.path)] = l
	}
	for name := range s.byEnv {
		s.envs = append(s.envs, name)
	}
	sort.Strings(s.envs)
	return s
})

func (s *schema) walk(t reflect.Type, prefix string, inList bool) {
	for _, f := range fieldsOf(t) {
		path := joinPath(prefix, f.key)
		switch f.kind {
		case kindStruct:
			if !inList {
				s.groups[path] = true
				s.groupPaths = append(s.groupPaths, path)
			}
			s.walk(f.typ, path, inList)
		case kindStructList:
			s.leaves = append(s.leaves, leaf{path: path, field: f, inList: inList})
			s.walk(f.typ.Elem(), path+"[]", true)
		default:
			s.leaves = append(s.leaves, leaf{path: path, field: f, inList: inList})
		}
	}
}

// settablePaths returns the key paths that may be given as flags.
func (s *schema) settablePaths() []string {
	var paths []string
	for _, l := range s.leaves {
		if !l.inList {
			paths = append(paths, l.path)
		}
	}
	return paths
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// EnvName returns the environment variable that sets the key at keyPath:
// HERALD_ followed by the upper-cased path with dots replaced by "_"
// (client.token.hmac_secret_key -> HERALD_CLIENT_TOKEN_HMAC_SECRET_KEY).
// Keys inside list elements (paths containing "[") have no variable of their
// own and give "".
func EnvName(keyPath string) string {
	if keyPath == "" || strings.Contains(keyPath, "[") {
		return ""
	}
	return "HERALD_" + strings.ToUpper(strings.ReplaceAll(keyPath, ".", "_"))
}

// KeyDoc documents one configuration key.
type KeyDoc struct {
	// Path is the dotted key path; keys of namespaces are written
	// "channel.namespaces[].<option>".
	Path string
	// Env is the environment variable setting the key, or "" for keys inside
	// list elements (set those through the list's variable).
	Env string
	// Type is string, bool, int, duration, list of strings or list of
	// namespaces.
	Type string
	// Default is the built-in value in the form accepted by environment
	// variables and flags.
	Default string
	// Doc is the one-line description of the key.
	Doc string
}

// Keys lists every configuration key that holds a value, in declaration
// order: the leaves of the configuration structure, "channel.namespaces"
// itself (set as a whole, e.g. with a JSON array in HERALD_CHANNEL_NAMESPACES)
// and the options of one namespace as "channel.namespaces[].<option>".
func Keys() []KeyDoc {
	s := getSchema()
	def := reflect.ValueOf(Default()).Elem()
	docs := make([]KeyDoc, 0, len(s.leaves))
	for _, l := range s.leaves {
		var v reflect.Value
		if l.inList {
			v = reflect.Zero(l.field.typ)
		} else if pv, ok := valueAt(def, l.path); ok {
			v = pv
		} else {
			v = reflect.Zero(l.field.typ)
		}
		docs = append(docs, KeyDoc{
			Path:    l.path,
			Env:     EnvName(l.path),
			Type:    l.field.kind.typeName(),
			Default: formatValue(v, l.field),
			Doc:     l.field.doc,
		})
	}
	return docs
}

// valueAt returns the value at dotted path inside the struct value root.
// Paths through lists are not supported.
func valueAt(root reflect.Value, path string) (reflect.Value, bool) {
	v := root
	for _, key := range strings.Split(path, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		f, ok := fieldByKey(fieldsOf(v.Type()), key)
		if !ok {
			return reflect.Value{}, false
		}
		v = v.FieldByIndex(f.index)
	}
	return v, true
}

// formatValue renders a value the way environment variables and flags take
// it. Non-empty secrets are rendered as "<redacted>".
func formatValue(v reflect.Value, f field) string {
	switch f.kind {
	case kindString:
		if f.secret && v.String() != "" {
			return redacted
		}
		return v.String()
	case kindBool:
		return strconv.FormatBool(v.Bool())
	case kindInt:
		return strconv.FormatInt(v.Int(), 10)
	case kindDuration:
		return Duration(v.Int()).String()
	case kindStrings, kindStructList:
		if v.Len() == 0 {
			return "[]"
		}
		b, err := json.Marshal(v.Interface())
		if err != nil {
			return fmt.Sprint(v.Interface())
		}
		return string(b)
	}
	return fmt.Sprint(v.Interface())
}

// redacted replaces the value of a secret wherever it would be shown.
const redacted = "<redacted>"

// closest returns the candidate nearest to key by edit distance when it is
// close enough to be a likely typo, or "".
func closest(key string, candidates []string) string {
	nk := normKey(key)
	best, bestD := "", -1
	for _, c := range candidates {
		d := suggest.Distance(nk, normKey(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 {
		return ""
	}
	n := len([]rune(nk))
	limit := max(2, n/3)
	if bestD <= limit && bestD < n {
		return best
	}
	return ""
}

// normKey folds case and writes "-" as "_", so that "Channel-Limit" is near
// "channel_limit"; a missing separator ("channellimit") stays one edit away.
func normKey(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "-", "_")
}
