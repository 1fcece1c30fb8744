# The user interface of the project. `make demo` and `make test` work on a
# fresh Debian 12 clone: they install missing packages, configure and build.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 20
BUILD := build/default

.PHONY: all deps build demo test test-unit test-asan test-python test-example \
        conformance venv bench fuzz format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake --preset default >/dev/null
	@cmake --build --preset default -j $(JOBS)

demo: build
	$(BUILD)/apps/acheron/acheron demo

# The field's reference tools from PyPI (ROOT), in a virtual environment that
# still sees Debian's python3 packages. Without PyPI the conformance tests
# skip (they import ROOT with pytest.importorskip).
VENV := build/venv
ROOT_WHEEL ?= ROOT
G4_WHEEL ?= geant4-pybind

# Every test: C++ unit and integration tests (ctest), the Python tests, the
# conformance tests against real ROOT, a downstream find_package consumer, and
# the C++ tests and the process-level Python tests again under ASan/UBSan.
test: build
	@$(MAKE) --no-print-directory test-unit test-python conformance test-example test-asan

test-unit:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-python:
	ACHERON_BUILD_DIR=$(CURDIR)/$(BUILD) PYTHONPATH=$(CURDIR)/python \
	  $(PYTHON) -m pytest -q test/python

test-example:
	@bash scripts/check-example.sh $(BUILD)

venv:
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	@$(VENV)/bin/python -c "import ROOT" 2>/dev/null || \
	  $(VENV)/bin/pip install -q $(ROOT_WHEEL) || \
	  echo "venv: $(ROOT_WHEEL) could not be installed from PyPI; the ROOT tests will skip"
	@$(VENV)/bin/python -c "import geant4_pybind" 2>/dev/null || \
	  $(VENV)/bin/pip install -q $(G4_WHEEL) || \
	  echo "venv: $(G4_WHEEL) could not be installed from PyPI; the Geant4 comparisons will skip"

# Conformance with real ROOT: ChromaPhotonList bytes both ways, and a PyROOT
# client written like chroma-server's own against `acheron photon serve`.
# Physics against real Geant4 (geant4-pybind): the reference's own checks and
# a reduced engine-versus-Geant4 comparison (scripts/compare-geant4.py).
conformance: venv
	ACHERON_BUILD_DIR=$(CURDIR)/$(BUILD) PYTHONPATH=$(CURDIR)/python \
	  ACHERON_G4_PYTHON=$(CURDIR)/$(VENV)/bin/python \
	  $(VENV)/bin/python -m pytest -q -p no:cacheprovider test/python/test_chroma_root.py \
	  test/python/test_chroma_service.py::test_a_pyroot_client_like_chroma_servers_own_gets_its_hits \
	  test/python/test_g4reference.py test/python/test_compare_geant4.py

# Under ASan/UBSan: the C++ unit tests and the program's own tests (the fuzz
# drivers run in the default build and in `make fuzz`, which sanitizes), then
# every Python test against the sanitized program, so the servers the tests
# start as processes run sanitized. Python loads the sanitized extension
# module, so the sanitizer runtime is preloaded (with libstdc++, whose
# exception functions it intercepts); leaks are not checked there because
# Python's own allocations would be reported.
ASAN_RUNTIME = $(shell gcc -print-file-name=libasan.so) $(shell gcc -print-file-name=libstdc++.so)
test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/test/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -L 'unit|app'
	ACHERON_BUILD_DIR=$(CURDIR)/build/asan PYTHONPATH=$(CURDIR)/python \
	  LD_PRELOAD="$(ASAN_RUNTIME)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider test/python

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
