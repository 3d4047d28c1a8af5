#!/usr/bin/env bash
# Benchmark part "idle": 2,000 concurrent idle SMTP connections held against
# gosendmail's daemon (bin/smtpd), then against Postfix's smtpd for
# comparison, on loopback.
#
# Targets (from the project's issue): every one of the 2,000 connections gets
# a 220 banner (none refused below the configured max_connections = 2000), and
# the daemon's RSS while holding them stays under 200 MiB. Postfix's figures
# are for information: its smtpd runs one process per connection, at most
# default_process_limit (100) of them, and queues the rest. The verdicts are
# printed, not asserted; results go to bench-results/idle.json and idle.md.
#
# Settings (environment), besides those of run.sh:
#   BENCH_IDLE_CONNECTIONS=2000  connections opened at once (also gosendmail's
#                                max_connections)
#   BENCH_IDLE_HOLD=5            seconds the connections are held
#   BENCH_IDLE_TIMEOUT=10        seconds to wait for the banners
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=daemons.sh
. "$BENCH_DIR/daemons.sh"

connections=${BENCH_IDLE_CONNECTIONS:-2000}
hold=${BENCH_IDLE_HOLD:-5}
timeout=${BENCH_IDLE_TIMEOUT:-10}

bench_require_root
bench_ensure_packages postfix python3
bench_build
mkdir -p "$BENCH_RESULTS"

servers_init idle
trap servers_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pf_port=$(bench_free_port)
gs_port=$(bench_free_port "$pf_port")
[[ ${BENCH_ONLY:-} == gosendmail ]] || postfix_start "$pf_port"
gosendmail_config "$gs_port" "$connections"
# gosendmail_start raises the daemon's descriptor limit to 8192 (ulimit -n).
[[ ${BENCH_ONLY:-} == postfix ]] || gosendmail_start
bench_log "Postfix smtpd on 127.0.0.1:$pf_port, gosendmail on 127.0.0.1:$gs_port"

extra_args=()
[[ -n ${BENCH_ONLY:-} ]] && extra_args+=(--only "$BENCH_ONLY")
while IFS= read -r line; do
	extra_args+=(--meta "$line")
done < <(bench_machine_info)

driver_rc=0
"$BENCH_PYTHON" "$BENCH_DIR/idle_driver.py" \
	--gosendmail-port "$gs_port" --gosendmail-pid "${GS_PID:-0}" \
	--gosendmail-log "$GS_DIR/gosendmail.log" --max-connections "$connections" \
	--postfix-port "$pf_port" --postfix-spool "$PF_DIR/spool" --postfix-log "$PF_DIR/maillog" \
	--connections "$connections" --hold "$hold" --timeout "$timeout" \
	--json "$BENCH_RESULTS/idle.json" --markdown "$BENCH_RESULTS/idle.md" \
	"${extra_args[@]}" || driver_rc=$?

if [[ $driver_rc -ne 0 && $driver_rc -ne 3 ]]; then
	gosendmail_show_logs
	exit "$driver_rc"
fi
if [[ $driver_rc -eq 3 && ${BENCH_STRICT:-0} == 1 ]]; then
	exit 3
fi
exit 0
