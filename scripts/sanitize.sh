#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds reqmon and its tests with AddressSanitizer and UndefinedBehaviorSanitizer (g++,
# -fsanitize=address,undefined -fno-sanitize-recover=undefined, -O1, assertions on, no LTO) into
# build-asan/ (override with ASAN_BUILD_DIR) and runs the tests of SANITIZE_LABELS (default
# "unit|replay|api"; add "|bpf" for the live captures, as root). Any memory error, leak or
# undefined behaviour fails its test. Extra arguments go to ctest (e.g. -R Http2).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${ASAN_BUILD_DIR:-$here/build-asan}
labels=${SANITIZE_LABELS:-unit|replay|api}
jobs=${JOBS:-2}

start=$(date +%s)
cmake -S "$here" -B "$build" -DREQMON_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" >/dev/null
nice -n 10 cmake --build "$build" -j"$jobs"
built=$(date +%s)
echo "sanitize.sh: built in $(( built - start )) s"

# Leaks count; a report stops the process with a non-zero status, which fails the test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
nice -n 10 ctest --output-on-failure --timeout 900 -j1 -L "$labels" "$@"
echo "sanitize.sh: tests ($labels) in $(( $(date +%s) - built )) s; $(( $(date +%s) - start )) s in all"
