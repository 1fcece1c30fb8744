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
# Progress: each target starts with "== [k/N] fuzz NAME ..."; while it runs, a
# line "[k/N] NAME: E executions, R exec/s, ETA T" (from libFuzzer's status
# lines) is redrawn on stderr when stderr is a terminal (FUZZ_PROGRESS=1
# forces it, FUZZ_PROGRESS=0 turns it off), and it ends with the totals.
set -euo pipefail
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
build=${1:-build/fuzz}
seconds=${2:-20}
shift $(($# < 2 ? $# : 2))
root=$(cd "$(dirname "$0")/.." && pwd)
# Leaks inside third-party libraries (CLHEP's expression evaluator, gmsh)
# are theirs, not the target's: the suppressions `make test-asan` uses.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/test/lsan.supp}
if [ -n "${FUZZ_PROGRESS:-}" ]; then progress=$FUZZ_PROGRESS
elif [ -t 2 ]; then progress=1
else progress=0; fi

# The last "#EXECUTIONS ... exec/s: RATE" status line libFuzzer wrote to LOG,
# as "EXECUTIONS RATE" (nothing before the first one).
last_status() {
  grep -aoE '^#[0-9]+[[:space:]].*exec/s: [0-9]+' "$1" 2>/dev/null | tail -1 |
    sed -E 's/^#([0-9]+)[[:space:]].*exec\/s: ([0-9]+).*/\1 \2/'
}

# "[k/N] NAME: E executions, R exec/s, ETA T": ETA is the time left of the
# SECONDS budget, or sooner when FUZZ_RUNS executions come first at this rate.
status_line() {  # k N name elapsed log
  local execs=0 rate=0 left eta
  read -r execs rate < <(last_status "$5"; echo) || true
  execs=${execs:-0}; rate=${rate:-0}
  left=$((seconds - $4)); [ "$left" -lt 0 ] && left=0
  if [ -n "${FUZZ_RUNS:-}" ] && [ "$rate" -gt 0 ]; then
    eta=$(((FUZZ_RUNS - execs + rate - 1) / rate)); [ "$eta" -lt 0 ] && eta=0
    [ "$eta" -lt "$left" ] && left=$eta
  fi
  printf '[%d/%d] %s: %s executions, %s exec/s, ETA %ds' "$1" "$2" "$3" "$execs" "$rate" "$left"
}

bins=()
for bin in "$build"/test/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin"); name=${name#fuzz_}
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  bins+=("$bin")
done
count=${#bins[@]}
status=0
k=0
for bin in "${bins[@]}"; do
  k=$((k + 1))
  name=$(basename "$bin"); name=${name#fuzz_}
  if [ -n "${FUZZ_CORPUS_DIR:-}" ]; then
    work=$FUZZ_CORPUS_DIR/$name
    mkdir -p "$work"
  else
    work=$(mktemp -d)
  fi
  cp -rn "$root/test/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
  runs=()
  [ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
  log=$build/fuzz_$name.log
  echo "== [$k/$count] fuzz $name for ${seconds}s${FUZZ_RUNS:+ or $FUZZ_RUNS executions}"
  start=$SECONDS
  "$bin" -max_total_time="$seconds" "${runs[@]}" -max_len=65536 -timeout=60 \
    -print_final_stats=1 -artifact_prefix="$build/fuzz_$name-" "$work" > "$log" 2>&1 &
  pid=$!
  if [ "$progress" = 1 ]; then
    while kill -0 "$pid" 2>/dev/null; do
      printf '\r%s\033[K' "$(status_line "$k" "$count" "$name" $((SECONDS - start)) "$log")" >&2
      sleep 1
    done
    printf '\r\033[K' >&2
  fi
  rc=0
  wait "$pid" || rc=$?
  elapsed=$((SECONDS - start))
  if [ "$rc" -ne 0 ]; then
    echo "fuzz $name FAILED: see $log"; status=1
  else
    grep -aE "stat::number_of_executed_units|Done" "$log" | tail -2
    execs=$(grep -aoE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    execs=${execs:-0}
    echo "[$k/$count] $name: $execs executions in ${elapsed}s ($((execs / (elapsed > 0 ? elapsed : 1))) exec/s)"
  fi
  [ -n "${FUZZ_CORPUS_DIR:-}" ] || rm -rf "$work"
done
exit $status
