#!/usr/bin/env bash
# Benchmark part "dkim": what DKIM signing costs gosendmail end to end.
# gosendmail only (no Postfix): Postfix's smtp-source sends to gosendmail's
# daemon (bin/smtpd), whose queue runner relays every message to smtp-sink,
# all on loopback, as in the ingest part's BENCH_INGEST_DELIVERY=sink mode.
# Three configurations run alternately, the daemon started afresh for each
# run: no DKIM, RSA-2048, Ed25519 (keys made with `smtpd dkim keygen`).
#
# Target (from the project's issue): signing costs at most 15% of the
# end-to-end delivered rate with RSA-2048 (Ed25519 reported for
# information). Delivered rate = messages / time from smtp-source's start
# until gosendmail has logged every message stat=Sent and its queue is empty.
# After each timed run a few sample messages go to a second smtp-sink that
# dumps them; each must carry the configuration's DKIM-Signature (a=, d=,
# s=), or none without DKIM, else the part fails without figures. Results go
# to bench-results/dkim.json and dkim.md.
#
# Settings (environment), besides those of run.sh:
#   BENCH_DKIM_MESSAGES=5000  messages per timed run
#   BENCH_DKIM_SESSIONS=20    parallel SMTP sessions (smtp-source -s)
#   BENCH_DKIM_SIZE=2048      payload bytes per message (smtp-source -l)
#   BENCH_DKIM_RUNS=3         rounds; each runs every configuration once
#   BENCH_DKIM_WARMUP=500     untimed messages before each timed run
#   BENCH_DKIM_TIMEOUT=600    seconds one smtp-source run may take
#   SMTP_SOURCE_PATH=PATH     smtp-source, if dpkg cannot tell
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=daemons.sh
. "$BENCH_DIR/daemons.sh"

messages=${BENCH_DKIM_MESSAGES:-5000}
sessions=${BENCH_DKIM_SESSIONS:-20}
size=${BENCH_DKIM_SIZE:-2048}
runs=${BENCH_DKIM_RUNS:-3}
warmup=${BENCH_DKIM_WARMUP:-500}
timeout=${BENCH_DKIM_TIMEOUT:-600}
[[ $runs -ge 1 ]] || bench_die "BENCH_DKIM_RUNS must be at least 1"
[[ -z ${BENCH_ONLY:-} || ${BENCH_ONLY} == gosendmail ]] ||
	{ bench_log "part dkim measures gosendmail only: skipped with BENCH_ONLY=$BENCH_ONLY"; exit 0; }

bench_require_root
bench_ensure_packages postfix python3
bench_build
mkdir -p "$BENCH_RESULTS"
find_smtp_source

servers_init dkim

# The second smtp-sink, which dumps the sample messages.
VERIFY_SINK_PID=
# shellcheck disable=SC2317 # reached through the trap
dkim_cleanup() {
	local rc=$?
	set +e # so that handing on the status below does not end the trap early
	if [[ -n $VERIFY_SINK_PID ]]; then
		kill "$VERIFY_SINK_PID" 2>/dev/null || true
		wait "$VERIFY_SINK_PID" 2>/dev/null || true
		VERIFY_SINK_PID=
	fi
	(exit "$rc")
	servers_cleanup
}
trap dkim_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

load_before=$(awk '{print $1}' /proc/loadavg)

# The keys, as an administrator would make them.
keys="$SERVERS_WORK/keys"
mkdir -p "$keys"
"$BENCH_REPO/bin/smtpd" dkim keygen -d bench.example -s rsa2048 -b 2048 -D "$keys" >"$keys/rsa2048.out" 2>&1 ||
	{ cat "$keys/rsa2048.out" >&2; bench_die "smtpd dkim keygen (RSA-2048) failed"; }
"$BENCH_REPO/bin/smtpd" dkim keygen -d bench.example -s ed --ed25519 -D "$keys" >"$keys/ed.out" 2>&1 ||
	{ cat "$keys/ed.out" >&2; bench_die "smtpd dkim keygen (Ed25519) failed"; }
for sel in rsa2048 ed; do
	echo "$sel._domainkey.bench.example bench.example:$sel:$keys/$sel.private" >"$keys/KeyTable-$sel"
	echo "*@bench.example $sel._domainkey.bench.example" >"$keys/SigningTable-$sel"
done

sink_port=$(bench_free_port)
verify_port=$(bench_free_port "$sink_port")
gs_port=$(bench_free_port "$sink_port" "$verify_port")
sink_start "$sink_port"
# smtp-sink runs as nobody, which must write the dump directory.
verify_dir="$SERVERS_WORK/verify"
mkdir -p "$verify_dir"
chown nobody "$verify_dir"
"$(dirname "$SMTP_SOURCE")/smtp-sink" -4 -u nobody -h verify.bench.example -m 16 \
	-d "$verify_dir/" "127.0.0.1:$verify_port" 16 >>"$SERVERS_WORK/smtp-sink-verify.log" 2>&1 &
VERIFY_SINK_PID=$!
for ((i = 0; i < 100; i++)); do
	port_listening "$verify_port" && break
	kill -0 "$VERIFY_SINK_PID" 2>/dev/null || break
	sleep 0.1
done
port_listening "$verify_port" || bench_die "the dumping smtp-sink does not listen on 127.0.0.1:$verify_port"
bench_log "gosendmail on 127.0.0.1:$gs_port, smtp-sink on $sink_port, dumping smtp-sink on $verify_port"

# dkim_daemon CONFIG ROUND: a fresh spool and configuration for one run, the
# [dkim] table (after the other tables) for a signing configuration; start it.
dkim_daemon() {
	local config=$1 round=$2 sel=
	GS_DIR="$SERVERS_WORK/gs-$config-$round"
	gosendmail_config "$gs_port" 2000 "$sink_port"
	echo "verify.bench.example smtp:[127.0.0.1]:$verify_port" >>"$GS_DIR/mailertable"
	case $config in
	rsa2048) sel=rsa2048 ;;
	ed25519) sel="ed" ;;
	esac
	if [[ -n $sel ]]; then
		cat >>"$GS_CONFIG" <<EOF

[dkim]
key_table = "$keys/KeyTable-$sel"
signing_table = "refile:$keys/SigningTable-$sel"
EOF
	fi
	gosendmail_start
}

runs_dir="$SERVERS_WORK/runs"
mkdir -p "$runs_dir"
configs=(none rsa2048 ed25519)
for ((r = 1; r <= runs; r++)); do
	for ((k = 0; k < 3; k++)); do
		# Rotate the order each round, so no configuration always goes first.
		config=${configs[$(((k + r - 1) % 3))]}
		dkim_daemon "$config" "$r"
		rc=0
		"$BENCH_PYTHON" "$BENCH_DIR/dkim_driver.py" run --config "$config" --round "$r" \
			--position "$k" --smtp-source "$SMTP_SOURCE" --port "$gs_port" --pid "$GS_PID" \
			--queue "$GS_DIR/queue" --log "$GS_DIR/gosendmail.log" --sink-pid "$SINK_PID" \
			--verify-dir "$verify_dir" --messages "$messages" --sessions "$sessions" \
			--size "$size" --warmup "$warmup" --timeout "$timeout" \
			--client-pid-file "$SERVERS_WORK/client.pid" \
			--out "$runs_dir/run-$r-$config.json" || rc=$?
		if [[ $rc -ne 0 ]]; then
			gosendmail_show_logs
			bench_die "part dkim is broken ($config, round $r): no figures"
		fi
		gosendmail_stop || bench_die "gosendmail's daemon did not stop cleanly ($config, round $r)"
		# The spool of a finished run is not needed any more.
		[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf -- "$GS_DIR"
	done
done

meta_args=()
while IFS= read -r line; do
	meta_args+=(--meta "$line")
done < <(bench_machine_info)
# CPU per signature, beside the rates: Go's (the signing code's own
# benchmark) and OpenSSL's RSA-2048, for comparison.
sign_args=()
while read -r name _ ns _; do
	case $name in
	BenchmarkSign/rsa-2048*) sign_args+=(--sign-ms "rsa2048=$(awk -v n="$ns" 'BEGIN { printf "%.4f", n / 1e6 }')") ;;
	BenchmarkSign/ed25519*) sign_args+=(--sign-ms "ed25519=$(awk -v n="$ns" 'BEGIN { printf "%.4f", n / 1e6 }')") ;;
	esac
done < <(cd "$BENCH_REPO" && go test -run '^$' -bench '^BenchmarkSign$' -benchtime 300x ./pkg/dkim/ 2>/dev/null)
if command -v openssl >/dev/null; then
	ossl=$(openssl speed -seconds 2 rsa2048 2>/dev/null | awk '$1 == "rsa" && $2 == "2048" { printf "%.4f", $4 * 1000 }')
	[[ -n $ossl ]] && sign_args+=(--openssl-rsa2048-ms "$ossl")
fi
driver_rc=0
"$BENCH_PYTHON" "$BENCH_DIR/dkim_driver.py" report --runs-dir "$runs_dir" "${sign_args[@]}" \
	--sessions "$sessions" --size "$size" --warmup "$warmup" --load-before "$load_before" \
	--json "$BENCH_RESULTS/dkim.json" --markdown "$BENCH_RESULTS/dkim.md" \
	"${meta_args[@]}" || driver_rc=$?
if [[ $driver_rc -ne 0 && $driver_rc -ne 3 ]]; then
	exit "$driver_rc"
fi
if [[ $driver_rc -eq 3 && ${BENCH_STRICT:-0} == 1 ]]; then
	exit 3
fi
exit 0
