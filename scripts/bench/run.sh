#!/usr/bin/env bash
# Entry point of `make bench`: prepares the machine once (packages, build),
# prints what it runs on, then runs each benchmark part in turn.
#
#   bash scripts/bench/run.sh [--update-docs] [PART...]
#
# PART names a script scripts/bench/PART.sh listed in BENCH_PARTS below
# (default: all of them). --update-docs copies each part's Markdown summary into
# docs/benchmarks.md between that part's markers. Settings (environment):
#   BENCH_TMPDIR=/var/tmp  where the spools go (must be a real disk: fsync)
#   BENCH_KEEP=1         keep the temporary spools and logs for inspection
#   BENCH_SKIP_BUILD=1   measure bin/ as it is
#   BENCH_STRICT=1       exit 3 when a target is missed (default: report only)
#   BENCH_ONLY=postfix   measure one side alone (or =gosendmail); no verdict
# Part submit (local submission with sendmail -t -i):
#   BENCH_COUNT=500      submissions per implementation
#   BENCH_ROUNDS=5       interleaved rounds the submissions are split into
#   BENCH_WARMUP=10      untimed submissions per implementation first
#   BENCH_RSS_SAMPLES=50 untimed submissions per implementation under GNU time
#   POSTFIX_SENDMAIL=PATH  Postfix's sendmail, if dpkg cannot tell
# Part ingest (SMTP accept rate, Postfix's smtp-source against both servers):
#   BENCH_INGEST_MESSAGES=5000 BENCH_INGEST_SESSIONS=20 BENCH_INGEST_SIZE=2048
#   BENCH_INGEST_RUNS=3 BENCH_INGEST_WARMUP=500 BENCH_INGEST_TIMEOUT=600
#   BENCH_INGEST_DELIVERY=discard  or sink: see ingest.sh
#   SMTP_SOURCE_PATH=PATH  Postfix's smtp-source, if dpkg cannot tell
# Part dkim (gosendmail only: delivered rate without DKIM, RSA-2048, Ed25519):
#   BENCH_DKIM_MESSAGES=5000 BENCH_DKIM_SESSIONS=20 BENCH_DKIM_SIZE=2048
#   BENCH_DKIM_RUNS=3 BENCH_DKIM_WARMUP=500 BENCH_DKIM_TIMEOUT=600
# Part idle (concurrent idle SMTP connections):
#   BENCH_IDLE_CONNECTIONS=2000 BENCH_IDLE_HOLD=5 BENCH_IDLE_TIMEOUT=10
# Part bigqueue (gosendmail only: mailq and the runner on 100,000 deferred messages):
#   BENCH_BIGQUEUE_MESSAGES=100000 BENCH_BIGQUEUE_MAILQ_RUNS=5
#   BENCH_BIGQUEUE_SETTLE=10 BENCH_BIGQUEUE_FLUSH_HOLD=20
#   BENCH_BIGQUEUE_WRITERS=32 BENCH_BIGQUEUE_TIMEOUT=300
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# New parts are added here, beside submit.sh, in the order they should run.
BENCH_PARTS=(submit ingest e2e bigqueue dkim milter idle ceiling)

update_docs=0
parts=()
for arg in "$@"; do
	case $arg in
	--update-docs) update_docs=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*) bench_die "unknown option $arg" ;;
	*)
		[[ " ${BENCH_PARTS[*]} " == *" $arg "* ]] || bench_die "unknown part $arg (parts: ${BENCH_PARTS[*]})"
		parts+=("$arg")
		;;
	esac
done
[[ ${#parts[@]} -gt 0 ]] || parts=("${BENCH_PARTS[@]}")
# One-sided figures are no result to publish.
[[ $update_docs -eq 0 || -z ${BENCH_ONLY:-} ]] || bench_die "--update-docs needs both sides measured (unset BENCH_ONLY)"

# A Makefile whose default target were `bench` would recurse through
# bench_build's `make`; refuse instead of looping.
[[ -z ${GOSENDMAIL_BENCH_RUNNING:-} ]] || bench_die "run.sh started itself again (is 'bench' the Makefile's default target?)"
export GOSENDMAIL_BENCH_RUNNING=1

bench_require_root
# postfix: the reference implementation; python3: the timing driver;
# time: GNU time, which measures peak RSS.
bench_ensure_packages postfix python3 time
bench_build
mkdir -p "$BENCH_RESULTS"

echo "== machine"
bench_machine_info | sed 's/=/: /; s/^/  /'
echo

status=0
for part in "${parts[@]}"; do
	echo "== $part"
	# A failing part is reported and the others still run; the exit status
	# says that something failed.
	rc=0
	bash "$BENCH_DIR/$part.sh" || rc=$?
	if [[ $rc -ne 0 ]]; then
		bench_log "part $part: exit $rc"
		# Keep the most telling status: an error (anything but 3) over a
		# missed target (3, only with BENCH_STRICT=1).
		if [[ $status -eq 0 || $status -eq 3 ]]; then status=$rc; fi
	fi
	# A missed target (3) still measured; an error produced no figures.
	if [[ $update_docs -eq 1 && ($rc -eq 0 || $rc -eq 3) ]]; then
		"$BENCH_PYTHON" "$BENCH_DIR/update_docs.py" "$part" \
			"$BENCH_RESULTS/$part.md" "$BENCH_REPO/docs/benchmarks.md"
	fi
	echo
done
# The README's table: every part's latest figures, with the machine.
if [[ $update_docs -eq 1 ]]; then
	"$BENCH_PYTHON" "$BENCH_DIR/summary.py" "$BENCH_RESULTS" "$BENCH_REPO/README.md" >/dev/null
fi
exit "$status"
