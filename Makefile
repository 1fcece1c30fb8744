# The user interface of the project. `make demo` and `make test` work on a
# fresh Debian 12 clone: they install missing packages, configure and build.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 20
BUILD := build/default

.PHONY: all deps build demo test test-unit test-asan test-python test-example \
        test-install conformance venv python-install bench fuzz format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake --preset default >/dev/null
	@cmake --build --preset default -j $(JOBS)

demo: build
	$(BUILD)/apps/acheron/acheron demo

# The project's virtual environment: Debian's python3 with its python3-*
# packages (--system-site-packages), plus from PyPI the field's reference
# tools (ROOT, geant4-pybind; without PyPI the tests that need them skip)
# and scikit-build-core, which builds the acheron package.
VENV := build/venv
ROOT_WHEEL ?= ROOT
G4_WHEEL ?= geant4-pybind
SKBUILD_REQ ?= scikit-build-core>=0.10

# Every test: C++ unit and integration tests (ctest), the Python tests, the
# conformance tests against real ROOT and Geant4, a downstream find_package
# consumer, `pip install .` into a fresh virtual environment, and the C++
# tests and the process-level Python tests again under ASan/UBSan.
test: build
	@$(MAKE) --no-print-directory test-unit test-python conformance test-example \
	  test-install test-asan

test-unit:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The Python tests run against the installed package (python-install), with
# the venv's interpreter and no PYTHONPATH: test/python/conftest.py refuses
# an `acheron` that is not from site-packages. ACHERON_BUILD_DIR names the
# build tree whose `acheron` program the tests start. The conformance tests
# are left to `make conformance`.
ROOT_TESTS := --ignore=test/python/test_chroma_root.py \
  --deselect=test/python/test_chroma_service.py::test_a_pyroot_client_like_chroma_servers_own_gets_its_hits
CONFORMANCE_TESTS := test/python/test_chroma_root.py \
  test/python/test_chroma_service.py::test_a_pyroot_client_like_chroma_servers_own_gets_its_hits \
  test/python/test_g4reference.py test/python/test_compare_geant4.py
PYTEST := env -u PYTHONPATH $(VENV)/bin/python -m pytest -q -p no:cacheprovider
# The Python tests mostly wait on the processes they start: they run in
# parallel (pytest-xdist), a file to a worker, so a file's module fixtures
# (a Slurm cluster, a server) are made once.
PARALLEL := -n $(JOBS) --dist loadfile
# The slowest tests of each run are listed, to see where `make test`'s time goes.
DURATIONS := --durations=12

test-python: python-install
	ACHERON_BUILD_DIR=$(CURDIR)/$(BUILD) $(PYTEST) $(PARALLEL) $(DURATIONS) test/python $(ROOT_TESTS) \
	  --ignore=test/python/test_g4reference.py --ignore=test/python/test_compare_geant4.py

test-example:
	@bash scripts/check-example.sh $(BUILD)

# `pip install .` as a user runs it: a fresh venv (--system-site-packages),
# pip's isolated build, `import acheron, acheron.dcss, acheron.daq`; prints
# how long it took. The build tree build/pip is shared with python-install.
test-install: deps
	@bash scripts/check-python-install.sh

venv:
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	@$(VENV)/bin/python -c "import scikit_build_core" 2>/dev/null || \
	  $(VENV)/bin/pip install -q '$(SKBUILD_REQ)'
	@$(VENV)/bin/python -c "import ROOT" 2>/dev/null || \
	  $(VENV)/bin/pip install -q $(ROOT_WHEEL) || \
	  echo "venv: $(ROOT_WHEEL) could not be installed from PyPI; the ROOT tests will skip"
	@$(VENV)/bin/python -c "import geant4_pybind" </dev/null >/dev/null 2>&1 || \
	  $(VENV)/bin/pip install -q $(G4_WHEEL) || \
	  echo "venv: $(G4_WHEEL) could not be installed from PyPI; the Geant4 comparisons will skip"

# The acheron package from this checkout (pyproject.toml) into the venv.
# scikit-build-core builds only the package's compiled parts (the extension
# acheron._dcss and the gRPC stubs acheron.proto) in build/pip/<wheel tag>,
# which persists: a second install rebuilds only what changed. No build
# isolation: the venv's scikit-build-core and Debian's CMake, Ninja, pybind11
# and grpc_tools do the build, so nothing is downloaded; the runtime
# dependencies are Debian's python3-* packages.
python-install: deps venv
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(VENV)/bin/pip install -q --no-build-isolation .

# Conformance with real ROOT: ChromaPhotonList bytes both ways, and a PyROOT
# client written like chroma-server's own against `acheron photon serve`.
# Physics against real Geant4 (geant4-pybind): the reference's own checks and
# a reduced engine-versus-Geant4 comparison (scripts/compare-geant4.py).
conformance: python-install
	ACHERON_BUILD_DIR=$(CURDIR)/$(BUILD) ACHERON_G4_PYTHON=$(CURDIR)/$(VENV)/bin/python \
	  $(PYTEST) $(CONFORMANCE_TESTS)

# Under ASan/UBSan: the C++ unit tests and the program's own tests (the fuzz
# drivers run in the default build and in `make fuzz`, which sanitizes), then
# the Python tests against the sanitized program, so the servers the tests
# start as processes run sanitized. The installed package loads the sanitized
# build's extension (ACHERON_DCSS_EXTENSION, python/acheron/_extension.py),
# so the sanitizer runtime is preloaded (with libstdc++, whose exception
# functions it intercepts); leaks are not checked there because Python's own
# allocations would be reported. The tests that load ROOT into the Python
# process are left out (ROOT is not built for a preloaded sanitizer); the
# Geant4 ones run Geant4 in a process without it (test/python/g4python.py).
ASAN_RUNTIME = $(shell gcc -print-file-name=libasan.so) $(shell gcc -print-file-name=libstdc++.so)
test-asan: deps python-install
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/test/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -L 'unit|app'
	ext=$$(ls build/asan/python/acheron/_dcss.*.so) && \
	ACHERON_BUILD_DIR=$(CURDIR)/build/asan ACHERON_DCSS_EXTENSION=$(CURDIR)/$$ext \
	  LD_PRELOAD="$(ASAN_RUNTIME)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PYTEST) $(PARALLEL) $(DURATIONS) test/python $(ROOT_TESTS)

bench: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)
	@bash scripts/run-benchmarks.sh build/release

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS) --target fuzz_all
	@bash scripts/run-fuzzers.sh build/fuzz $(FUZZ_SECONDS)

format:
	@find src apps test bench examples -name '*.hh' -o -name '*.cc' -o -name '*.cu' \
	  | xargs clang-format -i

clean:
	rm -rf build
