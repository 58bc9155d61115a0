# kvbench - top-level entry points. CMake does the building; this file names the jobs.
#   make              release build, binary at build/kvbench
#   make check        sanitizer (ASan+UBSan) build and every CTest test
#   make demo         build, then kvbench demo: the whole story on the embedded engine
#   make bench        build and run the benchmarks in bench/
#   make gpu-check    the GPU checks, where there is a GPU (tests/gpu/run.sh)
#   make format / format-check / lint

JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
PKGS    := libcurl libmicrohttpd jansson libcrypto libxxhash libpcre2-8 libutf8proc cmocka
SOURCES := $(shell find src tests bench fuzz -name '*.[ch]' 2>/dev/null)

.PHONY: all deps build check check-build check-tsan gpu-check check-aarch64 soak demo format format-check lint bench fuzz clean

all: build

# Install missing Debian packages only when something is not found.
deps:
	@if ! command -v cmake >/dev/null 2>&1 || ! command -v pkg-config >/dev/null 2>&1 || \
	    ! pkg-config --exists $(PKGS) || ! test -f /usr/include/http_parser.h || \
	    ! command -v jq >/dev/null 2>&1 || \
	    ! command -v curl >/dev/null 2>&1 || ! command -v iostat >/dev/null 2>&1 || \
	    ! command -v shellcheck >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  bash scripts/install-deps.sh; \
	fi

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKVBENCH_TESTS=OFF >/dev/null
	cmake --build build -j $(JOBS)

check-build: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKVBENCH_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)

# The whole story on the embedded engine (installs what is missing, builds, runs).
demo: build
	build/kvbench demo

check: check-build
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

# The GPU checks (tests/gpu/run.sh) wherever an NVIDIA GPU and the CUDA toolkit are: kvbench
# tiers against a cudaMemcpy loop and dd, cuFile's rows, and the demo with G1 in GPU memory.
# Without a GPU it says so and checks nothing. KVBENCH=path uses a binary built elsewhere (a GPU
# machine without kvbench's build dependencies).
gpu-check:
	@if [ -z "$(KVBENCH)" ]; then $(MAKE) build; fi
	KVBENCH="$(or $(KVBENCH),build/kvbench)" bash tests/gpu/run.sh

# ThreadSanitizer build; the tests whose code runs on several threads (the load generator's
# event loops, the engine's HTTP and scheduler threads, the KV manager, the samplers). Any report
# fails the test (halt_on_error).
TSAN_TESTS ?= unit_|e2e_loadgen|e2e_run|e2e_engine|e2e_telemetry
check-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DKVBENCH_TSAN=ON >/dev/null
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -j $(JOBS) -R '$(TSAN_TESTS)'

# serve under a streaming load plus connection floods for SOAK_SECONDS; prints RSS and open
# handles at start, after warm-up and at the end, and fails on growth past warm-up.
SOAK_SECONDS ?= 60
soak: build
	bash tests/soak/soak.sh build/kvbench $(SOAK_SECONDS)

# Cross-build for aarch64 (DGX Spark) with Debian's gcc-aarch64-linux-gnu and arm64 -dev packages,
# then every test under qemu-user-static (CTest's cross-compiling emulator), timeouts scaled.
# AARCH64_TESTS narrows it (a CTest -R regex), e.g. AARCH64_TESTS='unit_|e2e_(engine|run)$'.
AARCH64_TESTS ?= .
check-aarch64:
	bash scripts/install-deps.sh --aarch64
	cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	  -DCMAKE_BUILD_TYPE=Release -DKVBENCH_TIMEOUT_SCALE=10 >/dev/null
	cmake --build build-aarch64 -j $(JOBS)
	@file build-aarch64/kvbench | grep -q 'ARM aarch64' || { echo "check-aarch64: not an aarch64 binary" >&2; exit 1; }
	cd build-aarch64 && ctest --output-on-failure -j $(JOBS) -R '$(AARCH64_TESTS)'

bench: build
	@echo "== build/bench/bench_engine"; build/bench/bench_engine
	@echo "== build/bench/bench_telemetry"; build/bench/bench_telemetry
	@mkdir -p bench/out && gzip -dc tests/fixtures/tokenizers/llama3/tokenizer.json.gz \
	  > bench/out/llama3-tokenizer.json
	@echo "== build/bench/bench_tokenizer"; build/bench/bench_tokenizer bench/out/llama3-tokenizer.json \
	  --write-corpus bench/out/corpus.txt
	@for s in bench/*.sh; do echo "== $$s"; bash "$$s" build/kvbench || exit 1; done

# libFuzzer targets for the parsers (fuzz/README.md); FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(filter-out src/main.c,$(shell find src -name '*.c'))
FUZZ_FLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Isrc -Ibuild/fuzz-gen \
  -fsanitize=fuzzer,address,undefined $(shell pkg-config --cflags libcurl libmicrohttpd jansson libpcre2-8 libutf8proc)
FUZZ_LIBS := $(shell pkg-config --libs libcurl libmicrohttpd jansson libcrypto libxxhash libpcre2-8 libutf8proc) -lhttp_parser -lpthread -lm -ldl
fuzz: deps
	@mkdir -p build-fuzz/gen bench/out
	@printf 'const char *const KVBENCH_VERSION = "fuzz";\nconst char *const KVBENCH_GIT_SHA = "fuzz";\n' > build-fuzz/gen/version.c
	@gzip -dc tests/fixtures/tokenizers/llama3/tokenizer.json.gz > build-fuzz/llama3-tokenizer.json
	@command -v clang-14 >/dev/null || { echo "make fuzz: needs clang-14 and libclang-rt-14-dev (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
	@for t in prom sse chunk engine_request tokenizer_json encode trace; do \
	  clang-14 $(FUZZ_FLAGS) fuzz/fuzz_$$t.c $(FUZZ_SRC) build-fuzz/gen/version.c $(FUZZ_LIBS) \
	    -o build-fuzz/fuzz_$$t || exit 1; \
	done
	@for t in prom sse chunk engine_request tokenizer_json encode trace; do \
	  echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; mkdir -p build-fuzz/corpus-$$t; \
	  KVBENCH_FUZZ_TOKENIZER=build-fuzz/llama3-tokenizer.json build-fuzz/fuzz_$$t \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-fuzz/corpus-$$t fuzz/corpus/$$t \
	    > build-fuzz/fuzz_$$t.log 2>&1; rc=$$?; tail -4 build-fuzz/fuzz_$$t.log; \
	  if [ $$rc -ne 0 ]; then echo "fuzz_$$t failed (rc $$rc): see build-fuzz/fuzz_$$t.log" >&2; exit 1; fi; \
	done

format:
	clang-format -i $(SOURCES)

format-check:
	@clang-format --dry-run --Werror $(SOURCES) && echo 'format-check: ok'

# Three checks; each prints every offender, and lint fails when any of them fails:
#  - cppcheck. The cmd_* functions receive their values through option tables (pointers cppcheck
#    cannot follow), so its null-pointer guesses about those values are suppressed there.
#  - tools/funclen.sh: no function in src/ over 100 lines, from its signature to its closing brace
#    (tools/funclen.awk); a function whose body is mostly a table of data may be listed, with the
#    reason, in tools/funclen-allow.txt.
#  - tools/layers.sh: each part of src/ includes only the parts below it (util < net < model <
#    probe < load < scenario < analysis < report < run; engine beside the harness, on util, net and
#    model only; cmd on everything; main.c on cmd), and no two modules include each other's
#    headers, directly or round a longer loop (a module is a .c with its .h).
lint:
	@rc=0; \
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem --include=tools/cppcheck-macros.h \
	  --suppress='nullPointer:src/cmd/*' --suppress='ctunullpointer:src/probe/server.c' -I src src || rc=1; \
	bash tools/funclen.sh 100 || rc=1; \
	bash tools/layers.sh || rc=1; \
	exit $$rc

clean:
	rm -rf build build-asan build-aarch64
