#!/usr/bin/env bash
# Benchmark part "bigqueue": a queue of 100,000 deferred messages. gosendmail
# only (no Postfix). scripts/bench/mkqueue (built with go build into the
# part's temporary directory, not into bin/) writes the messages through
# pkg/spool as the daemon would: each a 2 KB df and a qf with one or two
# remote recipients, one failed attempt ("Deferred: Connection refused by
# remote.bench.example.") and the next attempt an hour away. Then:
#   1. bin/mailq lists the queue (no daemon running), output to /dev/null:
#      once with a cold page cache (after sync and drop_caches), then
#      several times warm; one more listing is checked (exit 0, N entries,
#      last line "Total requests: N");
#   2. bin/smtpd starts on the queue (its queue runner scans all of it) and
#      is sampled (VmRSS, VmHWM, bytes read) until its start-up scan is over
#      and the settle time has passed;
#   3. `sendmail -q` asks it to flush the whole queue: every attempt is
#      deferred at once, as its DNS server is a dead loopback port (nothing
#      leaves the machine), and it is sampled for the flush hold; then it is
#      stopped with SIGTERM.
#
# Targets (from the project's delivery issue): mailq lists the 100,000
# messages in under 3 s (warm, median) and the runner's RSS stays under
# 300 MB (taken as 300 MiB: peak RSS, VmHWM, after start-up and after the
# flush). The verdicts are printed, not asserted; results go to
# bench-results/bigqueue.json and bigqueue.md.
#
# Settings (environment), besides those of run.sh:
#   BENCH_BIGQUEUE_MESSAGES=100000  messages in the queue
#   BENCH_BIGQUEUE_MAILQ_RUNS=5     timed warm mailq runs (after the cold one)
#   BENCH_BIGQUEUE_SETTLE=10        seconds the daemon is sampled at least
#                                   after it started (and until its scan ends)
#   BENCH_BIGQUEUE_FLUSH_HOLD=20    seconds sampled from `sendmail -q` on
#   BENCH_BIGQUEUE_WRITERS=32       messages mkqueue writes at once
#   BENCH_BIGQUEUE_TIMEOUT=300      seconds one mailq run or the scan may take
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=daemons.sh
. "$BENCH_DIR/daemons.sh"

messages=${BENCH_BIGQUEUE_MESSAGES:-100000}
mailq_runs=${BENCH_BIGQUEUE_MAILQ_RUNS:-5}
settle=${BENCH_BIGQUEUE_SETTLE:-10}
flush_hold=${BENCH_BIGQUEUE_FLUSH_HOLD:-20}
writers=${BENCH_BIGQUEUE_WRITERS:-32}
timeout=${BENCH_BIGQUEUE_TIMEOUT:-300}
[[ $messages =~ ^[0-9]+$ && $messages -ge 1 ]] || bench_die "BENCH_BIGQUEUE_MESSAGES must be a positive number"
[[ $mailq_runs =~ ^[0-9]+$ && $mailq_runs -ge 1 ]] || bench_die "BENCH_BIGQUEUE_MAILQ_RUNS must be at least 1"
[[ -z ${BENCH_ONLY:-} || ${BENCH_ONLY} == gosendmail ]] ||
	{ bench_log "part bigqueue measures gosendmail only: skipped with BENCH_ONLY=$BENCH_ONLY"; exit 0; }

bench_require_root
# time: GNU time, for mailq's peak RSS. Postfix is not needed here.
bench_ensure_packages python3 time
bench_build
command -v go >/dev/null || bench_die "go is not on PATH: cannot build scripts/bench/mkqueue"
for b in mailq sendmail smtpd; do
	[[ -x $BENCH_REPO/bin/$b ]] || bench_die "$BENCH_REPO/bin/$b was not built"
done
mkdir -p "$BENCH_RESULTS"

servers_init bigqueue
trap servers_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
load_before=$(awk '{print $1}' /proc/loadavg)
# now: the time in seconds since the epoch, with a decimal point whatever
# the locale.
now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }

gs_port=$(bench_free_port)
# The daemon's configuration, as in the other parts: its own empty maps, a
# listener on a loopback port, and a DNS server nothing listens on.
gosendmail_config "$gs_port" 100

bench_log "building scripts/bench/mkqueue"
(cd "$BENCH_REPO" && go build -o "$SERVERS_WORK/mkqueue" ./scripts/bench/mkqueue) >&2 ||
	bench_die "cannot build scripts/bench/mkqueue"
bench_log "writing $messages deferred messages into $GS_DIR/queue"
build_began=$(now)
"$SERVERS_WORK/mkqueue" -dir "$GS_DIR/queue" -n "$messages" -workers "$writers" >&2 ||
	bench_die "mkqueue could not write the queue"
build_done=$(now)

driver_fail() {
	gosendmail_show_logs
	bench_die "part bigqueue is broken: no figures"
}

# 1. mailq, no daemon running.
"$BENCH_PYTHON" "$BENCH_DIR/bigqueue_driver.py" mailq --mailq "$BENCH_REPO/bin/mailq" \
	--config "$GS_CONFIG" --queue "$GS_DIR/queue" --messages "$messages" --runs "$mailq_runs" \
	--timeout "$timeout" --work "$SERVERS_WORK" --out "$SERVERS_WORK/mailq.json" ||
	bench_die "part bigqueue is broken: no figures"

# 2. and 3. the daemon on the full queue, then a flush of all of it.
start_began=$(now)
gosendmail_start
start_done=$(now)
bench_log "gosendmail (pid $GS_PID) on 127.0.0.1:$gs_port, queue of $messages messages"
"$BENCH_PYTHON" "$BENCH_DIR/bigqueue_driver.py" runner --pid "$GS_PID" \
	--log "$GS_DIR/gosendmail.log" --queue "$GS_DIR/queue" --sendmail "$BENCH_REPO/bin/sendmail" \
	--config "$GS_CONFIG" --messages "$messages" --settle "$settle" --flush-hold "$flush_hold" \
	--timeout "$timeout" --out "$SERVERS_WORK/runner.json" || driver_fail
stop_began=$(now)
gosendmail_stop || driver_fail
stop_done=$(now)

meta_args=()
while IFS= read -r line; do
	meta_args+=(--meta "$line")
done < <(bench_machine_info)
driver_rc=0
"$BENCH_PYTHON" "$BENCH_DIR/bigqueue_driver.py" report --mailq-json "$SERVERS_WORK/mailq.json" \
	--runner-json "$SERVERS_WORK/runner.json" --log "$GS_DIR/gosendmail.log" \
	--messages "$messages" --settle "$settle" \
	--build-began "$build_began" --build-done "$build_done" \
	--start-began "$start_began" --start-done "$start_done" \
	--stop-began "$stop_began" --stop-done "$stop_done" --load-before "$load_before" \
	--json "$BENCH_RESULTS/bigqueue.json" --markdown "$BENCH_RESULTS/bigqueue.md" \
	"${meta_args[@]}" || driver_rc=$?
if [[ $driver_rc -ne 0 && $driver_rc -ne 3 ]]; then
	exit "$driver_rc"
fi
if [[ $driver_rc -eq 3 && ${BENCH_STRICT:-0} == 1 ]]; then
	exit 3
fi
exit 0
