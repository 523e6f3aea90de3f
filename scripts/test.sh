#!/usr/bin/env bash
# The test command (README): installs the test venv and the npm client if missing, then runs every test of the
# workspace, then the browser tests of the web UI (scripts/ui-test.sh). Integration tests start
# their own moto servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ensure_venv
ensure_node_client
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast "$@"
fi
# The web UI in a real browser (installs chromium and the npm packages when missing).
if [ "${SAGEBRIDGE_SKIP_UI_TESTS:-}" != "1" ]; then
  bash scripts/ui-test.sh
fi
