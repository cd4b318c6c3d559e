// Package bench holds Herald's benchmark harness: the load generator and
// runner in cmd/heraldbench, the matrix script run.sh, the results in
// results/, and micro-benchmarks (go test -bench . ./bench) for the costs
// that README.md discusses. See README.md.
package bench
