#!/usr/bin/env bash
# Benchmark part "e2e": end to end, smtp-source -> smtpd -> smtp-sink, both
# servers relaying every message to one smtp-sink on loopback: the ingest
# part in its sink mode (see ingest.sh), with its own results in
# bench-results/e2e.json and e2e.md.
#
# Targets (from the project's delivery issue): delivered rate at least 2x
# Postfix's; peak memory of gosendmail at most half of Postfix's. The ingest
# settings (BENCH_INGEST_MESSAGES, _SESSIONS, _SIZE, _RUNS, _WARMUP,
# _TIMEOUT) apply.
set -euo pipefail
BENCH_INGEST_DELIVERY=sink BENCH_RESULT_NAME=e2e exec bash "$(dirname "${BASH_SOURCE[0]}")/ingest.sh"
