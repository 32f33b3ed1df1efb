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

.PHONY: all build run test test-fast test-fuzz test-asan test-tsan bench stress fuzz format format-check lint install uninstall clean

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

# A short libFuzzer run of every target (frame parser, handshake readers, lab parsers).
FUZZ_SECONDS ?= 10
test-fuzz: fuzz
	@set -e; for f in $(BUILD)-fuzz/fuzz_*; do \
	  [ -x "$$f" ] || continue; corpus=$$(mktemp -d); \
	  echo "fuzz: $$f for $(FUZZ_SECONDS) s"; \
	  if ! "$$f" -max_total_time=$(FUZZ_SECONDS) "$$corpus" > "$$corpus.log" 2>&1; then \
	    tail -n 60 "$$corpus.log"; echo "fuzz: $$f FAILED"; exit 1; fi; \
	  tail -n 1 "$$corpus.log"; rm -rf "$$corpus" "$$corpus.log"; done

test: test-fast test-fuzz test-asan test-tsan

bench: build
	./bench/run.sh $(BUILD)/secho

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

fuzz:
	@$(CMAKE) -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DSECHO_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@$(CMAKE) --build $(BUILD)-fuzz -j $(JOBS)

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
