#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sets up the machine, builds reqmon and runs it. With no arguments reqmon starts a small demo
# web server with light traffic and observes it; pass reqmon's own flags to observe something
# else, e.g.  scripts/run.sh --pid "$(pgrep -o nginx)"
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
"$here/scripts/build.sh" --target reqmon
exec "${BUILD_DIR:-$here/build}/reqmon" "$@"
