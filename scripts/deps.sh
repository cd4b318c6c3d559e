#!/usr/bin/env bash
# Installs what Herald's tests need on a Debian machine with Go, when it is
# missing: gcc (for -race), Node.js and npm (the end-to-end tests with the
# real npm clients), redis-server and redis-sentinel (the broker tests start
# private instances on free ports; the packages' own services are not
# started) and Chromium (the browser tests, driven by playwright-core). NATS
# runs inside the tests from its Go module. Idempotent and quiet; needs root
# (or sudo) only when something is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
[ -x /usr/bin/chromium ] || need+=(chromium)
if ((${#need[@]} == 0)); then
	exit 0
fi
sudo=()
if [[ $(id -u) != 0 ]]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "deps.sh: the tests need: ${need[*]}; install them with: apt-get install -y ${need[*]}" >&2
		exit 1
	fi
	sudo=(sudo)
fi
echo "deps.sh: installing ${need[*]}" >&2
"${sudo[@]}" apt-get update -qq
# RUNLEVEL=1: packages install without starting their services.
"${sudo[@]}" env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
