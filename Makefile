# The user interface of the project. `make demo` and `make test` work on a
# fresh Debian 12 clone: they install missing packages, configure and build.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 20
BUILD := build/default

.PHONY: all deps build demo test test-unit test-asan test-python test-example \
        bench fuzz format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake --preset default >/dev/null
	@cmake --build --preset default -j $(JOBS)

demo: build
	$(BUILD)/apps/acheron/acheron demo

# Every test: C++ unit and integration tests (ctest), the same unit tests under
# ASan/UBSan, the Python tests, and a downstream find_package consumer.
test: build
	@$(MAKE) --no-print-directory test-unit test-python test-example test-asan

test-unit:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-python:
	ACHERON_BUILD_DIR=$(CURDIR)/$(BUILD) PYTHONPATH=$(CURDIR)/python \
	  $(PYTHON) -m pytest -q test/python

test-example:
	@bash scripts/check-example.sh $(BUILD)

test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -L unit

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
