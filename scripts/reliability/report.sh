#!/usr/bin/env bash
# The reliability report: sagebridge under faults, crashes, hostile input, with sentinel
# secrets, and under a soak load. Prints one table (check, result, detail) and exits 1 if any
# check failed. Everything runs on 127.0.0.1 against moto, the testkit's fakes and the
# testkit's fault proxy; every loop is bounded.
#
#   scripts/reliability/report.sh                 # every section (about 20 minutes)
#   scripts/reliability/report.sh faults crash    # some sections: faults crash hostile secrets soak
#   SOAK_SECONDS=60 CRASH_TRIALS=10 FUZZ_CASES=2000 IDLE_CONNECTIONS=2000 scripts/reliability/report.sh
#
# Knobs: SOAK_SECONDS (600), CRASH_TRIALS (50), FUZZ_CASES (20000 per property test),
# IDLE_CONNECTIONS (10000).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
ensure_venv
# The debug build the tests use (a release build would compile the AWS SDK a second time).
cargo build --workspace --all-targets --locked >&2
export SAGEBRIDGE_BIN="$CARGO_TARGET_DIR/debug"
exec "$SAGEBRIDGE_VENV/bin/python" scripts/reliability/report.py "$@"
