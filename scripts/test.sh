#!/usr/bin/env bash
# The test command (README): installs the test venv if missing, then runs every test of the
# workspace. Integration tests start their own moto servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ensure_venv
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast "$@"
fi
