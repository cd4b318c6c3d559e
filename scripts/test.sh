#!/usr/bin/env bash
# Runs every Herald test: go vet, the Go tests (unit and integration tests
# over real sockets, with real Redis and NATS servers) and the end-to-end
# tests with the real npm clients and headless Chromium. Needs Go; what else
# the tests need (gcc, Node.js, redis-server, Chromium) is installed by
# scripts/deps.sh when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh

echo "== go vet"
go vet ./...

race=()
if command -v gcc >/dev/null 2>&1; then
	race=(-race)
fi
echo "== go test ${race[*]:-}"
go test "${race[@]}" -count=1 -timeout 10m ./...

echo "== end-to-end (npm clients, headless Chromium)"
cd test/e2e
npm ci --no-audit --no-fund --loglevel=error
npm test
