# A server kvbench did not write, for the benchmarks: nginx (Debian's nginx-light) serving a static
# SSE completion - 256 token chunks, a usage chunk and [DONE], ~36 KB, the shape of a vLLM stream -
# and /v1/models on loopback. Source it, then `start_static_sse NAME || exit 0`: it sets TMP (a
# scratch directory), RES (a results root, in memory where it can be), BASE, EVENTS (events per
# response that kvbench parses), and an EXIT trap that stops nginx and removes both. NAME prefixes
# its messages; it returns 1 (having said why) when nginx is missing or does not serve.

start_static_sse() {
  local name=$1
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  if [[ ! -x $NGINX ]]; then
    echo "$name: needs nginx (Debian 'nginx-light'); skipping"
    return 1
  fi
  TMP=$(mktemp -d)
  # kvbench's rows (~3.6 KB per 256-token request, 80 MB/s at 20 k req/s) go to memory when it
  # can, so that the disk's writeback is not what is measured
  RES=$(mktemp -d /dev/shm/kvbench-bench-XXXXXX 2>/dev/null || echo "$TMP/results")
  trap '[[ -s $TMP/nginx.pid ]] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null; sleep 0.2; rm -rf "$TMP" "$RES"' EXIT
  mkdir -p "$TMP/www/v1" "$TMP/logs"
  # The static stream: 256 text chunks (the last with finish_reason), the usage chunk, [DONE].
  local words=(the cache block offload disk host memory token stream reuse) i fr
  {
    for i in $(seq 0 255); do
      fr=null
      ((i == 255)) && fr='"length"'
      printf 'data: {"id":"cmpl-static","object":"text_completion","created":1700000000,"model":"static","choices":[{"index":0,"text":" %s","logprobs":null,"finish_reason":%s}]}\n\n' \
        "${words[i % 10]}" "$fr"
    done
    printf 'data: {"id":"cmpl-static","object":"text_completion","created":1700000000,"model":"static","choices":[],"usage":{"prompt_tokens":4096,"completion_tokens":256,"total_tokens":264}}\n\n'
    printf 'data: [DONE]\n\n'
  } >"$TMP/www/v1/completions"
  printf '{"object":"list","data":[{"id":"static","object":"model","owned_by":"nginx","max_model_len":4096}]}' \
    >"$TMP/www/v1/models"
  chmod 755 "$TMP" && chmod -R a+rX "$TMP/www" # nginx's workers run as nobody
  EVENTS=258 # events per response that kvbench parses (256 text + usage; [DONE] is a marker)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000)))
  cat >"$TMP/nginx.conf" <<CONF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/logs;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    root $TMP/www;
    location = /v1/completions { default_type text/event-stream; error_page 405 =200 \$uri; }
    location = /v1/models { default_type application/json; }
  }
}
CONF
  "$NGINX" -c "$TMP/nginx.conf" -e "$TMP/logs/error.log" 2>"$TMP/nginx.err" || {
    echo "$name: nginx did not start: $(head -c 300 "$TMP/nginx.err")"
    return 1
  }
  BASE="http://127.0.0.1:$port"
  for _ in $(seq 50); do curl -sf "$BASE/v1/models" >/dev/null && break; sleep 0.1; done
  curl -sf "$BASE/v1/models" >/dev/null || {
    echo "$name: nginx does not serve the static files: $(curl -s "$BASE/v1/models" | head -c 200)"
    return 1
  }
}
