# mtls-spoa - "bring your own CA" mutual TLS for HAProxy, as an SPOE agent.
#
#   make deps      install the Debian packages needed to build and test
#   make           build build/mtls-spoa
#   make test      unit + integration tests; ends with "N passed, N failed"
#   make test-haproxy-versions HAPROXY_VERSIONS="/path/haproxy ..."
#                  the HAProxy tests once per binary (README "HAProxy versions")
#   make demo      run the local demo (HAProxy + agent + demo PKI)
#   make asan / valgrind / fuzz / bench    see README.md

SHELL      := /bin/bash
VERSION    := 0.1.0
PREFIX     ?= /usr/local
DESTDIR    ?=
CC         ?= cc
WERROR     ?= 1
BUILD      ?= build
FUZZ_SECONDS ?= 10

PKGS       := openssl inih libmicrohttpd jansson libcurl
WARN       := -Wall -Wextra -Wshadow -Wformat=2 -Wundef -Wstrict-prototypes \
              -Wmissing-prototypes -Wpointer-arith -Wvla
ifeq ($(WERROR),1)
WARN       += -Werror
endif
HARDEN     := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
OPT        ?= -O2 -g
CFLAGS     ?=
override CFLAGS += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) \
              -DMTLS_VERSION='"$(VERSION)"' -Iagent \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS    ?=
override LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS     := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lssl -lcrypto -linih -lmicrohttpd -ljansson -lcurl) \
              -lev -lpthread

AGENT_SRCS := $(wildcard agent/*.c)
AGENT_OBJS := $(patsubst agent/%.c,$(BUILD)/agent/%.o,$(AGENT_SRCS))
LIB_OBJS   := $(filter-out $(BUILD)/agent/main.o,$(AGENT_OBJS))

# tests/unit/test_*.c are test programs; other tests/unit/*.c are helpers
# linked into every one of them.
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
UNIT_HELP  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%.o,\
              $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c)))
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

# Debian 12 packages: what building needs, and what the tests, the demo,
# the hardening targets and the benchmarks need on top.
BUILD_PKGS := build-essential pkg-config libev-dev libssl-dev libinih-dev uthash-dev \
              libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
TEST_PKGS  := libcmocka-dev haproxy curl openssl python3 clang valgrind \
              shellcheck docker-compose wrk jq linux-perf \
              nginx python3-h2 libjansson-dev systemd prometheus \
              python3-cryptography etcd-server etcd-client
DEBIAN_PKGS := $(BUILD_PKGS) $(TEST_PKGS)

.SECONDARY:
.PHONY: all deps build-deps test-deps test unit integration clean install \
        asan valgrind fuzz bench demo demo-check test-haproxy-versions

all: $(BUILD)/mtls-spoa

$(BUILD)/mtls-spoa: $(AGENT_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/agent/%.o: agent/%.c $(wildcard agent/*.h) | $(BUILD)/agent build-deps
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/unit/%.c $(wildcard agent/*.h tests/unit/*.h) | $(BUILD)/tests test-deps
	$(CC) $(CFLAGS) -Itests/unit -c -o $@ $<

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(UNIT_HELP) $(LIB_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# Benchmark tools (spop-bench, raw-verify, callgrind-notify), linked with
# the agent objects like unit tests.
$(BUILD)/bench/%: tests/bench/%.c tests/bench/benchutil.h tests/unit/apihost.h $(LIB_OBJS) | $(BUILD)/bench
	$(CC) $(CFLAGS) -Itests/bench $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(BUILD)/agent $(BUILD)/tests $(BUILD)/bench:
	mkdir -p $@

# Before building or testing, make sure the Debian packages are there; if
# not, "make deps" installs them (as root) or prints the command. So on a
# fresh Debian 12 machine "make test" and "make demo" work as the first
# command. SKIP_DEPS=1 skips the check (other distributions).
define check_pkgs
	@if [ "$(SKIP_DEPS)" != 1 ] && command -v dpkg-query >/dev/null; then \
		missing=; \
		for p in $(1); do \
			dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
		done; \
		if [ -n "$$missing" ]; then \
			echo "missing Debian packages:$$missing"; \
			$(MAKE) --no-print-directory deps DEBIAN_PKGS="$(1)"; \
		fi; \
	fi
endef

build-deps:
	$(call check_pkgs,$(BUILD_PKGS))

test-deps:
	$(call check_pkgs,$(DEBIAN_PKGS))

# Install the build and test dependencies (Debian 12).
deps:
	@if [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PKGS); \
	else \
		echo "Run as root:"; \
		echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $(DEBIAN_PKGS)"; \
		exit 1; \
	fi

# Everything: unit tests, then integration tests against a real HAProxy.
# tests/run.sh prints one TAP-style line per check and ends with the
# summary line "N passed, N failed".
test: test-deps $(BUILD)/mtls-spoa $(UNIT_BINS) $(BENCH_BINS)
	@BUILD=$(BUILD) tests/run.sh

unit: test-deps $(UNIT_BINS)
	@BUILD=$(BUILD) TEST_ONLY=unit tests/run.sh

integration: test-deps $(BUILD)/mtls-spoa $(BENCH_BINS)
	@BUILD=$(BUILD) TEST_ONLY=integration tests/run.sh

# Every integration test that starts HAProxy, once per binary named in
# HAPROXY_VERSIONS (paths; default the haproxy on PATH): one summary line
# per version, then "N passed, N failed". See README "HAProxy versions".
HAPROXY_VERSIONS ?= haproxy
test-haproxy-versions: test-deps $(BUILD)/mtls-spoa
	@BUILD=$(BUILD) HAPROXY_VERSIONS="$(HAPROXY_VERSIONS)" tests/haproxy-versions.sh

# Whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" test

clean:
	rm -rf build build-asan build-fuzz

install: $(BUILD)/mtls-spoa
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/mtls-spoa/haproxy-conf
	install -m 0755 $(BUILD)/mtls-spoa $(DESTDIR)$(PREFIX)/bin/mtls-spoa
	install -m 0644 haproxy-conf/* $(DESTDIR)$(PREFIX)/share/doc/mtls-spoa/haproxy-conf/
	install -m 0644 README.md LICENSE $(DESTDIR)$(PREFIX)/share/doc/mtls-spoa/
	install -d $(DESTDIR)/lib/systemd/system
	sed '/^#/!s#/usr/local/#$(PREFIX)/#g' packaging/mtls-spoa.service >$(BUILD)/mtls-spoa.service
	install -m 0644 $(BUILD)/mtls-spoa.service $(DESTDIR)/lib/systemd/system/mtls-spoa.service

# libFuzzer targets (clang): tests/fuzz/fuzz_NAME.c, seeds in
# tests/fuzz/corpus/NAME (copied to a scratch dir so runs do not grow the
# repo). FUZZ_SECONDS per target.
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRCS))
LIB_SRCS   := $(filter-out agent/main.c,$(AGENT_SRCS))
FUZZ_FLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -Iagent -Itests/unit \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRCS) $(wildcard agent/*.h tests/unit/*.h)
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) -o $@ $< $(LIB_SRCS) $(if $(filter verify api,$*),tests/unit/pki.c) $(LDLIBS) \
		$(if $(filter logjson,$*),-ljansson)

fuzz: test-deps $(FUZZ_BINS)
	@set -e; for b in $(FUZZ_BINS); do \
		name=$$(basename $$b); name=$${name#fuzz_}; \
		seeds=tests/fuzz/corpus/$$name; [ -d $$seeds ] || seeds=tests/fuzz/corpus/spop; \
		work=build-fuzz/corpus-$$name; mkdir -p $$work; cp -r $$seeds/. $$work/ 2>/dev/null || true; \
		echo "== $$b for $(FUZZ_SECONDS)s"; \
		$$b -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=build-fuzz/ $$work 2>&1 | \
			grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' ; \
		test $${PIPESTATUS[0]} -eq 0; \
	done

demo: test-deps $(BUILD)/mtls-spoa
	@MTLS_BUILD=$(BUILD) tests/demo/demo.sh

demo-check: test-deps $(BUILD)/mtls-spoa
	@MTLS_BUILD=$(BUILD) tests/demo/demo.sh --check

# Unit tests and an agent session under valgrind: zero errors, zero leaks.
valgrind: test-deps $(BUILD)/mtls-spoa $(UNIT_BINS)
	@BUILD=$(BUILD) tests/valgrind.sh

# Benchmarks: agent alone (cached, uncached, threads), the raw OpenSSL
# limit, instructions per cached NOTIFY (callgrind), end to end against
# native HAProxy verification, and a 10,000-host configuration. Writes
# BENCHMARKS.md. About 3 minutes; needs wrk, valgrind, jq (make deps).
bench: test-deps $(BUILD)/mtls-spoa $(BENCH_BINS)
	MTLS_BUILD=$(BUILD) tests/bench/bench.sh
