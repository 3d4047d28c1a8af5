#!/usr/bin/env bash
# Benchmark part "ingest": SMTP accept rate of gosendmail's daemon (bin/smtpd)
# side by side with Postfix's smtpd, on loopback, driven by Postfix's
# smtp-source: 5,000 messages of 2 KB over 20 parallel sessions per run.
#
# Target (from the project's issue): at least 2x Postfix's accept rate. The
# figure is accepting into the queue: messages / wall time of smtp-source,
# each answered 250 only once durable (gosendmail: qf and df fsync'd; Postfix:
# its queue file fsync'd by cleanup). What the servers do with the mail
# meanwhile is set by BENCH_INGEST_DELIVERY (below). The verdict is printed,
# not asserted; results go to bench-results/ingest.json and ingest.md.
#
# Settings (environment), besides those of run.sh:
#   BENCH_INGEST_MESSAGES=5000  messages per timed run
#   BENCH_INGEST_SESSIONS=20    parallel SMTP sessions (smtp-source -s)
#   BENCH_INGEST_SIZE=2048      payload bytes per message (smtp-source -l)
#   BENCH_INGEST_RUNS=3         timed runs per server, alternating
#   BENCH_INGEST_WARMUP=500     untimed messages per server first
#   BENCH_INGEST_TIMEOUT=600    seconds one run may take
#   BENCH_INGEST_DELIVERY=discard  what happens to accepted mail:
#       discard: Postfix delivers it to its discard transport; gosendmail's
#                queue runner tries it once and defers it, as its DNS server
#                is a dead loopback port (the queue keeps every message);
#       sink:    both relay it over SMTP to one smtp-sink on 127.0.0.1.
#   SMTP_SOURCE_PATH=PATH       smtp-source, if dpkg cannot tell
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=daemons.sh
. "$BENCH_DIR/daemons.sh"

messages=${BENCH_INGEST_MESSAGES:-5000}
sessions=${BENCH_INGEST_SESSIONS:-20}
size=${BENCH_INGEST_SIZE:-2048}
runs=${BENCH_INGEST_RUNS:-3}
warmup=${BENCH_INGEST_WARMUP:-500}
timeout=${BENCH_INGEST_TIMEOUT:-600}
delivery=${BENCH_INGEST_DELIVERY:-discard}
# The part "e2e" is this part in sink mode, with results of its own.
result_name=${BENCH_RESULT_NAME:-ingest}
[[ $delivery == discard || $delivery == sink ]] || bench_die "BENCH_INGEST_DELIVERY must be discard or sink, not $delivery"

bench_require_root
bench_ensure_packages postfix python3
bench_build
mkdir -p "$BENCH_RESULTS"
find_smtp_source
postfix_version=$(postconf -d -h mail_version)
[[ $postfix_version == 3.7.* ]] ||
	bench_log "warning: Postfix is $postfix_version, the target is stated against Postfix 3.7"

servers_init ingest
trap servers_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Two ports, never the same, both on 127.0.0.1 (three with the sink).
pf_port=$(bench_free_port)
gs_port=$(bench_free_port "$pf_port")
sink_port=
if [[ $delivery == sink ]]; then
	sink_port=$(bench_free_port "$pf_port" "$gs_port")
	sink_start "$sink_port"
fi
# BENCH_ONLY=postfix|gosendmail starts and measures one side alone.
[[ ${BENCH_ONLY:-} == gosendmail ]] || postfix_start "$pf_port" "$sink_port"
gosendmail_config "$gs_port" 2000 "$sink_port"
[[ ${BENCH_ONLY:-} == postfix ]] || gosendmail_start
bench_log "Postfix smtpd on 127.0.0.1:$pf_port, gosendmail on 127.0.0.1:$gs_port"

extra_args=()
[[ -n ${BENCH_ONLY:-} ]] && extra_args+=(--only "$BENCH_ONLY")
while IFS= read -r line; do
	extra_args+=(--meta "$line")
done < <(bench_machine_info)

driver_rc=0
"$BENCH_PYTHON" "$BENCH_DIR/ingest_driver.py" \
	--smtp-source "$SMTP_SOURCE" \
	--gosendmail-port "$gs_port" --gosendmail-pid "${GS_PID:-0}" \
	--gosendmail-queue "$GS_DIR/queue" --gosendmail-log "$GS_DIR/gosendmail.log" \
	--postfix-port "$pf_port" --postfix-spool "$PF_DIR/spool" \
	--postfix-log "$PF_DIR/maillog" --postfix-master-pid "${PF_MASTER_PID:-0}" \
	--delivery "$delivery" --sink-pid "${SINK_PID:-0}" --messages "$messages" --sessions "$sessions" --size "$size" --runs "$runs" \
	--warmup "$warmup" --timeout "$timeout" --client-pid-file "$SERVERS_WORK/client.pid" \
	--json "$BENCH_RESULTS/$result_name.json" --markdown "$BENCH_RESULTS/$result_name.md" \
	"${extra_args[@]}" || driver_rc=$?

if [[ $driver_rc -ne 0 && $driver_rc -ne 3 ]]; then
	gosendmail_show_logs
	if [[ -s $PF_DIR/maillog ]]; then
		bench_log "last lines of $PF_DIR/maillog:"
		tail -n 20 "$PF_DIR/maillog" >&2
	fi
	exit "$driver_rc"
fi
if [[ $driver_rc -eq 3 && ${BENCH_STRICT:-0} == 1 ]]; then
	exit 3
fi
exit 0
