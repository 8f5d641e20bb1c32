/* fuzz/harness.c - one libFuzzer harness for every target: it opens a Lua
 * state with coronet's core linked in (preloaded as "coronet.core") and
 * the Lua modules from lua/, loads fuzz/FUZZ_NAME.lua, which returns a
 * function, and calls it with each input. The function checks its own
 * properties (round trips, invariants) and must never raise: a raise, a
 * sanitizer report or a crash is a finding. For the DNS target the
 * harness adds _dns_answer(kind, data), a direct call of dnsresult.c's
 * parser on a raw answer. Built and run by `make fuzz`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"
#include "addr.h"
#include "resolver.h"

#ifndef FUZZ_NAME
#error "build with -DFUZZ_NAME=\"ip\" (a script under fuzz/)"
#endif

int luaopen_coronet_core(lua_State *L);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *fuzz_L;
static int fuzz_fn = LUA_NOREF;

/* _dns_answer(kind, data) -> results of dns_push_answer (kind "mx",
 * "txt", "srv", "ns", "ptr"; ptr for the address 192.0.2.1). */
static int fuzz_dns_answer(lua_State *L) {
    static const char *const kinds[] = {"host", "ip", "cname", "mx", "txt", "srv", "ns", "ptr", NULL};
    int kind = luaL_checkoption(L, 1, NULL, kinds);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    ipaddr a;
    memset(&a, 0, sizeof a);
    a.family = 4;
    a.b[10] = a.b[11] = 0xff;
    a.b[12] = 192; a.b[13] = 0; a.b[14] = 2; a.b[15] = 1;
    int top = lua_gettop(L);
    dns_push_answer(L, kind, (const unsigned char *)s, (int)len, &a);
    return lua_gettop(L) - top;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    lua_State *L = fuzz_L = luaL_newstate();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_coronet_core);
    lua_setfield(L, -2, "coronet.core");
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushstring(L, "lua/?.lua;lua/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    lua_register(L, "_dns_answer", fuzz_dns_answer);
    if (luaL_dofile(L, "fuzz/" FUZZ_NAME ".lua") != LUA_OK || !lua_isfunction(L, -1)) {
        fprintf(stderr, "fuzz: fuzz/%s.lua: %s\n", FUZZ_NAME, lua_tostring(L, -1));
        exit(2);
    }
    fuzz_fn = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lua_State *L = fuzz_L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_fn);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz %s: the target raised: %s\n", FUZZ_NAME, lua_tostring(L, -1));
        abort();
    }
    static unsigned runs;
    if (++runs % 64 == 0) lua_gc(L, LUA_GCCOLLECT, 0);   /* keep the heap small */
    return 0;
}
