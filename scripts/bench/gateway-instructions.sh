#!/usr/bin/env bash
# Instructions per proxied request of `sagebridge serve`, counted by valgrind's callgrind: the
# figure that does not move with the machine. The side-by-side case of scripts/bench/gateway.sh
# (issue 13) measures time on 2 shared cores, where nginx's own direct rate moves by a quarter
# from one window to the next; two builds compared here give the same counts on every run, so
# a change to the hot path can be judged before it is timed.
#
# Setup: nginx from Debian (one worker) answers every POST with a fixed chat completion and is
# sagebridge's SageMaker endpoint URL, as in gateway.sh; `serve` runs under callgrind; after a
# warm-up of 320 requests the counters are zeroed, `hey -c 16` sends BENCH_REQUESTS chat
# completions, and the counters are dumped. Reported per answered request: all user-space
# instructions of the process, the same without SHA-256 (valgrind hides the CPU's SHA
# extensions, so the signer's hashing runs in software here and would swamp the rest), and the
# functions with the largest own counts. Kernel time (about 40% of the CPU in `perf`) is not
# counted. This is a benchmark, not a test: it prints figures and exits 0 unless something
# failed to run.
#
# Usage: scripts/bench/gateway-instructions.sh [BIN...]
#   BIN: sagebridge binaries to compare (default: the `release` build, built first). A stripped
#        binary (`dist`) is counted too, but without names for its functions or SHA-256.
#   env: BENCH_REQUESTS=3200 (a multiple of 16), BENCH_TOP=25 (functions listed per binary).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../env.sh
source "$root/scripts/env.sh"
# shellcheck source=fixed-nginx.sh
source "$here/fixed-nginx.sh"

requests="${BENCH_REQUESTS:-3200}"
top="${BENCH_TOP:-25}"
key="bench-key-0123456789"

for tool in valgrind:valgrind hey:hey nginx:nginx-light; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1 && ! [ -x "/usr/sbin/${tool%%:*}" ]; then
    echo "${tool%%:*} is missing: installing ${tool#*:} from Debian" >&2
    apt-get install -y "${tool#*:}" >/dev/null
  fi
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then
  echo "== building sagebridge (release)" >&2
  (cd "$root" && cargo build --release -p sagebridge --bin sagebridge --quiet)
  bins=("$CARGO_TARGET_DIR/release/sagebridge")
fi

work="$(mktemp -d)"
nginx_pid=""
gw_pid=""
cleanup() {
  # Only the processes this script started, by PID (nginx's master ends its worker).
  for pid in $gw_pid $nginx_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_fixed_nginx "$work/nginx" "$nginx_bin"
fixed_nginx_gateway_yaml "$key" "$nginx_port" >"$work/gw.yaml"

body='{"model":"bench-chat","messages":[{"role":"user","content":"Say hello"}]}'
load() {
  hey -n "$1" -c 16 -t 60 -m POST -T application/json -H "Authorization: Bearer $key" \
    -d "$body" "$2/v1/chat/completions"
}

printf '\ninstructions per proxied chat completion (callgrind, user space, %s requests, hey -c 16)\n' "$requests"
for bin in "${bins[@]}"; do
  out="$work/cg.out"
  rm -f "$out" "$out".*
  : >"$work/gw.log"
  SAGEBRIDGE_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$bin" serve -c "$work/gw.yaml" --listen 127.0.0.1:0 --catalog "$work/catalog.db" \
    >"$work/gw.log" 2>"$work/gw.err" &
  gw_pid=$!
  url=""
  for _ in $(seq 1 600); do
    if line=$(grep -m1 "^sagebridge listening on " "$work/gw.log" 2>/dev/null); then
      url="${line#sagebridge listening on }"
      break
    fi
    if ! kill -0 "$gw_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "sagebridge did not start under valgrind:" >&2
    cat "$work/gw.log" "$work/gw.err" >&2
    exit 1
  fi
  load 320 "$url" >/dev/null
  callgrind_control -z "$gw_pid" >/dev/null 2>&1
  load "$requests" "$url" >"$work/hey.txt"
  callgrind_control -d "$gw_pid" >/dev/null 2>&1
  kill "$gw_pid"
  wait "$gw_pid" 2>/dev/null || true
  gw_pid=""
  ok=$(awk '/\[200\]/ { print $2 }' "$work/hey.txt")
  if [ -z "$ok" ] || awk '/^  \[[0-9]+\]/ && $1 != "[200]" { bad = 1 } END { exit !bad }' "$work/hey.txt"; then
    echo "some answers were not 200:" >&2
    cat "$work/hey.txt" >&2
    exit 1
  fi
  callgrind_annotate --inclusive=no --threshold=100 "$out.1" >"$work/annotate.txt" 2>/dev/null
  total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }' "$work/annotate.txt")
  sha=$(awk '/sha2::sha256::/ { gsub(",", "", $1); s += $1 } END { print s + 0 }' "$work/annotate.txt")
  printf '\n%s (%s answered)\n' "$bin" "$ok"
  awk -v t="$total" -v s="$sha" -v n="$ok" 'BEGIN {
    printf "  all user space:        %8.0f instructions per request\n", t / n
    printf "  without SHA-256:       %8.0f instructions per request\n", (t - s) / n }'
  echo "  largest own counts per request:"
  sed -n '/file:function/,$p' "$work/annotate.txt" | awk -v n="$ok" -v top="$top" '
    /^ *[0-9,]+ / && !/sha2::sha256::/ {
      v = $1; gsub(",", "", v)
      name = $0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", name); sub(/ \[\/.*$/, "", name)
      sub(/^\?\?\?:/, "", name)
      if (v / n >= 1 && shown < top && name !~ /^(std::sys|tokio::runtime::(context|task|blocking|scheduler)|core::ops::function|<std::sys|\.\/(misc|nptl))/) {
        printf "    %7.0f  %s\n", v / n, substr(name, 1, 110); shown++ }
    }'
done
