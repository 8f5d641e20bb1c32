/* class.h - registering a userdata type's metatable, shared by every file
 * that defines a Lua-visible type. */
#ifndef CORONET_CLASS_H
#define CORONET_CLASS_H

#include "lauxlib.h"

/* class_register: create the metatable named mt (luaL_newmetatable, so
 * __name names the type in errors), set the metamethods in meta on it and,
 * when methods is not NULL, a new table of methods as its __index. An mt
 * already registered is reused and added to. Leaves the stack as it was. */
void class_register(lua_State *L, const char *mt, const luaL_Reg *meta,
                    const luaL_Reg *methods);

/* class_check: the userdata at idx if its metatable is the class's
 * registered under the light key (class_register_keyed), else raise as
 * luaL_checkudata(L, idx, mt) does: on the common path one pointer compare
 * with a cached metatable instead of hashing the name. */
void *class_check(lua_State *L, int idx, const void *key, const char *mt);

/* class_test: the userdata at idx if its metatable is the class's
 * registered under key (class_register_keyed), else NULL. */
void *class_test(lua_State *L, int idx, const void *key);

/* class_register_keyed: class_register, and store the metatable in the
 * registry under the light key too (for class_check). */
void class_register_keyed(lua_State *L, const char *mt, const void *key,
                          const luaL_Reg *meta, const luaL_Reg *methods);

/* class_at_close: store under the light key in the registry an empty
 * userdata whose __gc is fn, so fn runs once, when L closes (lua_close
 * runs every finaliser before it frees any object). */
void class_at_close(lua_State *L, const void *key, lua_CFunction fn);

#endif
