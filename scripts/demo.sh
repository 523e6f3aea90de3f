#!/usr/bin/env bash
# Both halves of sagebridge on this machine, on embedded defaults:
# 1. ingestion: moto seeded with a realistic SageMaker account -> test-connection -> ingest
#    into the embedded catalog -> list the models;
# 2. the gateway: the testkit's fake SageMaker runtime serves the demo account's endpoints
#    (chat, embeddings, rerank, transcription, speech), and `sagebridge serve` puts examples/demo-gateway.yaml in
#    front of it, with the catalog in the web UI; OpenAI's Python client asks it for a chat
#    answer (buffered and streamed) and embeddings, then it serves until Ctrl-C.
# Every process it starts is stopped by its PID on exit (Ctrl-C included).
# SAGEBRIDGE_DEMO_NO_SERVE=1 stops after the ingestion half; SAGEBRIDGE_LISTEN sets the
# gateway's address (default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ensure_venv
# The same build as the tests (scripts/test.sh): any other selection unifies the AWS SDK's
# features differently and compiles it a second time (minutes, gigabytes).
cargo build --quiet --workspace --all-targets --locked
BIN="$CARGO_TARGET_DIR/debug"

MOTO_PID=""
RUNTIME_PID=""
SERVE_PID=""
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sagebridge-demo.XXXXXX")"
stop() {
  local pid="$1"
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
cleanup() {
  trap - EXIT INT TERM
  stop "$SERVE_PID"
  stop "$RUNTIME_PID"
  stop "$MOTO_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- ingestion --------------------------------------------------------------------------
MOTO_RECORDER_FILEPATH="$WORK/moto_recording" MOTO_LOG="$WORK/moto.log" start_moto
echo "== moto on $SAGEBRIDGE_MOTO_URL (pid $MOTO_PID)"
"$BIN/sagebridge-seed" --endpoint "$SAGEBRIDGE_MOTO_URL" --preset demo
export SAGEBRIDGE_CATALOG="${SAGEBRIDGE_CATALOG:-$SAGEBRIDGE_CACHE/demo.db}"
mkdir -p "$(dirname "$SAGEBRIDGE_CATALOG")"
rm -f "$SAGEBRIDGE_CATALOG"
echo "== test-connection"
"$BIN/sagebridge" test-connection -c examples/local.yaml
echo "== ingest"
"$BIN/sagebridge" ingest -c examples/local.yaml
echo "== models"
"$BIN/sagebridge" models list --catalog "$SAGEBRIDGE_CATALOG"
if [ "${SAGEBRIDGE_DEMO_NO_SERVE:-}" = "1" ]; then exit 0; fi

# --- the gateway ------------------------------------------------------------------------
# Prints `fake runtime listening on http://ADDR` once it accepts connections.
"$BIN/sagebridge-fake-runtime" --listen 127.0.0.1:0 --threads 2 >"$WORK/runtime.out" 2>&1 &
RUNTIME_PID=$!
SAGEBRIDGE_RUNTIME_URL=""
for _ in $(seq 1 100); do
  SAGEBRIDGE_RUNTIME_URL="$(sed -n 's/^fake runtime listening on //p' "$WORK/runtime.out")"
  if [ -n "$SAGEBRIDGE_RUNTIME_URL" ]; then break; fi
  if ! kill -0 "$RUNTIME_PID" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$SAGEBRIDGE_RUNTIME_URL" ]; then
  echo "the fake runtime did not start:" >&2
  cat "$WORK/runtime.out" >&2
  exit 1
fi
export SAGEBRIDGE_RUNTIME_URL
export SAGEBRIDGE_API_KEY="${SAGEBRIDGE_API_KEY:-demo-key}"
echo "== fake SageMaker runtime on $SAGEBRIDGE_RUNTIME_URL (pid $RUNTIME_PID)"
echo "== test-connection (gateway)"
"$BIN/sagebridge" test-connection -c examples/demo-gateway.yaml

LISTEN="${SAGEBRIDGE_LISTEN:-127.0.0.1:8080}"
"$BIN/sagebridge" serve -c examples/demo-gateway.yaml --catalog "$SAGEBRIDGE_CATALOG" \
  --listen "$LISTEN" >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVE_PID=$!
BASE=""
for _ in $(seq 1 100); do
  BASE="$(sed -n 's/^sagebridge listening on //p' "$WORK/serve.out")"
  if [ -n "$BASE" ]; then break; fi
  if ! kill -0 "$SERVE_PID" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$BASE" ]; then
  echo "sagebridge serve did not start:" >&2
  cat "$WORK/serve.out" "$WORK/serve.log" >&2
  exit 1
fi
# serve prints a sign-in URL carrying its generated admin token (the catalog needs it).
SIGN_IN="$(sed -n 's/^sign in: //p' "$WORK/serve.out")"
echo "== the gateway's models answer OpenAI's Python client"
"$SAGEBRIDGE_VENV/bin/python" scripts/demo_client.py "$BASE" "$SAGEBRIDGE_API_KEY"
cat <<MSG
== serving (pid $SERVE_PID); Ctrl-C stops everything
   web UI (catalog, gateway models, chat playground), signed in:  ${SIGN_IN:-$BASE/}
   admin API (admin token from that URL as a Bearer token): $BASE/api/v1/mlmodels
   gateway models: $BASE/v1/models (key: $SAGEBRIDGE_API_KEY)
   a streamed chat answer:

curl -N $BASE/v1/chat/completions -H 'Authorization: Bearer $SAGEBRIDGE_API_KEY' -H 'Content-Type: application/json' -d '{"model":"demo-chat","stream":true,"messages":[{"role":"user","content":"Say hello"}]}'

MSG
wait "$SERVE_PID"
