#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures and builds reqmon into build/ (override with BUILD_DIR). Two parallel jobs by
# default: the machines this runs on have two cores. Arguments go to `cmake --build` (e.g.
# --target reqmon to skip the tests).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
jobs=${JOBS:-2}
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} >/dev/null
cmake --build "$build" -j"$jobs" "$@"
