#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sets up the machine, builds reqmon and runs every test: unit, replay, api, bpf (live capture of
# real servers; needs root) and browser. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
"$here/scripts/setup.sh"
"$here/scripts/build.sh"
cd "$build"
# Tests that need BPF print why when they skip; CI runs as root, so here they run.
ctest --output-on-failure --timeout 600 -j1 "$@"
