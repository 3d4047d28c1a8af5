#!/usr/bin/env bash
# Benchmark part "milter": what one milter that changes nothing costs
# gosendmail end to end. gosendmail only: the e2e load (smtp-source ->
# smtpd -> smtp-sink; the ingest settings apply) without a milter, then
# with scripts/bench/noopmilter (a libmilter no-op milter, built here with
# gcc) as its one [[milter]], each measured by the ingest part's driver in
# sink mode, in rounds (BENCH_MILTER_ROUNDS=5) of one run of each. The
# milter asks for every step of every message and changes nothing; it is
# measured three times, as it answers:
#   eom:    only the end of the message (SMFIP_NR_* for the rest, as rspamd
#           asks for), with "continue", libmilter's answer for a step the
#           filter leaves alone: the verdict;
#   accept: the same, with "accept" at the end (rspamd's answer for mail it
#           lets through): reported beside it;
#   all:    every step, with "continue" (as opendkim does): reported.
#
# Target (from the project's milter issue): with one no-op milter in the
# path, the end-to-end delivered rate stays within 25% of the rate without
# it. Results: bench-results/milter.json and milter.md (and the
# measurements' own files, milter-{none,eom,accept,all}-ROUND.*).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=daemons.sh
. "$BENCH_DIR/daemons.sh"

[[ -z ${BENCH_ONLY:-} || ${BENCH_ONLY} == gosendmail ]] ||
	{ bench_log "part milter measures gosendmail only: skipped with BENCH_ONLY=$BENCH_ONLY"; exit 0; }
bench_require_root
bench_ensure_packages postfix python3 gcc libmilter-dev
bench_build
mkdir -p "$BENCH_RESULTS"

work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/gosendmail-bench-milter.XXXXXX")
milter_pids=()
# shellcheck disable=SC2317 # reached through the trap
cleanup() {
	local pid
	for pid in "${milter_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

gcc -O2 -Wall -o "$work/noopmilter" "$BENCH_DIR/noopmilter/noopmilter.c" -lmilter -lpthread ||
	bench_die "cannot build scripts/bench/noopmilter/noopmilter.c (gcc, libmilter-dev)"
# The milters listen on Unix sockets, as Debian sets up the libmilter
# filters (opendkim, opendmarc, spamass-milter, clamav-milter); the
# daemon's user must reach them.
chmod 755 "$work"
for mode in eom accept all; do
	(umask 0 && exec "$work/noopmilter" "unix:$work/noop-$mode.sock" "$mode") >"$work/noopmilter-$mode.log" 2>&1 &
	milter_pids+=($!)
done
for mode in eom accept all; do
	for ((i = 0; i < 50; i++)); do
		[[ -S $work/noop-$mode.sock ]] && break
		sleep 0.1
	done
	[[ -S $work/noop-$mode.sock ]] || bench_die "the no-op milter ($mode) does not listen on $work/noop-$mode.sock"
done
bench_log "no-op milters on $work/noop-{eom,accept,all}.sock"

# Rounds of one run each, the four set-ups in turn, so that a machine
# that gets busier or quieter meanwhile weighs on all of them alike.
rounds=${BENCH_MILTER_ROUNDS:-5}
export BENCH_ONLY=gosendmail BENCH_INGEST_DELIVERY=sink BENCH_SKIP_BUILD=1 BENCH_INGEST_RUNS=1
for ((round = 1; round <= rounds; round++)); do
	BENCH_RESULT_NAME=milter-none-$round bash "$BENCH_DIR/ingest.sh"
	for mode in eom accept all; do
		BENCH_RESULT_NAME=milter-$mode-$round \
			BENCH_GS_EXTRA_CONFIG=$'[[milter]]\nname = "noop"\nsocket = "unix:'"$work/noop-$mode.sock"'"' \
			bash "$BENCH_DIR/ingest.sh"
	done
done

"$BENCH_PYTHON" "$BENCH_DIR/milter_report.py" "$BENCH_RESULTS" "$rounds"
