/* class.c - the one way a userdata type registers its metatable. */
#include <string.h>
#include "class.h"

void class_register(lua_State *L, const char *mt, const luaL_Reg *meta,
                    const luaL_Reg *methods) {
    luaL_newmetatable(L, mt);
    luaL_setfuncs(L, meta, 0);
    if (methods) {
        int n = 0;
        while (methods[n].name) n++;
        lua_createtable(L, 0, n);                /* sized as luaL_newlib would */
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");          /* metatable.__index = methods */
    }
    lua_pop(L, 1);                               /* pop metatable */
}

/* The metatables (as pointers) class_register_keyed registered last, by
 * key: class_check compares a userdata's metatable with one of these
 * before anything else. Cleared when the state that registered them
 * closes (its sentinel's __gc), so a pointer here is always a live
 * metatable; another state's objects take the slower paths, which are
 * always right. */
#define CLASS_CACHED 8
static struct { const void *key, *mt; } class_cache[CLASS_CACHED];
static const char CLASS_SENTINEL_KEY = 0;   /* registry: the userdata whose __gc clears it */

static int class_sentinel_gc(lua_State *L) {
    (void)L;
    memset(class_cache, 0, sizeof class_cache);
    return 0;
}

void *class_test(lua_State *L, int idx, const void *key) {
    void *p = lua_touserdata(L, idx);
    if (!p || !lua_getmetatable(L, idx)) return NULL;
    const void *m = lua_topointer(L, -1);
    for (int i = 0; i < CLASS_CACHED; i++) {
        if (class_cache[i].key != key) continue;
        if (class_cache[i].mt == m) {
            lua_pop(L, 1);
            return p;
        }
        break;
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);   /* another state's, or not cached */
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}

void *class_check(lua_State *L, int idx, const void *key, const char *mt) {
    void *p = class_test(L, idx, key);
    return p ? p : luaL_checkudata(L, idx, mt);   /* raises (or another state's lookup) */
}

void class_register_keyed(lua_State *L, const char *mt, const void *key,
                          const luaL_Reg *meta, const luaL_Reg *methods) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &CLASS_SENTINEL_KEY) == LUA_TNIL) {
        lua_newuserdatauv(L, 1, 0);              /* made before any object of these classes: */
        lua_createtable(L, 0, 1);                /* finalised after all of them */
        lua_pushcfunction(L, class_sentinel_gc);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &CLASS_SENTINEL_KEY);
    }
    lua_pop(L, 1);
    class_register(L, mt, meta, methods);
    luaL_getmetatable(L, mt);
    const void *m = lua_topointer(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
    for (int i = 0; i < CLASS_CACHED; i++) {
        if (class_cache[i].key == key || !class_cache[i].key) {
            class_cache[i].key = key;
            class_cache[i].mt = m;
            break;
        }
    }
}

void class_at_close(lua_State *L, const void *key, lua_CFunction fn) {
    lua_newuserdatauv(L, 0, 0);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}
