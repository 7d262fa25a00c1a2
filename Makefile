# nginx-twostep: `make` builds the module, `make demo` runs the example,
# `make test` runs the unit and end-to-end tests, `make bench` measures.

SHELL     := /bin/bash
NGINX_SRC ?= /usr/share/nginx/src
BUILD     := $(CURDIR)/build
MODULE    := $(BUILD)/ngx_http_twostep_module.so
PYTHON    := /usr/bin/python3

BUILD_DEPS := nginx nginx-dev build-essential pkg-config libssl-dev \
              libjansson-dev libcurl4-openssl-dev libcrypt-dev \
              libqrencode-dev libfido2-dev libcbor-dev libhiredis-dev check
UNIT_DEPS  := oathtool whois python3
# promtool (prometheus) checks what twostep_metrics serves.
TEST_DEPS  := oathtool python3-pytest python3-requests whois prometheus openssl \
              redis-server
# examples/demo.sh: python3 runs the legacy app and the stand-ins, openssl
# makes the keys and the password, mkpasswd (whois) hashes it, oathtool
# and qrencode show the authenticator code; a fresh Debian 12 has neither
# python3 nor openssl.
DEMO_DEPS  := oathtool qrencode whois python3 openssl
# The bench signs in through the e2e harness (requests, mkpasswd, oathtool);
# perf counts the zone locks of a signed-in request.
BENCH_DEPS := wrk linux-perf valgrind python3-requests oathtool whois redis-server

CXX      ?= g++
CXXFLAGS ?= -O2 -g
CORE_FLAGS := -std=c++17 -Wall -Wextra -Werror -fPIC -Isrc $(CXXFLAGS)
CORE_LIBS  := -lcrypto -ljansson -lcrypt -lqrencode -lfido2 -lcbor

CORE_SRCS := $(sort $(wildcard src/core/*.cpp))
CORE_OBJS := $(patsubst src/core/%.cpp,$(BUILD)/core/%.o,$(CORE_SRCS)) \
             $(BUILD)/core/embedded_pages.o
# The pages' templates, stylesheet, script and translations, compiled in.
PAGE_FILES := $(sort $(wildcard src/core/pages/* src/core/pages/lang/*))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.cpp))
UNIT_BINS := $(patsubst tests/unit/%.cpp,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: all deps module tool unit e2e test test-asan soak demo bench clean

all: module tool

deps:
	@scripts/ensure-deps $(BUILD_DEPS)

# The module, built by nginx's own configure against the given source tree
# (Debian's nginx-dev by default, which matches the installed binary), with
# the hardening flags Debian builds nginx itself with.
NGX_CC_OPT := -O2 -g -fstack-protector-strong -Wformat \
              -Werror=format-security -D_FORTIFY_SOURCE=2
NGX_LD_OPT := -Wl,-z,relro -Wl,-z,now
# Debian's tree carries the flags its nginx was configured with; a plain
# nginx source tree gets --with-compat, which is what makes a dynamic module
# load into any build of the same version.
NGX_CONF_FLAGS := { NGX_CONF_FLAGS=(--with-compat --with-threads); \
                    if [ -f conf_flags ]; then . ./conf_flags; fi; }
MODULE_SRCS := ngx_http_twostep_module.cpp $(wildcard src/ngx/*) \
               $(wildcard src/core/*.cpp src/core/*.h) $(PAGE_FILES)

$(BUILD)/nginx/Makefile: config config.make | deps
	@mkdir -p $(BUILD)
	cd $(NGINX_SRC) && $(NGX_CONF_FLAGS) && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" --add-dynamic-module=$(CURDIR) \
	        --with-cc-opt="$(NGX_CC_OPT)" --with-ld-opt="$(NGX_LD_OPT)" \
	        --builddir=$(BUILD)/nginx >$(BUILD)/configure.log 2>&1 \
	    || { cat $(BUILD)/configure.log; rm -f $@; exit 1; }

$(MODULE): $(BUILD)/nginx/Makefile $(MODULE_SRCS)
	$(MAKE) -s -f $(BUILD)/nginx/Makefile -C $(NGINX_SRC) modules
	@# a new file, not one rewritten under a running nginx that maps it
	cp $(BUILD)/nginx/ngx_http_twostep_module.so $@.new && mv -f $@.new $@
	@echo "built $@"

module: deps $(MODULE)

# The core on its own, for unit tests and tools: no nginx involved.
$(BUILD)/core/%.o: src/core/%.cpp src/core/*.h
	@mkdir -p $(dir $@)
	@echo "  CXX  $<"
	@$(CXX) $(CPPFLAGS) $(CORE_FLAGS) -c $< -o $@

$(BUILD)/core/embedded_pages.cpp: scripts/embed-pages $(PAGE_FILES)
	@mkdir -p $(dir $@)
	@scripts/embed-pages src/core/pages >$@.new && mv -f $@.new $@

$(BUILD)/core/embedded_pages.o: $(BUILD)/core/embedded_pages.cpp src/core/*.h
	@echo "  CXX  embedded pages"
	@$(CXX) $(CORE_FLAGS) -c $< -o $@

$(BUILD)/libtwostep_core.a: $(CORE_OBJS)
	@ar rcs $@ $^

$(BUILD)/unit/%: tests/unit/%.cpp tests/unit/*.h $(BUILD)/libtwostep_core.a
	@mkdir -p $(dir $@)
	@echo "  CXX  $<"
	@$(CXX) $(CORE_FLAGS) $< -o $@ $(BUILD)/libtwostep_core.a $(CORE_LIBS) \
	    $$(pkg-config --cflags --libs check)

# twostep-user, the administrators' tool, on the same core as the module.
TOOL := $(BUILD)/twostep-user

$(TOOL): tools/twostep_user.cpp $(BUILD)/libtwostep_core.a
	$(CXX) $(CPPFLAGS) $(CORE_FLAGS) $< -o $@ $(BUILD)/libtwostep_core.a \
	    $(LDFLAGS) $(CORE_LIBS)

tool: deps $(TOOL)

# test_totp compares with oathtool, test_password with mkpasswd (whois);
# check-layers refuses include or call cycles among the nginx-side files.
unit: deps $(UNIT_BINS)
	@scripts/ensure-deps $(UNIT_DEPS)
	@scripts/check-layers
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

e2e: module tool
	@scripts/ensure-deps $(TEST_DEPS)
	cd tests/e2e && TWOSTEP_MODULE=$(MODULE) $(PYTHON) -m pytest -q -p no:cacheprovider .

test: unit e2e

demo: module tool
	@scripts/ensure-deps $(DEMO_DEPS)
	@TWOSTEP_MODULE=$(MODULE) examples/demo.sh

bench: module
	@scripts/ensure-deps $(BENCH_DEPS)
	@TWOSTEP_MODULE=$(MODULE) bench/run.sh

# A real browser (Debian's Chromium, driven by playwright-core from npm, no
# browser download) through the sign-in pages, against nginx, the legacy app,
# the Duo simulator and the Twilio and ntfy stand-ins (tests/browser/
# README.md). Node and npm come from
# Debian unless the machine already has them. The screenshots go to
# BROWSER_SHOTS; `make browser BROWSER_SHOTS=docs/screenshots` refreshes
# the documented ones.
.PHONY: browser

# zbarimg reads the QR codes the pages draw, as a phone's camera would.
BROWSER_DEPS  := chromium oathtool whois python3-requests zbar-tools
BROWSER_SHOTS ?= $(BUILD)/screenshots
BROWSER_NODE  := tests/browser/node_modules/.package-lock.json

$(BROWSER_NODE): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund
	@touch $@

browser: module
	@scripts/ensure-deps $(BROWSER_DEPS)
	@command -v node >/dev/null && command -v npm >/dev/null \
	    || scripts/ensure-deps nodejs npm
	@$(MAKE) -s --no-print-directory $(BROWSER_NODE)
	cd tests/browser && TWOSTEP_MODULE=$(MODULE) \
	    SCREENSHOTS=$(abspath $(BROWSER_SHOTS)) node browser_test.js

# libFuzzer targets for the parsers that read attacker input, each run for
# FUZZ_SECONDS on a scratch copy of its seeds (tests/fuzz/README.md). The
# core is compiled again with the sanitizers, into build/fuzz/core.
FUZZ_DEPS    := clang libclang-rt-14-dev
FUZZ_SECONDS ?= 20
FUZZ_CXX     := clang++
FUZZ_FLAGS   := -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -Isrc
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.cpp))
FUZZ_BINS    := $(patsubst tests/fuzz/%.cpp,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_OBJS    := $(patsubst src/core/%.cpp,$(BUILD)/fuzz/core/%.o,$(CORE_SRCS)) \
                $(BUILD)/fuzz/core/embedded_pages.o

.PHONY: fuzz

$(filter-out %/embedded_pages.o,$(FUZZ_OBJS)): $(BUILD)/fuzz/core/%.o: src/core/%.cpp src/core/*.h
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -c $< -o $@

$(BUILD)/fuzz/core/embedded_pages.o: $(BUILD)/core/embedded_pages.cpp src/core/*.h
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -c $< -o $@

$(FUZZ_BINS): $(BUILD)/fuzz/%: tests/fuzz/%.cpp tests/fuzz/*.h $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) $< -o $@ $(FUZZ_OBJS) $(CORE_LIBS)

fuzz: deps
	@scripts/ensure-deps $(FUZZ_DEPS)
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BINS)

# The module and the core built with AddressSanitizer and UBSan, and the
# end-to-end suite run against it (nginx itself is not instrumented: the
# harness preloads libasan when TWOSTEP_ASAN=1).
ASAN_OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined
ASAN_MODULE := $(BUILD)/asan/ngx_http_twostep_module.so

$(BUILD)/asan/nginx/Makefile: config config.make | deps
	@mkdir -p $(BUILD)/asan
	cd $(NGINX_SRC) && $(NGX_CONF_FLAGS) && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" --add-dynamic-module=$(CURDIR) \
	        --with-cc-opt="$(ASAN_OPT)" --with-ld-opt="-fsanitize=address,undefined" \
	        --builddir=$(BUILD)/asan/nginx >$(BUILD)/asan/configure.log 2>&1 \
	    || { cat $(BUILD)/asan/configure.log; rm -f $@; exit 1; }

$(ASAN_MODULE): $(BUILD)/asan/nginx/Makefile $(MODULE_SRCS)
	$(MAKE) -s -f $(BUILD)/asan/nginx/Makefile -C $(NGINX_SRC) modules
	cp $(BUILD)/asan/nginx/ngx_http_twostep_module.so $@.new && mv -f $@.new $@

test-asan: deps $(ASAN_MODULE)
	@scripts/ensure-deps $(TEST_DEPS)
	cd tests/e2e && TWOSTEP_MODULE=$(ASAN_MODULE) TWOSTEP_ASAN=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider .

# wrk for a bounded time against valid, expired, tampered and missing
# cookies with two workers: no 5xx, no crash, stable memory.
soak: module
	@scripts/ensure-deps $(BENCH_DEPS) $(TEST_DEPS)
	@TWOSTEP_MODULE=$(MODULE) $(PYTHON) tests/soak/soak.py

# The Debian package, built by dpkg-buildpackage from debian/ (dh with
# nginx-dev's dh-sequence-nginx) in a copy of the source tree under
# build/deb/, so the checkout itself stays clean; the .deb lands in build/.
# `make deb-test` installs it with apt, checks it and purges it.
.PHONY: deb deb-deps deb-test

DEB_DEPS := dpkg-dev debhelper nginx-dev build-essential libssl-dev \
            libjansson-dev libcurl4-openssl-dev libcrypt-dev libqrencode-dev \
            libhiredis-dev libfido2-dev libcbor-dev
# scripts/deb-test: openssl makes the cookie key, python3 picks a port and
# sends the request.
DEB_TEST_DEPS := openssl python3
DEB_NAME := libnginx-mod-http-twostep
DEB_FILE  = $(BUILD)/$(DEB_NAME)_$(shell dpkg-parsechangelog -S Version \
            -l debian/changelog)_$(shell dpkg-architecture -qDEB_HOST_ARCH).deb

# A prerequisite, not the recipe's first line: make expands every line of
# a recipe (DEB_FILE calls dpkg-dev's tools) before it runs the first.
deb-deps:
	@scripts/ensure-deps $(DEB_DEPS)

deb: deb-deps
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/src
	tar -c --exclude=./build --exclude=./.git --exclude='./tests/browser/node_modules' \
	    -f - . | tar -x -C $(BUILD)/deb/src
	cd $(BUILD)/deb/src && dpkg-buildpackage -b -uc -us \
	    >$(BUILD)/deb/build.log 2>&1 \
	    || { tail -n 60 $(BUILD)/deb/build.log; exit 1; }
	cp $(BUILD)/deb/$(notdir $(DEB_FILE)) $(DEB_FILE)
	@echo "built $(DEB_FILE)"

deb-test: deb
	@scripts/ensure-deps $(DEB_TEST_DEPS)
	scripts/deb-test $(DEB_FILE)

clean:
	rm -rf $(BUILD)
