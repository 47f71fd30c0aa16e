#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# reqmon's benchmark: accuracy and cost under real load, on this machine, in under 10 minutes.
#  1. Overhead, against nginx's own access log: nginx on loopback under wrk with keep-alive, on
#     `return 200` and on a 4 KiB static file (sendfile off); PAIRS rounds, each with four runs in
#     rotating order: nothing, the access log on, the least capture (tests/tools/min_capture.bpf.c
#     on the two tracepoints reqmon's data programs use: the process test, the head copied
#     straight into the ring, drained and thrown away: the least any capture of HTTP heads does),
#     reqmon attached (default settings, request log on). Median ratios of throughput and p99 to
#     "nothing"; reqmon's CPU time per request. Then one run each, with bpf_stats on, of the hook
#     floor (tests/tools/hook_floor.bpf.c: programs that return at once on the same tracepoints),
#     the least capture and reqmon: BPF time per request, which the host's noise moves far less
#     than throughput.
#  2. Completeness: reqmon's total_requests against the load generator's completed requests in
#     the attached runs, and with ab -n N without keep-alive; lost ring-buffer events.
#  3. Pipeline throughput: a capture recorded from a real wrk run, repeated past 1,000,000
#     requests (tests/tools/capture_repeat), replayed with --replay --print-stats on one core.
#  4. Scale: 10,000 concurrent keep-alive connections held open, then 100,000 short connections:
#     reqmon's RSS and the kernel maps' memory.
#  5. What processes reqmon does not observe pay: tests/tools/syscall_cost's getppid(), /dev/null
#     write and loopback TCP write+read, without and with reqmon attached to nginx (3 pairs).
#  6. HTTPS: the same nginx's TLS port under wrk, HTTPS_PAIRS alternating pairs without and with
#     reqmon: throughput and p99 ratios, uprobe hits per request (bpf_stats run counts of the TLS
#     programs over the requests counted) and what a hit costs nginx (the extra time per request
#     over the hits per request); and what an unobserved TLS server and client pay (a second
#     nginx under wrk over HTTPS while reqmon observes the first one). HTTPS_ONLY=1 runs this
#     section alone and prints its rows.
#  7. Queue time (bpf/queue.bpf.c): what its hooks cost, reqmon with them against reqmon
#     --no-queue-time: observed nginx (keep-alive, and a new connection per request) and an
#     unobserved nginx under wrk (QUEUE_PAIRS alternating pairs), and each hook's own time per run
#     (bpf_stats), and what an unobserved process's loopback write + read costs with and without
#     them (tests/tools/syscall_cost). QUEUE_ONLY=1 runs this section alone and prints its rows.
#  8. HTTP/2 capture (bpf/h2frames.bpf.h): h2load -n H2_N on the same nginx's h2c port (4
#     connections, 10 streams each), a 64 KiB file and a response with a 9,000-character header asked for with a
#     9,000-character request header; H2_PAIRS rounds of nothing / reqmon --no-h2-frames (the plain
#     prefix) / reqmon (frames without DATA payloads): throughput, reqmon's CPU per request, the
#     bytes the kernel left in place per request, and whether the header tables stayed exact.
#     H2_ONLY=1 runs this section alone and prints its rows.
# Prints a markdown table and writes it to docs/benchmarks.md. Needs root, a built reqmon
# (scripts/build.sh) and scripts/setup.sh's packages. Every figure: median (min to max).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
reqmon=$build/reqmon
repeat=$build/capture_repeat
costtool=$build/syscall_cost
floortool=$build/hook_floor
floorobj=$build/hook_floor.bpf.o
minobj=$build/min_capture.bpf.o
PAIRS=${PAIRS:-4}            # rounds of the overhead runs (nothing / access log / least capture / reqmon)
DURATION=${DURATION:-4}      # seconds per wrk run
CONNS=${CONNS:-32}           # wrk connections
AB_N=${AB_N:-20000}          # ab requests, one connection each
HTTPS_PAIRS=${HTTPS_PAIRS:-3}  # A/B pairs for the HTTPS runs
REPLAY_MIN=${REPLAY_MIN:-1000000}
QUEUE_PAIRS=${QUEUE_PAIRS:-3}  # A/B pairs for the queue-time runs (section 7)
QUEUE_DURATION=${QUEUE_DURATION:-4}  # seconds per wrk run in section 7
H2_PAIRS=${H2_PAIRS:-2}      # rounds of the HTTP/2 runs (section 8)
H2_N=${H2_N:-20000}          # requests per h2load run in section 8
HOLD=${HOLD:-10000}          # connections held open in the scale run
CHURN=${CHURN:-100000}       # short connections in the churn run
out_md=${OUT:-$here/docs/benchmarks.md}

[ "$(id -u)" -eq 0 ] || { echo "bench.sh: needs root (it attaches reqmon's eBPF programs)" >&2; exit 1; }
for t in "$reqmon" "$repeat" "$costtool" "$floortool" "$floorobj" "$minobj"; do [ -e "$t" ] || { echo "bench.sh: $t is missing: run scripts/build.sh" >&2; exit 1; }; done
for c in wrk ab nginx curl python3 bpftool; do
  command -v $c >/dev/null || [ -x /usr/sbin/$c ] || { echo "bench.sh: $c is missing: run scripts/setup.sh" >&2; exit 1; }
done

bench_start=$(date +%s)
work=$(mktemp -d /tmp/reqmon-bench-XXXXXX)
chmod 755 "$work"
rq_pid=""
floor_pid=""
cleanup() {
  [ -n "$rq_pid" ] && kill "$rq_pid" 2>/dev/null || true
  [ -n "$floor_pid" ] && kill "$floor_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  [ -f "$work/other/nginx.pid" ] && kill "$(cat "$work/other/nginx.pid")" 2>/dev/null || true
  [ -f "$work/unobs/nginx.pid" ] && kill "$(cat "$work/unobs/nginx.pid")" 2>/dev/null || true
  pkill -f "$work/hold.py" 2>/dev/null || true
  sleep 0.3
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

. "$here/scripts/lib/common.sh"
log() { echo "[bench $(date +%T)] $*" >&2; }

# ---- the server -----------------------------------------------------------------------------
# One worker: with two, how wrk's 32 connections happened to split between them decided each
# run (p99 either ~0.3 ms or ~4 ms, throughput +-20%), which drowned what reqmon costs.
port=$(free_port)
log_port=$(free_port)
tls_port=$(free_port)
other_tls_port=$(free_port)
api_port=$(free_port)
h2_port=$(free_port)
mkdir -p "$work/logs" "$work/html" "$work/other/logs"
head -c 4096 /dev/urandom > "$work/html/file4k.bin"
self_signed_cert "$work"
cat > "$work/nginx.conf" <<CONF
worker_processes 1; daemon on; master_process on; pid $work/nginx.pid;
worker_rlimit_nofile 65536;
error_log $work/logs/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $work/body;
  log_format timed '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent \$request_time';
  sendfile off;  # nginx's built-in default, and what HTTPS forces
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$port backlog=4096;
    listen 127.0.0.1:$tls_port ssl backlog=4096;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    location / { return 200 'hello from nginx\n'; }
    location = /file4k.bin { root $work/html; }
  }
  include $work/h2server.conf;
  include $work/logserver.conf;
}
CONF
# The same answers with the access log on: unbuffered, with \$request_time, as a log-based monitor
# needs it (the same worker serves both ports).
cat > "$work/logserver.conf" <<CONF
server {
  listen 127.0.0.1:$log_port backlog=4096;
  access_log $work/logs/access.log timed;
  location / { return 200 'hello from nginx\n'; }
  location = /file4k.bin { root $work/html; }
}
CONF
# HTTP/2 in the clear (section 8): a 64 KiB file, and a 9,000-character response header (nginx
# reads configuration tokens of at most 4 KiB: three of them).
h2big=$(python3 -c 'print("".join("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(i*7919 + i//13) % 62] for i in range(9000)))')
head -c 65536 /dev/zero > "$work/html/h64k.bin"
cat > "$work/h2server.conf" <<CONF
server {
  listen 127.0.0.1:$h2_port http2 backlog=4096;
  http2_max_requests 1000000;
  location = /h64k.bin { root $work/html; }
  location = /bighdr { set \$a "${h2big:0:3000}"; set \$b "${h2big:3000:3000}"; set \$c "${h2big:6000}"; add_header X-Big \$a\$b\$c; return 200 'ok\n'; }
}
CONF
# A second nginx that reqmon never observes, for what unobserved TLS processes pay.
sed -e "s|pid $work/nginx.pid|pid $work/other/nginx.pid|" -e "s|$work/logs|$work/other/logs|" \
  -e "/listen 127.0.0.1:$port /d" -e "/logserver.conf/d" -e "/h2server.conf/d" -e "s|127.0.0.1:$tls_port|127.0.0.1:$other_tls_port|" \
  -e "s|client_body_temp_path $work/body|client_body_temp_path $work/other/body|" \
  "$work/nginx.conf" > "$work/other/nginx.conf"
/usr/sbin/nginx -p "$work/other" -c "$work/other/nginx.conf"
/usr/sbin/nginx -p "$work" -c "$work/nginx.conf"
sleep 0.5
master=$(cat "$work/nginx.pid")
url="http://127.0.0.1:$port/api/bench"
wait_http "$url"

start_reqmon() {  # start_reqmon [extra args...]; sets rq_pid, waits until attached
  "$reqmon" --pid "$master" --listen "127.0.0.1:$api_port" --log-file "$work/monitor_logs.txt" "$@" \
    >"$work/reqmon.out" 2>"$work/reqmon.err" &
  rq_pid=$!
  wait_http "http://127.0.0.1:$api_port/healthz"
}
stop_reqmon() { kill -INT "$rq_pid"; wait "$rq_pid" 2>/dev/null || true; rq_pid=""; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
stats() { curl -s "http://127.0.0.1:$api_port/stats" > "$1"; }
settle() {  # waits until /stats total stops moving
  local prev=-1 cur
  for _ in $(seq 50); do
    stats "$work/s.json"; cur=$(jget "$work/s.json" "['total_requests']")
    [ "$cur" = "$prev" ] && return 0
    prev=$cur; sleep 0.3
  done
}
# wrk_run FILE [URL [SECONDS]]: one wrk run; writes "rps p99_ms completed" to FILE
wrk_run() {
  wrk -t1 -c"$CONNS" -d"${3:-$DURATION}s" --latency "${2:-$url}" > "$work/wrk.txt"
  python3 - "$work/wrk.txt" > "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = float(re.search(r'Requests/sec:\s+([\d.]+)', t).group(1))
done = int(re.search(r'(\d+) requests in', t).group(1))
v, unit = re.search(r'^\s+99%\s+([\d.]+)(us|ms|s)\s*$', t, re.M).groups()
p99 = float(v) * {'us': 1e-3, 'ms': 1.0, 's': 1e3}[unit]
print(rps, p99, done)
PY
}

# ---- 7: queue time: what its hooks cost (section of issue #14) ---------------------------------
# reqmon with the queue-time hooks (default) against reqmon --no-queue-time, alternating, on:
# the observed nginx under wrk with keep-alive (sk_data_ready on observed sockets, the read
# path's lookup) and with a new connection per request (the handshake hook too); a third nginx
# that reqmon does not observe under wrk (what every other socket on the host pays: one bitmap
# test in sk_data_ready). And each program's own time per run from bpf_stats. Rows go to
# $work/queue_rows.md, which the report includes.
queue_prog_runs() {  # "runs ns" of the queue programs whose name starts with $1
  bpftool prog show -j 2>/dev/null | python3 -c '
import json, sys
r = t = 0
for p in json.load(sys.stdin):
    if p.get("name", "").startswith(sys.argv[1]):
        r += p.get("run_cnt", 0); t += p.get("run_time_ns", 0)
print(r, t)' "$1"
}
queue_time_cost() {
  local unobs_port; unobs_port=$(free_port)
  mkdir -p "$work/unobs/logs"
  sed -e "s|pid $work/nginx.pid|pid $work/unobs/nginx.pid|" -e "s|$work/logs|$work/unobs/logs|" \
    -e "/listen 127.0.0.1:$tls_port /d" -e "/logserver.conf/d" -e "/h2server.conf/d" -e "s|127.0.0.1:$port |127.0.0.1:$unobs_port |" \
    -e "s|client_body_temp_path $work/body|client_body_temp_path $work/unobs/body|" \
    "$work/nginx.conf" > "$work/unobs/nginx.conf"
  /usr/sbin/nginx -p "$work/unobs" -c "$work/unobs/nginx.conf"
  local unobs_url="http://127.0.0.1:$unobs_port/api/bench"
  wait_http "$unobs_url"
  local stats_was; stats_was=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
  sysctl -qw kernel.bpf_stats_enabled=1 || true
  : > "$work/queue.txt"
  log "queue time: $QUEUE_PAIRS pairs of ${QUEUE_DURATION}s wrk runs, reqmon --no-queue-time / reqmon"
  for i in $(seq "$QUEUE_PAIRS"); do
    for mode in off on; do
      if [ $mode = off ]; then start_reqmon --no-queue-time; else start_reqmon; fi
      read -r d0 dt0 < <(queue_prog_runs queue_data_rea)
      wrk_run "$work/q_keep_$mode.txt" "$url" "$QUEUE_DURATION"
      read -r d1 dt1 < <(queue_prog_runs queue_data_rea)
      wrk -t1 -c"$CONNS" -d"${QUEUE_DURATION}s" -H 'Connection: close' "$url" > "$work/wrk_close.txt"
      close_rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk_close.txt")
      read -r s0 st0 < <(queue_prog_runs queue_set_stat)
      read -r u0 ut0 < <(queue_prog_runs queue_data_rea)
      wrk_run "$work/q_unobs_$mode.txt" "$unobs_url" "$QUEUE_DURATION"
      read -r u1 ut1 < <(queue_prog_runs queue_data_rea)
      read -r s1 st1 < <(queue_prog_runs queue_set_stat)
      read -r _ _ lo_ns < <("$costtool" 300000)   # an unobserved loopback write + read
      settle
      q_count=$(jget "$work/s.json" "['queue_time']['count']")
      q_avg=$(jget "$work/s.json" "['queue_time']['average']")
      stop_reqmon
      read -r k_rps k_p99 k_done < "$work/q_keep_$mode.txt"
      read -r u_rps u_p99 u_done < "$work/q_unobs_$mode.txt"
      echo "$i $mode $k_rps $k_p99 $close_rps $u_rps $u_p99 $((d1 - d0)) $((dt1 - dt0)) $((u1 - u0)) $((ut1 - ut0)) $((s1 - s0)) $((st1 - st0)) $q_count $q_avg $lo_ns" >> "$work/queue.txt"
      log "queue $mode pair $i: observed keep-alive ${k_rps} req/s p99 ${k_p99} ms, new connections ${close_rps} req/s | unobserved ${u_rps} req/s p99 ${u_p99} ms | sk_data_ready runs $((d1 - d0)) observed, $((u1 - u0)) unobserved | queue_time count $q_count avg $q_avg ms"
    done
  done
  sysctl -qw kernel.bpf_stats_enabled="$stats_was" || true
  kill "$(cat "$work/unobs/nginx.pid")" 2>/dev/null || true
  python3 - "$work/queue.txt" > "$work/queue_rows.md" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r[0], {})[r[1]] = list(map(float, r[2:]))
pairs = [v for v in by.values() if "on" in v and "off" in v]
def f(xs, fmt="{:.3f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))} to {fmt.format(max(xs))})"
def ratio(k):
    return [p["on"][k] / p["off"][k] for p in pairs if p["off"][k]]
def per_run(runs, ns):
    # bpf_stats is a host-wide switch that other tools may turn off meanwhile: runs with none
    # counted are left out; "none counted" when no run had any.
    return [p["on"][ns] / p["on"][runs] for p in pairs if p["on"][runs]] or [float("nan")]
out = []
def row(what, value, bar, ok):
    out.append(f"| {what} | {value} | {bar} | {'yes' if ok else '**no**'} |")
k = ratio(0); row("queue time: observed nginx, keep-alive: throughput with / without the queue hooks", f(k), ">= 0.97", statistics.median(k) >= 0.97)
k = ratio(1); row("queue time: observed nginx, keep-alive: p99 with / without the queue hooks", f(k), "<= 1.10", statistics.median(k) <= 1.10)
k = ratio(2); row("queue time: observed nginx, a new connection per request: throughput with / without", f(k), ">= 0.97", statistics.median(k) >= 0.97)
k = ratio(3); row("queue time: unobserved nginx (keep-alive): throughput with / without the queue hooks", f(k), ">= 0.98", statistics.median(k) >= 0.98)
row("queue time: an unobserved process's 100-byte write + read over loopback TCP, ns without / with the queue hooks", f"{f([p['off'][13] for p in pairs], '{:.0f}')} / {f([p['on'][13] for p in pairs], '{:.0f}')}", "", True)
k = per_run(5, 6); row("queue time: sk_data_ready program, observed sockets, ns per run (bpf_stats)", f(k, "{:.0f}"), "", True)
k = per_run(7, 8); row("queue time: sk_data_ready program, unobserved sockets, ns per run (bpf_stats)", f(k, "{:.0f}"), "", True)
k = per_run(9, 10); row("queue time: inet_sock_set_state program (every TCP state change), ns per run", f(k, "{:.0f}"), "", True)
row("queue time: requests with a measured wait / mean wait, ms (hooks on)", " / ".join(f"{int(p['on'][11])} / {p['on'][12]:.3f}" for p in pairs), "", True)
print("\n".join(out))
PY
  cat "$work/queue_rows.md" >&2
}
if [ "${QUEUE_ONLY:-0}" = 1 ]; then
  queue_time_cost
  exit 0
fi
# ---- end of section 7 ----------------------------------------------------------------------------

# ---- 8: HTTP/2 capture: frames without DATA payloads against the plain prefix (issue #11) --------
# h2_run FILE URL [extra h2load args]: one h2load run; writes "rps done" to FILE
h2_run() {
  local f=$1 u=$2; shift 2
  timeout 120 h2load -c 4 -m 10 -n "$H2_N" "$@" "$u" > "$work/h2load.txt" 2>&1 || true
  python3 - "$work/h2load.txt" > "$f" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r'finished in [\d.]+\w*, ([\d.]+) req/s', t)
d = re.search(r'requests: \d+ total, \d+ started, (\d+) done', t)
print(float(m.group(1)) if m else 0.0, int(d.group(1)) if d else 0)
PY
}
h2_cost() {
  command -v h2load >/dev/null || { log "h2load missing: section 8 skipped"; : > "$work/h2_rows.md"; return 0; }
  : > "$work/h2.txt"
  local file_url="http://127.0.0.1:$h2_port/h64k.bin" hdr_url="http://127.0.0.1:$h2_port/bighdr"
  log "HTTP/2: $H2_PAIRS rounds of h2load -n $H2_N runs: nothing / reqmon --no-h2-frames / reqmon"
  for i in $(seq "$H2_PAIRS"); do
    for mode in none prefix frames; do
      [ $mode = prefix ] && start_reqmon --no-h2-frames
      [ $mode = frames ] && start_reqmon
      local c0=0 c1=0
      [ $mode != none ] && c0=$(cpu_ticks "$rq_pid")
      h2_run "$work/h2_file_$mode.txt" "$file_url"
      h2_run "$work/h2_hdr_$mode.txt" "$hdr_url" -H "x-big: $h2big"
      local total=0 left=0 resets=0 unknown=0 lost=0 h2lost=0
      if [ $mode != none ]; then
        settle
        c1=$(cpu_ticks "$rq_pid")
        total=$(jget "$work/s.json" "['total_requests']")
        left=$(jget "$work/s.json" "['capture']['kernel_body_bytes_not_copied']")
        resets=$(jget "$work/s.json" "['http2']['hpack_resets']")
        unknown=$(jget "$work/s.json" "['unknown_paths']")
        lost=$(jget "$work/s.json" "['lost_events']")
        h2lost=$(jget "$work/s.json" "['capture']['kernel_h2_frames_lost']")
        stop_reqmon
      fi
      read -r f_rps f_done < "$work/h2_file_$mode.txt"
      read -r h_rps h_done < "$work/h2_hdr_$mode.txt"
      echo "$i $mode $f_rps $h_rps $((f_done + h_done)) $total $(( (c1 - c0) * 10 )) $left $resets $unknown $lost $h2lost" >> "$work/h2.txt"
      log "h2 $mode round $i: 64 KiB file ${f_rps} req/s, 9 KB headers ${h_rps} req/s | reqmon counted $total of $((f_done + h_done)), $(( (c1 - c0) * 10 )) ms CPU, $left bytes left in place, hpack resets $resets, unknown paths $unknown, lost events $lost, kernel lost its place $h2lost"
    done
  done
  python3 - "$work/h2.txt" > "$work/h2_rows.md" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r[0], {})[r[1]] = list(map(float, r[2:]))
rounds = [v for v in by.values() if len(v) == 3]
def f(xs, fmt="{:.3f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))} to {fmt.format(max(xs))})"
out = []
def row(what, value, bar="", ok=True):
    out.append(f"| {what} | {value} | {bar} | {'yes' if ok else '**no**'} |")
for mode, name in (("prefix", "--no-h2-frames (plain 4 KiB prefix)"), ("frames", "frames without DATA payloads (default)")):
    fr = [r[mode][0] / r["none"][0] for r in rounds if r["none"][0]]
    hr = [r[mode][1] / r["none"][1] for r in rounds if r["none"][1]]
    cpu = [r[mode][4] * 1000 / r[mode][3] for r in rounds if r[mode][3]]
    left = [r[mode][5] / r[mode][3] for r in rounds if r[mode][3]]
    exact = all(r[mode][3] == r[mode][2] for r in rounds)
    resets = sum(int(r[mode][6]) for r in rounds); unknown = sum(int(r[mode][7]) for r in rounds)
    lost = sum(int(r[mode][8]) for r in rounds); h2lost = sum(int(r[mode][9]) for r in rounds)
    row(f"HTTP/2, {name}: 64 KiB file, throughput / nothing", f(fr))
    row(f"HTTP/2, {name}: 9 KB header blocks both ways, throughput / nothing", f(hr))
    row(f"HTTP/2, {name}: reqmon CPU per request, us", f(cpu, "{:.2f}"))
    row(f"HTTP/2, {name}: bytes the kernel left in place per request", f(left, "{:.0f}"))
    row(f"HTTP/2, {name}: requests counted = h2load's; header-table resets; unknown paths; lost events; records where the kernel lost its place",
        f"{'yes' if exact else 'no'}; {resets}; {unknown}; {lost}; {h2lost}", "exact, 0, 0, 0, 0" if mode == "frames" else "",
        (exact and resets == 0 and unknown == 0 and lost == 0 and h2lost == 0) if mode == "frames" else True)
print("\n".join(out))
PY
  cat "$work/h2_rows.md" >&2
}
if [ "${H2_ONLY:-0}" = 1 ]; then
  h2_cost
  exit 0
fi
# ---- end of section 8 ----------------------------------------------------------------------------


# ---- 6: HTTPS: what observing nginx over TLS costs (uprobes), and what it costs others --------
# https_cost: HTTPS_PAIRS pairs without / with reqmon; the rows go to $work/https_rows.md.
https_cost() {
  tls_url="https://127.0.0.1:$tls_port/api/bench"
  other_url="https://127.0.0.1:$other_tls_port/api/bench"
  # Run counts and times of the TLS uprobe programs (bpf_stats), summed: "runs ns".
  tls_prog_runs() {
    bpftool prog show -j 2>/dev/null | python3 -c '
import json, sys
r = t = 0
for p in json.load(sys.stdin):
    if p.get("name", "").startswith(("ssl_", "tls_multi_")):
        r += p.get("run_cnt", 0); t += p.get("run_time_ns", 0)
print(r, t)'
  }
  log "https: $HTTPS_PAIRS pairs of ${DURATION}s wrk runs over TLS, without / with reqmon"
  stats_was=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
  sysctl -qw kernel.bpf_stats_enabled=1 || true
  wrk -t1 -c"$CONNS" -d2s "$tls_url" >/dev/null   # warm-up
  : > "$work/https.txt"
  for i in $(seq "$HTTPS_PAIRS"); do
    wrk_run "$work/a.txt" "$tls_url"
    start_reqmon
    read -r r0 t0 < <(tls_prog_runs)
    stats "$work/s0.json"; n0=$(jget "$work/s0.json" "['total_requests']")
    wrk_run "$work/b.txt" "$tls_url"
    settle
    read -r r1 t1 < <(tls_prog_runs)
    total=$(jget "$work/s.json" "['total_requests']")
    tls_total=$(jget "$work/s.json" "['tls']['requests']")
    lost=$(jget "$work/s.json" "['lost_events']")
    stop_reqmon
    read -r a_rps a_p99 a_done < "$work/a.txt"
    read -r b_rps b_p99 b_done < "$work/b.txt"
    echo "$a_rps $a_p99 $b_rps $b_p99 $b_done $((total - n0)) $tls_total $lost $((r1 - r0)) $((t1 - t0))" >> "$work/https.txt"
    log "https pair $i: without ${a_rps} req/s p99 ${a_p99} ms | with ${b_rps} req/s p99 ${b_p99} ms | wrk completed $b_done, reqmon counted $tls_total over TLS, lost $lost, uprobe hits $((r1 - r0))"
  done
  log "https: an unobserved nginx over TLS under wrk, without / with reqmon observing the first nginx"
  : > "$work/other.txt"
  for i in $(seq "$HTTPS_PAIRS"); do
    wrk_run "$work/a.txt" "$other_url" 4
    start_reqmon
    read -r r0 t0 < <(tls_prog_runs)
    wrk_run "$work/b.txt" "$other_url" 4
    read -r r1 t1 < <(tls_prog_runs)
    stop_reqmon
    read -r a_rps a_p99 a_done < "$work/a.txt"
    read -r b_rps b_p99 b_done < "$work/b.txt"
    echo "$a_rps $b_rps $((r1 - r0)) $b_done" >> "$work/other.txt"
    log "unobserved https pair $i: without ${a_rps} req/s | with ${b_rps} req/s | uprobe hits $((r1 - r0)) for $b_done requests"
  done
  sysctl -qw kernel.bpf_stats_enabled="$stats_was" || true
  python3 - "$work" > "$work/https_rows.md" <<PY
import statistics, sys
work = sys.argv[1]
https = [list(map(float, l.split())) for l in open(f"{work}/https.txt") if l.strip()]
other = [list(map(float, l.split())) for l in open(f"{work}/other.txt") if l.strip()]
def f(xs, fmt="{:.3f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))} to {fmt.format(max(xs))})"
out = []
def row(what, value, bar, ok):
    out.append(f"| {what} | {value} | {bar} | {'yes' if ok else '**no**'} |")
h_thr = [p[2] / p[0] for p in https]
h_p99 = [p[3] / p[1] for p in https]
h_hits = [p[8] / p[5] if p[5] else 0 for p in https]
h_cost = [(1 / p[2] - 1 / p[0]) * 1e9 / h if h else 0 for p, h in zip(https, h_hits)]
h_bpf = [p[9] / p[8] if p[8] else 0 for p in https]
row("HTTPS: throughput with / without reqmon (wrk over TLS, keep-alive)", f(h_thr), "measured, no bar", True)
row("HTTPS: p99 latency with / without reqmon", f(h_p99), "measured, no bar", True)
row("HTTPS: throughput without / with reqmon, req/s", f"{f([p[0] for p in https], '{:.0f}')} / {f([p[2] for p in https], '{:.0f}')}", "", True)
row("HTTPS: uprobe program runs per request (a probe with a return program runs twice a call)", f(h_hits, "{:.2f}"), "", True)
row("HTTPS: nginx time per uprobe program run (extra time per request / runs), ns", f(h_cost, "{:.0f}"), "", True)
row("HTTPS: of which BPF program time per run (bpf_stats), ns", f(h_bpf, "{:.0f}"), "", True)
row("HTTPS: reqmon TLS count minus wrk completed", f([p[6] - p[4] for p in https], "{:.0f}"), "0 to ${CONNS} (in flight)", all(0 <= p[6] - p[4] <= ${CONNS} for p in https))
row("HTTPS: lost events", f([p[7] for p in https], "{:.0f}"), "0", max(p[7] for p in https) == 0)
row("an unobserved nginx and wrk over TLS: throughput with / without reqmon observing another nginx", f([o[1] / o[0] for o in other]), "about 1", True)
row("an unobserved nginx and wrk over TLS: uprobe hits in them (bpf_stats)", f"{int(sum(o[2] for o in other))} for {int(sum(o[3] for o in other)):,} requests", "0", sum(o[2] for o in other) == 0)
print("\n".join(out))
PY
  cat "$work/https_rows.md" >&2
}
if [ "${HTTPS_ONLY:-0}" = 1 ]; then
  https_cost
  exit 0
fi
# ---- end of section 6 ----------------------------------------------------------------------------


# ---- 1 + 2: overhead against nginx's own access log, and completeness ---------------------------
# Four set-ups of the same nginx worker, in an order that rotates every round: nothing (the port
# without access log, reqmon not attached), the access log (the port with it), the least capture
# (the first port, tests/tools/min_capture.bpf.c attached to the two socket tracepoints for the
# worker, its ring drained by tests/tools/hook_floor), and reqmon (the first port, reqmon attached
# with default settings). Two workloads: return 200 and a 4 KiB static file. One line per run in
# overhead.txt: "workload setup rps p99_ms completed counted lost reqmon_cpu_ticks".
log "overhead: $PAIRS rounds of ${DURATION}s wrk runs (-c$CONNS): nothing / access log / least capture / reqmon, on return 200 and a 4 KiB file"
wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null   # warm-up
: > "$work/overhead.txt"
worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
# start_tool OBJECT [PID]: tests/tools/hook_floor with OBJECT attached; stop_tool ends it.
start_tool() {
  "$floortool" "$@" > "$work/floor.out" &
  floor_pid=$!
  for _ in $(seq 200); do grep -q attached "$work/floor.out" && break; sleep 0.05; done
  grep -q attached "$work/floor.out" || { echo "bench.sh: hook_floor $1 did not attach" >&2; exit 1; }
}
stop_tool() { kill -INT "$floor_pid"; wait "$floor_pid"; floor_pid=""; }
setups=(none log least reqmon)
for i in $(seq "$PAIRS"); do
  for wl in small file4k; do
    path=/api/bench; [ "$wl" = file4k ] && path=/file4k.bin
    for k in 0 1 2 3; do
      s=${setups[$(( (i + k) % 4 ))]}
      case $s in
        none) wrk_run "$work/r.txt" "http://127.0.0.1:$port$path"; echo "$wl none $(cat "$work/r.txt") 0 0 0" >> "$work/overhead.txt" ;;
        log) wrk_run "$work/r.txt" "http://127.0.0.1:$log_port$path"; echo "$wl log $(cat "$work/r.txt") 0 0 0" >> "$work/overhead.txt" ;;
        least)
          start_tool "$minobj" "$worker"
          wrk_run "$work/r.txt" "http://127.0.0.1:$port$path"; echo "$wl least $(cat "$work/r.txt") 0 0 0" >> "$work/overhead.txt"
          stop_tool ;;
        reqmon)
          start_reqmon
          t0=$(cpu_ticks "$rq_pid")
          wrk_run "$work/r.txt" "http://127.0.0.1:$port$path"
          settle
          t1=$(cpu_ticks "$rq_pid")
          echo "$wl reqmon $(cat "$work/r.txt") $(jget "$work/s.json" "['total_requests']") $(jget "$work/s.json" "['lost_events']") $((t1 - t0))" >> "$work/overhead.txt"
          stop_reqmon ;;
      esac
    done
    log "round $i $wl: $(grep "^$wl " "$work/overhead.txt" | tail -4 | awk '{printf "%s %.0f req/s p99 %.2f ms; ", $2, $3, $4}')"
  done
done

# BPF time per request (bpf_stats), one run of each: the hook floor, the least capture, reqmon.
# What the programs of the set-up ran, over wrk's completed requests; that includes wrk's own
# sends and receives on the client side of the same connections, where each program stops at the
# process test. One line per run in bpfns.txt: "workload setup ns_per_request runs_per_request".
prog_counts() { bpftool prog show -j 2>/dev/null | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    print(p["id"], p.get("run_cnt", 0), p.get("run_time_ns", 0))'; }
stats_was=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
: > "$work/bpfns.txt"
for wl in small file4k; do
  path=/api/bench; [ "$wl" = file4k ] && path=/file4k.bin
  for s in floor least reqmon; do
    prog_counts > "$work/ids0.txt"
    case $s in
      floor) start_tool "$floorobj" ;;
      least) start_tool "$minobj" "$worker" ;;
      reqmon) start_reqmon ;;
    esac
    sysctl -qw kernel.bpf_stats_enabled=1
    prog_counts > "$work/c0.txt"
    wrk_run "$work/r.txt" "http://127.0.0.1:$port$path" 2
    prog_counts > "$work/c1.txt"
    sysctl -qw kernel.bpf_stats_enabled="$stats_was"
    if [ "$s" = reqmon ]; then stop_reqmon; else stop_tool; fi
    python3 - "$work" "$wl" "$s" >> "$work/bpfns.txt" <<'PY'
import sys
work, wl, s = sys.argv[1:]
def load(f):
    return {l.split()[0]: list(map(int, l.split()[1:])) for l in open(f"{work}/{f}") if l.strip()}
before, c0, c1 = load("ids0.txt"), load("c0.txt"), load("c1.txt")
done = int(open(f"{work}/r.txt").read().split()[2])
runs = ns = 0
for i, (r, t) in c1.items():
    if i in before or i not in c0:
        continue  # not this set-up's program
    runs += r - c0[i][0]; ns += t - c0[i][1]
print(wl, s, ns / done if done else 0, runs / done if done else 0)
PY
    log "bpf time $wl $s: $(tail -1 "$work/bpfns.txt")"
  done
done

# ab without keep-alive: a new connection per request.
log "completeness: ab -n $AB_N -c 16 (no keep-alive)"
start_reqmon
ab -q -n "$AB_N" -c 16 "$url" > "$work/ab.txt" 2>&1
settle
stop_reqmon
ab_done=$(awk '/^Complete requests:/ {print $3}' "$work/ab.txt")
ab_failed=$(awk '/^Failed requests:/ {print $3}' "$work/ab.txt")
ab_total=$(jget "$work/s.json" "['total_requests']")
ab_lost=$(jget "$work/s.json" "['lost_events']")
log "ab completed $ab_done (failed $ab_failed), reqmon counted $ab_total, lost $ab_lost"

# ---- 5: what processes reqmon does not observe pay ---------------------------------------------
log "unobserved processes: syscall costs without / with reqmon attached to nginx"
: > "$work/sys.txt"
for i in 1 2 3; do
  a=$("$costtool" 300000)
  start_reqmon
  b=$("$costtool" 300000)
  stop_reqmon
  echo "$a $b" >> "$work/sys.txt"
  log "syscall ns (getppid, /dev/null write, loopback write+read): without $a | with $b"
done

https_cost

# ---- 3: pipeline throughput on one core ---------------------------------------------------------
log "replay: recording a 3 s wrk run, repeating it past $REPLAY_MIN requests"
"$reqmon" --pid "$master" --record "$work/wrk.rqcap" --no-api --log-file none --duration 6 \
  --print-stats > "$work/rec.json" 2>"$work/rec.err" &
rec_pid=$!
sleep 1.5
wrk -t1 -c8 -d3s "$url" > /dev/null
wait "$rec_pid"
rec_total=$(jget "$work/rec.json" "['total_requests']")
reps=$(( (REPLAY_MIN + rec_total - 1) / rec_total ))
"$repeat" "$work/wrk.rqcap" "$work/big.rqcap" "$reps" > /dev/null
rm -f "$work/wrk.rqcap"
cat "$work/big.rqcap" > /dev/null   # into the page cache: measure the pipeline, not the disk
: > "$work/replay.txt"
for i in 1 2 3; do
  s=$(date +%s.%N)
  taskset -c 1 "$reqmon" --replay "$work/big.rqcap" --print-stats > "$work/replay.json"
  e=$(date +%s.%N)
  total=$(jget "$work/replay.json" "['total_requests']")
  records=$(jget "$work/replay.json" "['capture']['records']")
  python3 -c "print($total/($e-$s), $records/($e-$s), $total, $records, $e-$s)" >> "$work/replay.txt"
done
replay_size=$(stat -c %s "$work/big.rqcap")
rm -f "$work/big.rqcap"
log "replay: $(cat "$work/replay.txt" | tr '\n' ';')"

# ---- 4: scale: many open connections, then churn ------------------------------------------------
log "scale: $HOLD keep-alive connections held open, then $CHURN short connections"
cat > "$work/hold.py" <<'PY'
import os, resource, socket, sys, time
port, n, ready, release = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1000, n + 1000))
socks = []
req = b"GET /api/held HTTP/1.1\r\nHost: bench\r\n\r\n"
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    socks.append(s)
for s in socks:  # one answered request each, then the connection stays open and idle
    s.settimeout(10)
    s.recv(4096)
open(ready, "w").close()
deadline = time.time() + 120
while not os.path.exists(release) and time.time() < deadline:
    time.sleep(0.1)
for s in socks:
    s.close()
PY
start_reqmon
sleep 2
idle_rss=$(rss_kb "$rq_pid"); idle_anon=$(anon_kb "$rq_pid")
maps_kb() {  # memory of reqmon's kernel maps (bpftool's memlock), in KiB
  bpftool map show -j 2>/dev/null | python3 -c '
import json, sys
names = {"targets", "target_cgroups", "target_comms", "active", "scratch", "stats", "events",
         "tls_threads", "tls_conns", "tls_socks"}
print(sum(m.get("bytes_memlock", 0) for m in json.load(sys.stdin) if m.get("name") in names) // 1024)'
}
maps_idle=$(maps_kb)
python3 "$work/hold.py" "$port" "$HOLD" "$work/held" "$work/release" &
hold_pid=$!
for _ in $(seq 600); do [ -f "$work/held" ] && break; sleep 0.1; done
[ -f "$work/held" ] || { echo "bench.sh: could not hold $HOLD connections" >&2; exit 1; }
sleep 1.5
stats "$work/held.json"
held_rss=$(rss_kb "$rq_pid"); held_anon=$(anon_kb "$rq_pid")
held_open=$(jget "$work/held.json" "['capture']['connections_open']")
maps_held=$(maps_kb)
touch "$work/release"; wait "$hold_pid" || true
sleep 2.5   # closes seen, memory given back (reqmon compacts once a second)
closed_rss=$(rss_kb "$rq_pid")
ab -q -n "$CHURN" -c 32 "$url" > "$work/churn.txt" 2>&1
settle
sleep 1.5
stats "$work/churn.json"
churn_rss=$(rss_kb "$rq_pid"); churn_anon=$(anon_kb "$rq_pid")
churn_open=$(jget "$work/churn.json" "['capture']['connections_open']")
churn_total=$(jget "$work/churn.json" "['total_requests']")
churn_lost=$(jget "$work/churn.json" "['lost_events']")
maps_churn=$(maps_kb)
peak_rss=$(hwm_kb "$rq_pid")
stop_reqmon
log "scale: RSS idle ${idle_rss} KiB, ${HOLD} open ${held_rss} KiB (tracked $held_open), closed ${closed_rss} KiB, after churn ${churn_rss} KiB (tracked $churn_open), peak ${peak_rss} KiB; maps ${maps_idle}/${maps_held}/${maps_churn} KiB"

queue_time_cost   # section 7 (defined above)
h2_cost           # section 8 (defined above)
# ---- report -----------------------------------------------------------------------------------
python3 - "$work" "$out_md" <<PY
import statistics, sys, subprocess, datetime, os
work, out = sys.argv[1], sys.argv[2]
runs = [l.split() for l in open(f"{work}/overhead.txt") if l.strip()]
bpfns = [l.split() for l in open(f"{work}/bpfns.txt") if l.strip()]
replay = [list(map(float, l.split())) for l in open(f"{work}/replay.txt") if l.strip()]
sysc = [list(map(float, l.split())) for l in open(f"{work}/sys.txt") if l.strip()]
hz = os.sysconf("SC_CLK_TCK")
def f(xs, fmt="{:.3f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))} to {fmt.format(max(xs))})"
rows = []
def row(what, value, bar, ok):
    rows.append(f"| {what} | {value} | {bar} | {'yes' if ok else '**no**'} |")
# Per workload and round, the four set-ups' runs; ratios against "none" of the same round.
side = []
for wl, name in [("small", "return 200"), ("file4k", "4 KiB static file")]:
    rr = [r for r in runs if r[0] == wl]
    by = {s: [list(map(float, r[2:])) for r in rr if r[1] == s] for s in ("none", "log", "least", "reqmon")}
    n = min(len(v) for v in by.values())
    # A set-up's figure (0: throughput, 1: p99) over nothing's in the same round.
    ratio = lambda s, k: [by[s][i][k] / by["none"][i][k] for i in range(n)]
    thr_log, thr_least, thr_rq = ratio("log", 0), ratio("least", 0), ratio("reqmon", 0)
    p99_log, p99_least, p99_rq = ratio("log", 1), ratio("least", 1), ratio("reqmon", 1)
    bpf = {r[1]: (float(r[2]), float(r[3])) for r in bpfns if r[0] == wl}
    cpu_us = [by["reqmon"][i][5] / hz / by["reqmon"][i][3] * 1e6 if by["reqmon"][i][3] else 0 for i in range(n)]
    miss = [by["reqmon"][i][3] - by["reqmon"][i][2] for i in range(n)]
    lost = [by["reqmon"][i][4] for i in range(n)]
    side.append(f"| {name} | {f([r[0] for r in by['none']], '{:.0f}')} | {f(thr_log)} | {f(thr_least)} | {f(thr_rq)} | {f(p99_log)} | {f(p99_least)} | {f(p99_rq)} | {' / '.join(f'{bpf[k][0]:.0f}' if k in bpf else '?' for k in ('floor', 'least', 'reqmon'))} | {f(cpu_us, '{:.2f}')} | {f(miss, '{:.0f}')} | {f(lost, '{:.0f}')} |")
    m = statistics.median
    row(f"{name}: throughput with reqmon / nothing", f(thr_rq), ">= 0.95 and >= the access log's", m(thr_rq) >= 0.95 and m(thr_rq) >= m(thr_log))
    row(f"{name}: throughput with the access log / nothing", f(thr_log), "", True)
    row(f"{name}: throughput with the least capture (process test, head copied into the ring, nothing else) / nothing", f(thr_least), "measured, no bar: about the most any capture of HTTP heads keeps here", True)
    row(f"{name}: p99 latency with the least capture / nothing", f(p99_least), "measured, no bar", True)
    for k, what in (("floor", "the hook floor (programs that return at once)"), ("least", "the least capture"), ("reqmon", "reqmon")):
        if k in bpf:
            row(f"{name}: BPF time per request, {what} (bpf_stats; wrk's side of loopback included), ns", f"{bpf[k][0]:.0f} ({bpf[k][1]:.1f} program runs)", "measured, no bar", True)
    row(f"{name}: p99 latency with reqmon / nothing", f(p99_rq), "<= 1.10", m(p99_rq) <= 1.10)
    row(f"{name}: reqmon CPU per request, µs", f(cpu_us, "{:.2f}"), "<= 0.83", m(cpu_us) <= 0.83)
    row(f"{name}: reqmon count minus wrk completed", f(miss, "{:.0f}"), "0 to ${CONNS} (in flight)", all(0 <= x <= ${CONNS} for x in miss))
    row(f"{name}: lost events", f(lost, "{:.0f}"), "0", max(lost) == 0)
row("ab -n ${AB_N} -c 16, no keep-alive: reqmon count / completed", f"${ab_total} / ${ab_done} (failed ${ab_failed})", "equal", int("${ab_total}") == int("${ab_done}"))
row("lost events in the ab run", "${ab_lost}", "0", int("${ab_lost}") == 0)
row("replay, requests/s on one core (--replay --print-stats)", f([r[0] for r in replay], "{:,.0f}"), ">= 1,000,000", statistics.median([r[0] for r in replay]) >= 1e6)
row("replay, events/s on one core", f([r[1] for r in replay], "{:,.0f}"), "", True)
row("replay size", f"{int(replay[0][2]):,} requests, {int(replay[0][3]):,} events, ${replay_size} bytes", "", True)
row("reqmon RSS idle / ${HOLD} open connections / once they closed / after ${CHURN} short ones, MiB", f"{${idle_rss}/1024:.1f} / {${held_rss}/1024:.1f} / {${closed_rss}/1024:.1f} / {${churn_rss}/1024:.1f}", "<= 64 with ${HOLD} open; back to idle after churn", ${held_rss}/1024 <= 64 and ${churn_rss} <= ${idle_rss} * 1.10 + 2048)
row("of which reqmon's own heap (RssAnon; the rest is the ring buffer mapped twice, and code), MiB", f"{${idle_anon}/1024:.1f} / {${held_anon}/1024:.1f} / {${churn_anon}/1024:.1f}", "", True)
row("connections tracked with ${HOLD} open / after churn", "${held_open} / ${churn_open}", "${HOLD} / 0", int("${held_open}") >= ${HOLD} and int("${churn_open}") == 0)
row("kernel maps memory idle / ${HOLD} open / after churn, KiB", "${maps_idle} / ${maps_held} / ${maps_churn}", "constant (preallocated)", "${maps_idle}" == "${maps_held}" == "${maps_churn}")
row("scale run: reqmon count / lost (${HOLD} held + ${CHURN} short requests)", "${churn_total} / ${churn_lost}", "${HOLD} + ${CHURN} / 0", int("${churn_total}") == ${HOLD} + ${CHURN} and int("${churn_lost}") == 0)
for i, what in enumerate(["getppid()", "100-byte write to /dev/null", "100-byte write + read over loopback TCP"]):
    without = [r[i] for r in sysc]; with_ = [r[i + 3] for r in sysc]
    row(f"a process reqmon does not observe: {what}, ns without / with reqmon", f"{f(without, '{:.0f}')} / {f(with_, '{:.0f}')}", "", True)
rows += [l for l in open(f"{work}/https_rows.md").read().splitlines() if l.strip()]  # section 6
rows += [l for l in open(f"{work}/queue_rows.md").read().splitlines() if l.strip()]  # section 7
rows += [l for l in open(f"{work}/h2_rows.md").read().splitlines() if l.strip()]  # section 8
took = int(datetime.datetime.now().timestamp()) - ${bench_start}
row("bench.sh's own run time (set-up, every section, this report)", f"{took // 60} min {took % 60} s", "under 10 min", took < 600)
cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 1048576
commit = subprocess.run(["git", "-C", "$here", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
md = [
  "# reqmon benchmarks", "",
  f"Measured by \`scripts/bench.sh\` on {datetime.date.today().isoformat()}: {os.cpu_count()} CPUs ({cpu_model}), "
  f"{mem:.0f} GiB, kernel {os.uname().release}, reqmon {commit}. Every figure is a median (min to max) over "
  f"${PAIRS} rounds of ${DURATION} s runs (overhead) or 3 runs (replay). The machine is shared "
  "and noisy: compare the ratios, which are measured in one run.", "",
  "Set-up: nginx (1 worker, \`return 200\` or a 4 KiB file with sendfile off, access log off) on loopback; wrk -t1 -c${CONNS} with keep-alive; "
  "reqmon attached by the master PID with default settings (4 KiB payload prefix, 8 MiB ring buffer, request "
  "log on); wrk, nginx and reqmon share the same 2 cores. One nginx worker: with two, how wrk's connections "
  "split between them decided each run (p99 0.3 or 4 ms), which hid reqmon's own effect.", "",
  "Against nginx's own access log (the \`timed\` format with \$request_time, unbuffered, on a second port of the same "
  "server block), in rotating order each round: throughput and p99 relative to nginx with nothing attached and no log. "
  "The least capture (tests/tools/min_capture.bpf.c) is attached where reqmon's data programs are "
  "(\`tp_btf/sock_recv_length\`, \`tp_btf/sock_send_length\`) and does only what any capture of HTTP heads must: the "
  "process test, the syscall's buffer from the saved registers (for writev, its first iovec), up to 255 bytes copied "
  "straight into a ring buffer reservation, drained every 20 ms and thrown away; no connection state, framing, "
  "parsing or request log. The hook floor (tests/tools/hook_floor.bpf.c) is two programs that return at once on the "
  "same hooks. BPF time per request comes from one run of each with bpf_stats on (it includes wrk's side of the "
  "loopback connections, where each program stops at the process test).", "",
  "| workload | nothing, req/s | access log: throughput | least capture: throughput | reqmon: throughput | access log: p99 | least capture: p99 | reqmon: p99 | BPF ns per request: floor / least / reqmon | reqmon CPU per request, µs | reqmon count - wrk completed | lost |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|", *side, "",
  "| what | measured | bar | meets bar |", "|---|---|---|---|", *rows, "",
  "Where the time goes and what was done about it: [performance.md](performance.md).", ""]
text = "\n".join(md)
print(text)
# scripts/faults.sh's section, written by it, stays.
old = open(out).read() if os.path.exists(out) else ""
kept = old.find("\n## Load and faults")
if kept >= 0:
    text = text.rstrip("\n") + "\n" + old[kept:]
open(out, "w").write(text)
PY
log "written to $out_md"
