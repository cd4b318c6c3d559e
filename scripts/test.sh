#!/usr/bin/env bash
# Runs every Herald test: go vet, the Go tests (unit and integration tests
# over real sockets) and the end-to-end tests with the npm centrifuge client.
# Needs Go; Node.js and npm for the end-to-end tests; gcc enables -race.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...

race=()
if command -v gcc >/dev/null 2>&1; then
	race=(-race)
fi
echo "== go test ${race[*]:-}"
go test "${race[@]}" -count=1 -timeout 10m ./...

echo "== end-to-end (npm centrifuge client)"
cd test/e2e
npm ci --no-audit --no-fund --loglevel=error
npm test
