#!/usr/bin/env bash
# Runs libFuzzer targets of a `fuzz` preset build for a bounded time each,
# starting from the committed seed corpus (new inputs go to a scratch copy):
#   run-fuzzers.sh [BUILD_DIR [SECONDS [TARGET...]]]
# TARGET names (engine_photons, xos, ...) pick targets; by default all run.
# Undefined behaviour stops a run like a crash (UBSan only reports otherwise),
# and an input that takes over a minute is a failure (a parser that is not
# linear, a lock that never returns). Logs and crashing inputs go to BUILD_DIR.
# A long campaign: FUZZ_RUNS=N stops each target after N executions (SECONDS
# still bounds it), and FUZZ_CORPUS_DIR=DIR keeps each target's corpus in
# DIR/NAME (seeded from the committed one), so a campaign can be continued.
set -euo pipefail
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
build=${1:-build/fuzz}
seconds=${2:-20}
shift $(($# < 2 ? $# : 2))
root=$(cd "$(dirname "$0")/.." && pwd)
# Leaks inside third-party libraries (CLHEP's expression evaluator, gmsh)
# are theirs, not the target's: the suppressions `make test-asan` uses.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/test/lsan.supp}
status=0
for bin in "$build"/test/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin"); name=${name#fuzz_}
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  if [ -n "${FUZZ_CORPUS_DIR:-}" ]; then
    work=$FUZZ_CORPUS_DIR/$name
    mkdir -p "$work"
  else
    work=$(mktemp -d)
  fi
  cp -rn "$root/test/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
  runs=()
  [ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
  echo "== fuzz $name for ${seconds}s${FUZZ_RUNS:+ or $FUZZ_RUNS executions}"
  if ! "$bin" -max_total_time="$seconds" "${runs[@]}" -max_len=65536 -timeout=60 \
       -print_final_stats=1 -artifact_prefix="$build/fuzz_$name-" "$work" \
       > "$build/fuzz_$name.log" 2>&1; then
    echo "fuzz $name FAILED: see $build/fuzz_$name.log"; status=1
  else
    grep -aE "stat::number_of_executed_units|Done" "$build/fuzz_$name.log" | tail -2
  fi
  [ -n "${FUZZ_CORPUS_DIR:-}" ] || rm -rf "$work"
done
exit $status
