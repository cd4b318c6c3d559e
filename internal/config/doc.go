// Package config owns Herald's typed configuration: the structure, the
// embedded defaults, loading from a YAML/JSON file, HERALD_* environment
// variables and command-line flags (flag > env > file > default), and validation.
package config
