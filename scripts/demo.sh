#!/usr/bin/env bash
# The main job end to end on this machine: build, start moto seeded with a realistic SageMaker
# account, test the connection, ingest into the embedded catalog, list the models, then serve
# the catalog's read API and the gateway until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ensure_venv
cargo build --quiet --bin sagebridge --bin sagebridge-seed
BIN="$CARGO_TARGET_DIR/debug"
MOTO_PID=""
cleanup() { if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT
start_moto
echo "== moto on $SAGEBRIDGE_MOTO_URL"
"$BIN/sagebridge-seed" --endpoint "$SAGEBRIDGE_MOTO_URL" --preset demo
export SAGEBRIDGE_CATALOG="${SAGEBRIDGE_CATALOG:-$SAGEBRIDGE_CACHE/demo.db}"
rm -f "$SAGEBRIDGE_CATALOG"
echo "== test-connection"
"$BIN/sagebridge" test-connection -c examples/local.yaml
echo "== ingest"
"$BIN/sagebridge" ingest -c examples/local.yaml
echo "== models"
"$BIN/sagebridge" models list --catalog "$SAGEBRIDGE_CATALOG"
if [ "${SAGEBRIDGE_DEMO_NO_SERVE:-}" = "1" ]; then exit 0; fi
echo "== serving (Ctrl-C to stop): GET /api/catalog/models, /v1/models, /healthz"
"$BIN/sagebridge" serve -c examples/sagebridge.yaml --catalog "$SAGEBRIDGE_CATALOG" --listen "${SAGEBRIDGE_LISTEN:-127.0.0.1:8080}"
