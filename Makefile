# coronet - Go's net for Lua 5.4.
#   make            build build/coronet/core.so
#   make check      install missing Debian packages, build with -Werror,
#                   run the spec suite and a smoke run of every example
#   make demo       the narrated tour on loopback (examples/tour.lua)
#   make forty      the forty Go net questions, each answered by a script (docs/forty.md)
#   make asan       the spec suite under ASan+UBSan
#   make valgrind   the spec suite under valgrind memcheck
#   make rock       luarocks --lua-version=5.4 make into a scratch tree, require it, run its command
#   make dist       build/dist/coronet-scm.tar.gz and a packed .src.rock
#   make install PREFIX=/usr/local   without LuaRocks (DESTDIR too)
#   make soak       a bounded soak run (tools/soak.lua; SOAK_SHORT=1: the CI form)
#   make fuzz       build the libFuzzer harnesses (fuzz/) with clang and run
#                   each for FUZZ_SECONDS (default 10) from its seed corpus
LUA      ?= lua5.4
LUA_INC  ?= /usr/include/lua5.4
CC       ?= cc
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN     := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
CPPFLAGS += -D_GNU_SOURCE -I$(LUA_INC) -Icsrc
LDLIBS   += -lcares -lssl -lcrypto -lpthread -lm
BUILD    ?= build
SO       := $(BUILD)/coronet/core.so
SRCS     := $(wildcard csrc/*.c)
OBJS     := $(SRCS:csrc/%.c=$(BUILD)/obj/%.o)
HDRS     := $(wildcard csrc/*.h)
# where c-ares and OpenSSL live when not in the default paths (LuaRocks
# passes its external_dependencies here)
CARES_INCDIR ?=
CARES_LIBDIR ?=
OPENSSL_INCDIR ?=
OPENSSL_LIBDIR ?=
CRYPTO_LIBDIR ?=
CPPFLAGS += $(foreach d,$(CARES_INCDIR) $(OPENSSL_INCDIR),-I$(d))
LDFLAGS  += $(foreach d,$(CARES_LIBDIR) $(OPENSSL_LIBDIR) $(CRYPTO_LIBDIR),-L$(d))

LUAENV   := LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='$(BUILD)/?.so;;'
SPEC_TIMEOUT ?= 600

all: $(SO)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CPPFLAGS) $(CFLAGS) -fPIC -c -o $@ $<

$(SO): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-z,nodelete $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

deps:
	@sh tools/deps.sh check

deps-demo:
	@sh tools/deps.sh demo

check: deps
	$(MAKE) all
	$(LUAENV) timeout $(SPEC_TIMEOUT) $(LUA) spec/run.lua

demo: deps-demo
	$(MAKE) all
	$(LUAENV) $(LUA) examples/tour.lua

forty: all
	@for f in examples/forty/q*.lua; do echo "== $$f"; $(LUAENV) timeout 60 $(LUA) $$f || exit 1; echo; done

asan:
	$(MAKE) BUILD=build/asan OPT=-O1 CFLAGS='-O1 -g -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow' LDFLAGS='-fsanitize=address,undefined,float-cast-overflow'
	LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/asan/?.so;;' \
	  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0 SPEC_NO_EXAMPLES=1 timeout $(SPEC_TIMEOUT) $(LUA) spec/run.lua

valgrind: all
	$(LUAENV) SPEC_NO_EXAMPLES=1 SPEC_SLOW=1 timeout $(SPEC_TIMEOUT) valgrind -q --error-exitcode=99 \
	  --leak-check=full --errors-for-leak-kinds=definite $(LUA) spec/run.lua

soak: all
	$(LUAENV) timeout 900 $(LUA) tools/soak.lua $(if $(SOAK_SHORT),short,)

FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 10
FUZZERS      := ip bufio frame dns
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined

fuzz:
	@sh tools/deps.sh fuzz
	$(MAKE) BUILD=build/fuzz CC=$(FUZZ_CC) CFLAGS='-O1 -g $(FUZZ_SAN)' fuzz-bins
	@for f in $(FUZZERS); do \
	  mkdir -p build/fuzz/corpus-$$f && \
	  echo "fuzz $$f: $(FUZZ_SECONDS) s" && \
	  ASAN_OPTIONS=detect_leaks=0 build/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) \
	    -dict=fuzz/$$f.dict -print_final_stats=1 -artifact_prefix=build/fuzz/crash-$$f- \
	    build/fuzz/corpus-$$f fuzz/corpus/$$f 2>build/fuzz/$$f.log \
	  || { tail -40 build/fuzz/$$f.log; exit 1; }; \
	  grep -E "stat::number_of_executed_units|stat::new_units_added" build/fuzz/$$f.log | tr '\n' ' '; echo; \
	done

# (with BUILD=build/fuzz CC=clang: the objects, then one binary per harness)
fuzz-bins: $(OBJS)
	@for f in $(FUZZERS); do \
	  $(CC) $(WARN) $(CPPFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -DFUZZ_NAME=\"$$f\" \
	    -o $(BUILD)/fuzz_$$f fuzz/harness.c $(OBJS) -llua5.4 $(LDLIBS) || exit 1; \
	done

rock:
	rm -rf $(BUILD)/rocktree
	luarocks --lua-version=5.4 --tree $(BUILD)/rocktree make rockspec/coronet-scm-1.rockspec
	LUA_PATH="$(BUILD)/rocktree/share/lua/5.4/?.lua;$(BUILD)/rocktree/share/lua/5.4/?/init.lua" \
	  LUA_CPATH="$(BUILD)/rocktree/lib/lua/5.4/?.so" $(LUA) -e 'local net = require "coronet"; assert(net.ip.parse("::1")); print("rock ok: " .. package.searchpath("coronet.core", package.cpath))'
	cd / && test "$$(echo 'print(1+1)' | $(CURDIR)/$(BUILD)/rocktree/bin/coronet)" = 2
	cd / && test "$$($(CURDIR)/$(BUILD)/rocktree/bin/coronet -e 'print(net.ip.parse("::1"))')" = ::1
	@echo "rock ok: the installed coronet command runs a line"

# The source tarball of the tracked files, and a .src.rock packed from it
# (`luarocks --lua-version=5.4 build build/dist/coronet-scm-1.src.rock`).
DIST := $(BUILD)/dist
dist:
	rm -rf $(DIST)
	mkdir -p $(DIST)/coronet-scm
	git ls-files -z | xargs -0 tar cf - | tar xf - -C $(DIST)/coronet-scm
	tar czf $(DIST)/coronet-scm.tar.gz -C $(DIST) coronet-scm
	rm -rf $(DIST)/coronet-scm
	sed 's|url = "coronet-scm.tar.gz"|url = "file://$(abspath $(DIST))/coronet-scm.tar.gz"|' \
	  rockspec/coronet-scm-1.rockspec > $(DIST)/coronet-scm-1.rockspec
	cd $(DIST) && luarocks --lua-version=5.4 pack coronet-scm-1.rockspec
	@ls -l $(DIST)

.PHONY: dist distcheck installcheck

# Build and install the packed rock into a scratch tree, as a user would.
distcheck: dist
	rm -rf $(BUILD)/disttree
	cd $(DIST) && luarocks --lua-version=5.4 --tree $(CURDIR)/$(BUILD)/disttree build coronet-scm-1.src.rock
	cd / && test "$$(echo 'print(1+1)' | $(CURDIR)/$(BUILD)/disttree/bin/coronet)" = 2
	@echo "distcheck ok: the rock built from the tarball installs a working coronet command"

# make install into a scratch prefix and run the installed command from /.
installcheck: $(SO)
	rm -rf $(BUILD)/prefix
	$(MAKE) install PREFIX=$(CURDIR)/$(BUILD)/prefix
	cd / && test "$$(echo 'print(1+1)' | $(CURDIR)/$(BUILD)/prefix/bin/coronet)" = 2
	@echo "installcheck ok: make install PREFIX=... gives a working coronet command"

# `make install PREFIX=...` for people without LuaRocks (DESTDIR for
# staging); LuaRocks' make backend calls it with its own INST_* variables
# and an empty INST_BINDIR (it installs the command itself).
PREFIX      ?= /usr/local
INST_LIBDIR ?= $(PREFIX)/lib/lua/5.4
INST_LUADIR ?= $(PREFIX)/share/lua/5.4
INST_BINDIR ?= $(PREFIX)/bin
install: $(SO)
	install -d $(DESTDIR)$(INST_LIBDIR)/coronet $(DESTDIR)$(INST_LUADIR)/coronet
	install -m 755 $(SO) $(DESTDIR)$(INST_LIBDIR)/coronet/core.so
	install -m 644 lua/coronet/*.lua $(DESTDIR)$(INST_LUADIR)/coronet/
	$(if $(INST_BINDIR),install -d $(DESTDIR)$(INST_BINDIR))
	$(if $(INST_BINDIR),sed 's|^-- @INSTALL_PATHS@.*|if not found then package.path = "$(INST_LUADIR)/?.lua;$(INST_LUADIR)/?/init.lua;" .. package.path; package.cpath = "$(INST_LIBDIR)/?.so;" .. package.cpath end|' bin/coronet > $(DESTDIR)$(INST_BINDIR)/coronet)
	$(if $(INST_BINDIR),chmod 755 $(DESTDIR)$(INST_BINDIR)/coronet)

# lint: luacheck (Debian lua-check) with .luacheckrc, and every public Lua
# function documented (tools/doccheck.lua)
lint:
	@sh tools/deps.sh lint
	luacheck --no-color lua spec examples bin bench
	$(LUA) tools/doccheck.lua

# doc: the API reference of the Lua modules, from their LDoc comments
# (Debian lua-ldoc), into docs/api/ (not committed: make doc builds it)
doc:
	@sh tools/deps.sh lint
	$(LUA) tools/doccheck.lua
	ldoc -q .

clean:
	rm -rf $(BUILD)

.PHONY: lint doc all deps deps-demo check demo forty asan valgrind rock install clean soak fuzz fuzz-bins

# bench-timers: timers at scale (bench/timers/run.lua, issue 14): sleeps with
# distinct deadlines, contexts cancelled before they fire, selects woken by a
# cancel, at each n in BENCH_TIMERS_N (smoke run: BENCH_TIMERS_N=1000,5000)
BENCH_TIMERS_N ?= 10000,100000
bench-timers: all
	$(LUAENV) $(LUA) bench/timers/run.lua --n $(BENCH_TIMERS_N)

.PHONY: bench-timers

# perfdoc: regenerate docs/performance.md's generated sections from the newest
# committed harness run, bench/results/<stamp>/ (tools/perfdoc.lua);
# perfdoc-check (part of lint) fails when they differ from it
# (PERFDOC_FLAGS: e.g. --server coronet-buf for the bars of another server)
PERFDOC_RUN = $(patsubst %/raw.tsv,%,$(lastword $(sort $(wildcard bench/results/*/raw.tsv))))
PERFDOC_FLAGS ?=
perfdoc:
	$(LUA) tools/perfdoc.lua $(PERFDOC_RUN) $(PERFDOC_FLAGS)

perfdoc-check:
	$(LUA) tools/perfdoc.lua $(PERFDOC_RUN) $(PERFDOC_FLAGS) --check

lint: perfdoc-check

.PHONY: perfdoc perfdoc-check
