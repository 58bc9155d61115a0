#!/usr/bin/env bash
# Connection hygiene in kvbench serve (issue 25, item 1), with real sockets: request framing
# answered from the headers alone, a header deadline that trickling cannot stretch, and idle
# keep-alive connections closed at --idle-timeout-s. (Floods of 1,100: conn_floods.sh.)
source "$(dirname "$0")/lib.sh"

CLIENT="$SRC/tests/e2e/slow_client.pl"

# --- framing: answered from the request line and headers, before any body is read -------------
start_engine --profile tiny --kv-mode off --speedup 0 --metrics-port 0 --max-body-bytes 65536 \
  --request-read-timeout-s 2 --disk-cache-dir "$TMP/kv1"
PORT=${BASE##*:}
# raw NAME WAIT BYTES... — send the bytes (printf format) on one connection; sets R to
# "FIRST LINE|ms to it|body bytes|ms to the close"
raw() {
  local name=$1 wait=$2
  shift 2
  printf "$@" >"$TMP/$name.req"
  R=$(perl "$CLIENT" raw "$PORT" "$TMP/$name.req" "$wait")
  echo "$name: $R"
}
field() { cut -d'|' -f"$1" <<<"$R"; }
status() { field 1 | awk '{ print $2 }'; }

# a body over --max-body-bytes, by its Content-Length: 413 at once, with no "100 Continue" first
# and without the body (none is sent: an answer that waited for it would never come)
raw expect 3 'POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\nExpect: 100-continue\r\n\r\n'
[[ $(status) == 413 ]] || fail "Expect: 100-continue with 50 MB: $R"
(( $(field 2) < 1000 )) || fail "the 413 took $(field 2) ms"
raw big 3 'POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{"prompt":'
[[ $(status) == 413 ]] || fail "100 MB Content-Length: $R"
(( $(field 2) < 1000 )) || fail "the 413 took $(field 2) ms"
(( $(field 4) >= 0 )) || fail "the connection of an unread body was kept open: $R"
# framing a proxy could read otherwise: refused
raw cl2 3 'POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}'
[[ $(status) == 400 ]] || fail "conflicting Content-Length: $R"
raw clbad 3 'POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 2x\r\n\r\n{}'
[[ $(status) == 400 ]] || fail "Content-Length 2x: $R"
raw te 3 'POST /v1/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n{}'
[[ $(status) == 501 ]] || fail "Transfer-Encoding: xchunked: $R"
raw tecl 3 'POST /v1/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n'
[[ $(status) == 400 ]] || fail "Transfer-Encoding and Content-Length: $R"
raw nohost 3 'GET /health HTTP/1.1\r\n\r\n'
[[ $(status) == 400 ]] || fail "HTTP/1.1 without Host: $R"
raw http10 3 'GET /health HTTP/1.0\r\n\r\n'
[[ $(status) == 200 ]] || fail "HTTP/1.0 without Host: $R"
# HEAD wherever GET is served: the GET headers, no body
raw head 3 'HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n'
[[ $(status) == 200 && $(field 3) -eq 0 ]] || fail "HEAD /health: $R"
raw headmodels 3 'HEAD /v1/models HTTP/1.1\r\nHost: t\r\n\r\n'
[[ $(status) == 200 && $(field 3) -eq 0 ]] || fail "HEAD /v1/models: $R"
raw headpost 3 'HEAD /v1/completions HTTP/1.1\r\nHost: t\r\n\r\n'
[[ $(status) == 405 ]] || fail "HEAD /v1/completions: $R"
# chunked bodies still work; one past the limit has no length to refuse it by: the connection
# is closed where it passes the limit, not read to its end
raw chunked 5 'POST /v1/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n11\r\n{"prompt":"hello"\r\n10\r\n,"max_tokens":2}\r\n0\r\n\r\n'
[[ $(status) == 200 ]] || fail "a chunked completion: $R"
{
  printf 'POST /v1/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n'
  chunk=$(head -c 4096 /dev/zero | tr '\0' 'a')
  for _ in $(seq 64); do printf '1000\r\n%s\r\n' "$chunk"; done
} >"$TMP/chunkbig.req"
R=$(perl "$CLIENT" raw "$PORT" "$TMP/chunkbig.req" 3)
echo "chunked 256 KiB body, limit 64 KiB: $R"
(( $(field 4) >= 0 )) || fail "a chunked body over the limit was not cut: $R"
# not HTTP at all: a TLS ClientHello, binary garbage — closed at once, not held to a timeout
raw tls 3 '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x5f\x1a\x00\x00'
[[ $(field 1) == closed ]] && (( $(field 4) < 500 )) || fail "a TLS ClientHello: $R"
raw binary 3 '\x00\x01\x02\x03\xff\xfe'
[[ $(field 1) == closed ]] && (( $(field 4) < 500 )) || fail "binary garbage: $R"
# and the engine serves on
curl -sf --max-time 2 "$BASE/health" >/dev/null || fail "/health after the framing cases"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt":"hello","max_tokens":2}') == 200 ]] || fail "a normal completion after the framing cases"

# --- the header deadline: 40 connections sending one header line a second --------------------
# (--request-read-timeout-s 2: each is closed 2 s after it connected, however it trickles)
R=$(perl "$CLIENT" trickle "$PORT" 40 1 8)
echo "40 trickling connections, deadline 2 s: ${R#ready$'\n'}"
read -r _ open _ refused _ closed _ first _ last _ still <<<"$(tail -1 <<<"$R")"
[[ $open -eq 40 && $refused -eq 0 ]] || fail "trickle: $R"
[[ $closed -eq 40 && $still -eq 0 ]] || fail "trickling connections outlived the header deadline: $R"
(( first >= 1900 )) || fail "a trickling connection was closed before its deadline: $R"
(( last <= 3500 )) || fail "a trickling connection was closed $last ms after it connected: $R"
stop_engine

# --- idle keep-alive connections are closed at --idle-timeout-s ------------------------------
start_engine --profile tiny --kv-mode off --speedup 0 --metrics-port 0 --idle-timeout-s 2 \
  --disk-cache-dir "$TMP/kv3"
R=$(perl "$CLIENT" idle "${BASE##*:}" 5 6)
echo "5 idle keep-alive connections, --idle-timeout-s 2: ${R#ready$'\n'}"
read -r _ open _ refused _ closed _ first _ last _ still _ <<<"$(tail -1 <<<"$R")"
[[ $closed -eq 5 ]] && (( first >= 1900 && last <= 3500 )) || fail "idle keep-alive: $R"
stop_engine
echo "connections: ok"
