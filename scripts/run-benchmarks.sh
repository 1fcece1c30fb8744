#!/usr/bin/env bash
# Runs every benchmark of a release build, side by side, and prints their
# ratio tables. Results and this command go to docs/benchmarks.md.
set -euo pipefail
build=${1:-build/release}
echo "== bench_core (Google Benchmark)"
"$build/bench/bench_core" --benchmark_min_time=0.2
echo "== acheron photon bench (default detector)"
"$build/apps/acheron/acheron" photon bench --photons 500000 --threads 2
echo "== acheron photon bench (29,000 PMTs)"
"$build/apps/acheron/acheron" photon bench --photons 500000 --threads 2 --pmts 29000
echo "== bench_photon_service"
"$build/bench/bench_photon_service" --events 6 --photons 1000000 --threads 2
echo "== bench_broker_scaling (1, 2, 4 workers; broker ceiling with stub workers)"
"$build/bench/bench_broker_scaling" --seconds 2
echo "== bench_chroma (chroma front vs ChAR0N front; ChromaPhotonList codec)"
"$build/bench/bench_chroma" --events 6 --photons 1000000 --threads 2
echo "== bench_remote (calls vs raw REQ/REP; stream rate accuracy)"
"$build/bench/bench_remote" --calls 20000 --seconds 10
echo "== bench_remote.py (Python client vs bare pyzmq)"
PYTHONPATH=python /usr/bin/python3 bench/bench_remote.py "$build" --calls 5000
echo "== bench_daq"
"$build/bench/bench_daq" --seconds 3
echo "== bench_daq_compare (acheron only; see docs/benchmarks.md for the upstream side)"
/usr/bin/python3 bench/bench_daq_compare.py --build "$build" --clients 1,8,32
echo "== bench_gnss"
"$build/bench/bench_gnss"
echo "== bench_dcss (DHS operation latency, loop DHS frame rate)"
"$build/bench/bench_dcss" 2000
