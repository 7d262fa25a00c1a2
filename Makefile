# nginx-twostep: `make` builds the module, `make demo` runs the example,
# `make test` runs the unit and end-to-end tests, `make bench` measures.

SHELL     := /bin/bash
NGINX_SRC ?= /usr/share/nginx/src
BUILD     := $(CURDIR)/build
MODULE    := $(BUILD)/ngx_http_twostep_module.so
PYTHON    := /usr/bin/python3

BUILD_DEPS := nginx nginx-dev build-essential pkg-config libssl-dev \
              libjansson-dev libcurl4-openssl-dev libcrypt-dev check
TEST_DEPS  := oathtool python3-pytest python3-requests whois
DEMO_DEPS  := oathtool qrencode whois
BENCH_DEPS := wrk

CXX      ?= g++
CXXFLAGS ?= -O2 -g
CORE_FLAGS := -std=c++17 -Wall -Wextra -Werror -fPIC -Isrc $(CXXFLAGS)
CORE_LIBS  := -lcrypto -ljansson -lcrypt

CORE_SRCS := $(sort $(wildcard src/core/*.cpp))
CORE_OBJS := $(patsubst src/core/%.cpp,$(BUILD)/core/%.o,$(CORE_SRCS))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.cpp))
UNIT_BINS := $(patsubst tests/unit/%.cpp,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: all deps module unit e2e test demo bench clean

all: module

deps:
	@scripts/ensure-deps $(BUILD_DEPS)

# The module, built by nginx's own configure against the given source tree
# (Debian's nginx-dev by default, which matches the installed binary), with
# the hardening flags Debian builds nginx itself with.
NGX_CC_OPT := -O2 -g -fstack-protector-strong -Wformat \
              -Werror=format-security -D_FORTIFY_SOURCE=2
NGX_LD_OPT := -Wl,-z,relro -Wl,-z,now
MODULE_SRCS := ngx_http_twostep_module.cpp $(wildcard src/ngx/*) \
               $(wildcard src/core/*)

$(BUILD)/nginx/Makefile: config config.make | deps
	@mkdir -p $(BUILD)
	cd $(NGINX_SRC) && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" --add-dynamic-module=$(CURDIR) \
	        --with-cc-opt="$(NGX_CC_OPT)" --with-ld-opt="$(NGX_LD_OPT)" \
	        --builddir=$(BUILD)/nginx >$(BUILD)/configure.log 2>&1 \
	    || { cat $(BUILD)/configure.log; rm -f $@; exit 1; }

$(MODULE): $(BUILD)/nginx/Makefile $(MODULE_SRCS)
	$(MAKE) -s -f $(BUILD)/nginx/Makefile -C $(NGINX_SRC) modules
	cp $(BUILD)/nginx/ngx_http_twostep_module.so $@
	@echo "built $@"

module: deps $(MODULE)

# The core on its own, for unit tests and tools: no nginx involved.
$(BUILD)/core/%.o: src/core/%.cpp src/core/*.h
	@mkdir -p $(dir $@)
	$(CXX) $(CORE_FLAGS) -c $< -o $@

$(BUILD)/libtwostep_core.a: $(CORE_OBJS)
	ar rcs $@ $^

$(BUILD)/unit/%: tests/unit/%.cpp tests/unit/*.h $(BUILD)/libtwostep_core.a
	@mkdir -p $(dir $@)
	$(CXX) $(CORE_FLAGS) $< -o $@ $(BUILD)/libtwostep_core.a $(CORE_LIBS) \
	    $$(pkg-config --cflags --libs check)

unit: deps $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

e2e: module
	@scripts/ensure-deps $(TEST_DEPS)
	cd tests/e2e && TWOSTEP_MODULE=$(MODULE) $(PYTHON) -m pytest -q -p no:cacheprovider .

test: unit e2e

demo: module
	@scripts/ensure-deps $(DEMO_DEPS)
	@TWOSTEP_MODULE=$(MODULE) examples/demo.sh

bench: module
	@scripts/ensure-deps $(BENCH_DEPS)
	@TWOSTEP_MODULE=$(MODULE) bench/run.sh

clean:
	rm -rf $(BUILD)
