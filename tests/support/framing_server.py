#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An HTTP/1.1 server that controls how its responses reach the socket, for the tests of what the
kernel copies (bpf/framing.bpf.h). Keep-alive and pipelining; every request it answers is written
to the log file as "METHOD PATH STATUS REQUEST_BYTES RESPONSE_BYTES", the ground truth.

  GET /len/N        head and N body bytes (Content-Length) in one write
  GET /split/N      the head in one write, the body in writes of at most 64 KiB
  GET /sendfile/N   the head in one write, the body by sendfile(2) from a file (as nginx with
                    sendfile on)
  GET /chunked/N    N body bytes chunked (chunks of 1000 bytes and a last short one)
  GET /iov/N        head and N body bytes as two iovecs of one sendmsg (as nginx's writev)
  GET /iovsplit/N   the same with the head cut in two iovecs (the status line on its own)
  GET /iovmix/N     the same with the first iovec holding the head and the body's first 10 bytes
  GET /status/S     status S with a 5-byte body (S = 204 or 304: no body, Content-Length: 5)
  HEAD /len/N       the head of GET /len/N, no body
  POST /upload      reads the Content-Length body, answers 200 "ok"
The responses to requests that arrived together (pipelined) are written together, in one write
(one sendmsg of all their iovecs if any of them has several).

usage: framing_server.py PORT LOGFILE
"""
import socket
import sys
import tempfile
import threading

port, log_path = int(sys.argv[1]), sys.argv[2]
log_lock = threading.Lock()


def log(line):
    with log_lock, open(log_path, "a") as f:
        f.write(line + "\n")


def respond(method, path):
    """Returns (status, list of writes): a write is a byte string written by its own send, or a
    list of byte strings written as the iovecs of one sendmsg."""
    parts = path.strip("/").split("/")
    kind, arg = parts[0], int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if kind == "status":
        head = f"HTTP/1.1 {arg} X\r\nContent-Length: 5\r\n\r\n".encode()
        return arg, [head + (b"" if arg in (204, 304) or method == "HEAD" else b"hello")]
    if kind == "chunked":
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        body, left = b"", arg
        while left > 0:
            n = min(1000, left)
            body += b"%x\r\n" % n + b"c" * n + b"\r\n"
            left -= n
        return 200, [head + body + b"0\r\n\r\n"]
    if kind in ("len", "split", "iov", "iovsplit", "iovmix", "sendfile"):
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {arg}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        body = b"" if method == "HEAD" else bytes((i * 7) & 0xFF for i in range(arg))
        if kind == "len":
            return 200, [head + body]
        if kind == "iov":
            return 200, [[head, body]]
        if kind == "iovsplit":
            return 200, [[head[:17], head[17:], body]]
        if kind == "iovmix":
            return 200, [[head + body[:10], body[10:]]]
        if kind == "sendfile":
            return 200, [head, SendFile(body)]
        return 200, [head] + [body[i:i + 65536] for i in range(0, len(body), 65536)]
    if kind == "upload":
        return 200, [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    return 404, [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]


class SendFile:
    """A write of these bytes by sendfile(2), from a temporary file."""

    def __init__(self, data):
        self.data = data


def size(write):
    if isinstance(write, SendFile):
        return len(write.data)
    return len(write) if isinstance(write, bytes) else sum(len(v) for v in write)


def send(conn, write):
    """Writes one write: sendall, sendfile, or sendmsg of its iovecs (and whatever a short send
    left)."""
    if isinstance(write, bytes):
        conn.sendall(write)
        return
    if isinstance(write, SendFile):
        with tempfile.TemporaryFile() as f:
            f.write(write.data)
            f.flush()
            f.seek(0)
            conn.sendfile(f)  # os.sendfile on a blocking socket; nothing for 0 bytes
        return
    sent = conn.sendmsg(write)
    rest = b"".join(write)[sent:]
    if rest:
        conn.sendall(rest)


def serve(conn):
    buf = b""
    try:
        while True:
            data = conn.recv(1 << 20)
            if not data:
                return
            buf += data
            batch, close = [], False
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end].decode("latin-1").split("\r\n")
                method, path, _ = head[0].split(" ")
                length = 0
                for h in head[1:]:
                    name, _, value = h.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                    if name.strip().lower() == "connection" and value.strip().lower() == "close":
                        close = True
                if len(buf) < end + 4 + length:
                    break
                req_bytes = end + 4 + length
                buf = buf[req_bytes:]
                status, writes = respond(method, path)
                log(f"{method} {path} {status} {req_bytes} {sum(size(w) for w in writes)}")
                batch.append(writes)
            if len(batch) == 1 or any(isinstance(w, SendFile) for writes in batch for w in writes):
                for writes in batch:
                    for w in writes:
                        send(conn, w)
            elif any(not isinstance(w, bytes) for writes in batch for w in writes):
                iovs = [v for writes in batch for w in writes for v in ([w] if isinstance(w, bytes) else w)]
                send(conn, iovs)
            elif batch:
                conn.sendall(b"".join(b"".join(w) for w in batch))
            if close:
                return
    finally:
        conn.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
