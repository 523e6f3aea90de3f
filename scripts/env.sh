# Shared by scripts/*.sh and .ci/run: where the build cache and the Python venv live.
# Both sit outside the clone so that repeated runs on one machine reuse them.
: "${SAGEBRIDGE_CACHE:=$HOME/.cache/sagebridge}"
: "${CARGO_TARGET_DIR:=$SAGEBRIDGE_CACHE/target}"
: "${SAGEBRIDGE_VENV:=$SAGEBRIDGE_CACHE/venv}"
export SAGEBRIDGE_CACHE CARGO_TARGET_DIR SAGEBRIDGE_VENV

# Creates the venv with moto (the AWS emulator) and the clients the gateway tests drive (the
# openai client, langchain-openai) when missing; an existing venv without one of them gets it.
ensure_venv() {
  if [ -x "$SAGEBRIDGE_VENV/bin/moto_server" ] && "$SAGEBRIDGE_VENV/bin/python" -c 'import openai, moto, langchain_openai' 2>/dev/null; then
    return 0
  fi
  echo "setting up the test venv in $SAGEBRIDGE_VENV" >&2
  python3 -m venv "$SAGEBRIDGE_VENV"
  "$SAGEBRIDGE_VENV/bin/pip" install --quiet --disable-pip-version-check \
    'moto[server]==5.2.5' 'openai==3.54.0' 'langchain-openai==1.7.4' 'langchain-core==1.8.1'
}

# Installs the official openai npm package the gateway tests drive (versions in the folder's
# package-lock.json) when missing. Needs node 20 or later.
ensure_node_client() {
  local dir=crates/gateway/tests/node
  if [ -d "$dir/node_modules/openai" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "node and npm (20 or later) are needed for the gateway's npm client test" >&2
    return 1
  fi
  (cd "$dir" && npm ci --no-audit --no-fund)
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Starts moto on 127.0.0.1 on a free port; sets MOTO_PID and SAGEBRIDGE_MOTO_URL.
start_moto() {
  local port
  port=$(free_port)
  # Its request recording (./moto_recording by default) goes to a temp dir, not the clone.
  MOTO_RECORDER_FILEPATH="${MOTO_RECORDER_FILEPATH:-${TMPDIR:-/tmp}/sagebridge-moto-recording-$$}" \
    "$SAGEBRIDGE_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"${MOTO_LOG:-/dev/null}" 2>&1 &
  MOTO_PID=$!
  export SAGEBRIDGE_MOTO_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if curl -fs "$SAGEBRIDGE_MOTO_URL/moto-api/" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "moto did not start on $SAGEBRIDGE_MOTO_URL" >&2
  return 1
}
