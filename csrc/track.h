/* track.h - the registry of open conns, listeners and packet conns that
 * net.debug.conns() lists (csrc/track.c). */
#ifndef CORONET_TRACK_H
#define CORONET_TRACK_H

#include "lua.h"

/* track_handle: remember the conn, listener or packet conn userdata at idx
 * (weakly: tracking never keeps it alive) with the id of the task creating
 * it. O(1); the stack is left as it was. */
void track_handle(lua_State *L, int idx);

/* track_open: add core.track, core.tracked, core.handle_info,
 * core.task_kind and core.task_born to the table on top of the stack. */
int track_open(lua_State *L);

#endif
