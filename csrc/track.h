/* track.h - the registry of open conns, listeners and packet conns that
 * net.debug.conns() lists (csrc/track.c). */
#ifndef CORONET_TRACK_H
#define CORONET_TRACK_H

#include "lua.h"
#include "loop.h"

/* track_handle: remember the conn, listener or packet conn userdata at idx
 * (its memory begins with a handle; weakly: tracking never keeps it alive)
 * with the id of the task creating it. O(1) but for doubling the slots;
 * the stack is left as it was. */
void track_handle(lua_State *L, int idx);

/* track_release: a tracked handle closes (handle_close) and gives its slot
 * back; a no-op for one not tracked or already given back. */
void track_release(handle *h);

/* track_loop_free: free the C side of the registry (loop_gc). */
void track_loop_free(loop *lp);

/* track_open: add core.track, core.tracked, core.handle_info,
 * core.task_kind and core.task_born to the table on top of the stack. */
int track_open(lua_State *L);

#endif
