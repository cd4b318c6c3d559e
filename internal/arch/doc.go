// Package arch holds the test that keeps Herald's package dependencies
// pointing one way, as DESIGN.md draws them: cmd → server → front doors →
// hub, auth → broker. It has no code of its own.
package arch
