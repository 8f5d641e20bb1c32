/* alloc.h - a bounded cache of freed Lua blocks in front of the state's
 * allocator: frees and allocations of blocks of one size up to 64 KiB (a
 * coroutine's stack, a task, a conn, a 64-byte or 4 KiB read's string)
 * reuse each other's memory without going through malloc. */
#ifndef CORONET_ALLOC_H
#define CORONET_ALLOC_H

#include <stddef.h>
#include "lua.h"

/* alloc_open: put the cache in front of L's allocator (lua_setallocf),
 * once per state; it takes itself out when the state closes. Without the
 * memory for it, L keeps its allocator. */
void alloc_open(lua_State *L);

/* alloc_cached_bytes: the bytes the cache holds now (0 without one). */
size_t alloc_cached_bytes(lua_State *L);

#endif
