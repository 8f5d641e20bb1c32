# coronet - Go's net for Lua 5.4.
#   make            build build/coronet/core.so
#   make check      install missing Debian packages, build with -Werror,
#                   run the spec suite and a smoke run of every example
#   make demo       the narrated tour on loopback (examples/tour.lua)
#   make asan       the spec suite under ASan+UBSan
#   make valgrind   the spec suite under valgrind memcheck
#   make rock       luarocks make into a scratch tree and require it
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
LDLIBS   += -lcares -lpthread -lm
BUILD    ?= build
SO       := $(BUILD)/coronet/core.so
SRCS     := $(wildcard csrc/*.c)
OBJS     := $(SRCS:csrc/%.c=$(BUILD)/obj/%.o)
HDRS     := $(wildcard csrc/*.h)

LUAENV   := LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='$(BUILD)/?.so;;'
SPEC_TIMEOUT ?= 600

all: $(SO)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CPPFLAGS) $(CFLAGS) -fPIC -c -o $@ $<

$(SO): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

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

# luarocks' make backend calls this with its own variables
install: $(SO)
	install -d $(INST_LIBDIR)/coronet $(INST_LUADIR)/coronet
	install -m 755 $(SO) $(INST_LIBDIR)/coronet/core.so
	install -m 644 lua/coronet/*.lua $(INST_LUADIR)/coronet/

clean:
	rm -rf $(BUILD)

.PHONY: all deps deps-demo check demo asan valgrind rock install clean soak fuzz fuzz-bins
