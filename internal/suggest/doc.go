// Package suggest finds the known name closest to a mistyped one, for
// "did you mean" hints in configuration and proxy-response errors.
package suggest
