#!/usr/bin/env bash
# Runs the benchmarks of a release build; results go to docs/benchmarks.md by hand.
set -euo pipefail
build=${1:-build/release}
for bin in "$build"/bench/bench_*; do
  [ -x "$bin" ] || continue
  echo "== $(basename "$bin")"
  "$bin" --benchmark_min_time=0.2
done
