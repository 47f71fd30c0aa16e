#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Records the small captures under tests/data/ that the replay tests use, from real servers on
# loopback: nginx (master + 2 workers, attached by the master's PID) and python3 -m http.server,
# each driven by curl with a fixed mix of requests. Next to each capture it writes
# NAME.expected.json: what was driven (totals, status codes, per-route counts), which the replay
# tests compare against. Needs root (live capture) and a built reqmon (scripts/build.sh).
# HTTP/2 captures (h2c, grpc): NAME.expected.json is what the live run itself reported
# (--print-stats), which a replay must reproduce; the traffic is checked against nginx's
# access log and the gRPC client's outcomes first.
# Usage: record-test-captures.sh [NAME...]   (nginx python h2c grpc; default: all)
set -euo pipefail
want=${*:-nginx python h2c grpc}
wanted() { [[ " $want " == *" $1 "* ]]; }
here=$(cd "$(dirname "$0")/.." && pwd)
reqmon=${REQMON:-$here/build/reqmon}
out=$here/tests/data
work=$(mktemp -d /tmp/reqmon-rec-XXXXXX)
chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT

. "$here/scripts/lib/common.sh"
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

record() {  # record NAME PID -- runs the traffic function "traffic_NAME" while recording
  local name=$1 pid=$2
  "$reqmon" --pid "$pid" --record "$work/$name.rqcap" --no-api --log-file none --duration 600 &
  local rq=$!
  sleep 1.5
  "traffic_$name"
  sleep 1
  kill -INT $rq
  wait $rq
  cp "$work/$name.rqcap" "$out/$name.rqcap"
}

# ---- nginx ----------------------------------------------------------------------------------
if wanted nginx; then
port=$(free_port)
mkdir -p "$work/html" "$work/logs"
echo '<html>hello from nginx</html>' > "$work/html/index.html"
head -c 100000 /dev/zero | tr '\0' 'x' > "$work/html/big.bin"
cat > "$work/nginx.conf" <<CONF
worker_processes 2; daemon off; master_process on; pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log $work/logs/access.log;
  client_body_temp_path $work/body;
  sendfile on;
  server {
    listen 127.0.0.1:$port;
    root $work/html;
    location = /status/201 { return 201 'created\n'; }
    location = /status/500 { return 500 'oops\n'; }
    location /api/ { return 200 '{"ok":true}\n'; }
  }
}
CONF
/usr/sbin/nginx -p "$work" -c "$work/nginx.conf" &
wait_port "$port"
u="http://127.0.0.1:$port"
traffic_nginx() {
  # 10 keep-alive GETs on one connection to /api/users/<n>
  curl -s $(for i in $(seq 1 10); do echo "-o /dev/null $u/api/users/$i"; done)
  # 5 one-shot GETs to /api/orders/<uuid>?page=n
  for i in 1 2 3 4 5; do curl -s -o /dev/null -H 'Connection: close' "$u/api/orders/7f3e9c1a-1b2c-4d5e-8f90-12345678900$i?page=$i"; done
  # 4 POSTs with a body, keep-alive
  curl -s -o /dev/null -d 'name=alice' "$u/api/items" -o /dev/null -d 'name=bob' "$u/api/items" \
       -o /dev/null -d 'name=carol' "$u/api/items" -o /dev/null -d 'name=dave' "$u/api/items"
  # 3 x 404, 2 x 500, 2 x 201, 2 HEAD, 1 index, 2 big files by sendfile
  for i in 1 2 3; do curl -s -o /dev/null "$u/missing/$i"; done
  curl -s -o /dev/null "$u/status/500" -o /dev/null "$u/status/500"
  curl -s -o /dev/null "$u/status/201" -o /dev/null "$u/status/201"
  curl -s -I -o /dev/null "$u/index.html"; curl -s -I -o /dev/null "$u/index.html"
  curl -s -o /dev/null "$u/"
  curl -s -o /dev/null "$u/big.bin" -o /dev/null "$u/big.bin"
}
record nginx "$(cat "$work/nginx.pid")"
cat > "$out/nginx.expected.json" <<JSON
{
  "server": "nginx $(/usr/sbin/nginx -v 2>&1 | sed 's#.*/##'), master + 2 workers, attached by master PID",
  "total_requests": 31,
  "status_codes": {"200": 24, "201": 2, "404": 3, "500": 2},
  "routes": {"GET /api/users/{id}": 10, "GET /api/orders/{id}": 5, "POST /api/items": 4,
             "GET /missing/{id}": 3, "GET /status/{id}": 4,
             "HEAD /index.html": 2, "GET /": 1, "GET /big.bin": 2},
  "connections": 16
}
JSON
kill "$(cat "$work/nginx.pid")"; sleep 0.5
fi

# ---- python3 -m http.server -------------------------------------------------------------------
if wanted python; then
port=$(free_port)
mkdir -p "$work/py"
echo '<html>hello from python</html>' > "$work/py/index.html"
head -c 10000 /dev/zero | tr '\0' 'p' > "$work/py/data.txt"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/py" >/dev/null 2>&1 &
pypid=$!
wait_port "$port"
u="http://127.0.0.1:$port"
traffic_python() {
  for i in $(seq 1 8); do curl -s -o /dev/null "$u/index.html?i=$i"; done
  for i in 1 2 3; do curl -s -o /dev/null "$u/data.txt"; done
  for i in 1 2 3 4; do curl -s -o /dev/null "$u/nope/$i"; done
  curl -s -I -o /dev/null "$u/index.html"
  curl -s -o /dev/null -d 'x=1' "$u/index.html"   # http.server answers POST with 501
}
record python "$pypid"
cat > "$out/python.expected.json" <<JSON
{
  "server": "python3 -m http.server ($(python3 --version 2>&1)), HTTP/1.0, one connection per request",
  "total_requests": 17,
  "status_codes": {"200": 12, "404": 4, "501": 1},
  "routes": {"GET /index.html": 8, "GET /data.txt": 3, "GET /nope/{id}": 4, "HEAD /index.html": 1,
             "POST /index.html": 1},
  "connections": 17
}
JSON
kill $pypid
fi

# ---- HTTP/2 -----------------------------------------------------------------------------------
# record_live NAME PID: like record, plus the live run's /stats in $work/NAME.live.json.
record_live() {
  local name=$1 pid=$2
  "$reqmon" --pid "$pid" --record "$work/$name.rqcap" --no-api --log-file none --duration 600 \
    --print-stats > "$work/$name.live.json" &
  local rq=$!
  sleep 1.5
  "traffic_$name"
  sleep 1.5
  kill -INT $rq
  wait $rq
  cp "$work/$name.rqcap" "$out/$name.rqcap"
}
# expected NAME DESCRIPTION: NAME.expected.json from the live run's figures.
expected() {
  python3 - "$work/$1.live.json" "$out/$1.expected.json" "$2" <<'PY'
import json, sys
live = json.load(open(sys.argv[1]))
routes = {}
for r in live["routes"]:
    routes[r["method"] + " " + r["route"]] = r["count"]
grpc = {m["service"] + "/" + m["method"]: m["status_codes"] for m in live["grpc"]["methods"]}
exp = {"server": sys.argv[3], "total_requests": live["total_requests"],
       "incomplete_requests": live["incomplete_requests"], "status_codes": live["status_codes"],
       "routes": routes, "protocols": live["protocols"],
       "grpc_status_codes": live["grpc"]["status_codes"], "grpc_methods": grpc,
       "average_response_time": live["average_response_time"],
       "min_response_time": live["min_response_time"], "max_response_time": live["max_response_time"],
       "percentiles": live["percentiles"], "connections": live["capture"]["connections_opened"]}
json.dump(exp, open(sys.argv[2], "w"), indent=2)
open(sys.argv[2], "a").write("\n")
PY
}
# h2_nginx PORT [GRPC_PORT]: nginx serving HTTP/2 in the clear (h2c, prior knowledge).
h2_nginx() {
  local grpc_loc=""
  [ -n "${2:-}" ] && grpc_loc="location /demo.Greeter/ { grpc_pass grpc://127.0.0.1:$2; }"
  mkdir -p "$work/h2/html" "$work/h2/logs"
  echo '<html>hello over h2c</html>' > "$work/h2/html/index.html"
  cat > "$work/h2/nginx.conf" <<CONF
worker_processes 2; daemon off; master_process on; pid $work/h2/nginx.pid;
error_log $work/h2/logs/error.log warn;
events { worker_connections 1024; }
http {
  log_format h2 '\$request_method \$uri \$status \$server_protocol';
  access_log $work/h2/logs/access.log h2;
  server {
    listen 127.0.0.1:$1 http2;
    root $work/h2/html;
    location = /status/500 { return 500 'oops\n'; }
    location /api/ { return 200 '{"ok":true}\n'; }
    $grpc_loc
  }
}
CONF
  rm -f "$work/h2/logs/access.log" "$work/h2/nginx.pid"
  /usr/sbin/nginx -p "$work/h2" -c "$work/h2/nginx.conf" &
  wait_port "$1"
  for _ in $(seq 100); do [ -s "$work/h2/nginx.pid" ] && break; sleep 0.05; done
}

if wanted h2c; then
port=$(free_port)
h2_nginx "$port"
u="http://127.0.0.1:$port"
traffic_h2c() {
  # 60 requests over 2 connections, 10 streams at a time; 3 requests by curl, one connection each
  h2load -n 60 -c 2 -m 10 "$u/api/users/7" "$u/status/500" "$u/index.html" >/dev/null
  for p in /api/orders/1 /api/orders/2 /missing; do curl -s --http2-prior-knowledge -o /dev/null "$u$p"; done
}
record_live h2c "$(cat "$work/h2/nginx.pid")"
logged=$(wc -l < "$work/h2/logs/access.log")
live=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total_requests"])' "$work/h2c.live.json")
[ "$logged" = 63 ] && [ "$live" = 63 ] || { echo "h2c: nginx logged $logged, reqmon saw $live, want 63" >&2; exit 1; }
expected h2c "nginx $(/usr/sbin/nginx -v 2>&1 | sed 's#.*/##') with listen http2 (h2c), h2load -n 60 -c 2 -m 10 and curl --http2-prior-knowledge"
kill "$(cat "$work/h2/nginx.pid")"; sleep 0.5
fi

if wanted grpc; then
gport=$(free_port)
/usr/bin/python3 - "$gport" <<'PY' &
import sys, grpc
from concurrent import futures
def say(req, ctx): return b'hello ' + req
def find(req, ctx): ctx.abort(grpc.StatusCode.NOT_FOUND, 'no such thing')
def fail(req, ctx): ctx.abort(grpc.StatusCode.INTERNAL, 'broken')
h = grpc.method_handlers_generic_handler('demo.Greeter', {
    'SayHello': grpc.unary_unary_rpc_method_handler(say),
    'Find': grpc.unary_unary_rpc_method_handler(find),
    'Fail': grpc.unary_unary_rpc_method_handler(fail)})
s = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
s.add_generic_rpc_handlers((h,))
s.add_insecure_port('127.0.0.1:' + sys.argv[1])
s.start()
s.wait_for_termination()
PY
grpcpid=$!
wait_port "$gport"
port=$(free_port)
h2_nginx "$port" "$gport"
traffic_grpc() {
  /usr/bin/python3 - "$port" > "$work/grpc.outcomes" <<'PY'
import sys, grpc
ch = grpc.insecure_channel('127.0.0.1:' + sys.argv[1])
for m, n in (('SayHello', 12), ('Find', 5), ('Fail', 3)):
    call = ch.unary_unary('/demo.Greeter/' + m)
    for i in range(n):
        try:
            call(b'x%d' % i, timeout=10); print('OK')
        except grpc.RpcError as e:
            print(e.code().name)
PY
}
record_live grpc "$(cat "$work/h2/nginx.pid")"
[ "$(sort "$work/grpc.outcomes" | uniq -c | tr -s ' ' | tr '\n' ';')" = " 3 INTERNAL; 5 NOT_FOUND; 12 OK;" ] || { echo "grpc: unexpected outcomes" >&2; exit 1; }
expected grpc "nginx $(/usr/sbin/nginx -v 2>&1 | sed 's#.*/##') grpc_pass to a Python grpcio server ($(/usr/bin/python3 -c 'import grpc; print(grpc.__version__)')), one channel: 12 OK, 5 NOT_FOUND, 3 INTERNAL"
kill "$(cat "$work/h2/nginx.pid")" $grpcpid; sleep 0.5
fi
ls -la "$out"
