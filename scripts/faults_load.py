#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Load generators and probes for scripts/faults.sh. Loopback only, bounded in count and time.

  hold PORT N READY RELEASE [MAX_S]   open N keep-alive connections, one answered request each
                                      (GET /held/I), touch READY, keep them open until RELEASE
                                      exists (at most MAX_S seconds, default 120), close them
  slowloris PORT N SECONDS            N connections that each send one byte a second of a request
                                      head that never ends (GET /slowloris/I ...), for SECONDS;
                                      then close them
  paced PORT PATH COUNT INTERVAL OUT  COUNT requests (a connection each), one every INTERVAL s, to
                                      PATH/I; writes "wall_time status path" per request to OUT
                                      (status 0: no answer); stops early when OUT.stop exists
  first API OLD_PIDS T0_FILE TIMEOUT  waits until reqmon's /requests has a request served by a
                                      process not in OLD_PIDS (comma-separated); prints seconds
                                      since the time.time() value T0_FILE holds, or -1 after
                                      TIMEOUT seconds
  rss PID OUT STOP                    samples VmRSS of PID every 0.1 s into OUT's max until STOP
                                      exists (at most 600 s); writes "max_kib" to OUT
"""
import json
import os
import resource
import socket
import sys
import time
import urllib.request


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(max(hard, n), 1 << 20))
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hold(port, n, ready, release, max_s=120.0):
    raise_nofile(n + 1000)
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /held/%d HTTP/1.1\r\nHost: faults\r\n\r\n" % i)
        socks.append(s)
    answered = 0
    for s in socks:  # one answered request each; then the connection stays open and idle
        data = s.recv(4096)
        if data.startswith(b"HTTP/1.1 200"):
            answered += 1
    with open(ready, "w") as f:
        f.write("%d\n" % answered)
    deadline = time.time() + max_s
    while not os.path.exists(release) and time.time() < deadline:
        time.sleep(0.1)
    for s in socks:
        s.close()


def slowloris(port, n, seconds):
    raise_nofile(n + 1000)
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        socks.append(s)
    heads = [b"GET /slowloris/%d HTTP/1.1\r\nHost: faults\r\nX-Slow: " % i + b"a" * 4096
             for i in range(n)]
    start = time.time()
    tick = 0
    sent = 0
    while time.time() - start < seconds:
        for i, s in enumerate(socks):
            if s is None:
                continue
            try:
                s.send(heads[i][tick:tick + 1])
                sent += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:  # the server gave up on it
                s.close()
                socks[i] = None
        tick += 1
        time.sleep(max(0.0, start + tick - time.time()))
    alive = sum(1 for s in socks if s is not None)
    for s in socks:
        if s is not None:
            s.close()
    print("slowloris: %d connections, %d bytes sent, %d still open at the end" % (n, sent, alive))


def one_request(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: faults\r\nConnection: close\r\n\r\n" % path.encode())
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        if data.startswith(b"HTTP/1.1 "):
            return int(data[9:12])
    except OSError:
        pass
    return 0


def paced(port, path, count, interval, out):
    start = time.time()
    with open(out, "w") as f:
        for i in range(count):
            if os.path.exists(out + ".stop"):
                break
            p = "%s/%d" % (path, i)
            status = one_request(port, p)
            f.write("%.6f %d %s\n" % (time.time(), status, p))
            f.flush()
            time.sleep(max(0.0, start + (i + 1) * interval - time.time()))


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(d))
            except OSError:
                pass
    return out


def first(api, old_pids, t0_file, timeout):
    """The first request reqmon counts from a process not in old_pids, in seconds after the
    time (time.time()) that t0_file holds; started before the new server, so that nothing of
    this probe's own start-up is in the figure."""
    old = {int(p) for p in old_pids.split(",") if p}
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            # /requests shows each request as it is counted (/stats' processes once a second).
            with urllib.request.urlopen("http://%s/requests?limit=20" % api, timeout=1) as r:
                recent = json.load(r)
            new = [q for q in recent.get("requests", [])
                   if q.get("pid") not in old and not q.get("incomplete")]
            if os.path.exists(t0_file) and new:
                seen = time.time()
                with open(t0_file) as f:
                    print("%.3f" % (seen - float(f.read())))
                sys.stderr.write("first: %s\n" % json.dumps(new[-1]))
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    print("-1")


def rss(pid, out, stop):
    peak = 0
    deadline = time.time() + 600
    while not os.path.exists(stop) and time.time() < deadline:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            break
        time.sleep(0.1)
    with open(out, "w") as f:
        f.write("%d\n" % peak)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "hold":
        hold(int(args[0]), int(args[1]), args[2], args[3], float(args[4]) if len(args) > 4 else 120)
    elif cmd == "slowloris":
        slowloris(int(args[0]), int(args[1]), float(args[2]))
    elif cmd == "paced":
        paced(int(args[0]), args[1], int(args[2]), float(args[3]), args[4])
    elif cmd == "first":
        first(args[0], args[1], args[2], float(args[3]))
    elif cmd == "rss":
        rss(int(args[0]), args[1], args[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
