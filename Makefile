# Thin wrapper over CMake for the two commands of the README.
#   make        build build/ (optimised, with debug info)
#   make run    install what is missing, build, start imsdlgd on the example config
#   make test   install what is missing, check format, build with sanitizers,
#               run unit, RFC 4475 and protocol tests, then the fuzz smoke run
#   make bench  parser benchmark, then imsdlgd vs Kamailio vs the UDP floor:
#               as a proxy (bench/proxy), with dialogs, 100,000 of them held
#               and listed (bench/dialog)
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 25

.PHONY: all deps build run test format check-format asan unit sip fuzz bench clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

run: build
	@exec build/imsdlgd -f examples/imsdlg.cfg

check-format:
	@./scripts/check-format.sh

format:
	@git ls-files -co --exclude-standard 'src/*.[ch]' 'include/*.h' 'tests/*.[ch]' 'bench/*.[ch]' | xargs clang-format -i

asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DIMSDLG_SANITIZE=ON -DIMSDLG_WERROR=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

unit: asan
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS)

# Protocol tests: SIPp against the sanitizer build of imsdlgd, with 1 and 2
# workers (the suite parametrizes children).
sip: asan
	@IMSDLGD=$(CURDIR)/build-asan/imsdlgd ASAN_OPTIONS=detect_leaks=1 \
		/usr/bin/python3 -m pytest tests/sip -q -p no:cacheprovider

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DIMSDLG_FUZZ=ON -DIMSDLG_WERROR=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_msg fuzz_uri fuzz_frame fuzz_cfg fuzz_jsonrpc
	@./tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

test: deps check-format unit sip fuzz

bench: build
	@./bench/parse/run.sh build
	@./scripts/install-deps.sh --bench
	@./bench/proxy/run.sh
	@./bench/dialog/run.sh

clean:
	rm -rf build build-asan build-fuzz
