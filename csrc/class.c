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
