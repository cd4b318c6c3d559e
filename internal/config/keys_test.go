package config

import (
	"reflect"
	"strings"
	"testing"
)

// structLeaves lists the key paths of t independently of the package's own
// walker: non-struct fields, with inline structs flattened and slices of
// structs written as "path[]".
func structLeaves(t reflect.Type, prefix string) []string {
	var paths []string
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == ",inline" {
			paths = append(paths, structLeaves(sf.Type, prefix)...)
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		switch {
		case sf.Type.Kind() == reflect.Struct:
			paths = append(paths, structLeaves(sf.Type, path)...)
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct:
			paths = append(paths, path)
			paths = append(paths, structLeaves(sf.Type.Elem(), path+"[]")...)
		default:
			paths = append(paths, path)
		}
	}
	return paths
}

func TestKeysCoverEveryLeaf(t *testing.T) {
	keys := Keys()
	var got []string
	seen := map[string]bool{}
	seenEnv := map[string]string{}
	for _, k := range keys {
		if seen[k.Path] {
			t.Errorf("path %q listed twice", k.Path)
		}
		seen[k.Path] = true
		got = append(got, k.Path)
		if k.Doc == "" {
			t.Errorf("%s: no doc", k.Path)
		}
		if k.Type == "" || k.Type == "unsupported" || k.Type == "map" {
			t.Errorf("%s: type %q", k.Path, k.Type)
		}
		inList := strings.Contains(k.Path, "[")
		if inList != (k.Env == "") {
			t.Errorf("%s: env %q", k.Path, k.Env)
		}
		if k.Env != "" {
			if other, dup := seenEnv[k.Env]; dup {
				t.Errorf("%s and %s share the variable %s", other, k.Path, k.Env)
			}
			seenEnv[k.Env] = k.Path
			if k.Env != EnvName(k.Path) {
				t.Errorf("%s: env %q, EnvName gives %q", k.Path, k.Env, EnvName(k.Path))
			}
		}
	}
	if want := structLeaves(reflect.TypeFor[Config](), ""); !reflect.DeepEqual(got, want) {
		t.Errorf("Keys paths:\n got %q\nwant %q", got, want)
	}
}

func TestKeysKnownEntries(t *testing.T) {
	byPath := map[string]KeyDoc{}
	for _, k := range Keys() {
		byPath[k.Path] = k
	}
	tests := []KeyDoc{
		{Path: "listen", Env: "HERALD_LISTEN", Type: "string", Default: "127.0.0.1:8000"},
		{Path: "dev", Env: "HERALD_DEV", Type: "bool", Default: "false"},
		{Path: "client.ping_interval", Env: "HERALD_CLIENT_PING_INTERVAL", Type: "duration", Default: "25s"},
		{Path: "client.channel_limit", Env: "HERALD_CLIENT_CHANNEL_LIMIT", Type: "int", Default: "128"},
		{Path: "client.allowed_origins", Env: "HERALD_CLIENT_ALLOWED_ORIGINS", Type: "list of strings", Default: "[]"},
		{Path: "client.token.hmac_secret_key", Env: "HERALD_CLIENT_TOKEN_HMAC_SECRET_KEY", Type: "string", Default: ""},
		{Path: "http_api.key", Env: "HERALD_HTTP_API_KEY", Type: "string", Default: ""},
		{Path: "channel.without_namespace.presence", Env: "HERALD_CHANNEL_WITHOUT_NAMESPACE_PRESENCE", Type: "bool", Default: "false"},
		{Path: "channel.namespaces", Env: "HERALD_CHANNEL_NAMESPACES", Type: "list", Default: "[]"},
		{Path: "channel.namespaces[].name", Env: "", Type: "string", Default: ""},
		{Path: "channel.namespaces[].history_ttl", Env: "", Type: "duration", Default: "0s"},
	}
	for _, want := range tests {
		got, ok := byPath[want.Path]
		if !ok {
			t.Errorf("%s: missing", want.Path)
			continue
		}
		got.Doc = ""
		if got != want {
			t.Errorf("%s: got %+v, want %+v", want.Path, got, want)
		}
	}
}

// TestEveryKeySettable sets each settable key through the environment and
// through a flag, with its default value, and expects no problem.
func TestEveryKeySettable(t *testing.T) {
	var env []string
	flags := map[string]string{}
	for _, k := range Keys() {
		if k.Env == "" {
			continue
		}
		env = append(env, k.Env+"="+k.Default)
		flags[k.Path] = k.Default
	}
	cfg := mustLoad(t, Source{Env: env, Flags: flags})
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("setting every key to its default changed the config:\n%s", cfg.Redacted())
	}
}
