// Package server wires Herald together: it builds the auth engine, broker,
// hub and front doors from a Config, routes HTTP requests to them, and runs
// the graceful shutdown. server.New has no global state, so tests run many.
package server
