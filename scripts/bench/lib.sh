# shellcheck shell=bash
# Helpers shared by the benchmark entry point (run.sh) and its parts
# (submit.sh, ...). Sourced, never executed; the caller sets -euo pipefail.

# The variables below are used by the scripts that source this file.
# shellcheck disable=SC2034
# Repository root, found from this file so every script runs from any cwd.
BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR="$BENCH_REPO/scripts/bench"
BENCH_RESULTS="$BENCH_REPO/bench-results"
# Always Debian's interpreter: the driver needs nothing but the stdlib, and a
# fixed path keeps pyenv/virtualenv shims out of the measurement setup.
BENCH_PYTHON=/usr/bin/python3

bench_log() { printf 'bench: %s\n' "$*" >&2; }
bench_die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# bench_require_root: the parts install packages and start a private Postfix
# instance (its master must start as root), so there is no non-root mode.
bench_require_root() {
	[[ $(id -u) -eq 0 ]] || bench_die "must run as root (installs packages with apt-get, starts a private Postfix instance)"
}

# bench_ensure_packages PKG...: install the Debian packages that are missing.
# apt-get update runs only when something must be installed, so a machine that
# has everything never touches the network.
bench_ensure_packages() {
	local pkg missing=()
	for pkg in "$@"; do
		if ! dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$pkg")
		fi
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	bench_log "installing ${missing[*]} with apt-get"
	local p
	for p in "${missing[@]}"; do
		if [[ $p == postfix ]]; then
			# Without this the postfix package asks which mailer type to set
			# up; "No configuration" writes no /etc/postfix/main.cf and starts
			# nothing: the benchmark runs its own private instance instead.
			echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
		fi
	done
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
}

# bench_build: build bin/ once per `make bench` (run.sh exports
# GOSENDMAIL_BENCH_BUILT after building so parts run by it do not rebuild).
bench_build() {
	[[ ${GOSENDMAIL_BENCH_BUILT:-0} == 1 || ${BENCH_SKIP_BUILD:-0} == 1 ]] && return 0
	command -v go >/dev/null || bench_die "go is not on PATH: cannot build bin/sendmail"
	if [[ -f $BENCH_REPO/Makefile ]]; then
		# The Makefile's default target is what ships, so measure that build.
		bench_log "building with make"
		make -C "$BENCH_REPO" >&2
	else
		bench_log "building with go build (no Makefile yet)"
		(cd "$BENCH_REPO" && go build -o bin/ ./cmd/...) >&2
	fi
	export GOSENDMAIL_BENCH_BUILT=1
}

# bench_postfix_sendmail: print the path of Postfix's own sendmail. Installing
# gosendmail takes /usr/sbin/sendmail over (`make install` overwrites it, a
# package would divert it), so follow a diversion and check the file's
# checksum against the one dpkg recorded for Postfix's sendmail.
bench_postfix_sendmail() {
	local path=${POSTFIX_SENDMAIL:-} sums want got
	if [[ -z $path ]]; then
		path=$(dpkg-divert --truename /usr/sbin/sendmail)
		sums=$(dpkg-query --control-path postfix md5sums)
		want=$(awk '$2 == "usr/sbin/sendmail" {print $1}' "$sums")
		got=$(md5sum <"$path" 2>/dev/null | cut -d' ' -f1) || got=
		[[ -n $want && $got == "$want" ]] ||
			bench_die "$path is not Postfix's sendmail (replaced, e.g. by 'make install'?): run 'apt-get install --reinstall postfix' or set POSTFIX_SENDMAIL"
	fi
	[[ -x $path ]] || bench_die "Postfix sendmail $path is not executable"
	printf '%s\n' "$path"
}

# bench_spool_journal: for an ext4 spool, "yes" or "no" as it has a journal
# (jbd2 lists the journals of mounted filesystems); "n/a" for others. ext4
# without a journal searches past recently deleted inodes whenever it
# allocates one, which makes creating files dearer after many deletions.
bench_spool_journal() {
	local dir=${BENCH_TMPDIR:-/var/tmp} fs dev
	fs=$(df -PT "$dir" | awk 'NR==2 {print $2}')
	[[ $fs == ext4 ]] || { echo n/a; return 0; }
	dev=$(df -P "$dir" | awk 'NR==2 {print $1}')
	dev=$(basename "$(readlink -f "$dev")")
	if compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null; then echo yes; else echo no; fi
}

# bench_machine_info: print what the figures were measured on, as key=value
# lines (the driver copies them into the JSON results).
bench_machine_info() {
	local model fs mnt
	model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
	fs=$(df -PT "${BENCH_TMPDIR:-/var/tmp}" | awk 'NR==2 {print $2}')
	mnt=$(df -P "${BENCH_TMPDIR:-/var/tmp}" | awk 'NR==2 {print $6}')
	printf 'nproc=%s\n' "$(nproc)"
	printf 'cpu_model=%s\n' "${model:-unknown}"
	printf 'kernel=%s\n' "$(uname -r)"
	printf 'os=%s\n' "$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')"
	printf 'spool_fs=%s\n' "$fs"
	printf 'spool_mount_options=%s\n' "$(awk -v m="$mnt" '$2 == m {o = $4} END {print o}' /proc/mounts)"
	printf 'spool_fs_journal=%s\n' "$(bench_spool_journal)"
	printf 'memory_kb=%s\n' "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
	printf 'postfix_version=%s\n' "$(postconf -d -h mail_version 2>/dev/null || echo none)"
	printf 'go_version=%s\n' "$(go env GOVERSION 2>/dev/null || echo unknown)"
	local commit
	commit=$(git -C "$BENCH_REPO" rev-parse --short HEAD 2>/dev/null) || commit=unknown
	# Figures from uncommitted code should say so.
	if [[ $commit != unknown ]] && ! git -C "$BENCH_REPO" diff --quiet HEAD -- 2>/dev/null; then
		commit+="+dirty"
	fi
	printf 'git_commit=%s\n' "$commit"
}

# postfix_instance_pids DIR: the processes of the private Postfix instance
# in DIR (config in DIR/etc, spool in DIR/spool). Every Postfix daemon of
# the instance has its cwd in its spool; that is how they are told apart
# from any other Postfix on the machine.
postfix_instance_pids() {
	local dir=$1 p cwd pids=()
	for p in /proc/[0-9]*; do
		cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
		[[ $cwd == "$dir/spool" || $cwd == "$dir/spool/"* ]] && pids+=("${p#/proc/}")
	done
	echo "${pids[*]}"
}

# postfix_instance_stop DIR MASTER_PID LOG: stop the instance in DIR and
# wait until none of its processes is left; if the master ignores an
# orderly stop, end it by its id (it takes its children down too).
postfix_instance_stop() {
	local dir=$1 master=$2 log=$3 i left
	postfix -c "$dir/etc" stop >>"$log" 2>&1 || true
	for ((i = 0; i < 100; i++)); do
		left=$(postfix_instance_pids "$dir")
		[[ -z $left ]] && return 0
		sleep 0.1
	done
	kill "$master" 2>/dev/null || true
	sleep 1
	left=$(postfix_instance_pids "$dir")
	if [[ -n $left ]]; then
		bench_log "error: Postfix processes of the benchmark instance still running: $left"
		return 1
	fi
}
