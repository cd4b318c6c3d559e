// Package metrics owns Herald's Prometheus metrics: one registry per server
// (no global default), the counters, gauges and histograms the core updates
// (connections and writes by front door, refusals, backend calls, broker
// operations), and the bounded label values they use.
//
// Every method is safe on a nil *Metrics or *Door, so core packages built
// without metrics (unit tests) need no checks of their own.
package metrics
