/* buffer.c - net.buffer: a mutable byte buffer for code that moves bytes
 * (proxies, file servers, replication streams). conn:read_into appends
 * what one read returns straight into its free tail and conn:write sends
 * from it, so a steady copy loop makes no Lua string and, once the buffer
 * is as large as one chunk, never allocates at all.
 *
 * The bytes are [head, tail) of one malloc'd block: discard moves head,
 * reset empties it without freeing, and the block grows only when asked
 * to hold more than it can (append, reserve, or a read_into into a full
 * buffer, which grows by a bounded step: a hostile peer or a huge max
 * never makes it allocate more than BUFFER_STEP at a time).
 *
 * While a read_into or a write using the buffer is parked, the buffer is
 * busy (buffer.h): append, reserve, discard and reset raise "buffer busy"
 * instead of moving the bytes under it. The parked call keeps the buffer
 * alive: it is an argument on that task's stack. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lauxlib.h"
#include "buffer.h"
#include "class.h"
#include "conn.h"
#include "errors.h"
#include "sock.h"
#include "tls.h"

/* The largest buffer: far beyond any sane use, and small enough that
 * len + n never overflows. */
#define BUFFER_LIMIT ((size_t)1 << 40)

buffer *buffer_test(lua_State *L, int idx) {
    return lua_type(L, idx) == LUA_TUSERDATA ? luaL_testudata(L, idx, BUFFER_MT) : NULL;
}

static buffer *buffer_check(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, BUFFER_MT);
}

static size_t buffer_len(const buffer *b) {
    return b->tail - b->head;
}

const char *buffer_bytes(lua_State *L, int idx, size_t *len) {
    buffer *b = buffer_test(L, idx);
    if (!b) return NULL;
    *len = buffer_len(b);
    return b->data ? b->data + b->head : "";
}

void buffer_pin(lua_State *L, int idx) {
    buffer *b = buffer_test(L, idx);
    if (b && lua_isyieldable(L)) b->busy++;
}

void buffer_unpin(lua_State *L, int idx) {
    buffer *b = buffer_test(L, idx);
    if (b && b->busy) b->busy--;
}

/* Raise for a change that would move or drop the bytes of a busy buffer. */
static void buffer_check_idle(lua_State *L, const buffer *b) {
    if (b->busy)
        luaL_error(L, "buffer busy: a read_into or write using it is parked (wait for it to return)");
}

/* buffer_ensure: make at least n bytes free at the tail: slide the bytes
 * to the front when that is enough, else move them to a block of
 * max(2 * cap, len + n) bytes. Raises when busy, too large or out of memory. */
static void buffer_ensure(lua_State *L, buffer *b, size_t n) {
    if (b->cap - b->tail >= n) return;
    buffer_check_idle(L, b);
    size_t len = buffer_len(b);
    if (n > BUFFER_LIMIT - len) luaL_error(L, "buffer: size out of range (at most 2^40 bytes)");
    if (b->cap - len >= n) {                     /* enough room once compacted */
        memmove(b->data, b->data + b->head, len);
        b->head = 0;
        b->tail = len;
        return;
    }
    size_t ncap = b->cap * 2 > len + n ? b->cap * 2 : len + n;
    char *nd;
    if (b->head == 0) {
        nd = realloc(b->data, ncap);
    } else {                                     /* copy only the live bytes */
        nd = malloc(ncap);
        if (nd) {
            memcpy(nd, b->data + b->head, len);
            free(b->data);
        }
    }
    if (!nd) luaL_error(L, "coronet: out of memory");
    b->data = nd;
    b->cap = ncap;
    b->head = 0;
    b->tail = len;
}

char *buffer_room(lua_State *L, buffer *b, size_t max, size_t *room) {
    if (b->cap == b->tail) buffer_ensure(L, b, max && max < BUFFER_STEP ? max : BUFFER_STEP);
    size_t avail = b->cap - b->tail;
    *room = max && max < avail ? max : avail;
    return b->data + b->tail;
}

void buffer_commit(buffer *b, size_t n) {
    b->tail += n;
}

/* ---- methods --------------------------------------------------------- */

/* net.buffer([cap]) -> buf: an empty buffer with room for cap bytes
 * (default 0: it allocates on first use). Raises for a negative cap. */
static int buffer_new(lua_State *L) {
    lua_Integer cap = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, cap >= 0 && (uint64_t)cap <= BUFFER_LIMIT, 1, "capacity out of range");
    buffer *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);                     /* consistent before the malloc */
    luaL_setmetatable(L, BUFFER_MT);
    if (cap > 0) buffer_ensure(L, b, (size_t)cap);
    return 1;
}

/* buf:len() / #buf -> the number of bytes it holds. */
static int buffer_len_m(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)buffer_len(buffer_check(L, 1)));
    return 1;
}

/* buf:cap() -> the bytes its block can hold (held + free, counting the
 * space discard left at the front). */
static int buffer_cap(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)buffer_check(L, 1)->cap);
    return 1;
}

/* buf:available() -> the free bytes after the held ones: what read_into
 * reads at most without growing or compacting. */
static int buffer_available(lua_State *L) {
    buffer *b = buffer_check(L, 1);
    lua_pushinteger(L, (lua_Integer)(b->cap - b->tail));
    return 1;
}

/* The byte range [*from, *to) of buf:sub(i, j), string.sub-style. */
static void buffer_range(lua_State *L, const buffer *b, int idx, size_t *from, size_t *to) {
    lua_Integer len = (lua_Integer)buffer_len(b);
    lua_Integer i = luaL_optinteger(L, idx, 1), j = luaL_optinteger(L, idx + 1, -1);
    if (i < 0) i = len + i + 1;
    if (j < 0) j = len + j + 1;
    if (i < 1) i = 1;
    if (j > len) j = len;
    *from = (size_t)i - 1;
    *to = j >= i ? (size_t)j : *from;
}

/* buf:tostring([i [, j]]) -> string: a copy of the bytes i..j (as
 * string.sub: negative counts from the end; default all of them). The
 * buffer is unchanged. */
static int buffer_tostring_m(lua_State *L) {
    buffer *b = buffer_check(L, 1);
    size_t from, to;
    buffer_range(L, b, 2, &from, &to);
    lua_pushlstring(L, b->data ? b->data + b->head + from : "", to - from);
    return 1;
}

/* buf:append(data) -> buf: add the bytes of data (a string, a number or
 * another buffer, even buf itself) at the end, growing as needed. Raises
 * "buffer busy" if it must grow while a call using buf is parked. */
static int buffer_append(lua_State *L) {
    buffer *b = buffer_check(L, 1);
    buffer *src = buffer_test(L, 2);
    size_t len;
    if (src) {
        len = buffer_len(src);
        buffer_check_idle(L, b);
        buffer_ensure(L, b, len);                /* src == b: its bytes move along */
        if (len) memmove(b->data + b->tail, src->data + src->head, len);
    } else {
        const char *s = luaL_checklstring(L, 2, &len);
        buffer_check_idle(L, b);
        buffer_ensure(L, b, len);
        if (len) memcpy(b->data + b->tail, s, len);
    }
    b->tail += len;
    lua_settop(L, 1);
    return 1;
}

/* buf:discard(n) -> dropped: drop the first n bytes (all of them when it
 * holds fewer) and return how many went; the memory stays. Raises for a
 * negative n and when busy. */
static int buffer_discard(lua_State *L) {
    buffer *b = buffer_check(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "negative count");
    buffer_check_idle(L, b);
    size_t k = (uint64_t)n < buffer_len(b) ? (size_t)n : buffer_len(b);
    b->head += k;
    if (b->head == b->tail) b->head = b->tail = 0;   /* empty: all of it is free again */
    lua_pushinteger(L, (lua_Integer)k);
    return 1;
}

/* buf:reset() -> buf: drop every byte; the memory stays for reuse.
 * Raises when busy. */
static int buffer_reset(lua_State *L) {
    buffer *b = buffer_check(L, 1);
    buffer_check_idle(L, b);
    b->head = b->tail = 0;
    lua_settop(L, 1);
    return 1;
}

/* buf:reserve(n) -> buf: make at least n bytes free after the held ones
 * (compacting when that is enough, else growing), so the next appends
 * and read_intos up to n bytes do not allocate. Raises for a negative or
 * huge n, when it must move the bytes of a busy buffer, and on out of
 * memory. */
static int buffer_reserve(lua_State *L) {
    buffer *b = buffer_check(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && (uint64_t)n <= BUFFER_LIMIT, 2, "size out of range");
    buffer_ensure(L, b, (size_t)n);
    lua_settop(L, 1);
    return 1;
}

static int buffer_gc(lua_State *L) {
    buffer *b = buffer_check(L, 1);
    free(b->data);
    b->data = NULL;
    b->cap = b->head = b->tail = 0;
    return 0;
}

static int buffer_tostring(lua_State *L) {
    buffer *b = buffer_check(L, 1);
    lua_pushfstring(L, "net.buffer (%I bytes, cap %I%s)", (lua_Integer)buffer_len(b),
                    (lua_Integer)b->cap, b->busy ? ", busy" : "");
    return 1;
}

/* ---- conn:read_into ---------------------------------------------------- */

static int buffer_read_into_k(lua_State *L, int status, lua_KContext kctx);

/* The max argument at 3 (0: none given). */
static size_t buffer_read_max(lua_State *L, int ctxidx) {
    if (ctxidx == 3 || lua_isnoneornil(L, 3)) return 0;
    return (size_t)lua_tointeger(L, 3);
}

/* conn:read_into(buf [, max] [, ctx]) -> n | nil, err: append what one
 * read returns (1..max bytes; default: as many as fit in buf's free
 * space) straight into buf, with no Lua string made. A full buffer first
 * grows by min(max, 64 KiB) (buf:reserve makes room ahead). nil, net.EOF
 * at the end of the stream; failures, deadlines, ctx and close as
 * conn:read. buf is busy while the call is parked.
 * Stack while it runs: 1 conn, 2 buf, 3 max, 4 ctx (where given). */
int buffer_read_into(lua_State *L) {
    conn *c = conn_check_at(L, 1);
    buffer_check(L, 2);
    int ctxidx = ctx_find(L, 3);
    if (ctxidx != 3 && !lua_isnoneornil(L, 3) && luaL_checkinteger(L, 3) <= 0)
        return sock_arg_error(L, 2, "read_into", "max must be positive");
    task *t = task_current(L);
    if (!t) return loop_block(L, buffer_read_into, lua_gettop(L));
    if (ctx_ended(L, ctxidx)) return conn_failx(L, c, "read", NULL, ERR_CTX, ctxidx);
    if (conn_reader_busy(c)) return conn_failx(L, c, "read", NULL, ERR_BUSY, 0);
    return buffer_read_into_k(L, LUA_OK, ctxidx);
}

static int buffer_read_into_k(lua_State *L, int status, lua_KContext kctx) {
    conn *c = conn_check_at(L, 1);
    buffer *b = lua_touserdata(L, 2);
    task *t = task_current(L);
    int ctxidx = (int)kctx, want;
    if (status == LUA_YIELD) buffer_unpin(L, 2);
    tls_resumed(c, t, TLS_ROLE_READ);
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (cause) return conn_failx(L, c, "read", NULL, cause, ctxidx);
    size_t room;
    char *dst = buffer_room(L, b, buffer_read_max(L, ctxidx), &room);
    ssize_t n = conn_read_once(L, c, dst, room, ctxidx, &want);
    if (n > 0) {
        buffer_commit(b, (size_t)n);
        lua_pushinteger(L, (lua_Integer)n);
        return 1;
    }
    if (n < 0) return (int)-n;
    buffer_pin(L, 2);
    return conn_read_park(L, c, t, want, ctxidx, kctx, buffer_read_into_k);
}

static const luaL_Reg buffer_methods[] = {
    {"append", buffer_append},
    {"available", buffer_available},
    {"cap", buffer_cap},
    {"discard", buffer_discard},
    {"len", buffer_len_m},
    {"reserve", buffer_reserve},
    {"reset", buffer_reset},
    {"tostring", buffer_tostring_m},
    {NULL, NULL}
};

static const luaL_Reg buffer_meta[] = {
    {"__gc", buffer_gc},
    {"__len", buffer_len_m},
    {"__tostring", buffer_tostring},
    {NULL, NULL}
};

static const luaL_Reg buffer_funcs[] = {
    {"buffer", buffer_new},
    {NULL, NULL}
};

int buffer_open(lua_State *L) {
    class_register(L, BUFFER_MT, buffer_meta, buffer_methods);
    luaL_setfuncs(L, buffer_funcs, 0);
    return 0;
}
