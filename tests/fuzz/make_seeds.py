#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the fuzz targets' seeds (tests/fuzz/seeds/<target>/) from what the repository already
holds: the checked-in captures (tests/data/*.rqcap) in the record framing of fuzz_records.h,
the built-in alert rules and the README's rules example, and a few query strings. The capture
reader's seeds are the captures themselves (read from tests/data, not copied). Run it again
when the framing or the captures change; the output is deterministic.
"""
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEED_BYTES = 4096    # a seed is cut after this many bytes
MAX_PAYLOAD = 1024   # captured bytes kept per record; the rest becomes uncaptured (a gap)

# fuzz_records.h kinds
INGRESS, EGRESS, OPEN_SERVER, OPEN_CLIENT, CLOSE, EXIT, RAW, SENDFILE = range(8)


def abi_version(path):
    return struct.unpack_from('<I', open(path, 'rb').read(16), 12)[0]


def records(path):
    data = open(path, 'rb').read()
    off = 32
    while off + 4 <= len(data):
        (n,) = struct.unpack_from('<I', data, off)
        yield data[off + 4:off + 4 + n]
        off += 4 + n


def gap_byte(n):
    if n <= 127:
        return n
    return min(255, 127 + (n + 1023) // 1024)


def op(conn, kind, payload=b'', gap=0, tls=False, server=False):
    b = (conn & 3) | (kind << 2) | (0x20 if tls else 0) | (0x40 if server else 0)
    return struct.pack('<BHB', b, len(payload), gap_byte(gap)) + payload


def convert(path, only_key=None):
    """The capture's records as ops; only_key: those of one (pid, fd)."""
    conns = {}
    out = []
    head = 96 if abi_version(path) >= 3 else 88  # data records of ABI 3+ end with ts_queued
    for r in records(path):
        typ, pid, _tid, fd = struct.unpack_from('<IIIi', r, 0)
        if typ == 4:  # process
            (kind,) = struct.unpack_from('<I', r, 36)
            if kind == 3 and only_key is None:
                out.append(op(0, EXIT))
            continue
        if typ not in (1, 2, 3):
            continue
        key = (pid, fd)
        if only_key is not None and key != only_key:
            continue
        conn = conns.setdefault(key, len(conns) % 4)
        if typ == 1:
            nbytes, plen, direction, syscall, role, flags = struct.unpack_from('<qIBBBB', r, 72)
            payload = r[head:head + plen][:MAX_PAYLOAD]
            tls = bool(flags & 1)
            if flags & 4 and head == 96:
                # HTTP/2 frames without DATA payloads (RQ_DATA_H2_FRAMES): the record as the
                # kernel wrote it (a raw op), on this op's connection.
                raw = bytearray(r)
                struct.pack_into('<Ii', raw, 4, 100, 10 + conn)
                struct.pack_into('<I', raw, 8, 100)
                out.append(op(0, RAW, bytes(raw)))
            elif syscall == 9:  # sendfile
                out.append(op(conn, SENDFILE, b'', nbytes))
            else:
                out.append(op(conn, INGRESS if direction == 0 else EGRESS, payload,
                              nbytes - len(payload), tls=tls, server=role == 1))
        elif typ == 2:
            (role,) = struct.unpack_from('<B', r, 72)
            out.append(op(conn, OPEN_CLIENT if role == 2 else OPEN_SERVER))
        else:
            out.append(op(conn, CLOSE))
    return out


def cut(ops, prefix=b''):
    seeds, cur = [], prefix
    for o in ops:
        cur += o
        if len(cur) >= SEED_BYTES:
            seeds.append(cur)
            cur = prefix
    if len(cur) > len(prefix):
        seeds.append(cur)
    return seeds


def keys(path):
    seen = {}
    for r in records(path):
        typ, pid, _tid, fd = struct.unpack_from('<IIIi', r, 0)
        if typ == 1:
            seen[(pid, fd)] = seen.get((pid, fd), 0) + 1
    return sorted(seen, key=lambda k: -seen[k])


def write(target, name, data):
    d = os.path.join(HERE, 'seeds', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def main():
    caps = {n: os.path.join(ROOT, 'tests', 'data', n + '.rqcap')
            for n in ('nginx', 'python', 'h2c', 'grpc')}
    for name, path in caps.items():
        for i, s in enumerate(cut(convert(path))):
            write('tracker', '%s-%d' % (name, i), s)
        key = keys(path)[0]
        if name in ('nginx', 'python'):
            for role in (0, 1):  # unknown (inferred), server
                for i, s in enumerate(cut(convert(path, key), bytes([role]))[:2]):
                    write('http1', '%s-role%d-%d' % (name, role, i), s)
        else:
            for k in keys(path)[:2]:
                ops = convert(path, k)
                # Start from the first HTTP/2 frame or preface: an h2c connection's first bytes
                # are the HTTP/1.1 Upgrade request (the http1 target's business).
                first = b''.join(ops)[4:7]
                start = 0 if first == b'PRI' else 2  # preface, or caught mid-way
                for i, s in enumerate(cut(ops, bytes([start]))[:2]):
                    write('http2', '%s-%d-%d-%d' % (name, k[1], start, i), s)
            if name == 'h2c':
                for i, s in enumerate(cut(convert(path, keys(path)[0]), b'\x00')[:1]):
                    write('http1', 'h2c-upgrade-%d' % i, s)

    src = open(os.path.join(ROOT, 'src', 'alerts', 'rules.cc')).read()
    default = re.search(r'R"YAML\((.*?)\)YAML"', src, re.S).group(1)
    write('rules', 'default.yml', default.encode())
    readme = open(os.path.join(ROOT, 'README.md')).read()
    for i, block in enumerate(re.findall(r'```yaml\n(.*?)```', readme, re.S)):
        if 'rules:' in block:
            write('rules', 'readme-%d.yml' % i, block.encode())
    for d in ('1m', '1h30m', '0', '2d', '90s'):
        write('rules', 'duration-' + d, d.encode())

    for i, q in enumerate([b'100', b'0', b'/requests?limit=5&token=abc',
                           b'/a/b?page=2&access_token=x&api_key=y&code=1#frag',
                           b'/?x&y=&=z&&password']):
        write('query', 'q%d' % i, q)
    return 0


if __name__ == '__main__':
    sys.exit(main())
