// Package testutil starts real Herald servers on random loopback ports and
// drives them with a real WebSocket client, for tests of every package.
package testutil
