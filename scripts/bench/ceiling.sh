#!/usr/bin/env bash
# Benchmark part "ceiling": Postfix's smtp-source straight into its
# smtp-sink on loopback, no mail server between, with the ingest part's
# load (5,000 messages of 2 KB over 20 sessions): the most this machine's
# loopback and load generator allow, to show how close both servers come.
# No target. Results go to bench-results/ceiling.json and ceiling.md.
#
# Settings: the ingest part's BENCH_INGEST_MESSAGES, _SESSIONS, _SIZE and
# _RUNS, and SMTP_SOURCE_PATH.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=daemons.sh
. "$BENCH_DIR/daemons.sh"

messages=${BENCH_INGEST_MESSAGES:-5000}
sessions=${BENCH_INGEST_SESSIONS:-20}
size=${BENCH_INGEST_SIZE:-2048}
runs=${BENCH_INGEST_RUNS:-3}

bench_require_root
bench_ensure_packages postfix python3
mkdir -p "$BENCH_RESULTS"
find_smtp_source
servers_init ceiling
trap servers_cleanup EXIT

port=$(bench_free_port)
sink_start "$port"
bench_log "smtp-sink on 127.0.0.1:$port"

"$BENCH_PYTHON" - "$SMTP_SOURCE" "$port" "$messages" "$sessions" "$size" "$runs" \
	"$BENCH_RESULTS/ceiling.json" "$BENCH_RESULTS/ceiling.md" <<'EOF'
import json, statistics, subprocess, sys, time

src, port, n, sessions, size, runs, js, md = sys.argv[1:]
n, runs = int(n), int(runs)
argv = [src, "-4", "-M", "client.bench.example", "-s", sessions, "-m", str(n), "-l", size,
        "-f", "sender@bench.example", "-t", "rcpt@sink.bench.example", f"127.0.0.1:{port}"]
rates = []
for i in range(runs + 1):
    t0 = time.monotonic()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.STDOUT, timeout=600)
    secs = time.monotonic() - t0
    if i == 0:
        continue  # warm-up
    rates.append(n / secs)
    print(f"  run {i}/{runs}: {n / secs:.0f} msg/s ({secs:.2f} s)", file=sys.stderr)
med = statistics.median(rates)
line = (f"smtp-source -s {sessions} -m {n} -l {size} straight into smtp-sink: "
        f"{med:.0f} msg/s (median of {runs} runs, {min(rates):.0f}-{max(rates):.0f})")
print(line)
with open(js, "w", encoding="utf-8") as f:
    json.dump({"benchmark": "ceiling", "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "messages": n, "sessions": int(sessions), "payload_bytes": int(size),
               "rates_msg_s": rates, "median_msg_s": med}, f, indent=1)
    f.write("\n")
with open(md, "w", encoding="utf-8") as f:
    f.write("| figure | value |\n|---|---|\n")
    f.write(f"| ceiling: smtp-source into smtp-sink, no server between, median | {med:.0f} msg/s |\n")
EOF
