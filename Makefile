# Front door. `make run` and `make test` work on a fresh Debian 12 machine:
# they install missing packages, configure a Release build, build, and run.
BUILD ?= build
JOBS ?= 2
PACKAGES := g++ make cmake libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev \
            libpcre2-dev libcli11-dev python3 python3-numpy \
            libcpp-httplib-dev nodejs
# The sanitizer and fuzz builds: clang 14 with its sanitizer/libFuzzer runtimes.
CLANG_PACKAGES := clang-14 libclang-rt-14-dev
SAN_BUILD ?= build-sanitize
FUZZ_SECONDS ?= 30
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps deps-clang client-deps configure configure-sanitize build run test test-sanitize fuzz fuzz-smoke clean format

deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

deps-clang:
	@$(MAKE) --no-print-directory deps PACKAGES="$(PACKAGES) $(CLANG_PACKAGES)"

configure: deps
	@[ -f $(BUILD)/CMakeCache.txt ] || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DNUCLEUS_WERROR=ON

build: configure
	cmake --build $(BUILD) -j$(JOBS)

run: build
	./$(BUILD)/nucleus generate -m models/stories260K.gguf -p "Once upon a time" -n 200

# The server's client test drives it with the official openai npm package,
# pinned by tests/client/package-lock.json (node_modules is never committed).
client-deps: deps
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	@[ tests/client/node_modules/.package-lock.json -nt tests/client/package-lock.json ] || \
	  (cd tests/client && npm ci --no-audit --no-fund)

test: build client-deps
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The whole suite built by clang with ASan + UBSan (first report stops the
# test) and libFuzzer coverage, in $(SAN_BUILD); `make fuzz` reuses that build.
configure-sanitize: deps-clang
	@[ -f $(SAN_BUILD)/CMakeCache.txt ] || cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Release \
	  -DNUCLEUS_WERROR=ON -DCMAKE_CXX_COMPILER=clang++-14 -DNUCLEUS_FUZZ=ON

test-sanitize: configure-sanitize client-deps
	cmake --build $(SAN_BUILD) -j$(JOBS)
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j$(JOBS)

# The libFuzzer targets (fuzz/README.md) and their seed corpora.
fuzz: configure-sanitize
	cmake --build $(SAN_BUILD) -j$(JOBS) --target fuzz
	rm -rf $(SAN_BUILD)/fuzz-seeds && $(SAN_BUILD)/nucleus_fuzz_seeds tests/data $(SAN_BUILD)/fuzz-seeds

# Each target for FUZZ_SECONDS on its corpus (CI's smoke run).
fuzz-smoke: fuzz
	fuzz/run.sh $(SAN_BUILD) $(FUZZ_SECONDS)

format:
	find src tests bench include -name '*.cpp' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
