#!/usr/bin/env bash
# Installs the build tree into a scratch prefix and builds and runs
# examples/minimal against it with find_package(acheron): proves that the
# exported package works for a downstream project.
set -euo pipefail
build=${1:-build/default}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$root/$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$root/examples/minimal" -B "$scratch/build" -G Ninja \
      -DCMAKE_PREFIX_PATH="$scratch/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$scratch/build" >/dev/null
"$scratch/build/minimal"
echo "examples/minimal: 1 passed, 0 failed"
