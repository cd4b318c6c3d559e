// Package nats is the NATS broker: publications, joins, leaves and control
// messages cross nodes over core NATS subjects (at most once). History, the
// Mercure index and presence live in Redis when a Redis store is given, or
// else on each node, numbered by what that node received; docs/scaling.md
// says what each combination guarantees.
package nats
