# Front door. `make run` and `make test` work on a fresh Debian 12 machine:
# they install missing packages, configure a Release build, build, and run.
BUILD ?= build
JOBS ?= 2
PACKAGES := g++ make cmake libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev \
            libpcre2-dev libcli11-dev python3 python3-numpy \
            libcpp-httplib-dev nodejs
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps client-deps configure build run test clean format

deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

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

format:
	find src tests bench include -name '*.cpp' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
