#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs everything reqmon needs to build, run and test, from Debian's packages and the npm
# registry. Idempotent; run as root. Nothing is downloaded at run time afterwards.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs Debian packages) (e.g. sudo $0)" >&2
  exit 1
fi

here=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(
  # build
  build-essential cmake pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  libpistache-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libnghttp2-dev   # HTTP/2: nghttp2's HPACK decoder
  libgtest-dev libgmock-dev
  # fuzzing (scripts/fuzz.sh): clang 14's libFuzzer and sanitizer runtimes
  clang-14 libclang-rt-14-dev
  # alerting: the rules file
  libyaml-cpp-dev
  # real peers for tests and benchmarks
  nginx-light python3 curl wrk apache2-utils prometheus iproute2 util-linux procps
  # HTTPS tests: certificates, and a TLS server whose library reqmon does not hook (GnuTLS)
  openssl gnutls-bin
  # Apache httpd (event and prefork MPMs, mod_ssl), gunicorn and lighttpd, run by the tests with
  # configs of their own
  apache2 gunicorn lighttpd lighttpd-mod-openssl
  # HTTP/2 and gRPC peers: h2load and nghttp, the Python gRPC runtime, Python h2 (an h2c
  # Upgrade server)
  nghttp2-client python3-grpcio python3-h2
  # alerting tests: a real Alertmanager (and amtool)
  prometheus-alertmanager
  # deployment tests: YAML manifests to JSON
  yq
  # browser tests
  chromium
)
# Node.js and npm: Debian's, unless the machine already has a Node.js with npm (a different
# Node.js build conflicts with Debian's npm package).
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's nginx, apache2, lighttpd and prometheus packages start system services; reqmon's
  # tests run their own. A policy-rc.d that refuses keeps them from starting while the packages
  # install (unless the machine already has one).
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
  systemctl disable --now nginx apache2 lighttpd prometheus prometheus-alertmanager >/dev/null 2>&1 || true
  # Where there is no init to ask, the package's own nginx, by its pid file (never by name: other
  # nginx on the machine are not ours to end).
  if [ -s /run/nginx.pid ] && grep -q nginx "/proc/$(cat /run/nginx.pid)/comm" 2>/dev/null; then
    kill "$(cat /run/nginx.pid)" 2>/dev/null || true
  fi
else
  echo "setup.sh: Debian packages already installed"
fi

# llhttp's C sources come from Debian's node-llhttp package. Installing that package pulls in
# Debian's Node.js, which conflicts with some machines' Node.js, so its files are unpacked
# instead into /opt/reqmon/llhttp, where CMake looks for them.
llhttp_dir=/opt/reqmon/llhttp
if [ ! -f "$llhttp_dir/usr/share/llhttp/llhttp.c" ]; then
  if [ -f /usr/share/llhttp/llhttp.c ]; then
    echo "setup.sh: using installed node-llhttp"
  else
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq node-llhttp 2>/dev/null) || { apt-get update -qq; (cd "$tmp" && apt-get download -qq node-llhttp); }
    mkdir -p "$llhttp_dir"
    dpkg-deb -x "$tmp"/node-llhttp_*.deb "$llhttp_dir"
    chmod -R a+rX /opt/reqmon
    rm -rf "$tmp"
    echo "setup.sh: unpacked llhttp sources into $llhttp_dir"
  fi
fi

# Front-end packages (uPlot, playwright-core) from the npm registry, pinned by web/package-lock.json.
if [ -f "$here/web/package.json" ]; then
  if [ ! -d "$here/web/node_modules" ] || [ "$here/web/package-lock.json" -nt "$here/web/node_modules" ]; then
    (cd "$here/web" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$here/web/node_modules"
  fi
fi
echo "setup.sh: done"
