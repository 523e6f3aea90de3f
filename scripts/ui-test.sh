#!/usr/bin/env bash
# The web UI's browser tests: headless Debian chromium driven by playwright-core (from npm; no
# browser download), against moto, the fake SageMaker runtime and `sagebridge serve`, all
# started by the tests on 127.0.0.1. Screenshots land in target/ui-screenshots/.
# Installs what is missing: chromium (apt), the npm packages (npm ci), the moto venv, the build.
# Extra arguments go to `node --test` (e.g. --test-name-pattern=chat).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ensure_venv

if [ ! -x /usr/bin/chromium ] && [ -z "${SAGEBRIDGE_CHROMIUM:-}" ]; then
  echo "installing chromium" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get install -y chromium || { $SUDO apt-get update && $SUDO apt-get install -y chromium; }
fi
if ! command -v node >/dev/null 2>&1; then
  echo "node (20 or later) is needed for the browser tests" >&2
  exit 1
fi
if [ ! -d ui-tests/node_modules ]; then
  (cd ui-tests && npm ci --no-audit --no-fund)
fi
cargo build --workspace --all-targets --locked
export CARGO_TARGET_DIR
mkdir -p target/ui-screenshots
cd ui-tests
exec node --test --test-concurrency=1 "$@" tests/
