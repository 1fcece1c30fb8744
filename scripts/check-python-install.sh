#!/usr/bin/env bash
# `pip install .` as a user runs it, into a fresh virtual environment made
# with --system-site-packages (pip's isolated build: scikit-build-core from
# PyPI or pip's cache; CMake, Ninja, pybind11, grpc_tools and the libraries
# from Debian). Checks that the package imports with its compiled parts from
# that environment alone, that pip installed nothing but acheron (Debian's
# python3-* packages satisfy its dependencies), and prints how long it took.
# The build tree build/pip/<wheel tag> is shared with `make python-install`,
# so after that only the install itself is repeated.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-/usr/bin/python3}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
unset PYTHONPATH ACHERON_DCSS_EXTENSION

"$python" -m venv --system-site-packages "$scratch/venv"
start=$(date +%s%N)
if ! (cd "$root" && CMAKE_BUILD_PARALLEL_LEVEL=${JOBS:-2} "$scratch/venv/bin/pip" install \
        --report "$scratch/report.json" . > "$scratch/pip.log" 2>&1); then
  cat "$scratch/pip.log" >&2
  echo "test-install: pip install . failed (log above)" >&2
  exit 1
fi
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
installed=$("$scratch/venv/bin/python" -c '
import json, sys
print(" ".join(sorted(i["metadata"]["name"] for i in json.load(open(sys.argv[1]))["install"])))
' "$scratch/report.json")
if [ "$installed" != "acheron" ]; then
  echo "test-install: pip installed \"$installed\", expected only acheron (a dependency's" \
       "lower bound in pyproject.toml above Debian's version?)" >&2
  exit 1
fi
(cd / && "$scratch/venv/bin/python" -c '
import sys, acheron, acheron.dcss, acheron.daq, acheron.proto.ublox_control_pb2_grpc
assert acheron.__file__.startswith(sys.prefix), acheron.__file__
assert acheron.dcss._ext.__file__.startswith(sys.prefix), acheron.dcss._ext.__file__
import acheron.http_status  # the status page files are inside the package
assert acheron.http_status.web_dir().is_relative_to(sys.prefix), acheron.http_status.web_dir()
')
printf 'test-install: pip install . into a fresh venv took %d.%d s; acheron, acheron.dcss and acheron.daq import from it\n' \
  $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100))
