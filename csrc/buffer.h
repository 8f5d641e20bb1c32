/* buffer.h - net.buffer: a mutable byte buffer userdata (buffer.c) that
 * conns read into (conn:read_into) and write from (conn:write accepts one
 * wherever it accepts a string), so a loop that moves bytes makes no Lua
 * string per chunk. */
#ifndef CORONET_BUFFER_H
#define CORONET_BUFFER_H

#include <stddef.h>
#include "lua.h"

#define BUFFER_MT "coronet.buffer"

/* buffer: the bytes [head, tail) of one malloc'd block of cap bytes (data
 * may be NULL while cap is 0). busy counts the operations parked with it
 * (a write from it, a read_into into it): while it is not 0 nothing may
 * move or drop its bytes, since they resume against the same memory (a
 * TLS write retry must pass the same bytes). */
typedef struct buffer {
    char *data;
    size_t cap, head, tail;
    unsigned busy;
} buffer;

/* buffer_test: the buffer at idx, or NULL when the value is not one. */
buffer *buffer_test(lua_State *L, int idx);

/* buffer_bytes: the bytes held by the buffer at idx and their count in
 * *len, or NULL (and *len untouched) when the value is not a buffer. The
 * pointer is valid until the buffer is next changed. */
const char *buffer_bytes(lua_State *L, int idx, size_t *len);

/* buffer_pin / buffer_unpin: an operation using the buffer at idx (if the
 * value is one) is about to park / has resumed: mutators raise "buffer
 * busy" in between. buffer_pin only counts when the task can yield (a
 * park that raises instead leaves nothing pinned). */
void buffer_pin(lua_State *L, int idx);
void buffer_unpin(lua_State *L, int idx);

/* buffer_room: the free tail of b to append into, *room bytes of it
 * (at least 1): up to max bytes (0: no bound) of the free space; a full
 * buffer first makes min(max, BUFFER_STEP) bytes free (compacting when
 * that suffices, else growing). Raises "buffer busy" if that must move
 * the bytes of a busy buffer, and on out of memory. Append with
 * buffer_commit. */
char *buffer_room(lua_State *L, buffer *b, size_t max, size_t *room);

/* buffer_commit: n bytes were written at the free tail buffer_room gave. */
void buffer_commit(buffer *b, size_t n);

/* BUFFER_STEP: what a full buffer grows by for one read_into (64 KiB). */
#define BUFFER_STEP 65536

/* buffer_read_into: conn:read_into(buf [, max] [, ctx]), the conn method
 * (plain and TLS conns; conn.c registers it). */
int buffer_read_into(lua_State *L);

/* buffer_open: register BUFFER_MT and add core.buffer to the table on
 * top of the stack. */
int buffer_open(lua_State *L);

#endif
