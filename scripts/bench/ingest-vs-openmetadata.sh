#!/usr/bin/env bash
# sagebridge against OpenMetadata's own SageMaker ingestion, side by side in one run.
#
# The same moto account (MODELS models, two tags each) behind the testkit's fault proxy adding
# LATENCY_MS to every call (what real AWS costs), ingested by
#   - OpenMetadata's workflow: `metadata ingest` of `openmetadata-ingestion==2.0.7.0` (its own
#     venv, $SAGEBRIDGE_CACHE/om-venv) into a stand-in OpenMetadata server (the testkit's fake,
#     `sagebridge-fake-openmetadata`), and
#   - sagebridge: `sagebridge ingest` of the same workflow file into another stand-in server,
# first run and re-run each; then moto's own ceiling: a concurrent client (16 threads, boto3)
# making the calls sagebridge made (its tagging API pages included), through the same proxy.
# Prints the times and ratios.
#
#   scripts/bench/ingest-vs-openmetadata.sh                 # 1,000 models, 30 ms per call
#   MODELS=200 LATENCY_MS=30 scripts/bench/ingest-vs-openmetadata.sh
#
# PROFILE=debug uses the test build (the run is bound by latency, not CPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
ensure_venv
MODELS=${MODELS:-1000}
LATENCY_MS=${LATENCY_MS:-30}
OM_VENV="$SAGEBRIDGE_CACHE/om-venv"

# OpenMetadata 2.0.7's ingestion client. A plain `pip install openmetadata-ingestion==2.0.7.0`
# fails offline: one dependency (dbt-extractor -> dbt-core-experimental-parser) downloads a
# wheel from github.com while building. The SageMaker workflow does not use dbt, so the package
# is installed without it: its wheel with --no-deps, then its requirements minus the dbt and
# lineage ones, then the few modules the workflow imports from those.
ensure_om_venv() {
  local check='from metadata.ingestion.source.mlmodel.sagemaker.metadata import SagemakerSource; from metadata.workflow.metadata import MetadataWorkflow'
  if [ -x "$OM_VENV/bin/metadata" ] && (cd /tmp && "$OM_VENV/bin/python" -c "$check") 2>/dev/null; then
    return 0
  fi
  echo "setting up OpenMetadata's ingestion client in $OM_VENV" >&2
  python3 -m venv "$OM_VENV"
  local pip=("$OM_VENV/bin/pip" install --quiet --disable-pip-version-check)
  local wheels
  wheels=$(mktemp -d)
  "$OM_VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$wheels" 'openmetadata-ingestion==2.0.7.0'
  "${pip[@]}" --no-deps "$wheels"/openmetadata_ingestion-2.0.7.0-*.whl
  unzip -p "$wheels"/openmetadata_ingestion-2.0.7.0-*.whl '*/METADATA' \
    | sed -n 's/^Requires-Dist: //p' | grep -v 'extra ==' \
    | grep -vE '^(dbt-extractor|collate-data-diff|collate-sqllineage)' >"$wheels/reqs.txt"
  "${pip[@]}" -r "$wheels/reqs.txt"
  "${pip[@]}" --no-deps 'collate-sqllineage==2.1.7' 'collate-data-diff==0.11.18'
  "${pip[@]}" 'sqlparse==0.6.1' 'networkx==3.6.1' 'sqlfluff==4.5.0' 'sqlglot==30.31.0' 'pytz==2026.6' \
    'attrs==26.1.0' 'rich==15.0.0' 'dsnparse==0.4.0' 'toml==0.10.2'
  rm -rf "$wheels"
  (cd /tmp && "$OM_VENV/bin/python" -c "$check")
}
ensure_om_venv

if [ "${PROFILE:-release}" = debug ]; then
  cargo build --workspace --all-targets --locked >&2
  BIN="$CARGO_TARGET_DIR/debug"
else
  cargo build --release --workspace --locked --bins >&2
  BIN="$CARGO_TARGET_DIR/release"
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start NAME CMD... : starts a process that prints `... listening on URL`; sets URL and PID
# (not in a command substitution: the PID must reach this shell so that cleanup stops it).
start() {
  local name=$1; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 300); do
    if grep -qE 'listening on http://' "$WORK/$name.out" 2>/dev/null; then
      URL=$(sed -nE 's/.*listening on (http:\/\/[^ ]+).*/\1/p' "$WORK/$name.out" | head -1)
      return 0
    fi
    sleep 0.1
  done
  echo "$name did not start" >&2; cat "$WORK/$name.err" >&2; exit 1
}

start_moto
PIDS+=("$MOTO_PID")
echo "seeding $MODELS models (two tags each) into moto..." >&2
"$BIN/sagebridge-seed" --endpoint "$SAGEBRIDGE_MOTO_URL" --preset bulk --models "$MODELS" \
  --tags-per-model 2 --no-training-jobs >&2
start proxy "$BIN/sagebridge-fault-proxy" --upstream "$SAGEBRIDGE_MOTO_URL" --fault "*=latency:${LATENCY_MS}ms"
PROXY=$URL
TOKEN=bench-jwt-token
start om-a "$BIN/sagebridge-fake-openmetadata" --token "$TOKEN"
OM_A=$URL OM_A_PID=$PID
start om-b "$BIN/sagebridge-fake-openmetadata" --token "$TOKEN"
OM_B=$URL OM_B_PID=$PID

# workflow FILE OM_URL: the OpenMetadata workflow both tools read, unchanged.
workflow() {
  cat >"$1" <<YAML
source:
  type: sagemaker
  serviceName: bench_sagemaker
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: testing
        awsSecretAccessKey: testing
        awsRegion: us-east-1
        endPointURL: $PROXY
  sourceConfig:
    config:
      type: MlModelMetadata
      markDeletedMlModels: true
sink:
  type: metadata-rest
  config: {}
workflowConfig:
  loggerLevel: WARN
  openMetadataServerConfig:
    hostPort: $2/api
    authProvider: openmetadata
    securityConfig:
      jwtToken: $TOKEN
YAML
}
workflow "$WORK/om.yaml" "$OM_A"
workflow "$WORK/sb.yaml" "$OM_B"

# timed NAME CMD... : wall seconds into $WORK/NAME.time, output into $WORK/NAME.log.
timed() {
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  if ! timeout 3600 "$@" >"$WORK/$name.log" 2>&1; then
    echo "$name exited with an error:" >&2; tail -20 "$WORK/$name.log" >&2
  fi
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.2f}')" >"$WORK/$name.time"
}

echo "OpenMetadata 2.0.7, first run..." >&2
timed om1 bash -c "cd '$WORK' && '$OM_VENV/bin/metadata' ingest -c '$WORK/om.yaml'"
echo "OpenMetadata 2.0.7, re-run..." >&2
timed om2 bash -c "cd '$WORK' && '$OM_VENV/bin/metadata' ingest -c '$WORK/om.yaml'"
echo "sagebridge, first run..." >&2
timed sb1 "$BIN/sagebridge" ingest -c "$WORK/sb.yaml" --json
cp "$WORK/sb1.log" "$WORK/sb1.json"
echo "sagebridge, re-run..." >&2
timed sb2 "$BIN/sagebridge" ingest -c "$WORK/sb.yaml" --json
cp "$WORK/sb2.log" "$WORK/sb2.json"

# moto's ceiling: the calls sagebridge's first run made, by 16 threads, through the proxy.
echo "moto's ceiling (a concurrent client making the same calls)..." >&2
"$SAGEBRIDGE_VENV/bin/python" - "$PROXY" "$WORK/sb1.json" "$WORK/ceiling.time" <<'PY'
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import boto3, botocore.config
proxy, report, out = sys.argv[1:]
calls = json.loads(open(report).read()[open(report).read().index("{"):])["awsCalls"]
conf = dict(endpoint_url=proxy, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing", config=botocore.config.Config(max_pool_connections=32))
c = boto3.client("sagemaker", **conf)
tagging = boto3.client("resourcegroupstaggingapi", **conf)
t0 = time.time()
names = []
for page in c.get_paginator("list_models").paginate():
    names += [m["ModelName"] for m in page["Models"]]
arns = {}
def describe(n):
    arns[n] = c.describe_model(ModelName=n)["ModelArn"]
def tags(n):
    c.list_tags(ResourceArn=arns[n])
def bulk_tags():
    # The tagging API's pages, one after the other (each needs the last one's token), while
    # the models are described: as sagebridge reads them.
    pages = tagging.get_paginator("get_resources").paginate(
        ResourceTypeFilters=["sagemaker:model"], ResourcesPerPage=100)
    for _, _page in zip(range(calls.get("GetResources", 0)), pages):
        pass
with ThreadPoolExecutor(16) as pool:
    paging = pool.submit(bulk_tags)
    list(pool.map(describe, names[: calls.get("DescribeModel", len(names))]))
    list(pool.map(tags, names[: calls.get("ListTags", len(names))]))
    paging.result()
open(out, "w").write(f"{time.time() - t0:.2f}")
PY

# The stand-in servers print how many models they hold when they stop.
kill -TERM "$OM_A_PID" "$OM_B_PID" 2>/dev/null || true
wait "$OM_A_PID" "$OM_B_PID" 2>/dev/null || true
python3 - "$WORK" "$MODELS" "$LATENCY_MS" <<'PY'
import json, sys
work, models, latency = sys.argv[1:]
t = {n: float(open(f"{work}/{n}.time").read()) for n in ("om1", "om2", "sb1", "sb2", "ceiling")}
def report(n):
    text = open(f"{work}/{n}.json").read()
    return json.loads(text[text.index("{"):])
r1, r2 = report("sb1"), report("sb2")
def models_in(name):
    lines = [l for l in open(f"{work}/{name}.out").read().splitlines() if l.startswith("{")]
    return json.loads(lines[-1])["models"] if lines else "?"
print(f"== {models} models, two tags each, moto behind a {latency} ms-per-call proxy")
print(f"   OpenMetadata 2.0.7 (metadata ingest): first run {t['om1']:.1f} s, re-run {t['om2']:.1f} s; "
      f"models in its server: {models_in('om-a')}")
print(f"   sagebridge: first run {t['sb1']:.1f} s ({sum(r1['awsCalls'].values())} AWS calls, "
      f"{r1.get('callsPerModel', 0):.2f} per model, tags read), re-run {t['sb2']:.1f} s "
      f"({sum(r2['awsCalls'].values())} calls, {r2['counts'].get('unchanged', 0)} unchanged); "
      f"models in its server: {models_in('om-b')}")
print(f"   speed-up: first run {t['om1'] / t['sb1']:.1f}x (target >= 5x), re-run {t['om2'] / t['sb2']:.1f}x (target >= 10x)")
print(f"   moto's ceiling (16 threads, the same calls as sagebridge's first run): {t['ceiling']:.1f} s; "
      f"sagebridge / ceiling = {t['sb1'] / t['ceiling']:.2f} (target <= 1.2)")
PY
