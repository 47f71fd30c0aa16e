# SPDX-License-Identifier: MIT
# Helpers shared by the scripts that run servers on loopback (bench.sh, soak.sh, faults.sh,
# record-test-captures.sh). Sourced; `me` names the script in messages.
me=${me:-$(basename "$0")}

# A free TCP port on 127.0.0.1 (the kernel's choice).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http URL: until URL answers 200 (certificates not checked), at most 10 s.
wait_http() {
  for _ in $(seq 200); do
    [ "$(curl -sk -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
    sleep 0.05
  done
  echo "$me: $1 did not come up" >&2
  return 1
}

# jget FILE EXPR: prints d EXPR for the JSON document d in FILE, e.g. jget s.json "['total_requests']".
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$1" "$2"; }

# self_signed_cert DIR: DIR/cert.pem and DIR/key.pem for CN=localhost, made once.
self_signed_cert() {
  [ -f "$1/cert.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}
