#!/usr/bin/env bash
# Installs the Debian 12 packages Acheron needs to build, test and run.
# Idempotent: installs only what is missing; runs non-interactively as root
# (or through sudo when not root).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git clang clang-format
  libclang-rt-14-dev
  libzmq3-dev cppzmq-dev libxxhash-dev libsodium-dev libmsgpack-cxx-dev nlohmann-json3-dev
  libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev
  libembree-dev libtbb-dev libhdf5-dev python3-h5py
  libgmsh-dev libclhep-dev libpugixml-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libcpp-httplib-dev libboost-dev libturbojpeg0-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  pybind11-dev python3-dev
  python3 python3-zmq python3-numpy python3-msgpack python3-pytest python3-pytest-xdist python3-hypothesis
  python3-matplotlib python3-grpcio python3-grpc-tools python3-protobuf
  python3-json5 openssl python3-venv
  python3-pytest-asyncio python3-pandas python3-rich python3-psutil python3-netifaces
  # a real single-node Slurm for test/python/test_slurm.py (acheron cluster slurm)
  slurmctld slurmd slurm-client munge
  python3-prometheus-client prometheus-cpp-dev libjs-chart.js
  chromium chromium-driver python3-selenium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
