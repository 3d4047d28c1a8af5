#!/usr/bin/env bash
# Benchmark part "milter": what one milter that changes nothing costs
# gosendmail end to end. gosendmail only: the e2e load (smtp-source ->
# smtpd -> smtp-sink; the ingest settings apply) without a milter, then
# with scripts/bench/noopmilter as its one [[milter]], each measured by the
# ingest part's driver in sink mode.
#
# Target (from the project's milter issue): with one no-op milter in the
# path, the end-to-end delivered rate stays within 25% of the rate without
# it. Results: bench-results/milter.json and milter.md (and the two
# measurements' own files, milter-none.* and milter-noop.*).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=daemons.sh
. "$BENCH_DIR/daemons.sh"

[[ -z ${BENCH_ONLY:-} || ${BENCH_ONLY} == gosendmail ]] ||
	{ bench_log "part milter measures gosendmail only: skipped with BENCH_ONLY=$BENCH_ONLY"; exit 0; }
bench_require_root
bench_ensure_packages postfix python3
bench_build
mkdir -p "$BENCH_RESULTS"

work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/gosendmail-bench-milter.XXXXXX")
milter_pid=
# shellcheck disable=SC2317 # reached through the trap
cleanup() {
	if [[ -n $milter_pid ]]; then
		kill "$milter_pid" 2>/dev/null || true
		wait "$milter_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$BENCH_REPO" && go build -o "$work/noopmilter" ./scripts/bench/noopmilter) ||
	bench_die "cannot build scripts/bench/noopmilter"
port=$(bench_free_port)
"$work/noopmilter" "127.0.0.1:$port" >"$work/noopmilter.log" 2>&1 &
milter_pid=$!
for ((i = 0; i < 50; i++)); do
	port_listening "$port" && break
	sleep 0.1
done
port_listening "$port" || bench_die "the no-op milter does not listen on 127.0.0.1:$port"
bench_log "no-op milter on 127.0.0.1:$port"

export BENCH_ONLY=gosendmail BENCH_INGEST_DELIVERY=sink BENCH_SKIP_BUILD=1
BENCH_RESULT_NAME=milter-none bash "$BENCH_DIR/ingest.sh"
BENCH_RESULT_NAME=milter-noop \
	BENCH_GS_EXTRA_CONFIG=$'[[milter]]\nname = "noop"\nsocket = "inet:'"$port"'@127.0.0.1"' \
	bash "$BENCH_DIR/ingest.sh"

"$BENCH_PYTHON" "$BENCH_DIR/milter_report.py" "$BENCH_RESULTS"
