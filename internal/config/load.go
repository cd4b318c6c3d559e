package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Source names where configuration comes from, besides the defaults.
type Source struct {
	// File is the path of a YAML or JSON configuration file; "" means none.
	File string
	// Env is the environment in os.Environ() form ("K=V"). Only variables
	// starting with HERALD_ are read.
	Env []string
	// Flags maps dotted key paths ("listen", "http_api.key",
	// "client.token.hmac_secret_key") to values as typed on the command line.
	Flags map[string]string
}

// envPrefix starts every environment variable Herald reads.
const envPrefix = "HERALD_"

// reservedEnv are HERALD_* variables that are not configuration keys but are
// read by the command line (HERALD_CONFIG names the configuration file). Load
// skips them instead of reporting them as unknown.
var reservedEnv = map[string]bool{
	"HERALD_CONFIG": true,
}

// Where strings of the non-file sources.
const (
	whereFlags  = "command line"
	whereEnvVar = "environment variable "
)

// maxDecodeSteps bounds the work spent on one file or value, so that YAML
// aliases and merge keys cannot make decoding explode.
const maxDecodeSteps = 1_000_000

// Load builds the configuration: Default(), overlaid by the file, then the
// HERALD_* environment variables, then the flags (flag > env > file >
// default), and validated. When anything is wrong it returns a nil Config and
// a Problems error listing every problem found.
//
// A list given by a source replaces the list from the sources below it as a
// whole; the elements of channel.namespaces start from zero options. A YAML
// null (an empty value) leaves the key at its previous value. Dev defaults
// (ApplyDevDefaults) are not applied by Load.
func Load(src Source) (*Config, error) {
	cfg, probs := load(src)
	if len(probs) > 0 {
		return nil, probs
	}
	return cfg, nil
}

// CheckFile loads the configuration file at path over the defaults, without
// environment variables or flags, and returns every problem found, or nil
// when the file is valid. It backs `herald check-config --config FILE`.
func CheckFile(path string) Problems {
	if path == "" {
		return Problems{{Msg: "no configuration file given"}}
	}
	_, probs := load(Source{File: path})
	return probs
}

// loader accumulates the configuration and its problems while loading.
type loader struct {
	cfg   *Config
	probs Problems
	// origins maps key paths to the Where of the source that set them last,
	// so that validation problems can point at the offending line.
	origins map[string]string
	// failed holds key paths whose value was rejected; validation problems
	// about them would only repeat the rejection.
	failed map[string]bool
}

func load(src Source) (*Config, Problems) {
	l := &loader{cfg: Default(), origins: map[string]string{}, failed: map[string]bool{}}
	if src.File != "" {
		l.loadFile(src.File)
	}
	l.loadEnv(src.Env)
	l.loadFlags(src.Flags)
	for _, p := range l.cfg.Validate() {
		if l.isFailed(p.Key) {
			continue
		}
		if p.Where == "" {
			p.Where = l.originOf(p.Key)
		}
		l.probs = append(l.probs, p)
	}
	if len(l.probs) == 0 {
		return l.cfg, nil
	}
	return l.cfg, l.probs
}

// add records a problem.
func (l *loader) add(where, key, msg string) {
	l.probs = append(l.probs, Problem{Where: where, Key: key, Msg: msg})
}

// fail records a rejected value of key.
func (l *loader) fail(where, key, msg string) {
	l.failed[key] = true
	l.add(where, key, msg)
}

// setOrigin notes that where set path, forgetting what earlier sources said
// about keys below path.
func (l *loader) setOrigin(path, where string) {
	for p := range l.origins {
		if strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			delete(l.origins, p)
		}
	}
	l.origins[path] = where
}

// originOf finds where key, or the list element holding it, was set.
func (l *loader) originOf(key string) string {
	if w, ok := l.origins[key]; ok {
		return w
	}
	// client.allowed_origins[1] -> client.allowed_origins
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndex(key, "["); i > 0 {
			if w, ok := l.origins[key[:i]]; ok {
				return w
			}
		}
	}
	// channel.namespaces[0].history_ttl -> channel.namespaces[0]
	if i := strings.LastIndex(key, "]"); i > 0 && i < len(key)-1 {
		if w, ok := l.origins[key[:i+1]]; ok {
			return w
		}
	}
	return ""
}

// isFailed reports whether key or a list element or key group holding it had
// its value rejected.
func (l *loader) isFailed(key string) bool {
	for k := key; k != ""; {
		if l.failed[k] {
			return true
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return false
}

// loadFile overlays the configuration file at path.
func (l *loader) loadFile(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		l.add(path, "", readErrMsg(err))
		return
	}
	format := "YAML"
	if t := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		format = "JSON"
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) { // io.EOF: an empty file
			l.parseProblem(path, format, err)
		}
		return
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		if root := docRoot(&extra); root != nil && !isNull(root) {
			l.add(fileWhere(path, extra.Line), "", "the file holds more than one YAML document; put every setting in the first")
		}
	case !errors.Is(err, io.EOF):
		l.parseProblem(path, format, err)
	}
	root := docRoot(&doc)
	if root == nil || isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		l.add(fileWhere(path, root.Line), "", "the top level must be a map of keys, got "+describe(root))
		return
	}
	d := &nodeDecoder{l: l, where: func(line int) string { return fileWhere(path, line) }}
	d.decodeStruct(root, reflect.ValueOf(l.cfg).Elem(), "")
}

func fileWhere(path string, line int) string {
	if line <= 0 {
		return path
	}
	return path + ":" + strconv.Itoa(line)
}

func readErrMsg(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "configuration file does not exist"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "cannot read configuration file: " + pe.Err.Error()
	}
	return "cannot read configuration file: " + err.Error()
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlParserErrors are the problems yaml.v3 reports as parser (not scanner)
// errors. yaml.v3 v3.0.1 gives their line counted from 0, so one is added.
var yamlParserErrors = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// yamlErrorLine splits a yaml.v3 syntax error into its 1-based line (0 when
// unknown) and its message.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	line, convErr := strconv.Atoi(m[1])
	if convErr != nil {
		return 0, msg
	}
	if yamlParserErrors[m[2]] {
		line++
	}
	return line, m[2]
}

// parseProblem reports a syntax error, with its line when yaml.v3 gives one.
func (l *loader) parseProblem(path, format string, err error) {
	line, msg := yamlErrorLine(err)
	l.add(fileWhere(path, line), "", "cannot parse "+format+": "+msg)
}

// docRoot returns the content of a document node.
func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind != yaml.DocumentNode {
		return resolve(doc)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return resolve(doc.Content[0])
}

// loadEnv overlays the HERALD_* variables of env, after the reference
// Mercure hub's MERCURE_*_JWT_* variables (which HERALD_* ones override).
func (l *loader) loadEnv(env []string) {
	l.loadMercureEnv(env)
	vals := map[string]string{}
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		vals[name] = val // the last definition wins, as in os/exec
	}
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	sort.Strings(names)
	s := getSchema()
	for _, name := range names {
		if reservedEnv[name] {
			continue
		}
		lf, ok := s.byEnv[name]
		if !ok {
			msg := "unknown environment variable " + name
			if sug := closestEnv(name); sug != "" {
				msg += "; did you mean " + sug + "?"
			}
			l.add("", "", msg)
			continue
		}
		l.setText(lf, vals[name], whereEnvVar+name)
	}
}

// closestEnv suggests a known variable for a mistyped one.
func closestEnv(name string) string {
	s := getSchema()
	cands := make([]string, len(s.envs))
	for i, e := range s.envs {
		cands[i] = strings.TrimPrefix(e, envPrefix)
	}
	if c := closest(strings.TrimPrefix(name, envPrefix), cands); c != "" {
		return envPrefix + c
	}
	return ""
}

// loadFlags overlays the command-line flags.
func (l *loader) loadFlags(flags map[string]string) {
	keys := make([]string, 0, len(flags))
	for k := range flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := getSchema()
	for _, k := range keys {
		lf, ok := s.byPath[k]
		if ok {
			l.setText(lf, flags[k], whereFlags)
			continue
		}
		if i := strings.Index(k, "["); i > 0 && s.byPath[k[:i]].field.kind == kindStructList {
			l.add(whereFlags, k, fmt.Sprintf("cannot set one element; set %s as a whole to a JSON array", k[:i]))
			continue
		}
		if s.groups[k] {
			l.add(whereFlags, k, "is a group of keys, not a value; set one of its keys instead")
			continue
		}
		msg := fmt.Sprintf("unknown key %q", k)
		if why, gone := replacedKeys[k]; gone {
			msg = fmt.Sprintf("key %q is no longer used: %s", k, why)
		} else if sug := closest(k, s.settablePaths()); sug != "" {
			msg += fmt.Sprintf("; did you mean %q?", sug)
		}
		l.add(whereFlags, "", msg)
	}
}

// setText sets the settable leaf lf from the text of an environment variable
// or a flag.
func (l *loader) setText(lf leaf, text, where string) {
	dst, ok := valueAt(reflect.ValueOf(l.cfg).Elem(), lf.path)
	if !ok {
		l.add(where, lf.path, "internal error: key not found in the configuration")
		return
	}
	if lf.field.kind == kindStructList {
		l.setListText(dst, lf, text, where)
		return
	}
	v, msg := parseText(lf.field, text)
	if msg != "" {
		l.fail(where, lf.path, msg)
		return
	}
	dst.Set(v)
	l.setOrigin(lf.path, where)
}

// setListText sets a list of maps (channel.namespaces) from a JSON array,
// checking keys as strictly as in files. An empty value is an empty list.
func (l *loader) setListText(dst reflect.Value, lf leaf, text, where string) {
	t := strings.TrimSpace(text)
	if t == "" {
		dst.Set(reflect.Zero(lf.field.typ))
		l.setOrigin(lf.path, where)
		return
	}
	const want = `must be a JSON array of objects, like [{"name":"chat","presence":true}]`
	if !strings.HasPrefix(t, "[") {
		l.fail(where, lf.path, "value "+want)
		return
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(t), &doc); err != nil {
		_, msg := yamlErrorLine(err)
		l.fail(where, lf.path, "value "+want+"; cannot parse it: "+msg)
		return
	}
	root := docRoot(&doc)
	if root == nil || root.Kind != yaml.SequenceNode {
		l.fail(where, lf.path, "value "+want)
		return
	}
	l.setOrigin(lf.path, where)
	d := &nodeDecoder{l: l, where: func(int) string { return where }}
	d.decodeValue(root, dst, lf.field, lf.path)
}

// nodeDecoder maps a YAML node tree onto configuration structs by reflection
// over the yaml tags, reporting unknown keys and bad values.
type nodeDecoder struct {
	l         *loader
	where     func(line int) string
	steps     int
	exhausted bool
}

func (d *nodeDecoder) add(line int, key, msg string) {
	d.l.add(d.where(line), key, msg)
}

func (d *nodeDecoder) fail(line int, key, msg string) {
	d.l.fail(d.where(line), key, msg)
}

// note records where path was set. Unlike loader.setOrigin it keeps what
// was noted below path: within one source the decoder sets a map's keys after
// the map itself.
func (d *nodeDecoder) note(path string, line int) {
	d.l.origins[path] = d.where(line)
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names the shape of a node without showing its value, which could
// be a secret.
func describe(n *yaml.Node) string {
	switch {
	case n == nil || isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a map"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return "a single value"
	}
	return "an unsupported value"
}

// decodeStruct overlays the mapping n onto the struct dst at key path path.
func (d *nodeDecoder) decodeStruct(n *yaml.Node, dst reflect.Value, path string) {
	fs := fieldsOf(dst.Type())
	// Merge keys (<<) first: keys written in the map itself win over merged ones.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			d.merge(n.Content[i+1], dst, path)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if d.exhausted {
			return
		}
		if k == nil || k.Kind != yaml.ScalarNode {
			d.add(n.Content[i].Line, path, "keys must be plain names, not "+describe(k))
			continue
		}
		if k.Tag == "!!merge" {
			continue
		}
		name := k.Value
		if first, dup := seen[name]; dup {
			d.add(k.Line, path, fmt.Sprintf("key %q is set twice (first on line %d); keep one", name, first))
			continue
		}
		seen[name] = k.Line
		f, ok := fieldByKey(fs, name)
		if !ok {
			msg := fmt.Sprintf("unknown key %q", name)
			if why, gone := replacedKeys[joinPath(path, name)]; gone {
				msg = fmt.Sprintf("key %q is no longer used: %s", name, why)
			} else if sug := suggestKey(name, path, fs); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
			d.add(k.Line, path, msg)
			continue
		}
		child := joinPath(path, name)
		d.note(child, k.Line)
		d.decodeValue(v, dst.FieldByIndex(f.index), f, child)
	}
}

// merge applies the value of a merge key: a map or a list of maps, earlier
// maps of the list winning over later ones.
func (d *nodeDecoder) merge(v *yaml.Node, dst reflect.Value, path string) {
	v = resolve(v)
	switch {
	case v != nil && v.Kind == yaml.MappingNode:
		d.decodeStruct(v, dst, path)
		return
	case v != nil && v.Kind == yaml.SequenceNode:
		for i := len(v.Content) - 1; i >= 0; i-- {
			if m := resolve(v.Content[i]); m == nil || m.Kind != yaml.MappingNode {
				d.add(v.Content[i].Line, path, "a merge key (<<) needs a map or a list of maps")
				return
			}
		}
		for i := len(v.Content) - 1; i >= 0; i-- {
			d.decodeStruct(resolve(v.Content[i]), dst, path)
		}
		return
	}
	line := 0
	if v != nil {
		line = v.Line
	}
	d.add(line, path, "a merge key (<<) needs a map or a list of maps")
}

// suggestKey proposes a known key for the unknown key name found in the map at
// path: a close sibling, or else a key of that name elsewhere (given as a
// full path).
func suggestKey(name, path string, fs []field) string {
	if sug := closest(name, fieldKeys(fs)); sug != "" {
		return sug
	}
	s := getSchema()
	want := normKey(name)
	for _, p := range append(s.settablePaths(), s.groupPaths...) {
		last := p[strings.LastIndex(p, ".")+1:]
		if last == want && !strings.HasPrefix(p, path+".") {
			return p
		}
	}
	return ""
}

// decodeValue overlays node n onto dst, the value of key path path described
// by f. A null leaves dst unchanged.
func (d *nodeDecoder) decodeValue(n *yaml.Node, dst reflect.Value, f field, path string) {
	if d.exhausted {
		return
	}
	d.steps++
	if d.steps > maxDecodeSteps {
		d.exhausted = true
		d.add(n.Line, "", "too many values to decode (aliases expand too much); simplify the configuration")
		return
	}
	line := n.Line
	n = resolve(n)
	if n == nil || isNull(n) {
		return
	}
	switch f.kind {
	case kindStruct:
		if n.Kind != yaml.MappingNode {
			d.fail(line, path, "expected a map of keys, got "+describe(n))
			return
		}
		d.decodeStruct(n, dst, path)
	case kindStructList:
		if n.Kind != yaml.SequenceNode {
			d.fail(line, path, "expected a list of maps, got "+describe(n))
			return
		}
		list := reflect.MakeSlice(f.typ, len(n.Content), len(n.Content))
		for i, e := range n.Content {
			ep := fmt.Sprintf("%s[%d]", path, i)
			d.note(ep, e.Line)
			if r := resolve(e); r == nil || r.Kind != yaml.MappingNode {
				d.fail(e.Line, ep, "expected a map of keys, got "+describe(r))
				continue
			}
			d.decodeStruct(resolve(e), list.Index(i), ep)
		}
		if len(n.Content) == 0 {
			list = reflect.Zero(f.typ)
		}
		dst.Set(list)
	case kindStrings:
		if n.Kind != yaml.SequenceNode {
			d.fail(line, path, "expected a list of strings, got "+describe(n))
			return
		}
		var items []string
		ok := true
		for i, e := range n.Content {
			ep := fmt.Sprintf("%s[%d]", path, i)
			r := resolve(e)
			if r == nil || r.Kind != yaml.ScalarNode || isNull(r) {
				d.fail(e.Line, ep, "expected a string, got "+describe(r))
				ok = false
				continue
			}
			d.note(ep, e.Line)
			items = append(items, r.Value)
		}
		if ok {
			dst.Set(reflect.ValueOf(items).Convert(f.typ))
		}
	case kindString, kindBool, kindInt, kindDuration:
		if n.Kind != yaml.ScalarNode {
			d.fail(line, path, "expected "+f.kind.expected()+", got "+describe(n))
			return
		}
		d.decodeScalar(n, line, dst, f, path)
	default:
		d.fail(line, path, fmt.Sprintf("internal error: unsupported type %s", f.typ))
	}
}

// decodeScalar sets a string, bool, int or duration from a YAML scalar.
func (d *nodeDecoder) decodeScalar(n *yaml.Node, line int, dst reflect.Value, f field, path string) {
	if f.kind == kindInt && n.Tag == "!!int" {
		// Let YAML read its own integer forms (0x10, 1_000).
		var i int64
		if err := n.Decode(&i); err == nil {
			if dst.OverflowInt(i) {
				d.fail(line, path, valueMsg(n.Value, f.secret, "is out of range for an integer"))
				return
			}
			dst.SetInt(i)
			return
		}
	}
	v, msg := parseText(f, n.Value)
	if msg != "" {
		d.fail(line, path, msg)
		return
	}
	dst.Set(v)
}

// replacedKeys are keys of earlier versions, with what replaced them.
var replacedKeys = map[string]string{
	"mercure.write_lag": "every door's connections share one writer pool now; set client.write_lag",
}
