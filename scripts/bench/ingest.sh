#!/usr/bin/env bash
# Ingestion benchmark: `sagebridge ingest` (release build) against the testkit's fake SageMaker
# control plane (moto serves only ~150-200 DescribeModel/s, too slow to show the engine).
#
#   scripts/bench/ingest.sh            # both scenarios of issue 3
#   scripts/bench/ingest.sh a          # (a) 10,000 models, zero latency
#   scripts/bench/ingest.sh b          # (b) 2,000 models, 30 ms per call, 100 TPS per API
#   scripts/bench/ingest.sh c          # (c) 10,000 models, 30 ms per call, 10 TPS per API, all
#                                      #     enrichments, Search on: first run and re-run; then
#                                      #     Search off on 1,000 models (10,000 one by one at 10
#                                      #     TPS would take 17 minutes: its wall time is scaled)
#   MODELS=500 LATENCY_MS=10 TPS=50 scripts/bench/ingest.sh custom
#
# Prints, per scenario: wall time, models/s, AWS calls per API, retries, throttled calls,
# peak RSS and CPU seconds of the ingest process, and for (b) the rate-limit floor (the
# largest per-API call count / TPS) and the ratio of the wall time to it.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh

# PROFILE=debug uses the test build (no second compile of the AWS SDK); fine for scenarios
# bound by latency and rate limits (b, c), not for CPU-bound ones (a).
if [ "${PROFILE:-release}" = debug ]; then
  cargo build --workspace --all-targets --locked >&2
  BIN="$CARGO_TARGET_DIR/debug"
else
  cargo build --release --workspace --locked --bins >&2
  BIN="$CARGO_TARGET_DIR/release"
fi
WORK=$(mktemp -d)
FAKE_PID=""
cleanup() {
  if [ -n "$FAKE_PID" ]; then kill "$FAKE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# scenario NAME MODELS LATENCY_MS TPS(or "") [RUNS] [--no-search]
scenario() {
  local name=$1 models=$2 latency=$3 tps=$4 runs=${5:-1} search=${6:-}
  local args=(--models "$models" --latency-ms "$latency")
  if [ -n "$tps" ]; then args+=(--rate-limit "$tps"); fi
  if [ -n "$search" ]; then args+=("$search"); fi
  "$BIN/sagebridge-fake-sagemaker" "${args[@]}" >"$WORK/fake.out" 2>"$WORK/fake.err" &
  FAKE_PID=$!
  local url=""
  for _ in $(seq 1 200); do
    url=$(sed -n 's/^fake sagemaker listening on //p' "$WORK/fake.out")
    if [ -n "$url" ]; then break; fi
    sleep 0.05
  done
  if [ -z "$url" ]; then echo "the fake did not start" >&2; cat "$WORK/fake.err" >&2; exit 1; fi
  rm -f "$WORK/c.db"*
  cat >"$WORK/wf.yaml" <<YAML
source:
  type: sagemaker
  serviceName: bench
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: bench
        awsSecretAccessKey: bench
        awsRegion: us-east-1
        endPointURL: $url
  sourceConfig:
    config:
      type: MlModelMetadata
sink:
  type: catalog
  config:
    path: $WORK/c.db
workflowConfig:
  loggerLevel: WARN
YAML
  local run
  for run in $(seq 1 "$runs"); do
  # GNU time: peak RSS (KiB), user and system CPU seconds, wall seconds.
  /usr/bin/time -f '%M %U %S %e' -o "$WORK/time" \
    timeout 1200 "$BIN/sagebridge" ingest -c "$WORK/wf.yaml" --json >"$WORK/report.json" || {
      echo "ingest exited with $?" >&2; cat "$WORK/report.json" >&2; }
  if [ "$run" = "$runs" ]; then
    kill -TERM "$FAKE_PID"; wait "$FAKE_PID" || true; FAKE_PID=""
  else
    echo '{"throttled": "(counted at the end)"}' >"$WORK/fake.now"
  fi
  python3 - "$name" "$models" "$latency" "${tps:-0}" "$WORK/report.json" "$WORK/time" \
    "$( [ "$run" = "$runs" ] && echo "$WORK/fake.out" || echo "$WORK/fake.now")" "$run" "${search:-search}" <<'PY'
import json, sys
name, models, latency, tps, report, timef, fake, run, search = sys.argv[1:]
r = json.load(open(report))
rss_kib, user, sys_, wall = open(timef).read().split()[-4:]
fake_stats = json.loads(open(fake).read().splitlines()[-1])
c = r["counts"]
print(f"== ({name}) {models} models, {latency} ms latency, " + (f"{tps} TPS per API" if float(tps) else "no rate limit")
      + ("" if search == "search" else ", Search off") + (f", run {run}" + (" (re-run)" if run != "1" else " (first)")))
if "callsPerModel" in r:
    print(f"   calls per model {r['callsPerModel']:.3f}, models from Search {r.get('modelsFromSearch', 0)}, unchanged {r['counts'].get('unchanged', 0)}")
print(f"   wall {float(wall):.2f} s (run report {r['durationMs']/1000:.2f} s), {r['modelsPerSecond']:.0f} models/s")
print(f"   created {c['created']}, failed {c['failed']}, listed {c['listed']}")
print(f"   AWS calls {sum(r['awsCalls'].values())}: " + ", ".join(f"{k} {v}" for k, v in sorted(r['awsCalls'].items())))
print(f"   retries {r['retries']}, throttled by the fake {fake_stats['throttled']}")
print(f"   peak RSS {int(rss_kib)/1024:.1f} MiB, CPU {float(user)+float(sys_):.2f} s (user {user}, sys {sys_})")
if float(tps):
    floor = max(r['awsCalls'].values()) / float(tps)
    print(f"   rate-limit floor {floor:.1f} s (largest per-API count / TPS); wall / floor = {float(wall)/floor:.2f}")
PY
  done
}

case "${1:-all}" in
  a) scenario a 10000 0 "" ;;
  b) scenario b 2000 30 100 ;;
  c) scenario c 10000 30 10 2; scenario c 1000 30 10 1 --no-search ;;
  custom) scenario custom "${MODELS:-1000}" "${LATENCY_MS:-0}" "${TPS:-}" ;;
  all) scenario a 10000 0 ""; scenario b 2000 30 100 ;;
  *) echo "usage: $0 [a|b|all|custom]" >&2; exit 2 ;;
esac
