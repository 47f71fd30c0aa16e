#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sets up the machine, builds reqmon and runs every test: unit, replay, api, bpf (live capture of
# real servers; needs root) and browser; then the sanitizer build and the fuzzers
# (scripts/sanitize.sh, scripts/fuzz.sh). Extra arguments go to the first ctest (e.g. -L unit).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
"$here/scripts/setup.sh"
"$here/scripts/build.sh"
cd "$build"
# Tests that need BPF print why when they skip; CI runs as root, so here they run.
ctest --output-on-failure --timeout 600 -j1 "$@"
# Hardening (README "Security"): the tests again under AddressSanitizer and
# UndefinedBehaviorSanitizer, then every fuzz target for FUZZ_SECONDS (60) each: about 27 CPU
# minutes of build, 1 minute of tests and 7 of fuzzing, some 22 minutes on two free cores;
# REQMON_HARDENING=0 skips both.
if [ "${REQMON_HARDENING:-1}" != 0 ]; then
  "$here/scripts/sanitize.sh"
  "$here/scripts/fuzz.sh"
fi
