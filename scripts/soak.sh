#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# reqmon's soak run: does it stay exact and flat over a long mixed load? Not a test (it takes as
# long as you give it); a measurement, like scripts/bench.sh.
#
# nginx with 2 workers serves plain HTTP/1.1, HTTPS and HTTP/2 in the clear, every server with
# its access log on ($status), and reqmon observes it by the master's PID. For SOAK_MINUTES
# (10) it runs cycles of bounded mixed traffic: wrk with keep-alive on a short answer and on a
# 4 KiB file, ab with a new connection per request on a 404, wrk over HTTPS, h2load on h2c,
# curl with request bodies of 0, 1, 4095, 4096, 4097 bytes and 1 MiB (plain and chunked), HEAD,
# a 1 MiB download, and pipelined requests; every RELOAD_EVERY (2) cycles nginx is reloaded, so
# its workers are replaced by new ones that reqmon must follow. After each cycle it samples
# reqmon's RSS, CPU time, total and lost events.
#
# At the end it waits for reqmon to settle and compares with nginx's access logs: total_requests
# against the lines that carry a response (499, a client gone before the answer, has none), and
# every status code's count. It prints a markdown report (and writes it to OUT, default
# docs/soak.md) and exits 1 when a count differs or events were lost.
# SOAK_KEEP=1 keeps the work folder (access log, reqmon's output and request log) for a look.
# Needs root, a built reqmon (scripts/build.sh) and scripts/setup.sh's packages.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
reqmon=$build/reqmon
SOAK_MINUTES=${SOAK_MINUTES:-10}
RELOAD_EVERY=${RELOAD_EVERY:-2}
STEP=${STEP:-4}                 # seconds per wrk run
out_md=${OUT:-$here/docs/soak.md}

[ "$(id -u)" -eq 0 ] || { echo "soak.sh: needs root (it attaches reqmon's eBPF programs)" >&2; exit 1; }
[ -x "$reqmon" ] || { echo "soak.sh: $reqmon is missing: run scripts/build.sh" >&2; exit 1; }
for c in wrk ab h2load curl python3 openssl; do
  command -v $c >/dev/null || { echo "soak.sh: $c is missing: run scripts/setup.sh" >&2; exit 1; }
done
[ -x /usr/sbin/nginx ] || { echo "soak.sh: nginx is missing: run scripts/setup.sh" >&2; exit 1; }

work=$(mktemp -d /tmp/reqmon-soak-XXXXXX)
chmod 755 "$work"
rq_pid=""
cleanup() {
  [ -n "$rq_pid" ] && kill "$rq_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 0.3
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
log() { echo "[soak $(date +%T)] $*" >&2; }
. "$here/scripts/lib/common.sh"

port=$(free_port); tls_port=$(free_port); h2_port=$(free_port); api_port=$(free_port)
mkdir -p "$work/logs" "$work/html"
head -c 4096 /dev/urandom > "$work/html/file4k.bin"
head -c 1048576 /dev/urandom > "$work/html/big.bin"
for n in 0 1 4095 4096 4097 1048576; do head -c $n /dev/urandom > "$work/body$n"; done
self_signed_cert "$work"
cat > "$work/nginx.conf" <<CONF
worker_processes 2; daemon on; master_process on; pid $work/nginx.pid;
worker_rlimit_nofile 65536;
error_log $work/logs/error.log warn;
events { worker_connections 8192; }
http {
  log_format st '\$status \$pid \$connection \$msec "\$request"';
  access_log $work/logs/access.log st;
  client_body_temp_path $work/body;
  client_max_body_size 4m;
  sendfile off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port backlog=4096;
    listen 127.0.0.1:$tls_port ssl backlog=4096;
    listen 127.0.0.1:$h2_port http2 backlog=4096;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    root $work/html;
    location = / { return 200 'hello from nginx\n'; }
    location = /post { return 201 'taken\n'; }
  }
}
CONF
/usr/sbin/nginx -p "$work" -c "$work/nginx.conf"
sleep 0.5
master=$(cat "$work/nginx.pid")
base="http://127.0.0.1:$port"
wait_http "$base/"
"$reqmon" --pid "$master" --listen "127.0.0.1:$api_port" --log-file "$work/monitor_logs.txt" \
  >"$work/reqmon.out" 2>"$work/reqmon.err" &
rq_pid=$!
wait_http "http://127.0.0.1:$api_port/healthz"
sleep 0.5
: > "$work/logs/access.log"   # wait_http's request came before reqmon

stats() { curl -s "http://127.0.0.1:$api_port/stats" > "$1"; }
settle() {
  local prev=-1 cur
  for _ in $(seq 60); do
    stats "$work/s.json"; cur=$(jget "$work/s.json" "['total_requests']")
    [ "$cur" = "$prev" ] && return 0
    prev=$cur; sleep 0.5
  done
}
pipelined() {  # 10 pipelined GETs on one connection, the last one closing it
  python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
req = b"GET /file4k.bin HTTP/1.1\r\nHost: x\r\n\r\n" * 4 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 5
s.sendall(req + b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
while s.recv(65536):
    pass
PY
}
# check STEP: after a step, reqmon settled, is it still level with the access log? Where it is not,
# the step that made the difference is logged (with the incomplete requests it added).
gap=0; incomplete=0
check() {
  settle
  local lines total inc
  lines=$(grep -vc '^499 ' "$work/logs/access.log" || true)
  total=$(jget "$work/s.json" "['total_requests']")
  inc=$(jget "$work/s.json" "['incomplete_requests']")
  if [ $((lines - total)) != "$gap" ] || [ "$inc" != "$incomplete" ]; then
    log "cycle $cycle, $1: access log $lines, reqmon $total (gap $gap -> $((lines - total))), incomplete $incomplete -> $inc"
    echo "$cycle $1 $gap $((lines - total)) $incomplete $inc" >> "$work/diffs.txt"
    gap=$((lines - total)); incomplete=$inc
  fi
}
one_cycle() {
  wrk -t1 -c16 -d"${STEP}s" "$base/" >/dev/null; check "wrk keep-alive /"
  wrk -t1 -c16 -d"${STEP}s" "$base/file4k.bin" >/dev/null; check "wrk keep-alive 4 KiB file"
  ab -q -n 500 -c 8 "$base/missing" >/dev/null 2>&1 || true; check "ab new connections 404"
  wrk -t1 -c8 -d"${STEP}s" "https://127.0.0.1:$tls_port/" >/dev/null; check "wrk HTTPS"
  timeout 60 h2load -n 2000 -c 4 -m 10 "http://127.0.0.1:$h2_port/" >/dev/null 2>&1 || true
  timeout 60 h2load -n 200 -c 2 -m 4 "http://127.0.0.1:$h2_port/file4k.bin" >/dev/null 2>&1 || true
  check "h2load h2c"
  for n in 0 1 4095 4096 4097 1048576; do
    curl -s -o /dev/null --data-binary @"$work/body$n" "$base/post"
    curl -s -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary @"$work/body$n" "$base/post"
    curl -sk -o /dev/null --data-binary @"$work/body$n" "https://127.0.0.1:$tls_port/post"
  done
  curl -s -o /dev/null -I "$base/file4k.bin"
  curl -s -o /dev/null "$base/big.bin"
  curl -sk -o /dev/null "https://127.0.0.1:$tls_port/big.bin"
  check "curl bodies, HEAD, 1 MiB"
  pipelined; check "pipelined"
}

: > "$work/samples.txt"; : > "$work/diffs.txt"
start=$(date +%s)
end=$((start + SOAK_MINUTES * 60))
cycle=0
log "reqmon pid $rq_pid observing nginx $master for $SOAK_MINUTES min"
while [ "$(date +%s)" -lt "$end" ]; do
  cycle=$((cycle + 1))
  one_cycle
  if [ $((cycle % RELOAD_EVERY)) = 0 ]; then
    /usr/sbin/nginx -p "$work" -c "$work/nginx.conf" -s reload
    sleep 1
    check "reload"
  fi
  stats "$work/s.json"
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$rq_pid/status")
  ticks=$(awk '{print $14+$15}' "/proc/$rq_pid/stat")
  total=$(jget "$work/s.json" "['total_requests']")
  lost=$(jget "$work/s.json" "['lost_events']")
  echo "$cycle $(( $(date +%s) - start )) $rss $ticks $total $lost" >> "$work/samples.txt"
  log "cycle $cycle: total $total, lost $lost, RSS $rss KiB, CPU ticks $ticks"
done
# Let nginx finish its last answers and its old workers exit, then reqmon drain.
sleep 2
settle
stats "$work/final.json"
curl -s "http://127.0.0.1:$api_port/metrics" > "$work/metrics.json"
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$rq_pid/status")
kill -INT "$rq_pid"; wait "$rq_pid" 2>/dev/null || true; rq_pid=""
log_lines=$(cat "$work"/monitor_logs*.txt | grep -c ' - Request: ' || true)
log_files=$(ls "$work"/monitor_logs*.txt | wc -l)
tck=$(getconf CLK_TCK)

rc=0
python3 - "$work" "$SOAK_MINUTES" "$cycle" "$hwm" "$log_lines" "$tck" "$(nproc)" "$log_files" > "$work/report.md" <<'PY' || rc=$?
import collections, json, sys
work, minutes, cycles, hwm, log_lines, tck, ncpu, log_files = sys.argv[1:]
final = json.load(open(f"{work}/final.json"))
codes = collections.Counter(l.split()[0] for l in open(f"{work}/logs/access.log") if l.strip())
answered = sum(n for c, n in codes.items() if c != "499")
samples = [list(map(float, l.split()[:6])) for l in open(f"{work}/samples.txt") if l.strip()]
ok = True
out = [f"Soak run of `scripts/soak.sh`: {minutes} min, {cycles} cycles of mixed load on nginx "
       f"(2 workers, reloaded every few cycles), reqmon observing it by the master's PID; {ncpu} cores.", ""]
out += ["| what | nginx's access log | reqmon | same |", "|---|---|---|---|"]
def row(what, a, b):
    global ok
    same = a == b
    ok &= same
    out.append(f"| {what} | {a} | {b} | {'yes' if same else '**no**'} |")
row("requests answered (access-log lines other than 499)", answered, final["total_requests"])
for c in sorted(set(codes) | set(final["status_codes"])):
    if c == "499":
        continue
    row(f"status {c}", codes.get(c, 0), final["status_codes"].get(c, 0))
if log_files == "1":  # nothing rotated away: every request has its line
    row("request lines in monitor_logs.txt", final["total_requests"] + final.get("incomplete_requests", 0), int(log_lines))
out += ["", f"499 (client gone first) in the access log: {codes.get('499', 0)}; "
        f"reqmon's incomplete_requests: {final.get('incomplete_requests')}; lost_events: {final.get('lost_events')}; "
        f"TLS share: {final.get('tls', {}).get('share')}", ""]
if final.get("lost_events", 0):
    ok = False
diffs = [l.split() for l in open(f"{work}/diffs.txt") if l.strip()]
if diffs:
    out += ["Steps after which reqmon and the access log differed (cycle, step, gap before and after, incomplete before and after):", ""]
    out += ["    " + " ".join(d) for d in diffs] + [""]
# Memory and CPU over time: first cycle, the middle, the last.
def pick(i): return samples[i]
rows = [pick(0), pick(len(samples) // 2), pick(-1)] if len(samples) >= 3 else samples
out += ["| cycle | seconds | reqmon RSS KiB | total requests | reqmon CPU us per request since cycle 1 |", "|---|---|---|---|---|"]
first = samples[0]
for s in rows:
    cpu = f"{((s[3] - first[3]) / float(tck)) * 1e6 / (s[4] - first[4]):.2f}" if s[4] > first[4] else ""
    out.append(f"| {int(s[0])} | {int(s[1])} | {int(s[2])} | {int(s[4])} | {cpu} |")
rss = [s[2] for s in samples]
out += ["", f"RSS: first cycle {int(rss[0])} KiB, max {int(max(rss))} KiB, last {int(rss[-1])} KiB; "
        f"peak (VmHWM) {hwm} KiB. Verdict: {'exact, nothing lost' if ok else '**counts differ or events lost**'}."]
print("\n".join(out))
sys.exit(0 if ok else 1)
PY
cat "$work/report.md"
cp "$work/report.md" "$out_md"
exit $rc
