# shellcheck shell=bash
# Helpers for the benchmark parts that run SMTP servers (ingest.sh, idle.sh):
# a private Postfix instance whose smtpd listens on one loopback port, and
# gosendmail's daemon (bin/smtpd) on another. Sourced after lib.sh; the caller
# sets -euo pipefail, calls servers_init once, and traps servers_cleanup.
#
# Nothing here listens beyond 127.0.0.1 and nothing can deliver off the
# machine: every Postfix transport is `discard` (or SMTP to a sink on
# 127.0.0.1), gosendmail's DNS server is a dead loopback port, so its queue
# runner can resolve no domain, and its mailertable routes the benchmark's
# one recipient domain to the discard mailer or to that sink.

# These are read by the scripts that source this file.
# shellcheck disable=SC2034
SERVERS_WORK=
PF_DIR=
PF_PORT=
PF_MASTER_PID=
GS_DIR=
GS_PORT=
GS_PID=
GS_CONFIG=
SMTP_SOURCE=

# servers_init PART: make the temporary directory under BENCH_TMPDIR that
# holds both spools (one filesystem, so both pay the same fsync price).
servers_init() {
	local part=$1 tmpbase=${BENCH_TMPDIR:-/var/tmp} fs
	fs=$(df -PT "$tmpbase" | awk 'NR==2 {print $2}')
	[[ $fs != tmpfs && $fs != ramfs ]] ||
		bench_log "warning: $tmpbase is on $fs, where fsync costs nothing; set BENCH_TMPDIR to a disk-backed directory"
	[[ $(bench_spool_journal) != no ]] ||
		bench_log "warning: $tmpbase is on ext4 without a journal, unlike a usual server: creating a file there costs more the more files were deleted in the last minutes, so the server that creates more files per message pays more than it would elsewhere"
	SERVERS_WORK=$(mktemp -d "$tmpbase/gosendmail-bench-$part.XXXXXX")
	# Postfix's daemons run as the postfix user and must traverse to their queue.
	chmod 0755 "$SERVERS_WORK"
	PF_DIR="$SERVERS_WORK/postfix"
	GS_DIR="$SERVERS_WORK/gosendmail"
}

# bench_free_port [TAKEN...]: print a loopback port, outside the ephemeral
# range, that is free for TCP and UDP right now and not among TAKEN.
bench_free_port() {
	"$BENCH_PYTHON" - "$@" <<'EOF'
import random, socket, sys
taken = {int(p) for p in sys.argv[1:]}
for _ in range(1000):
    port = random.randint(20000, 32000)
    if port in taken:
        continue
    try:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    sys.exit(0)
sys.exit("no free loopback port found")
EOF
}

# find_smtp_source: Postfix's SMTP load generator, from the postfix package.
find_smtp_source() {
	local path=${SMTP_SOURCE_PATH:-}
	if [[ -z $path ]]; then
		path=$(dpkg-query -L postfix 2>/dev/null | grep -m1 '/smtp-source$' || true)
		[[ -n $path ]] || path=/usr/sbin/smtp-source
	fi
	[[ -x $path ]] || bench_die "smtp-source not found (looked for $path; it comes with the postfix package, or set SMTP_SOURCE_PATH)"
	SMTP_SOURCE=$path
}

# ---- Postfix ----------------------------------------------------------------

# postfix_start PORT [SINK_PORT]: configure and start the private instance,
# its smtpd on 127.0.0.1:PORT. Everything it accepts goes to the discard
# transport, or with SINK_PORT over SMTP to 127.0.0.1:SINK_PORT. It fsyncs its
# queue files as it does by default (nothing here changes that).
postfix_start() {
	PF_PORT=$1
	local transport=discard:benchmark
	[[ -z ${2:-} ]] || transport="smtp:[127.0.0.1]:$2"
	mkdir -p "$PF_DIR/etc" "$PF_DIR/spool" "$PF_DIR/data"
	chown postfix "$PF_DIR/data"
	cat >"$PF_DIR/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_DIR/spool
data_directory = $PF_DIR/data
maillog_file = $PF_DIR/maillog
myhostname = bench-host.bench.example
mydomain = bench.example
myorigin = \$myhostname
mydestination =
relay_domains =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
default_transport = $transport
relay_transport = $transport
local_transport = $transport
virtual_transport = $transport
alias_maps =
alias_database =
biff = no
EOF
	# No chroot (the Debian init script that would populate one is not used).
	# The only inet service is smtpd on the loopback port; its process limit
	# is Postfix's default (default_process_limit, 100).
	cat >"$PF_DIR/etc/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
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
smtp      unix  -       -       n       -       -       smtp
scache    unix  -       -       n       -       1       scache
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	if ! postfix -c "$PF_DIR/etc" check >>"$SERVERS_WORK/postfix-control.log" 2>&1 ||
		! postfix -c "$PF_DIR/etc" start >>"$SERVERS_WORK/postfix-control.log" 2>&1; then
		cat "$SERVERS_WORK/postfix-control.log" "$PF_DIR/maillog" >&2 2>/dev/null || true
		bench_die "could not start the private Postfix instance"
	fi
	local i
	for ((i = 0; i < 100; i++)); do
		PF_MASTER_PID=$(tr -dc '0-9' <"$PF_DIR/spool/pid/master.pid" 2>/dev/null || true)
		[[ -n $PF_MASTER_PID ]] && port_listening "$PF_PORT" && return 0
		sleep 0.1
	done
	bench_die "the private Postfix instance does not listen on 127.0.0.1:$PF_PORT"
}

# postfix_pids: the processes of the private instance.
postfix_pids() { postfix_instance_pids "$PF_DIR"; }

# postfix_stop: stop the instance and wait until none of its processes is left.
postfix_stop() {
	[[ -n $PF_MASTER_PID ]] || return 0
	postfix_instance_stop "$PF_DIR" "$PF_MASTER_PID" "$SERVERS_WORK/postfix-control.log" || return 1
	PF_MASTER_PID=
}

# port_listening PORT: true when something accepts TCP on 127.0.0.1:PORT.
port_listening() {
	"$BENCH_PYTHON" -c '
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
except OSError:
    sys.exit(1)' "$1"
}

# ---- gosendmail -------------------------------------------------------------

# gosendmail_config PORT MAX_CONNECTIONS [SINK_PORT]: write the daemon's
# configuration. Every file it reads is a file of its own, empty but for the
# mailertable, which routes sink.bench.example to 127.0.0.1:SINK_PORT, or
# without SINK_PORT to the discard mailer (as Postfix's transports are
# discard); so nothing in /etc/mail changes what is measured.
gosendmail_config() {
	GS_PORT=$1
	local max_conn=$2 sink_port=${3:-} dead_port f
	mkdir -p "$GS_DIR/queue" "$GS_DIR/maildrop" "$GS_DIR/mail"
	for f in aliases local-host-names virtusertable trusted-users access mailertable; do
		: >"$GS_DIR/$f"
	done
	if [[ -n $sink_port ]]; then
		echo "sink.bench.example smtp:[127.0.0.1]:$sink_port" >"$GS_DIR/mailertable"
	else
		echo "sink.bench.example discard:" >"$GS_DIR/mailertable"
	fi
	# A port nothing listens on, for the DNS server: see the header.
	dead_port=$(bench_free_port "$GS_PORT" "${PF_PORT:-0}" "${sink_port:-0}")
	GS_CONFIG="$GS_DIR/gosendmail.toml"
	# sun_path holds 108 bytes.
	[[ ${#GS_DIR} -lt 90 ]] || bench_die "$GS_DIR is too long for the control socket's path; set a shorter BENCH_TMPDIR"
	cat >"$GS_CONFIG" <<EOF
# Written by scripts/bench for one benchmark run.
hostname = "bench-host.bench.example"
queue_dir = "$GS_DIR/queue"
maildrop_dir = "$GS_DIR/maildrop"
mail_spool_dir = "$GS_DIR/mail"
aliases = "$GS_DIR/aliases"
local_host_names = "$GS_DIR/local-host-names"
virtusertable = "$GS_DIR/virtusertable"
trusted_users = "$GS_DIR/trusted-users"
access = "$GS_DIR/access"
mailertable = "$GS_DIR/mailertable"
log = "$GS_DIR/gosendmail.log"
control_socket = "$GS_DIR/ctl"
user = "root"
relay_from = ["127.0.0.0/8"]
listen = [{name = "MTA", address = "127.0.0.1:$GS_PORT"}]

[limits]
max_connections = $max_conn

[delivery]
dns_server = "127.0.0.1:$dead_port"
EOF
	# A part may add tables of its own (the milter part's [[milter]]).
	if [[ -n ${BENCH_GS_EXTRA_CONFIG:-} ]]; then
		printf '\n%s\n' "$BENCH_GS_EXTRA_CONFIG" >>"$GS_CONFIG"
	fi
}

# gosendmail_start: start bin/smtpd in the background with 8192 descriptors
# and wait until its log says it listens and has started.
gosendmail_start() {
	local bin="$BENCH_REPO/bin/smtpd" log="$GS_DIR/gosendmail.log" i
	[[ -x $bin ]] || bench_die "$bin was not built"
	# exec: $! is the daemon itself, whose id is all we ever signal.
	(ulimit -n 8192 && exec "$bin" --config "$GS_CONFIG") >>"$GS_DIR/stderr.log" 2>&1 &
	GS_PID=$!
	for ((i = 0; i < 200; i++)); do
		if ! kill -0 "$GS_PID" 2>/dev/null; then
			local rc=0
			wait "$GS_PID" || rc=$?
			GS_PID=
			gosendmail_show_logs
			bench_die "gosendmail's daemon exited with status $rc at start"
		fi
		if grep -qF "listener MTA on 127.0.0.1:$GS_PORT (mode mta, auth none)" "$log" 2>/dev/null &&
			grep -qF "starting daemon" "$log"; then
			return 0
		fi
		sleep 0.1
	done
	gosendmail_show_logs
	bench_die "gosendmail's daemon did not log that it started within 20 s"
}

gosendmail_show_logs() {
	local f
	for f in "$GS_DIR/stderr.log" "$GS_DIR/gosendmail.log"; do
		[[ -s $f ]] || continue
		bench_log "last lines of $f:"
		tail -n 20 "$f" >&2
	done
}

# gosendmail_stop: SIGTERM, then wait (it finishes transactions in flight);
# SIGKILL only if it is still there after 20 s, which is reported.
gosendmail_stop() {
	[[ -n $GS_PID ]] || return 0
	local i rc=0
	kill -TERM "$GS_PID" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		kill -0 "$GS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$GS_PID" 2>/dev/null; then
		bench_log "error: gosendmail's daemon (pid $GS_PID) ignored SIGTERM for 20 s; killing it"
		kill -KILL "$GS_PID" 2>/dev/null || true
	fi
	wait "$GS_PID" 2>/dev/null || rc=$?
	GS_PID=
	if [[ $rc -ne 0 ]]; then
		bench_log "error: gosendmail's daemon exited with status $rc"
		return 1
	fi
}

# ---- smtp-sink --------------------------------------------------------------

SINK_PID=

# sink_start PORT: Postfix's smtp-sink on 127.0.0.1:PORT, which answers 250 to
# everything and throws the mail away; both servers relay to it in the
# ingest part's "sink" mode. It must drop root: it runs as nobody.
sink_start() {
	local port=$1 sink i
	sink=$(dirname "$SMTP_SOURCE")/smtp-sink
	[[ -x $sink ]] || bench_die "smtp-sink not found next to $SMTP_SOURCE"
	"$sink" -4 -u nobody -h sink.bench.example -m 1024 "127.0.0.1:$port" 1024 \
		>>"$SERVERS_WORK/smtp-sink.log" 2>&1 &
	SINK_PID=$!
	for ((i = 0; i < 100; i++)); do
		port_listening "$port" && return 0
		kill -0 "$SINK_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$SERVERS_WORK/smtp-sink.log" >&2 2>/dev/null || true
	bench_die "smtp-sink does not listen on 127.0.0.1:$port"
}

sink_stop() {
	[[ -n $SINK_PID ]] || return 0
	kill "$SINK_PID" 2>/dev/null || true
	wait "$SINK_PID" 2>/dev/null || true
	SINK_PID=
}

# ---- both -------------------------------------------------------------------

# kill_stray_clients: a load generator the driver started and could not reap
# (the driver was killed) is ended by the id it recorded.
kill_stray_clients() {
	local f="$SERVERS_WORK/client.pid" pid exe
	[[ -f $f && -n $SMTP_SOURCE ]] || return 0
	pid=$(tr -dc '0-9' <"$f")
	[[ -n $pid ]] || return 0
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
	if [[ $exe == "$SMTP_SOURCE" ]]; then
		bench_log "stopping smtp-source (pid $pid) left by the driver"
		kill "$pid" 2>/dev/null || true
	fi
}

# servers_cleanup: the EXIT trap of a part: stop everything it started, keep
# or remove the temporary directory, and exit with the part's status.
# shellcheck disable=SC2317 # reached through the trap, which shellcheck misses
servers_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $SERVERS_WORK ]] || exit "$rc"
	kill_stray_clients
	gosendmail_stop || rc=1
	postfix_stop || rc=1
	sink_stop
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then
		bench_log "kept $SERVERS_WORK"
	else
		rm -rf -- "$SERVERS_WORK"
	fi
	exit "$rc"
}
