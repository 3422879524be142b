# mamori — the two commands: `make run` and `make test`.
# Both install the missing Debian packages first (scripts/deps.sh), then build.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
CONFIG ?=

.PHONY: all deps bench-deps build build-asan run test unit integration bench fuzz lint clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMAMORI_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

run: build
	./$(BUILD)/mamori serve $(if $(CONFIG),-c $(CONFIG),)

# Unit tests under ASan+UBSan, then every test (unit and integration) on the
# release build against the real peers.
test: build build-asan lint
	@echo "== unit tests (AddressSanitizer + UndefinedBehaviorSanitizer)"
	@ctest --test-dir $(ASAN_BUILD) -L unit --output-on-failure -j$(JOBS)
	@echo "== all tests (release build)"
	@ctest --test-dir $(BUILD) --output-on-failure

unit: build
	@ctest --test-dir $(BUILD) -L unit --output-on-failure -j$(JOBS)

integration: build
	@ctest --test-dir $(BUILD) -L integration --output-on-failure

# Packages only the benchmarks' comparisons need (rspamd, FastNetMon).
bench-deps:
	@sh scripts/deps.sh --bench

bench: build bench-deps
	@sh bench/run.sh
	@sh bench/mail_compare.sh 5000 100
	@echo "== detection: the SigmaHQ corpus (bench_detect)"; $(BUILD)/bench_detect
	@echo "== indicator lookups (bench_intel)"; $(BUILD)/bench_intel
	@echo "== flow decoding (bench_flow)"; $(BUILD)/bench_flow
	@echo "== DDoS counters and detector (bench_ddos)"; $(BUILD)/bench_ddos
	@BUILD=$(BUILD) sh bench/ddos_compare.sh
	@echo "== DDoS time to mitigate: decision -> route at the BGP peer, e-mail (ddos_mitigate.py)"; BUILD=$(BUILD) python3 bench/ddos_mitigate.py 20

fuzz: deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DMAMORI_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@sh fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

lint:
	@sh tools/lint.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
