#!/usr/bin/env bash
# Installs the build tree into a scratch prefix and builds the downstream
# examples against it with find_package(acheron): examples/minimal runs on
# its own, and so does examples/run_sink (the charon run policy with a sink of
# its own); examples/photon_client (ChAR0N) and examples/chroma_client
# (chroma-server) run against one real `acheron photon serve` with both
# fronts on loopback ports, stopped afterwards.
set -euo pipefail
build=${1:-build/default}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
cmake --install "$root/$build" --prefix "$scratch/prefix" >/dev/null
passed=0
# The man pages the install made from --help (help2man), one per command.
if command -v help2man >/dev/null; then
  page="$scratch/prefix/share/man/man1/acheron-photon-serve.1"
  grep -q '^\.TH ACHERON-PHOTON-SERVE "1"' "$page" && grep -q -- 'detector' "$page"
  echo "man pages: $(ls "$scratch/prefix/share/man/man1" | wc -l) installed"
  passed=$((passed + 1))
fi
for ex in minimal run_sink photon_client chroma_client; do
  cmake -S "$root/examples/$ex" -B "$scratch/$ex" -G Ninja \
        -DCMAKE_PREFIX_PATH="$scratch/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$scratch/$ex" >/dev/null
done
"$scratch/minimal/minimal"
passed=$((passed + 1))
"$scratch/run_sink/run_sink" | grep -q '^run demo.root: events 0 1 2, closed$'
passed=$((passed + 1))
"$scratch/prefix/bin/acheron" --log-level warn photon serve --bind 'tcp://127.0.0.1:*' \
    --chroma-bind 'tcp://127.0.0.1:*' --threads 1 > "$scratch/server.out" &
server_pid=$!
# The ready line: acheron VERSION photon serve ready: charon ENDPOINT, chroma ENDPOINT
for _ in $(seq 100); do grep -q " ready: " "$scratch/server.out" && break; sleep 0.1; done
endpoint=$(sed -n 's/^.* ready: .*charon \([^ ,]*\).*$/\1/p' "$scratch/server.out")
chroma_endpoint=$(sed -n 's/^.* ready: .*chroma \([^ ,]*\).*$/\1/p' "$scratch/server.out")
"$scratch/photon_client/photon_client" "$endpoint" 3
passed=$((passed + 1))
"$scratch/chroma_client/chroma_client" "$chroma_endpoint" 3
passed=$((passed + 1))
echo "examples and man pages: $passed passed, 0 failed"
