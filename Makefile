# Quick start: `make run` (build and run the benchmark) and `make test` (build with sanitizers, run
# every test). Both install the Debian packages that are missing first.
PACKAGES := cmake ninja-build g++ pkg-config libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev \
            procps util-linux
# The libraries `ipcx bench` compares ipcx with, and gnuplot for its charts. Installed for the
# tests too, so CI builds and runs the peer rows.
PEERS := libboost-dev libzmq3-dev cppzmq-dev libnng-dev iceoryx libiceoryx-posh-dev \
         libiceoryx-hoofs-dev gnuplot-nox
JOBS ?= $(shell nproc)

.PHONY: run test deps release dev tsan-ring clean

# The benchmark's quick run: the table on the terminal, every figure in bench-results/quick.json,
# the charts in bench-results/quick-*.png and .svg.
run: release
	mkdir -p bench-results
	./build/release/bin/ipcx bench --quick --json bench-results/quick.json --plot bench-results/quick

# The ring's tests also run under ThreadSanitizer (first, so ctest's summary closes the output).
test: dev tsan-ring
	cd build/dev && ctest --output-on-failure -j $(JOBS) --timeout 180

tsan-ring: deps
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS) --target ring_layout_test ring_test
	TSAN_OPTIONS=halt_on_error=1 ./build/tsan/bin/ring_layout_test --gtest_brief=1
	TSAN_OPTIONS=halt_on_error=1 ./build/tsan/bin/ring_test --gtest_brief=1

deps:
	@missing=$$(for p in $(PACKAGES) $(PEERS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

release: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

dev: deps
	cmake --preset dev >/dev/null
	cmake --build --preset dev -j $(JOBS)

clean:
	rm -rf build
