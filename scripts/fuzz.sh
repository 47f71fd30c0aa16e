#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets of tests/fuzz with clang 14 (AddressSanitizer and
# UndefinedBehaviorSanitizer) into build-fuzz/ (override with FUZZ_BUILD_DIR) and runs each for
# FUZZ_SECONDS (60) on a fresh copy of its seeds and regression inputs. Fails when a target
# crashes; the input is kept in build-fuzz/crashes/ with the command that replays it. A fixed
# crash's input goes to tests/fuzz/regressions/<target>/, where fuzz_replay_test replays it.
#   FUZZ_TARGETS="tracker http2"   only these targets (default: all)
#   FUZZ_SECONDS=600               fuzz longer
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$here/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-tracker http1 http2 capture rules query}
jobs=${JOBS:-2}
cxx=${FUZZ_CXX:-clang++-14}
cc=${FUZZ_CC:-clang-14}

start=$(date +%s)
cmake -S "$here" -B "$build" -DREQMON_FUZZ=ON -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" >/dev/null
nice -n 10 cmake --build "$build" -j"$jobs" --target fuzz_targets
echo "fuzz.sh: built in $(( $(date +%s) - start )) s; ${seconds} s per target"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
mkdir -p "$build/crashes" "$build/logs"
failed=()
summary=()
for t in $targets; do
  corpus=$(mktemp -d "${TMPDIR:-/tmp}/reqmon-fuzz-$t.XXXXXX")
  for d in "$here/tests/fuzz/seeds/$t" "$here/tests/fuzz/regressions/$t"; do
    [ -d "$d" ] && cp "$d"/* "$corpus"/ 2>/dev/null || true
  done
  [ "$t" = capture ] && cp "$here"/tests/data/*.rqcap "$corpus"/
  log=$build/logs/$t.log
  rc=0
  nice -n 10 "$build/fuzz_$t" "$corpus" -max_total_time="$seconds" -timeout=25 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d" " -f2 || true)
  units=$(ls "$corpus" | wc -l)
  rm -rf "$corpus"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    summary+=("$(printf '%-8s %10s execs  cov %6s  corpus %5s  CRASH (rc %s)' "$t" "${execs:-?}" "${cov:-?}" "$units" "$rc")")
    echo "fuzz.sh: fuzz_$t failed; the end of $log:" >&2
    grep -E 'ERROR|SUMMARY|runtime error|fuzz:|Test unit written' "$log" | head -20 >&2 || tail -30 "$log" >&2
    for a in "$build/crashes/$t-"*; do
      [ -f "$a" ] && echo "fuzz.sh: replay with: $build/fuzz_$t $a" >&2
    done
  else
    summary+=("$(printf '%-8s %10s execs  cov %6s  corpus %5s  ok' "$t" "${execs:-?}" "${cov:-?}" "$units")")
  fi
done
printf 'fuzz.sh: %s\n' "${summary[@]}"
echo "fuzz.sh: $(( $(date +%s) - start )) s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashed: ${failed[*]} (inputs in $build/crashes)" >&2
  exit 1
fi
