/* packet.c - placeholder until its issue lands: registers nothing. */
#include "lua.h"

int packet_open(lua_State *L);

/* packet_open: add the packet functions to the core table on top of the stack. */
int packet_open(lua_State *L) {
    (void)L;
    return 0;
}
