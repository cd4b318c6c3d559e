// Package cluster holds the tests of several Herald nodes sharing one
// broker (a private redis-server, Sentinel), driven through the front doors
// with real clients: delivery, recovery, presence, control and failures.
package cluster
