/* class.c - the one way a userdata type registers its metatable. */
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

void *class_check(lua_State *L, int idx, const void *key, const char *mt) {
    void *p = lua_touserdata(L, idx);
    if (p && lua_getmetatable(L, idx)) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, key);
        int same = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (same) return p;
    }
    return luaL_checkudata(L, idx, mt);
}

void class_register_keyed(lua_State *L, const char *mt, const void *key,
                          const luaL_Reg *meta, const luaL_Reg *methods) {
    class_register(L, mt, meta, methods);
    luaL_getmetatable(L, mt);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}
