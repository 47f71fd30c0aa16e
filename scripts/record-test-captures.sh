#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Records the small captures under tests/data/ that the replay tests use, from real servers on
# loopback: nginx (master + 2 workers, attached by the master's PID) and python3 -m http.server,
# each driven by curl with a fixed mix of requests. Next to each capture it writes
# NAME.expected.json: what was driven (totals, status codes, per-route counts), which the replay
# tests compare against. Needs root (live capture) and a built reqmon (scripts/build.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
reqmon=${REQMON:-$here/build/reqmon}
out=$here/tests/data
work=$(mktemp -d /tmp/reqmon-rec-XXXXXX)
chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
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

# ---- python3 -m http.server -------------------------------------------------------------------
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
ls -la "$out"
