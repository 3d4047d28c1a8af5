#!/usr/bin/env bash
# The long soak (`make soak`): TestSoakShort (test/load_test.go) run for
# SOAK_SECONDS (600) at SOAK_RATE (100) msg/s, one SMTP session per
# message, through a daemon built from this checkout to a sink MX on
# loopback, the daemon's RSS, goroutines and descriptors sampled every
# SOAK_SAMPLE (10) seconds through the control socket's "status". Prints
# the sample table and the verdict; writes SOAK_JSON (soak-results.json)
# and the whole test output next to it (soak-results.log). Exits non-zero
# on a FAIL verdict. Needs root, as the black-box tests do; no Postfix.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${SOAK_SECONDS:-600}
rate=${SOAK_RATE:-100}
sample=${SOAK_SAMPLE:-10}
json=${SOAK_JSON:-$repo/soak-results.json}
log=${json%.json}.log
go=${GO:-go}

cd "$repo"
echo "soak: $seconds s at $rate msg/s, a sample every $sample s; results in $json, full output in $log"
set +e
GOSENDMAIL_SOAK_SECONDS=$seconds GOSENDMAIL_SOAK_RATE=$rate GOSENDMAIL_SOAK_SAMPLE=$sample GOSENDMAIL_SOAK_JSON=$json \
	$go test -count=1 -run '^TestSoakShort$' -v -timeout "$((seconds + 900))s" ./test/ 2>&1 |
	tee "$log" | sed -un 's/^ *load_test\.go:[0-9]*: soak: /soak: /p'
code=${PIPESTATUS[0]}
set -e
if [[ $code -ne 0 ]]; then
	echo "soak: go test failed (exit $code); the end of $log:"
	grep -v ': soak: ' "$log" | tail -n 30
fi
exit "$code"
