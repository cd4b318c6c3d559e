// Package cfcodes is the one table of the Centrifugo client protocol's codes:
// reply errors, disconnect (close) codes and unsubscribe codes, shared by the
// Centrifugo front door and the server API, which speak them.
package cfcodes
