#!/usr/bin/env bash
# Benchmark part "submit": local submission with `sendmail -t -i`, gosendmail's
# bin/sendmail side by side with Postfix's sendmail on this machine.
#
# Target (from the project's issue): over 500 sequential submissions of a
# small message, gosendmail's median latency at most half of Postfix's, and
# peak RSS of one gosendmail sendmail process under 15 MiB. The figures are
# printed with a PASS/FAIL verdict, not asserted (machines are noisy), and
# written to bench-results/submit.json and bench-results/submit.md.
#
# Run by run.sh (`make bench`); also runs on its own. Settings: see run.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

count=${BENCH_COUNT:-500}
rounds=${BENCH_ROUNDS:-5}
warmup=${BENCH_WARMUP:-10}
rss_samples=${BENCH_RSS_SAMPLES:-50}
tmpbase=${BENCH_TMPDIR:-/var/tmp}

bench_require_root
# time: GNU time measures the peak RSS (see submit_driver.py for why not wait4).
bench_ensure_packages postfix python3 time
bench_build
mkdir -p "$BENCH_RESULTS"

gosendmail="$BENCH_REPO/bin/sendmail"
[[ -x $gosendmail || ${BENCH_ONLY:-} == postfix ]] || bench_die "$gosendmail was not built"
postfix_sendmail=$(bench_postfix_sendmail)
postfix_version=$(postconf -d -h mail_version)
[[ $postfix_version == 3.7.* ]] ||
	bench_log "warning: Postfix is $postfix_version, the target is stated against Postfix 3.7"

# fsync is what makes a submission durable; on tmpfs it costs nothing and the
# comparison would say little about a real mail server.
fs=$(df -PT "$tmpbase" | awk 'NR==2 {print $2}')
[[ $fs != tmpfs && $fs != ramfs ]] ||
	bench_log "warning: $tmpbase is on $fs, where fsync costs nothing; set BENCH_TMPDIR to a disk-backed directory"

# Both spools live under one directory on one filesystem, so both
# implementations pay the same fsync price.
work=$(mktemp -d "$tmpbase/gosendmail-bench.XXXXXX")
# Postfix's daemons run as the postfix user and must traverse to their queue.
chmod 0755 "$work"
pf="$work/postfix"
gs="$work/gosendmail"
master_pid=

# shellcheck disable=SC2317 # reached through the trap, which shellcheck misses
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_postfix || rc=1
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then
		bench_log "kept $work"
	else
		rm -rf -- "$work"
	fi
	exit "$rc"
}

# stop_postfix: stop the private instance and wait until none of its
# processes is left, so the machine is as we found it.
# shellcheck disable=SC2317
stop_postfix() {
	[[ -n $master_pid ]] || return 0
	postfix_instance_stop "$pf" "$master_pid" "$work/postfix-control.log" || return 1
	master_pid=
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- Postfix: a private, local-only instance --------------------------------
# Its own config and queue directories under $work, no network listener at
# all (master.cf has no inet service), and every transport is `discard`, so
# nothing can leave the machine and /etc/postfix is not touched. pickup,
# cleanup and qmgr run for real, as they would behind any sendmail call.
mkdir -p "$pf/etc" "$pf/spool" "$pf/data"
chown postfix "$pf/data"
cat >"$pf/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/spool
data_directory = $pf/data
maillog_file = $pf/maillog
myhostname = bench-host.bench.example
mydomain = bench.example
myorigin = \$myhostname
mydestination =
relay_domains =
inet_interfaces = loopback-only
inet_protocols = ipv4
default_transport = discard:benchmark
relay_transport = discard:benchmark
local_transport = discard:benchmark
virtual_transport = discard:benchmark
alias_maps =
alias_database =
biff = no
EOF
# No chroot: the Debian init script that would populate a chroot is not used.
cat >"$pf/etc/master.cf" <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
# `postfix check` creates the queue subdirectories with Postfix's own owners
# and modes (maildrop 1730 postfix:postdrop, as postdrop expects).
if ! postfix -c "$pf/etc" check >>"$work/postfix-control.log" 2>&1 ||
	! postfix -c "$pf/etc" start >>"$work/postfix-control.log" 2>&1; then
	cat "$work/postfix-control.log" "$pf/maillog" >&2 2>/dev/null || true
	bench_die "could not start the private Postfix instance"
fi
for ((i = 0; i < 50; i++)); do
	master_pid=$(tr -dc '0-9' <"$pf/spool/pid/master.pid" 2>/dev/null || true)
	[[ -n $master_pid ]] && break
	sleep 0.1
done
[[ -n $master_pid ]] || bench_die "Postfix master did not write its pid file"

# ---- gosendmail: a throw-away configuration ----------------------------------
mkdir -p "$gs/queue" "$gs/maildrop" "$gs/mail"
: >"$gs/aliases"
cat >"$gs/gosendmail.toml" <<EOF
# Written by scripts/bench/submit.sh for one benchmark run.
hostname = "bench-host.bench.example"
queue_dir = "$gs/queue"
maildrop_dir = "$gs/maildrop"
mail_spool_dir = "$gs/mail"
aliases = "$gs/aliases"
log = "$gs/gosendmail.log"
control_socket = "$gs/control.sock"
EOF

# ---- measure -----------------------------------------------------------------
extra_args=()
# BENCH_ONLY=postfix|gosendmail measures one side alone (e.g. the reference
# while bin/sendmail cannot submit yet): figures, no ratio, no verdict.
[[ -n ${BENCH_ONLY:-} ]] && extra_args+=(--only "$BENCH_ONLY")
while IFS= read -r line; do
	extra_args+=(--meta "$line")
done < <(bench_machine_info)

driver_rc=0
"$BENCH_PYTHON" "$BENCH_DIR/submit_driver.py" \
	--gosendmail "$gosendmail" --gosendmail-config "$gs/gosendmail.toml" \
	--gosendmail-spool "$gs/maildrop" --gosendmail-spool "$gs/queue" \
	--postfix "$postfix_sendmail" --postfix-config "$pf/etc" \
	--postfix-queue "$pf/spool" --postfix-log "$pf/maillog" \
	--count "$count" --rounds "$rounds" --warmup "$warmup" \
	--rss-samples "$rss_samples" --gnu-time /usr/bin/time \
	--json "$BENCH_RESULTS/submit.json" --markdown "$BENCH_RESULTS/submit.md" \
	"${extra_args[@]}" || driver_rc=$?

if [[ $driver_rc -ne 0 && $driver_rc -ne 3 ]]; then
	# Leave what the failing side wrote where a person can read it.
	for f in "$gs/gosendmail.log" "$pf/maillog"; do
		[[ -s $f ]] || continue
		bench_log "last lines of $f:"
		tail -n 20 "$f" >&2
	done
	exit "$driver_rc"
fi
if [[ $driver_rc -eq 3 && ${BENCH_STRICT:-0} == 1 ]]; then
	exit 3
fi
exit 0
