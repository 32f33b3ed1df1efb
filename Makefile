# Convenience front end over CMake. `make` builds build/secho; `make test` runs every test
# (normal build, with the reduced stress scenarios, then ASan+UBSan, then TSan on the threaded
# models); `make stress` runs the full stress scenarios; `make run` starts a server.
BUILD   ?= build
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX  ?= /usr/local
CMAKE   ?= cmake
CTEST   ?= ctest
HOST    ?= 127.0.0.1
PORT    ?= 9090
RUNARGS ?= -P plain

.PHONY: all build run test test-fast test-fuzz test-asan test-tsan bench bench-concurrency stress fuzz fuzz-build fuzz-seeds format format-check lint install uninstall clean

all: build

build:
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/secho server -H $(HOST) -p $(PORT) $(RUNARGS)

test-fast: build
	cd $(BUILD) && $(CTEST) --output-on-failure -j $(JOBS)

test-asan:
	@$(CMAKE) -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DSECHO_ASAN=ON >/dev/null
	@$(CMAKE) --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(CTEST) --output-on-failure -j $(JOBS)

test-tsan:
	@$(CMAKE) -S . -B $(BUILD)-tsan -DCMAKE_BUILD_TYPE=Debug -DSECHO_TSAN=ON >/dev/null
	@$(CMAKE) --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  $(CTEST) --output-on-failure -j $(JOBS) -L tsan

# libFuzzer: `make fuzz` builds every target (clang) in $(BUILD)-fuzz and runs each for
# FUZZ_SECONDS over a scratch copy of its seed corpus fuzz/corpus/NAME (the seeds in the
# repo are never written), printing the executions it reached; FUZZ_TARGETS=fuzz_x picks
# some. `make test` runs a short pass (FUZZ_SECONDS=10) of every target. `make fuzz-seeds`
# merges what a run found into the seed corpora (libFuzzer -merge=1: only inputs that add
# coverage are kept).
FUZZ_SECONDS ?= 10
FUZZ_TARGETS ?= $(notdir $(basename $(wildcard fuzz/fuzz_*.c)))
FUZZ_MAX_LEN ?= 8192

test-fuzz: fuzz

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  f=$(BUILD)-fuzz/$$t; [ -x "$$f" ] || { echo "fuzz: no target $$t"; exit 1; }; \
	  work=$$(mktemp -d); mkdir -p "$$work/corpus"; \
	  if [ -d fuzz/corpus/$$t ]; then cp -r fuzz/corpus/$$t/. "$$work/corpus/"; fi; \
	  seeds=$$(ls "$$work/corpus" | wc -l); \
	  if ! "$$f" -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 \
	       -artifact_prefix="$$work/" "$$work/corpus" > "$$work/log" 2>&1; then \
	    tail -n 60 "$$work/log"; cp "$$work"/crash-* "$$work"/leak-* "$$work"/timeout-* . 2>/dev/null || true; \
	    echo "fuzz: $$t FAILED (the input is saved in the current directory)"; exit 1; fi; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' "$$work/log"); \
	  cov=$$(grep -o 'cov: [0-9]*' "$$work/log" | tail -n 1); \
	  printf 'fuzz: %-24s %10s executions in %s s, %s seeds -> %s inputs, %s\n' "$$t" "$$execs" \
	    "$(FUZZ_SECONDS)" "$$seeds" "$$(ls "$$work/corpus" | wc -l)" "$$cov"; \
	  if [ -n "$(FUZZ_KEEP)" ]; then mkdir -p "$(FUZZ_KEEP)/$$t"; cp -r "$$work/corpus/." "$(FUZZ_KEEP)/$$t/"; fi; \
	  rm -rf "$$work"; done

fuzz-build:
	@$(CMAKE) -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DSECHO_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@$(CMAKE) --build $(BUILD)-fuzz -j $(JOBS)

# Runs every target for FUZZ_SECONDS (default here 60) and merges the inputs that add
# coverage into fuzz/corpus/NAME.
fuzz-seeds: fuzz-build
	@set -e; keep=$$(mktemp -d); \
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(or $(SEED_SECONDS),60) FUZZ_KEEP=$$keep; \
	for t in $(FUZZ_TARGETS); do mkdir -p fuzz/corpus/$$t; \
	  $(BUILD)-fuzz/$$t -merge=1 -max_len=$(FUZZ_MAX_LEN) fuzz/corpus/$$t "$$keep/$$t" > /dev/null 2>&1; \
	  echo "fuzz-seeds: $$t $$(ls fuzz/corpus/$$t | wc -l) seeds"; done; rm -rf "$$keep"

test: test-fast test-fuzz test-asan test-tsan

# The suite against the peers of bench/peers/; writes bench/RESULTS.md (about 12 minutes).
bench: build
	./bench/run.sh $(BUILD)/secho

# The figures of docs/CONCURRENCY.md (about 6 minutes).
bench-concurrency: build
	./bench/concurrency.sh $(BUILD)/secho

# Scenarios under attack with PASS/FAIL verdicts (stress/README.md): 15,000 connections, reset
# storms, slowloris, clients that never read, descriptor exhaustion, UDP floods, shutdown under
# load, valgrind over the client and keygen. STRESS_SCALE=small is the reduced form that
# `make test` runs (ctest -L stress); STRESS_ONLY=name,... picks scenarios.
STRESS_SCALE ?= full
STRESS_ONLY  ?=
stress: build
	@rc=0; python3 stress/stress.py --secho $(BUILD)/secho --scale $(STRESS_SCALE) \
	  $(if $(STRESS_ONLY),--only $(STRESS_ONLY)) || rc=1; \
	python3 stress/valgrind.py --secho $(BUILD)/secho || rc=1; exit $$rc

C_FILES = $(shell find src tests/unit fuzz bench -name '*.[ch]' | sort)

format:
	clang-format -i $(C_FILES)

format-check:
	clang-format --dry-run -Werror $(C_FILES)

# Static analysis: cppcheck over src/ with every layer's headers, then clang-tidy (checks in
# .clang-tidy) on each src/ file with the flags of build/compile_commands.json. Both always run;
# exits non-zero on any finding of either.
CPPCHECK   ?= cppcheck
CLANG_TIDY ?= clang-tidy
LINT_INCLUDES = -Isrc/base -Isrc/crypto -Isrc/proto -Isrc/proto/secure -Isrc/engine \
                -Isrc/server -Isrc/cmd
SRC_C = $(shell find src -name '*.c' | sort)

lint: build
	@rc=0; \
	echo "lint: $(CPPCHECK)"; \
	$(CPPCHECK) --enable=warning,portability --error-exitcode=1 --inline-suppr -q \
	  --std=c11 --library=posix --library=gnu --library=openssl -D_GNU_SOURCE \
	  $(LINT_INCLUDES) -j $(JOBS) src || rc=1; \
	echo "lint: $(CLANG_TIDY)"; \
	printf '%s\n' $(SRC_C) | xargs -P $(JOBS) -n 1 $(CLANG_TIDY) -p $(BUILD) --quiet || rc=1; \
	if [ $$rc -ne 0 ]; then echo "lint: FAILED"; else echo "lint: clean"; fi; exit $$rc

# DESTDIR=/staging installs under /staging for packagers; uninstall takes the same PREFIX and
# DESTDIR and removes what the manifest (PREFIX/share/secho/install_manifest.txt) lists.
install: build
	DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD) --prefix $(PREFIX)

uninstall:
	DESTDIR="$(DESTDIR)" $(CMAKE) -DPREFIX=$(PREFIX) -P cmake/uninstall.cmake

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz
