#!/usr/bin/env bash
# Runs Herald's benchmark matrix REPS times and writes the medians to
# bench/results/<date>-<commit>.md (and the raw JSON lines beside it).
#
#   bench/run.sh                              # 3 repetitions of the whole matrix
#   REPS=5 bench/run.sh                       # 5 repetitions
#   SCENARIOS="conns-5000 fanout-1000" bench/run.sh
#   BUILD_FROM=HEAD bench/run.sh              # measure the last commit, not the work tree
#   HERALD_BIN=/path/to/herald bench/run.sh   # measure a binary built elsewhere
#   BASELINE=<git rev> bench/run.sh           # also measure that revision, interleaved run by
#                                             # run, and write the comparison (B/A) beside
#
# Scenarios: conns-1000 conns-5000 fanout-1000 fanout-1000-rate10 fanout-5000,
# the same in Protobuf over WebSocket: pb-conns-5000 pb-fanout-1000 pb-fanout-1000-rate10,
# the same over Mercure (SSE): sse-conns-5000 sse-fanout-1000 sse-fanout-1000-rate10,
# over Action Cable: cable-conns-5000 cable-fanout-1000 cable-fanout-1000-rate10,
# and NATS logins through herald nats-callout: callout callout-xkey.
# Scale-out (not in the default set; they start a private redis-server):
# redis2-fanout-1000 (subscribers on node B, publishing through node A),
# redis1-fanout-1000 (one node via Redis), redis2-channels-10000 (10,000
# channels with one subscriber each), and fanout-1000-rate500 with
# redis2-fanout-1000-rate500 (the same load, 500 publications/s, on one node
# and on two):
#   SCENARIOS="fanout-1000 redis2-fanout-1000 redis2-channels-10000" bench/run.sh
# Every server is started on 127.0.0.1:0 and stopped by the harness; every run
# is bounded (-timeout). One repetition of the whole matrix takes about one
# minute on a 2-core machine (5 repetitions: ~5 minutes, plus any wait for
# other processes to go quiet).
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-5}
SCENARIOS=${SCENARIOS:-"conns-1000 conns-5000 fanout-1000 fanout-1000-rate10 fanout-5000 sse-conns-5000 sse-fanout-1000 sse-fanout-1000-rate10 callout callout-xkey"}
CALLOUT_N=${CALLOUT_N:-2000}      # NATS logins through herald nats-callout
FLAT_M_1000=${FLAT_M_1000:-4000}  # publications, fanout-1000 (4M deliveries)
SSE_FLAT_M=${SSE_FLAT_M:-2000}    # publications, sse-fanout-1000 (2M deliveries)
FLAT_M_5000=${FLAT_M_5000:-600}   # publications, fanout-5000 (3M deliveries)
RATE_M=${RATE_M:-150}             # publications at 10/s: a 15 s window
CHANNELS_M=${CHANNELS_M:-100000}  # publications, redis2-channels-10000 (one delivery each)
PING_INTERVAL=${PING_INTERVAL:-25s}
BUILD_FROM=${BUILD_FROM:-worktree} # worktree or HEAD
OUT_DIR=${OUT_DIR:-bench/results}
RUN_TIMEOUT=${RUN_TIMEOUT:-3m}
QUIET_WAIT=${QUIET_WAIT:-60s}      # wait up to this long for other processes to go quiet before each run
BASELINE=${BASELINE:-}             # a git revision to measure interleaved with the build under test

# 5000 client and 5000 server sockets, plus slack.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < 12000)); then
	echo "run.sh: ulimit -n is $(ulimit -n); 5000-connection scenarios need about 10100 descriptors" >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n ${HERALD_BIN:-} ]]; then
	bin=$HERALD_BIN
	commit="$commit-bin"
elif [[ $BUILD_FROM == HEAD ]]; then
	# A read-only export of the last commit, built outside the work tree.
	mkdir "$tmp/src"
	git archive HEAD | tar -x -C "$tmp/src"
	(cd "$tmp/src" && go build -o "$tmp/herald" ./cmd/herald)
	bin=$tmp/herald
else
	if [[ -n $(git status --porcelain --untracked-files=no -- . ':(exclude)bench' 2>/dev/null) ]]; then
		commit="$commit-dirty"
	fi
	go build -o "$tmp/herald" ./cmd/herald
	bin=$tmp/herald
fi
go build -o "$tmp/heraldbench" ./bench/cmd/heraldbench
if [[ -n $BASELINE ]]; then
	base_commit=$(git rev-parse --short "$BASELINE")
	mkdir "$tmp/base"
	git archive "$BASELINE" | tar -x -C "$tmp/base"
	(cd "$tmp/base" && go build -o "$tmp/herald-base" ./cmd/herald)
fi

args_for() {
	case $1 in
	conns-1000) echo "conns -n 1000" ;;
	conns-5000) echo "conns -n 5000" ;;
	fanout-1000) echo "fanout -n 1000 -m $FLAT_M_1000 -publishers 8" ;;
	fanout-1000-rate10) echo "fanout -n 1000 -m $RATE_M -rate 10 -publishers 8" ;;
	fanout-5000) echo "fanout -n 5000 -m $FLAT_M_5000 -publishers 8" ;;
	pb-conns-5000) echo "conns -transport pb -n 5000" ;;
	pb-fanout-1000) echo "fanout -transport pb -n 1000 -m $FLAT_M_1000 -publishers 8" ;;
	pb-fanout-1000-rate10) echo "fanout -transport pb -n 1000 -m $RATE_M -rate 10 -publishers 8" ;;
	sse-conns-5000) echo "conns -transport sse -n 5000" ;;
	sse-fanout-1000) echo "fanout -transport sse -n 1000 -m $SSE_FLAT_M -publishers 8" ;;
	sse-fanout-1000-rate10) echo "fanout -transport sse -n 1000 -m $RATE_M -rate 10 -publishers 8" ;;
	callout) echo "callout -n $CALLOUT_N -concurrency 8" ;;
	callout-xkey) echo "callout -n $CALLOUT_N -concurrency 8 -xkey" ;;
	redis2-fanout-1000) echo "fanout -nodes 2 -broker redis -n 1000 -m $FLAT_M_1000 -publishers 8" ;;
	redis1-fanout-1000) echo "fanout -nodes 1 -broker redis -n 1000 -m $FLAT_M_1000 -publishers 8" ;;
	redis2-channels-10000) echo "channels -nodes 2 -broker redis -n 10000 -m $CHANNELS_M -publishers 16" ;;
	fanout-1000-rate500) echo "fanout -n 1000 -m 2500 -rate 500 -publishers 8" ;;
	redis2-fanout-1000-rate500) echo "fanout -nodes 2 -broker redis -n 1000 -m 2500 -rate 500 -publishers 8" ;;
	cable-conns-5000) echo "conns -transport actioncable -n 5000" ;;
	cable-fanout-1000) echo "fanout -transport actioncable -n 1000 -m $FLAT_M_1000 -publishers 8" ;;
	cable-fanout-1000-rate10) echo "fanout -transport actioncable -n 1000 -m $RATE_M -rate 10 -publishers 8" ;;
	*)
		echo "run.sh: unknown scenario $1" >&2
		return 1
		;;
	esac
}

runs=$tmp/runs.jsonl
base_runs=$tmp/base.jsonl
: >"$runs"
: >"$base_runs"
commands=$tmp/commands.md
failed=0
for s in $SCENARIOS; do
	echo "- \`heraldbench $(args_for "$s") -bin <herald> -ping-interval $PING_INTERVAL -timeout $RUN_TIMEOUT -quiet-wait $QUIET_WAIT\`" >>"$commands"
done
start=$(date +%s)
for rep in $(seq 1 "$REPS"); do
	# Repetitions are interleaved so that noise on the shared machine spreads
	# over every scenario instead of spoiling one.
	for s in $SCENARIOS; do
		a=$(args_for "$s")
		echo "run.sh: [$rep/$REPS] $s" >&2
		# shellcheck disable=SC2086
		if ! "$tmp/heraldbench" $a -bin "$bin" -ping-interval "$PING_INTERVAL" -timeout "$RUN_TIMEOUT" \
			-quiet-wait "$QUIET_WAIT" -commit "$commit" -label "rep $rep" >>"$runs"; then
			failed=$((failed + 1))
			echo "run.sh: $s failed (its JSON line has ok=false and the error)" >&2
		fi
		tail -n 1 "$runs" >&2
		if [[ -n $BASELINE ]]; then
			echo "run.sh: [$rep/$REPS] $s (baseline $base_commit)" >&2
			# shellcheck disable=SC2086
			if ! "$tmp/heraldbench" $a -bin "$tmp/herald-base" -ping-interval "$PING_INTERVAL" -timeout "$RUN_TIMEOUT" \
				-quiet-wait "$QUIET_WAIT" -commit "$base_commit" -label "rep $rep" >>"$base_runs"; then
				failed=$((failed + 1))
				echo "run.sh: $s failed on the baseline" >&2
			fi
			tail -n 1 "$base_runs" >&2
		fi
	done
done
elapsed=$(($(date +%s) - start))

mkdir -p "$OUT_DIR"
name="$(date -u +%Y-%m-%d)-$commit"
cp "$runs" "$OUT_DIR/$name.jsonl"
cmdline="REPS=$REPS SCENARIOS=\"$SCENARIOS\" BUILD_FROM=$BUILD_FROM${BASELINE:+ BASELINE=$BASELINE} bench/run.sh"
"$tmp/heraldbench" report -in "$runs" -out "$OUT_DIR/$name.md" -command "$cmdline"
if [[ -n $BASELINE ]]; then
	cp "$base_runs" "$OUT_DIR/$name-baseline-$base_commit.jsonl"
	{
		echo "## Interleaved with the baseline $base_commit"
		echo
		"$tmp/heraldbench" compare -a "$base_runs" -b "$runs"
	} >>"$OUT_DIR/$name.md"
fi
{
	echo "Per-scenario commands (run.sh builds \`<herald>\` from $BUILD_FROM${HERALD_BIN:+ (given binary $HERALD_BIN)}):"
	echo
	cat "$commands"
	echo
	echo "Matrix time: ${elapsed}s for $REPS repetitions; $failed failed runs. Raw runs: \`$name.jsonl\`."
} >>"$OUT_DIR/$name.md"
echo "run.sh: wrote $OUT_DIR/$name.md ($failed failed runs)" >&2
cat "$OUT_DIR/$name.md"
