# Stoke — top-level build.
#
#   make              build build/stoke-agent (BPF objects, skeleton, protobuf code)
#   make run          build, then profile this machine (see README.md)
#   make test         unit tests, the same tests under ASan+UBSan, short fuzz runs
#   make test-integration   real eBPF against real workloads, compared with perf
#   make fuzz         longer fuzz runs (FUZZ_SECONDS per target)
#   make image        container images (OCI archives) of both programs, no registry
#   make lint         clang-format check, clang-tidy, cppcheck, the include rules
#   make check-deps   every tool the tests and scripts call has a package in scripts/deps.sh
#   make check-includes  stages include downward only, no two modules include
#                     each other (docs/architecture.md, Layers)
#
# Sources are discovered per stage directory: every common/*.c, agent/*.c,
# unwind/*.c, symbolizer/*.c, ingest/*.c, exporter/*.c, codec/*.c, store/*.c and
# query/{engine,serve,jobs}/*.c (the two main.c files are the programs)
# goes into build/libstoke.a, which the agent, the query worker, the
# unit tests (tests/unit/test_*.c) and the fuzz targets (tests/fuzz/fuzz_*.c)
# link against.

CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool
PROTOC_C  ?= protoc-c
BUILD     := build
ARCH      := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

PPROF_PROTO ?= /usr/share/gocode/src/github.com/google/pprof/proto/profile.proto

WARN      := -Wall -Wextra -Werror -Wno-unused-parameter
# OPTFLAGS is what the sanitizer and fuzz builds change; CFLAGS stays whole.
OPTFLAGS  ?= -O2 -g
CFLAGS    := -std=gnu11 $(WARN) -fno-omit-frame-pointer -D_GNU_SOURCE -I. -I$(BUILD) -I$(BUILD)/proto $(OPTFLAGS)
# --as-needed: each binary depends only on the libraries it uses (the agent
# not on snappy; the query worker on libdw, libelf and libdebuginfod since
# it names frames stored unnamed: deferred symbolization)
LDLIBS    := -Wl,--as-needed -lbpf -ldw -ldebuginfod -lelf -lprotobuf-c -lcurl -lsnappy -lzstd -lz -lmicrohttpd -lnghttp2 -lcjson -liberty -lpthread -lm

LIB_SRC   := $(filter-out agent/main.c query/main.c,\
               $(wildcard common/*.c agent/*.c unwind/*.c symbolizer/*.c ingest/*.c exporter/*.c codec/*.c \
                          store/*.c query/engine/*.c query/serve/*.c query/jobs/*.c))
# Protocol definitions: pprof's profile.proto from Debian's
# golang-github-google-pprof-dev, plus the project's own proto/**/*.proto
# (written from the published specifications), each compiled by protoc-c
# into build/proto/<same path>.pb-c.{c,h} and linked into libstoke.a.
OWN_PROTO := $(shell find proto -name '*.proto' 2>/dev/null | sort)
PROTO_C   := $(BUILD)/proto/profile.pb-c.c $(patsubst proto/%.proto,$(BUILD)/proto/%.pb-c.c,$(OWN_PROTO))
PROTO_OBJ := $(patsubst $(BUILD)/proto/%.c,$(BUILD)/obj/proto/%.o,$(PROTO_C))
LIB_OBJ   := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(PROTO_OBJ)
GEN_HDRS  := $(BUILD)/profile.skel.h $(PROTO_C:.c=.h)
.SECONDARY: $(PROTO_C) $(PROTO_C:.c=.h)

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)


.PHONY: packages
.PHONY: all deps deps-test deps-lint deps-packages check-deps check-includes run test test-unit \
        test-san test-fuzz-short test-integration fuzz lint format clean bench

all: $(BUILD)/stoke-agent $(BUILD)/stoke-query

# ---- dependencies -------------------------------------------------------
deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh build test

deps-lint:
	@scripts/deps.sh lint

deps-packages:
	@scripts/deps.sh build packages

deps-image:
	@scripts/deps.sh build image

# Every tool the Makefiles, scripts and tests call has a package in
# scripts/deps.sh (what a fresh machine gets).
check-deps:
	@scripts/check-deps.sh

# The include rules of docs/architecture.md (Layers and include rules).
check-includes:
	@scripts/check-includes.sh

# ---- BPF ----------------------------------------------------------------
$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	@test -r /sys/kernel/btf/vmlinux || { echo "error: /sys/kernel/btf/vmlinux missing: Stoke needs a kernel with BTF (CONFIG_DEBUG_INFO_BTF=y)" >&2; exit 1; }
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/profile.bpf.o: bpf/profile.bpf.c bpf/profile.h $(BUILD)/vmlinux.h
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(BUILD) -I. -Wall -Werror -c $< -o $@

$(BUILD)/profile.skel.h: $(BUILD)/profile.bpf.o
	$(BPFTOOL) gen skeleton $< name profile_bpf > $@.tmp && mv $@.tmp $@

# ---- protobuf -----------------------------------------------------------
$(BUILD)/proto/profile.pb-c.c $(BUILD)/proto/profile.pb-c.h: $(PPROF_PROTO)
	@mkdir -p $(BUILD)/proto
	cp $(PPROF_PROTO) $(BUILD)/proto/profile.proto
	cd $(BUILD)/proto && $(PROTOC_C) --c_out=. profile.proto

$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: proto/%.proto $(OWN_PROTO) $(BUILD)/proto/profile.pb-c.h
	@mkdir -p $(BUILD)/proto
	$(PROTOC_C) --proto_path=proto --proto_path=$(BUILD)/proto --c_out=$(BUILD)/proto $<

# ---- C ------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(OPTFLAGS) -I$(BUILD)/proto -c $< -o $@

$(BUILD)/libstoke.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/stoke-agent: $(BUILD)/obj/agent/main.o $(BUILD)/libstoke.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The web page is embedded: one C string generated from query/web/index.html
# (no build step beyond this rule; `--web-dir` serves a file instead).
$(BUILD)/web_index.c: query/web/index.html
	@mkdir -p $(@D)
	{ echo '#include <stddef.h>'; echo 'static const char page[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/\r/\\r/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; echo ';'; \
	  echo 'const char *stoke_web_index(size_t *len);'; \
	  echo 'const char *stoke_web_index(size_t *len) { *len = sizeof(page) - 1; return page; }'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/web_index.o: $(BUILD)/web_index.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/stoke-query: $(BUILD)/obj/query/main.o $(BUILD)/obj/web_index.o $(BUILD)/libstoke.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- unit tests ---------------------------------------------------------
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libstoke.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libstoke.a $(LDLIBS) -lcmocka

test-unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(BUILD)/tests $(UNIT_BIN)

# The same unit tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-san:
	$(MAKE) BUILD=$(BUILD)/san OPTFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all" \
	    test-unit-san

test-unit-san: $(UNIT_BIN)
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 scripts/run-unit.sh $(BUILD)/tests $(UNIT_BIN)

# ---- fuzzing ------------------------------------------------------------
FUZZ_BUILD  := $(BUILD)/fuzz
FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_SECONDS ?= 60

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(CLANG) OPTFLAGS="$(FUZZ_CFLAGS)" fuzz-bins

fuzz-bins: $(patsubst tests/fuzz/%.c,$(BUILD)/fuzzers/%,$(FUZZ_SRC))

$(BUILD)/fuzzers/%: tests/fuzz/%.c $(BUILD)/libstoke.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libstoke.a $(LDLIBS)

test-fuzz-short: fuzz-build
	@scripts/run-fuzz.sh $(FUZZ_BUILD)/fuzzers 10

fuzz: fuzz-build
	@scripts/run-fuzz.sh $(FUZZ_BUILD)/fuzzers $(FUZZ_SECONDS)

# ---- top-level targets --------------------------------------------------
test: deps-test
	@scripts/check-deps.sh
	@scripts/check-includes.sh
	$(MAKE) all
	$(MAKE) test-unit
	$(MAKE) test-san
	$(MAKE) test-fuzz-short

test-integration: deps-test
	$(MAKE) all
	@tests/integration/run.sh

# ARGS go to the agent: make run ARGS="--frequency 99"
run: deps
	$(MAKE) all
	@scripts/run.sh $(ARGS)

# .deb and .rpm for stoke-agent and stoke-query in build/packages/
# (docs/install.md); dpkg-deb, dpkg-shlibdeps and rpmbuild, installed first.
packages: deps-packages
	$(MAKE) all
	scripts/packages.sh

# OCI archives build/stoke-agent.oci.tar and build/stoke-query.oci.tar, made
# here without a registry: Debian's packages (mmdebstrap) + buildah; root.
# README.md, Container images; packaging/container/ for registry builds.
.PHONY: image deps-image
image: deps-image
	$(MAKE) all
	scripts/image.sh

# clang-tidy reads the generated headers (BPF skeleton, protobuf-c): built first
lint: deps-lint $(GEN_HDRS)
	@scripts/lint.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

# ---- benchmarks -----------------------------------------------------------
# Micro-benchmarks of the hot paths (bench/micro.c says what each measures):
# `make bench-micro` prints a table and writes $(BUILD)/bench/micro.json.
# The BPF drain needs root (reported as skipped otherwise).
.PHONY: bench-micro

$(BUILD)/stoke-bench-micro: $(BUILD)/obj/bench/micro.o $(BUILD)/libstoke.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The object-store requests and bytes of one query (bench/open_hour.c, run
# by bench/open_hour.sh).
$(BUILD)/stoke-bench-open-hour: $(BUILD)/obj/bench/open_hour.o $(BUILD)/libstoke.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bench-micro: $(BUILD)/stoke-bench-micro
	@mkdir -p $(BUILD)/bench
	$(BUILD)/stoke-bench-micro --json $(BUILD)/bench/micro.json

# `make bench`: the workload mix profiled by stoke-agent, perf, bpftrace and
# bcc one after the other, the agent's frame-pointer and table walkers side
# by side, then the storage/query and micro figures (bench/run.sh; needs
# root). BENCH_SECONDS, BENCH_FREQ, BENCH_UNWIND_SECONDS: see bench/run.sh.
bench: all $(BUILD)/bench/stoke-bench-workload
	@bench/run.sh

# `make bench-rss`: the agent's memory alone (bench/rss.sh: peak and steady
# RSS under process churn, with 2000 and 500 processes, on a busy host;
# RSS_RUNS, RSS_SECONDS; needs root).
.PHONY: bench-rss
bench-rss: all $(BUILD)/bench/stoke-bench-workload
	@bench/rss.sh

# `make bench-receive`: the receiver alone (bench/receive.sh: a corpus pprof
# pushed via /ingest, OTLP/HTTP and OTLP JSON by 100 concurrent pushers to an
# agent on one core; RX_PPROF, RX_REQUESTS, RX_PUSHERS).
.PHONY: bench-receive
bench-receive: all
	@bench/receive.sh

$(BUILD)/bench/stoke-bench-workload: bench/workload.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<
