# Sourced by the gateway benchmarks: nginx from Debian with one worker, answering every request
# with a fixed chat completion, as the "SageMaker runtime" of a gateway under test.
#
# start_fixed_nginx DIR NGINX_BIN: writes DIR/nginx.conf, starts nginx on a free port of
# 127.0.0.1 in the foreground of a background job, waits for its worker (at most 10 s) and
# sets nginx_pid (the master: end it to end both), nginx_worker and nginx_port. Returns 1 if
# nginx did not start.
start_fixed_nginx() {
  local dir=$1 nginx_bin=$2 answer
  nginx_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$dir"
  answer='{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}'
  cat >"$dir/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      default_type application/json;
      return 200 '$answer';
    }
  }
}
NGINX
  "$nginx_bin" -c "$dir/nginx.conf" >"$dir/out" 2>&1 &
  nginx_pid=$!
  nginx_worker=""
  for _ in $(seq 1 100); do
    nginx_worker=$(pgrep -P "$nginx_pid" | head -1 || true)
    if [ -n "$nginx_worker" ]; then return 0; fi
    sleep 0.1
  done
  echo "nginx did not start:" >&2
  cat "$dir/out" >&2
  return 1
}

# fixed_nginx_gateway_yaml KEY PORT: a gateway config with one `openai` chat model, `bench-chat`,
# whose runtime is the nginx on PORT.
fixed_nginx_gateway_yaml() {
  cat <<YAML
server:
  apiKeys: ["$1"]
awsConfig:
  awsRegion: us-east-1
  awsAccessKeyId: bench
  awsSecretAccessKey: bench-secret
  endPointURL: http://127.0.0.1:$2
models:
  - {name: bench-chat, kind: chat, endpointName: chat, format: openai}
YAML
}
