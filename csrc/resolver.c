/* resolver.c - placeholder until its issue lands: registers nothing. */
#include "lua.h"

int resolver_open(lua_State *L);

/* resolver_open: add the resolver functions to the core table on top of the stack. */
int resolver_open(lua_State *L) {
    (void)L;
    return 0;
}
