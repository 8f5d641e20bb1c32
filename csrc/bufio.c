/* bufio.c - net.bufio's reader: a byte buffer owned by a userdata, filled
 * from a source and cut into records in C (memchr, memmem), so a record
 * that is already buffered costs exactly one Lua string.
 *
 * A coronet conn source is read with recv() straight into the buffer and
 * a read that would block parks the task on the conn's handle, exactly as
 * conn.c's read does; any other source is called through its read(max)
 * method with lua_pcallk, so it may block (yield) too. Either way a
 * waiting op keeps its state in the reader and its continuation
 * (bufr_run) picks it up again.
 *
 * Memory: the buffer starts at `size`, grows up to `max` for one long
 * record (or to n for read_full(n) / peek(n)), shrinks back to `size`
 * once the record is out, and is freed while the reader waits with
 * nothing buffered: an idle reader holds no buffer. A default-sized one
 * also goes back to the loop's cache when an op leaves it empty.
 *
 * Finaliser: a reader starts with a metatable that has no __gc, so one
 * that never keeps a buffer past an op (a request read whole, as most
 * are) costs the collector no finaliser. The first time bufio's C code
 * is left (returning, parking, calling the source or raising) with a
 * buffer held, bufr_arm gives the reader the metatable with __gc, which
 * frees the buffer if the reader is dropped with it.
 *
 * Failures other than EOF leave the buffered bytes in place (a timed-out
 * read_line can be retried); at EOF an unfinished record is handed out
 * with ErrUnexpectedEOF. bufio.lua adds lines(), the scanner, the writer
 * and the sentinels (core.bufio_init). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "lauxlib.h"
#include "bufio.h"
#include "buffer.h"
#include "errors.h"
#include "sock.h"
#include "utf8.h"

#define BUFR_SIZE 4096          /* default buffer size (Go's) */
#define BUFR_MAX 65536          /* default max_token (Go's MaxScanTokenSize) */
#define BUFR_LIMIT (1 << 30)    /* the largest size or max_token accepted */
#define BUFR_NOPROGRESS 100     /* empty reads in a row before ErrNoProgress */

static const char SENTINELS_KEY = 0;    /* registry: {too_long =, no_progress =} */
static const char LIGHT_MT_KEY = 0;     /* registry: the readers' metatable without __gc */

/* The ops; one runs at a time, its state in the reader. */
enum { OP_READ, OP_READ_FULL, OP_LINE, OP_UNTIL, OP_PEEK, OP_DISCARD, OP_FILL, OP_TOKEN,
       OP_BYTE, OP_RUNE };
/* Split kinds of the scanner's built-in split functions (OP_TOKEN). */
enum { TOK_LINES = 1, TOK_WORDS, TOK_BYTES, TOK_RUNES };
/* What a waiting op waits for. */
enum { PEND_NONE, PEND_PARK, PEND_CALL };

typedef struct bufr {
    char *buf;           /* NULL while idle; the unread bytes are buf[r..w) */
    size_t cap, r, w;
    size_t size;         /* the capacity it starts with and shrinks back to */
    size_t max;          /* the most one record (with its delimiter) may take */
    conn *c;             /* the source when it is a coronet conn, else NULL */
    loop *lp;            /* its buffers of LOOP_BUFSZ come from and go back to lp's cache */
    size_t arg;          /* the op's n, or its token kind */
    size_t skip;         /* read_full: bytes before the data (a peeked header) */
    size_t scan;         /* unread bytes already searched for the delimiter */
    size_t done;         /* discard: bytes dropped; fill: bytes it started with */
    uint8_t op, pending, busy, noprog;
    uint8_t file;        /* the source is a Lua file: its read takes no ctx */
    uint8_t lastw;       /* bytes read_byte/read_rune just took (0: none to unread) */
    uint8_t lastrune;    /* ... and they were a rune (unread_rune may put them back) */
    uint8_t armed;       /* it has the metatable with __gc (bufr_arm) */
    char last[4];        /* those bytes */
} bufr;

/* The reader at index 1. The methods carry the two metatables (with
 * __gc, BUFIO_READER_MT, and without) as upvalues 1 and 2, which is
 * cheaper to compare than a registry lookup on every read_line; a
 * function without them (bufr_resume) looks both up; anything else gets
 * luaL_checkudata's error. */
static bufr *bufr_check(lua_State *L) {
    bufr *b = lua_touserdata(L, 1);
    if (b && lua_getmetatable(L, 1)) {
        int ok = lua_rawequal(L, -1, lua_upvalueindex(2)) || lua_rawequal(L, -1, lua_upvalueindex(1));
        if (!ok) {
            lua_rawgetp(L, LUA_REGISTRYINDEX, &LIGHT_MT_KEY);
            luaL_getmetatable(L, BUFIO_READER_MT);
            ok = lua_rawequal(L, -1, -3) || lua_rawequal(L, -2, -3);
            lua_pop(L, 2);
        }
        lua_pop(L, 1);                           /* pop its metatable */
        if (ok) return b;
    }
    return luaL_checkudata(L, 1, BUFIO_READER_MT);
}

/* bufr_arm: the reader at index 1 is about to leave bufio's C code; if it
 * holds a buffer, it needs its finaliser from now on (see the top). */
static void bufr_arm(lua_State *L, bufr *b) {
    if (!b->buf || b->armed) return;
    b->armed = 1;
    luaL_getmetatable(L, BUFIO_READER_MT);
    lua_setmetatable(L, 1);
}

/* The unread bytes (a valid pointer even with no buffer). */
static const char *bufr_at(const bufr *b) {
    return b->buf ? b->buf + b->r : "";
}

static size_t bufr_avail(const bufr *b) {
    return b->w - b->r;
}

/* Push the next len unread bytes and consume them. */
static void bufr_take(lua_State *L, bufr *b, size_t len) {
    lua_pushlstring(L, bufr_at(b), len);
    b->r += len;
}

static void bufr_push_sentinel(lua_State *L, const char *name) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SENTINELS_KEY);
    if (lua_isnil(L, -1)) {                      /* bufio.lua not loaded */
        lua_pop(L, 1);
        lua_pushstring(L, name);
        return;
    }
    lua_getfield(L, -1, name);
    lua_remove(L, -2);                           /* pop sentinels */
}

/* ---- errors ---------------------------------------------------------- */

int bufio_conn_fail(lua_State *L, conn *c, const char *op, const char *sys, int cause,
                    int ctxidx) {
    char src[ADDR_STRLEN], dst[ADDR_STRLEN];
    sock_format(conn_la(c), c->llen, src);
    sock_format(conn_ra(c), c->rlen, dst);
    operr e = {op, sock_netnames[c->net], src[0] ? src : NULL, dst[0] ? dst : NULL, sys, NULL,
               ctxidx};
    return errors_fail(L, &e, cause);
}

/* nil and an error for cause (errno or ERR_*): the conn's when the source
 * is a conn, else a bare "read" error. */
static int bufr_fail_cause(lua_State *L, bufr *b, const char *sys, int cause) {
    int ctxidx = lua_isnil(L, 3) ? 0 : 3;
    if (b->c) return bufio_conn_fail(L, b->c, "read", sys, cause, ctxidx);
    operr e = {"read", NULL, NULL, NULL, sys, NULL, ctxidx};
    return errors_fail(L, &e, cause);
}

/* A failure's results: discard adds how many bytes it dropped. */
static int bufr_extra(lua_State *L, bufr *b, int n) {
    if (b->op != OP_DISCARD) return n;
    lua_pushinteger(L, (lua_Integer)b->done);
    return n + 1;
}

static int bufr_fail(lua_State *L, bufr *b, const char *sys, int cause) {
    return bufr_extra(L, b, bufr_fail_cause(L, b, sys, cause));
}

/* nil and a bufio sentinel ("too_long", "no_progress"). */
static int bufr_fail_sentinel(lua_State *L, bufr *b, const char *name) {
    lua_pushnil(L);
    bufr_push_sentinel(L, name);
    return bufr_extra(L, b, 2);
}

static int bufr_eof(lua_State *L) {
    lua_pushnil(L);
    errors_push_sentinel(L, ERR_EOF);
    return 2;
}

/* At EOF inside a record: nil, EOF when nothing is left, else nil,
 * ErrUnexpectedEOF and the rest (consumed: the stream is over). */
static int bufr_eof_partial(lua_State *L, bufr *b) {
    size_t avail = bufr_avail(b);
    if (!avail) return bufr_eof(L);
    lua_pushnil(L);
    errors_push_sentinel(L, ERR_UNEXPECTED_EOF);
    bufr_take(L, b, avail);
    return 3;
}

/* A record that does not fit in max: nil, ErrTooLong and its first keep
 * bytes, consumed (they cannot hold the start of a delimiter). */
static int bufr_too_long(lua_State *L, bufr *b, size_t keep) {
    lua_pushnil(L);
    bufr_push_sentinel(L, "too_long");
    bufr_take(L, b, keep);
    return 3;
}

/* ---- buffer memory -------------------------------------------------- */

/* bufr_room: slide the unread bytes to the front and make room to read
 * into, growing the buffer up to limit. Returns the room, 0 when the
 * buffer is full at limit, -1 when out of memory. */
static ssize_t bufr_room(bufr *b, size_t limit) {
    size_t avail = bufr_avail(b);
    if (b->r) {
        if (avail) memmove(b->buf, b->buf + b->r, avail);
        b->r = 0;
        b->w = avail;
    }
    if (b->w < b->cap) return (ssize_t)(b->cap - b->w);
    if (b->cap >= limit) return 0;
    size_t ncap = b->cap ? b->cap * 2 : b->size;
    if (ncap > limit) ncap = limit;
    char *nb = !b->buf && ncap == LOOP_BUFSZ ? loop_buf_get(b->lp) : realloc(b->buf, ncap);
    if (!nb) return -1;
    b->buf = nb;
    b->cap = ncap;
    return (ssize_t)(ncap - b->w);
}

/* bufr_append: copy in a chunk a Lua source returned (growing past the
 * op's limit if the source returned more than it was asked for). */
static int bufr_append(bufr *b, const char *s, size_t len) {
    ssize_t room = bufr_room(b, b->size);
    if (room < 0) return -1;
    if ((size_t)room < len) {
        char *nb = realloc(b->buf, b->w + len);
        if (!nb) return -1;
        b->buf = nb;
        b->cap = b->w + len;
    }
    memcpy(b->buf + b->w, s, len);
    b->w += len;
    return 0;
}

/* bufr_release: free the buffer of a reader with nothing buffered. */
static void bufr_free(bufr *b) {
    if (b->cap == LOOP_BUFSZ) loop_buf_put(b->lp, b->buf);
    else free(b->buf);
}

static void bufr_release(bufr *b) {
    if (b->r != b->w) return;
    bufr_free(b);
    b->buf = NULL;
    b->cap = b->r = b->w = 0;
}

/* bufr_settle: after an op, shrink a buffer a long record grew. */
static void bufr_settle(bufr *b) {
    size_t avail = bufr_avail(b);
    if (!avail) b->r = b->w = 0;
    if (!avail && b->cap == LOOP_BUFSZ) {        /* a pop from the cache gets it back */
        bufr_release(b);
        return;
    }
    if (b->cap <= b->size || avail > b->size) return;
    if (b->r && avail) memmove(b->buf, b->buf + b->r, avail);
    b->r = 0;
    b->w = avail;
    char *nb = realloc(b->buf, b->size);
    if (nb) {
        b->buf = nb;
        b->cap = b->size;
    }
}

/* ---- the ops: produce a result from the buffer, or ask for more ------- */

/* Each try returns the number of results it pushed, or 0 when it needs
 * more data. With at_eof (the source has ended) it always finishes. */

/* read_line (token 0) and the scan_lines token (1): up to LF, without
 * it and a CR before it. Go's ScanLines also yields a last line that has
 * no LF; read_line calls that ErrUnexpectedEOF. */
static int bufr_try_line(lua_State *L, bufr *b, int at_eof, int token) {
    size_t avail = bufr_avail(b), lim = avail < b->max ? avail : b->max;
    const char *p = bufr_at(b);
    const char *nl = b->scan < lim ? memchr(p + b->scan, '\n', lim - b->scan) : NULL;
    if (nl) {
        size_t len = (size_t)(nl - p);
        lua_pushlstring(L, p, len && p[len - 1] == '\r' ? len - 1 : len);
        b->r += len + 1;
        return 1;
    }
    b->scan = lim;
    if (lim >= b->max) return bufr_too_long(L, b, b->max);
    if (!at_eof) return 0;
    if (!token || !avail) return bufr_eof_partial(L, b);
    lua_pushlstring(L, p, p[avail - 1] == '\r' ? avail - 1 : avail);
    b->r = b->w;
    return 1;
}

/* bufr_find: the first dlen-byte delim d in p[0..n), or NULL. Short
 * delimiters (HTTP's "\r\n\r\n") are found with memchr on their first
 * byte and a compare, which beats memmem's set-up on a short record; at
 * most 8 bytes are compared per candidate, so a hostile run of first
 * bytes costs 8 per byte. Longer ones go to memmem (linear). */
#define BUFR_SHORT_DELIM 8
static const char *bufr_find(const char *p, size_t n, const char *d, size_t dlen) {
    if (dlen == 1) return memchr(p, d[0], n);
    if (dlen > BUFR_SHORT_DELIM) return memmem(p, n, d, dlen);
    const char *end = p + (n - dlen) + 1;          /* where a match may start (n >= dlen) */
    while (p < end) {
        const char *q = memchr(p, d[0], (size_t)(end - p));
        if (!q) return NULL;
        if (memcmp(q + 1, d + 1, dlen - 1) == 0) return q;
        p = q + 1;
    }
    return NULL;
}

/* read_until(delim): up to and including delim (at stack index 2). */
static int bufr_try_until(lua_State *L, bufr *b, int at_eof) {
    size_t dlen;
    const char *d = lua_tolstring(L, 2, &dlen);
    size_t avail = bufr_avail(b), lim = avail < b->max ? avail : b->max;
    size_t from = b->scan >= dlen ? b->scan - dlen + 1 : 0;
    const char *p = bufr_at(b), *hit = NULL;
    if (lim >= from + dlen) hit = bufr_find(p + from, lim - from, d, dlen);
    if (hit) {
        bufr_take(L, b, (size_t)(hit - p) + dlen);
        return 1;
    }
    b->scan = lim;
    if (lim >= b->max) return bufr_too_long(L, b, b->max - dlen + 1);
    if (!at_eof) return 0;
    return bufr_eof_partial(L, b);
}

/* read_full(n), after skip bytes that are dropped with it (a header). */
static int bufr_try_full(lua_State *L, bufr *b, int at_eof) {
    size_t avail = bufr_avail(b), need = b->skip + b->arg;
    if (avail >= need) {
        lua_pushlstring(L, bufr_at(b) + b->skip, b->arg);
        b->r += need;
        return 1;
    }
    if (!at_eof) return 0;
    size_t s = avail < b->skip ? avail : b->skip;
    lua_pushnil(L);
    errors_push_sentinel(L, avail ? ERR_UNEXPECTED_EOF : ERR_EOF);
    lua_pushlstring(L, bufr_at(b) + s, avail - s);
    b->r = b->w;
    return 3;
}

/* The scan_words token: runs of non-space runes; leading spaces are
 * dropped as soon as they are seen (Go's ScanWords). */
static int bufr_try_words(lua_State *L, bufr *b, int at_eof) {
    const unsigned char *p = (const unsigned char *)bufr_at(b);
    size_t avail = bufr_avail(b), i = 0;
    int w;
    if (b->scan == 0) {
        while (i < avail && (at_eof || utf8_full(p + i, avail - i)) &&
               utf8_space(utf8_decode(p + i, avail - i, &w)))
            i += (size_t)w;
        b->r += i;
        p += i;
        avail -= i;
    }
    /* Runes are decoded within the first max bytes only, as Go's buffer
     * holds no more: a space cut by that bound is no delimiter (a source
     * may hand over more than it was asked for). */
    size_t lim = avail < b->max ? avail : b->max, j = b->scan;
    int eof = at_eof && avail <= b->max;
    while (j < lim && (eof || utf8_full(p + j, lim - j))) {
        if (utf8_space(utf8_decode(p + j, lim - j, &w))) {
            lua_pushlstring(L, (const char *)p, j);
            b->r += j + (size_t)w;
            return 1;
        }
        j += (size_t)w;
    }
    b->scan = j < lim ? j : lim;
    if (lim >= b->max) return bufr_too_long(L, b, b->scan);
    if (!at_eof) return 0;
    if (!avail) return bufr_eof(L);
    bufr_take(L, b, avail);
    return 1;
}

/* The scan_runes token: one UTF-8 rune; an invalid byte is U+FFFD. */
static int bufr_try_rune(lua_State *L, bufr *b, int at_eof) {
    const unsigned char *p = (const unsigned char *)bufr_at(b);
    size_t avail = bufr_avail(b);
    int w;
    if (!avail) return at_eof ? bufr_eof(L) : 0;
    if (!at_eof && !utf8_full(p, avail)) return 0;
    if (utf8_decode(p, avail, &w) == 0xFFFD && w == 1) {
        lua_pushliteral(L, "\xEF\xBF\xBD");
        b->r += 1;
    } else {
        bufr_take(L, b, (size_t)w);
    }
    return 1;
}

static int bufr_try_token(lua_State *L, bufr *b, int at_eof) {
    switch (b->arg) {
    case TOK_LINES: return bufr_try_line(L, b, at_eof, 1);
    case TOK_WORDS: return bufr_try_words(L, b, at_eof);
    case TOK_RUNES: return bufr_try_rune(L, b, at_eof);
    default:
        if (bufr_avail(b)) {
            bufr_take(L, b, 1);
            return 1;
        }
        return at_eof ? bufr_eof(L) : 0;
    }
}

/* read_byte (the byte as an integer) and read_rune (code point, width;
 * an invalid or truncated sequence is U+FFFD of width 1, as Go): they
 * remember what they took, for unread_byte / unread_rune. */
static int bufr_try_byte_rune(lua_State *L, bufr *b, int at_eof) {
    const unsigned char *p = (const unsigned char *)bufr_at(b);
    size_t avail = bufr_avail(b);
    int w = 1;
    if (!avail) return at_eof ? bufr_eof(L) : 0;
    if (b->op == OP_BYTE) {
        lua_pushinteger(L, p[0]);
    } else {
        if (!at_eof && !utf8_full(p, avail)) return 0;
        long cp = utf8_decode(p, avail, &w);
        lua_pushinteger(L, cp);
        lua_pushinteger(L, w);
    }
    memcpy(b->last, p, (size_t)w);
    b->lastw = (uint8_t)w;
    b->lastrune = b->op == OP_RUNE;
    b->r += (size_t)w;
    return b->op == OP_BYTE ? 1 : 2;
}

static int bufr_try(lua_State *L, bufr *b, int at_eof) {
    size_t avail = bufr_avail(b);
    switch (b->op) {
    case OP_BYTE:
    case OP_RUNE: return bufr_try_byte_rune(L, b, at_eof);
    case OP_READ:
        if (avail) {
            bufr_take(L, b, avail < b->arg ? avail : b->arg);
            return 1;
        }
        return at_eof ? bufr_eof(L) : 0;
    case OP_READ_FULL: return bufr_try_full(L, b, at_eof);
    case OP_LINE: return bufr_try_line(L, b, at_eof, 0);
    case OP_UNTIL: return bufr_try_until(L, b, at_eof);
    case OP_PEEK:
        if (avail >= b->arg) {
            lua_pushlstring(L, bufr_at(b), b->arg);
            return 1;
        }
        if (!at_eof) return 0;
        bufr_eof(L);
        lua_pushlstring(L, bufr_at(b), avail);
        return 3;
    case OP_DISCARD: {
        size_t k = b->arg - b->done < avail ? b->arg - b->done : avail;
        b->r += k;
        b->done += k;
        if (b->done == b->arg) {
            lua_pushinteger(L, (lua_Integer)b->done);
            return 1;
        }
        return at_eof ? bufr_extra(L, b, bufr_eof(L)) : 0;
    }
    case OP_FILL:
        if (avail > b->done) {
            lua_pushinteger(L, (lua_Integer)avail);
            return 1;
        }
        if (avail >= b->max) return bufr_fail_sentinel(L, b, "too_long");
        return at_eof ? bufr_eof(L) : 0;
    default: return bufr_try_token(L, b, at_eof);
    }
}

/* How far the buffer may grow for the op in progress. */
static size_t bufr_limit(const bufr *b) {
    size_t need = b->skip + b->arg;
    switch (b->op) {
    case OP_READ_FULL:
    case OP_PEEK: return need > b->size ? need : b->size;
    case OP_READ:
    case OP_BYTE:
    case OP_RUNE:
    case OP_DISCARD: return b->size;
    default: return b->max;
    }
}

/* ---- filling from the source ------------------------------------------- */

/* One recv() into the buffer (room bytes free): 0 when it read or hit EOF
 * (*at_eof), -1 when it would block, else the results of a failure. */
static int bufr_recv(lua_State *L, bufr *b, size_t room, int *at_eof) {
    conn *c = b->c;
    if (c->h.fd < 0) return bufr_fail(L, b, NULL, ERR_CLOSED);
    if (c->h.rd) return bufr_fail(L, b, NULL, ERR_BUSY);
    if (handle_deadline_passed(c->h.rdl)) return bufr_fail(L, b, NULL, ERR_TIMEOUT);
    for (;;) {
        ssize_t n = handle_recv(&c->h, b->buf + b->w, room);
        if (n > 0) {
            b->w += (size_t)n;
            return 0;
        }
        if (n == 0) {
            *at_eof = 1;
            return 0;
        }
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK) return -1;
        return bufr_fail(L, b, "read", e);
    }
}

static int bufr_is_eof(lua_State *L, int idx) {
    if (!lua_istable(L, idx)) return 0;
    lua_getfield(L, idx, "code");
    const char *code = lua_tostring(L, -1);
    int eof = code && strcmp(code, "eof") == 0;
    lua_pop(L, 1);
    return eof;
}

/* bufr_called: take the results of source:read(max) (the top two values):
 * append the data or note EOF (*at_eof). Returns 0 to go on, else the
 * number of results of the failure it pushed. A source that raised
 * raises again from here. */
static int bufr_called(lua_State *L, bufr *b, int status, int *at_eof) {
    if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);   /* bufr_call armed it */
    if (lua_type(L, -2) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, -2, &len);
        if (len == 0 && ++b->noprog >= BUFR_NOPROGRESS) return bufr_fail_sentinel(L, b, "no_progress");
        if (len) b->noprog = 0;
        if (len && bufr_append(b, s, len) < 0) {
            bufr_arm(L, b);
            return luaL_error(L, "coronet: out of memory");
        }
    } else if (!lua_isnil(L, -2)) {
        return luaL_error(L, "bufio: the source's read returned a %s (string or nil, err expected)",
                          luaL_typename(L, -2));
    } else if (lua_isnil(L, -1) || bufr_is_eof(L, -1)) {
        *at_eof = 1;                             /* nil (a Lua file) or nil, EOF */
    } else {
        lua_pushnil(L);
        lua_pushvalue(L, -2);                    /* nil, the source's error as it is */
        return bufr_extra(L, b, 2);
    }
    lua_settop(L, 3);
    return 0;
}

static int bufr_block(lua_State *L, bufr *b);
static int bufr_run(lua_State *L, int status, lua_KContext kctx);
static int bufr_run_ops(lua_State *L, bufr *b, int status, lua_KContext kctx);

/* bufr_call: source:read(room [, ctx]), with bufr_run as the continuation
 * if the source yields; returns the call's status when it did not. */
static int bufr_call(lua_State *L, bufr *b, size_t room, int ctxidx, lua_KContext kctx) {
    bufr_release(b);                             /* it may wait: hold no buffer */
    bufr_arm(L, b);                              /* (or, with a record begun, its finaliser) */
    lua_getiuservalue(L, 1, 1);                  /* the source */
    lua_getfield(L, -1, "read");
    lua_insert(L, -2);                           /* read, source */
    lua_pushinteger(L, (lua_Integer)room);
    int nargs = 2;
    if (ctxidx && !b->file) {
        lua_pushvalue(L, ctxidx);
        nargs = 3;
    }
    b->pending = PEND_CALL;
    b->busy = 1;
    int status = lua_pcallk(L, nargs, 2, 0, kctx, bufr_run);
    b->pending = PEND_NONE;
    b->busy = 0;
    return status;
}

/* bufr_run: run the op in progress until it has a result, filling the
 * buffer as often as it needs; the continuation of every wait.
 * Stack: 1 reader, 2 argument (read_until's delimiter), 3 ctx or nil,
 * and after a source call its two results. */
static int bufr_run(lua_State *L, int status, lua_KContext kctx) {
    bufr *b = lua_touserdata(L, 1);
    int n = bufr_run_ops(L, b, status, kctx);
    bufr_arm(L, b);
    return n;
}

static int bufr_run_ops(lua_State *L, bufr *b, int status, lua_KContext kctx) {
    int ctxidx = lua_isnil(L, 3) ? 0 : 3;
    int at_eof = 0, n, pending = b->pending;
    b->pending = PEND_NONE;
    b->busy = 0;
    if (pending == PEND_PARK) {
        int cause = task_resume_cause(L, task_current(L), status, ctxidx);
        if (cause) return bufr_fail(L, b, NULL, cause);
    } else if (pending == PEND_CALL && (n = bufr_called(L, b, status, &at_eof))) {
        return n;
    }
    for (;;) {
        if ((n = bufr_try(L, b, at_eof))) {
            bufr_settle(b);
            return n;
        }
        if (ctx_ended(L, ctxidx)) return bufr_fail(L, b, NULL, ERR_CTX);
        ssize_t room = bufr_room(b, bufr_limit(b));
        if (room < 0) {
            bufr_arm(L, b);
            return luaL_error(L, "coronet: out of memory");
        }
        if (room == 0) return bufr_fail_sentinel(L, b, "too_long");
        if (b->c && !b->c->tls) {                /* a conn made TLS later reads through it */
            if ((n = bufr_recv(L, b, (size_t)room, &at_eof)) >= 0) {
                if (n) return n;
                continue;
            }
            task *t = task_current(L);
            if (!t) return bufr_block(L, b);
            bufr_release(b);                     /* idle: hold no buffer while parked */
            bufr_arm(L, b);                      /* (or, with a record begun, its finaliser) */
            b->pending = PEND_PARK;
            b->busy = 1;
            return task_park_ctx(L, t, &b->c->h.rd, b->c->h.rdl, PARK_READ, ctxidx, kctx,
                                 bufr_run);
        }
        if ((n = bufr_called(L, b, bufr_call(L, b, (size_t)room, ctxidx, kctx), &at_eof)))
            return n;
    }
}

/* bufr_begin: start op with its arguments (done: discard's progress or
 * fill's starting size). An op the buffer satisfies returns at once,
 * without touching the stack below its results; one that must read
 * normalizes the stack to 1 reader, 2 argument (read_until's delimiter),
 * 3 ctx (from ctxidx, 0: none) or nil, and runs bufr_run. */
static int bufr_begin(lua_State *L, bufr *b, int op, size_t arg, size_t skip, size_t done,
                      int ctxidx) {
    int n;
    if (b->busy) return bufr_fail_cause(L, b, NULL, ERR_BUSY);
    b->lastw = 0;                                /* only the op right before may be unread */
    b->op = (uint8_t)op;
    b->arg = arg;
    b->skip = skip;
    b->done = done;
    b->scan = 0;
    b->noprog = 0;
    if ((n = bufr_try(L, b, 0))) {
        bufr_settle(b);
        bufr_arm(L, b);
        return n;
    }
    if (lua_gettop(L) < 3) lua_settop(L, 3);
    if (ctxidx != 3) {
        if (ctxidx) {
            lua_copy(L, ctxidx, 3);
        } else {
            lua_pushnil(L);
            lua_replace(L, 3);
        }
    }
    lua_settop(L, 3);
    return bufr_run(L, LUA_OK, 0);
}

/* An op called outside any task, run again as a task by loop_block with
 * its state as arguments 4..7 (op, arg, skip, done): the loop may run
 * other tasks, even on this reader, before this one starts. */
static int bufr_resume(lua_State *L) {
    bufr *b = bufr_check(L);
    int op = (int)lua_tointeger(L, 4);
    size_t arg = (size_t)lua_tointeger(L, 5), skip = (size_t)lua_tointeger(L, 6);
    size_t done = (size_t)lua_tointeger(L, 7);
    lua_settop(L, 3);
    return bufr_begin(L, b, op, arg, skip, done, lua_isnil(L, 3) ? 0 : 3);
}

/* bufr_block: hand the op to loop_block (a blocking call outside a task). */
static int bufr_block(lua_State *L, bufr *b) {
    lua_settop(L, 3);
    lua_pushinteger(L, b->op);
    lua_pushinteger(L, (lua_Integer)b->arg);
    lua_pushinteger(L, (lua_Integer)b->skip);
    lua_pushinteger(L, (lua_Integer)b->done);
    return loop_block(L, bufr_resume, 7);
}

/* ---- methods --------------------------------------------------------- */

static size_t bufr_count(lua_State *L, int idx, const char *what) {
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n >= 0, idx, what);
    return (size_t)n;
}

/* reader:read([n] [, ctx]) -> data | nil, err: 1..n bytes (default: the
 * buffer size): the buffered ones, or else what one read of the source
 * returns; nil, net.EOF at the end. */
static int bufr_read(lua_State *L) {
    bufr *b = bufr_check(L);
    int ctxidx = ctx_find(L, 2);
    lua_Integer n = ctxidx == 2 ? (lua_Integer)b->size : luaL_optinteger(L, 2, (lua_Integer)b->size);
    luaL_argcheck(L, n > 0, 2, "n must be positive");
    return bufr_begin(L, b, OP_READ, (size_t)n, 0, 0, ctxidx);
}

/* reader:read_full(n [, ctx]) -> data | nil, err, partial: exactly n
 * bytes. At EOF: nil, net.EOF, "" with none, nil, ErrUnexpectedEOF,
 * partial (consumed) with some; other failures keep what arrived. */
static int bufr_read_full(lua_State *L) {
    bufr *b = bufr_check(L);
    size_t n = bufr_count(L, 2, "negative length");
    return bufr_begin(L, b, OP_READ_FULL, n, 0, 0, ctx_find(L, 3));
}

/* reader:_read_full_at(skip, n [, ctx]): read_full(skip + n) that drops
 * the first skip bytes (a frame's peeked header). */
static int bufr_read_full_at(lua_State *L) {
    bufr *b = bufr_check(L);
    size_t skip = bufr_count(L, 2, "negative length");
    size_t n = bufr_count(L, 3, "negative length");
    return bufr_begin(L, b, OP_READ_FULL, n, skip, 0, ctx_find(L, 4));
}

/* reader:read_line([ctx]) -> line | nil, err [, partial]: the next line
 * without its LF or CRLF. nil, net.EOF at the end; a last line without
 * LF is nil, ErrUnexpectedEOF, partial; longer than max_token: nil,
 * ErrTooLong and its first max_token bytes (consumed). */
static int bufr_read_line(lua_State *L) {
    bufr *b = bufr_check(L);
    return bufr_begin(L, b, OP_LINE, 0, 0, 0, ctx_find(L, 2));
}

/* reader:read_until(delim [, ctx]) -> data | nil, err [, partial]: up
 * to and including delim (any length up to max_token); EOF and
 * ErrTooLong as read_line. */
static int bufr_read_until(lua_State *L) {
    bufr *b = bufr_check(L);
    size_t dlen;
    luaL_checklstring(L, 2, &dlen);
    luaL_argcheck(L, dlen > 0 && dlen <= b->max, 2, "delimiter must be 1..max_token bytes");
    return bufr_begin(L, b, OP_UNTIL, 0, 0, 0, ctx_find(L, 3));
}

/* reader:peek(n [, ctx]) -> data | nil, err [, available]: the next n
 * bytes without consuming them; n over max_token is ErrTooLong; at EOF
 * nil, net.EOF and what is buffered. */
static int bufr_peek(lua_State *L) {
    bufr *b = bufr_check(L);
    size_t n = bufr_count(L, 2, "negative count");
    if (n > b->max && n > bufr_avail(b)) {
        lua_pushnil(L);
        bufr_push_sentinel(L, "too_long");
        return 2;
    }
    return bufr_begin(L, b, OP_PEEK, n, 0, 0, ctx_find(L, 3));
}

/* reader:_take_into(buf [, max]) -> n | nil, err: move up to max (default:
 * what fits, as conn:read_into) of the buffered bytes into the net.buffer
 * buf; 0 when nothing is buffered (read_into then reads through). */
static int bufr_take_into(lua_State *L) {
    bufr *b = bufr_check(L);
    buffer *dst = luaL_checkudata(L, 2, BUFFER_MT);
    lua_Integer max = luaL_optinteger(L, 3, 0);
    luaL_argcheck(L, max > 0 || lua_isnoneornil(L, 3), 3, "max must be positive");
    if (b->busy) return bufr_fail_cause(L, b, NULL, ERR_BUSY);
    size_t avail = bufr_avail(b), room = 0;
    if (avail) {
        size_t want = max > 0 && (size_t)max < avail ? (size_t)max : avail;
        char *p = buffer_room(L, dst, want, &room);
        memcpy(p, bufr_at(b), room);
        buffer_commit(dst, room);
        b->r += room;
        b->lastw = 0;
        bufr_settle(b);
    }
    lua_pushinteger(L, (lua_Integer)room);
    return 1;
}

/* reader:discard(n [, ctx]) -> n | nil, err, discarded: skip n bytes. */
static int bufr_discard(lua_State *L) {
    bufr *b = bufr_check(L);
    size_t n = bufr_count(L, 2, "negative count");
    return bufr_begin(L, b, OP_DISCARD, n, 0, 0, ctx_find(L, 3));
}

/* reader:_fill([ctx]) -> buffered | nil, err: read more into the buffer
 * (for custom split functions); ErrTooLong when it holds max_token. */
static int bufr_fill(lua_State *L) {
    bufr *b = bufr_check(L);
    return bufr_begin(L, b, OP_FILL, 0, 0, bufr_avail(b), ctx_find(L, 2));
}

/* reader:_token(kind [, ctx]) -> token | nil, err: the next token of a
 * built-in split function (1 lines, 2 words, 3 bytes, 4 runes). */
static int bufr_token(lua_State *L) {
    bufr *b = bufr_check(L);
    lua_Integer kind = luaL_checkinteger(L, 2);
    luaL_argcheck(L, kind >= TOK_LINES && kind <= TOK_RUNES, 2, "bad token kind");
    return bufr_begin(L, b, OP_TOKEN, (size_t)kind, 0, 0, ctx_find(L, 3));
}

/* reader:read_byte([ctx]) -> byte (an integer 0..255) | nil, err. */
static int bufr_read_byte(lua_State *L) {
    bufr *b = bufr_check(L);
    return bufr_begin(L, b, OP_BYTE, 0, 0, 0, ctx_find(L, 2));
}

/* reader:read_rune([ctx]) -> code point, width | nil, err: one UTF-8
 * rune; an invalid byte is U+FFFD of width 1 (Go's ReadRune). */
static int bufr_read_rune(lua_State *L) {
    bufr *b = bufr_check(L);
    return bufr_begin(L, b, OP_RUNE, 0, 0, 0, ctx_find(L, 2));
}

/* Put the last k bytes of b->last back in front of the unread ones. */
static int bufr_unread(bufr *b, size_t k) {
    const char *src = b->last + b->lastw - k;
    size_t avail = bufr_avail(b);
    if (b->buf && b->r >= k) {
        b->r -= k;
        memcpy(b->buf + b->r, src, k);
        return 0;
    }
    if (!b->buf || b->cap < avail + k) {
        size_t cap = avail + k > b->size ? avail + k : b->size;
        if (cap < b->cap) cap = b->cap;
        char *nb = realloc(b->buf, cap);
        if (!nb) return -1;
        if (!b->buf) b->r = b->w = 0;
        b->buf = nb;
        b->cap = cap;
    }
    memmove(b->buf + k, b->buf + b->r, avail);
    memcpy(b->buf, src, k);
    b->r = 0;
    b->w = avail + k;
    return 0;
}

/* reader:unread_byte() / unread_rune() -> true | nil, err: give back the
 * last byte (after read_byte or read_rune) or the last rune (after
 * read_rune); any other op in between, or a second unread, is
 * ErrInvalidUnreadByte / ErrInvalidUnreadRune, as Go. */
static int bufr_unread_op(lua_State *L, int rune) {
    bufr *b = bufr_check(L);
    if (b->busy) return bufr_fail_cause(L, b, NULL, ERR_BUSY);
    if (!b->lastw || (rune && !b->lastrune)) {
        lua_pushnil(L);
        bufr_push_sentinel(L, rune ? "invalid_unread_rune" : "invalid_unread_byte");
        return 2;
    }
    int e = bufr_unread(b, rune ? b->lastw : 1);
    bufr_arm(L, b);
    if (e < 0) return luaL_error(L, "coronet: out of memory");
    b->lastw = 0;
    lua_pushboolean(L, 1);
    return 1;
}

static int bufr_unread_byte(lua_State *L) { return bufr_unread_op(L, 0); }
static int bufr_unread_rune(lua_State *L) { return bufr_unread_op(L, 1); }

/* Raise unless the value at idx can be a source (a conn or anything
 * with a read(max) method). */
static conn *bufr_check_source(lua_State *L, int idx, const char *fname) {
    conn *c = conn_test_plain(L, idx);
    if (c) return c;
    int t = lua_type(L, idx);
    if (t == LUA_TTABLE || t == LUA_TUSERDATA) lua_getfield(L, idx, "read");
    else lua_pushnil(L);
    if (lua_isnil(L, -1))
        luaL_error(L, "bad argument #1 to '%s' (reader expected (a conn or an object with read(max)))",
                   fname);
    lua_pop(L, 1);
    return NULL;
}

/* reader:reset(source): drop what is buffered and read from source from
 * now on (Go's Reset); the size and max_token stay. */
static int bufr_reset(lua_State *L) {
    bufr *b = bufr_check(L);
    if (b->busy) return bufr_fail_cause(L, b, NULL, ERR_BUSY);
    b->c = bufr_check_source(L, 2, "reset");
    b->file = !b->c && luaL_testudata(L, 2, LUA_FILEHANDLE) != NULL;
    b->r = b->w = 0;
    b->lastw = 0;
    b->noprog = 0;
    bufr_release(b);
    lua_settop(L, 2);
    lua_setiuservalue(L, 1, 1);                  /* anchor the new source */
    return 0;
}

/* reader:buffered() -> the number of bytes that can be read without waiting. */
static int bufr_buffered(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)bufr_avail(bufr_check(L)));
    return 1;
}

/* reader:size() -> the buffer size it keeps between long records. */
static int bufr_size(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)bufr_check(L)->size);
    return 1;
}

/* reader:_source() -> the source it reads from. */
static int bufr_source(lua_State *L) {
    bufr_check(L);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

static int bufr_gc(lua_State *L) {
    bufr *b = bufr_check(L);
    bufr_free(b);
    b->buf = NULL;
    b->cap = b->r = b->w = 0;
    return 0;
}

static int bufr_tostring(lua_State *L) {
    bufr *b = bufr_check(L);
    lua_pushfstring(L, "bufio.reader (%d buffered, %d allocated)", (int)bufr_avail(b),
                    (int)b->cap);
    return 1;
}

/* bufr_opt_int: the option value on top, which must be an integer. */
static lua_Integer bufr_opt_int(lua_State *L, const char *name) {
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "bufio.reader: %s must be an integer", name);
    return v;
}

/* bufr_opts: read bufio.reader's size argument at 2: an integer (and the
 * scanner's max at 3), or a table {size =, max_token =} (any other key is
 * an error), or none. The size defaults to 4096, or max_token when that
 * is smaller. A table is read in one lua_next pass; one with a metatable
 * also gets what its __index gives for the names it lacks. */
static void bufr_opts(lua_State *L, lua_Integer *size, lua_Integer *max) {
    *max = BUFR_MAX;
    if (lua_type(L, 2) != LUA_TTABLE) {
        *max = luaL_optinteger(L, 3, BUFR_MAX);
        *size = luaL_optinteger(L, 2, *max < BUFR_SIZE ? *max : BUFR_SIZE);
        return;
    }
    int has_size = 0, has_max = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (k && strcmp(k, "size") == 0) {
            *size = bufr_opt_int(L, "size");
            has_size = 1;
        } else if (k && strcmp(k, "max_token") == 0) {
            *max = bufr_opt_int(L, "max_token");
            has_max = 1;
        } else {
            luaL_error(L, "bufio.reader: unknown option '%s'", luaL_tolstring(L, -2, NULL));
        }
        lua_pop(L, 1);
    }
    if (lua_getmetatable(L, 2)) {             /* options it may inherit */
        lua_pop(L, 1);                        /* pop the metatable */
        if (!has_size) {
            if (lua_getfield(L, 2, "size") != LUA_TNIL) {
                *size = bufr_opt_int(L, "size");
                has_size = 1;
            }
            lua_pop(L, 1);                    /* pop the value */
        }
        if (!has_max) {
            if (lua_getfield(L, 2, "max_token") != LUA_TNIL) *max = bufr_opt_int(L, "max_token");
            lua_pop(L, 1);                    /* pop the value */
        }
    }
    if (!has_size) *size = *max < BUFR_SIZE ? *max : BUFR_SIZE;
}

/* core.bufio_reader(r [, size | {size =, max_token =}]) -> reader, also
 * called as (r, nil, max) by the scanner: net.bufio.reader itself, so
 * making one runs no Lua and grows no task's stack. */
static int bufr_new(lua_State *L) {
    lua_Integer size, max;
    bufr_opts(L, &size, &max);
    luaL_argcheck(L, size > 0 && size <= BUFR_LIMIT, 2, "size out of range");
    luaL_argcheck(L, max > 0 && max <= BUFR_LIMIT, 3, "max_token out of range");
    conn *c = bufr_check_source(L, 1, "reader");
    bufr *b = lua_newuserdatauv(L, sizeof *b, 1);
    memset(b, 0, sizeof *b);
    b->size = (size_t)size;
    b->max = max < size ? (size_t)size : (size_t)max;
    b->c = c;
    b->lp = loop_get(L);
    b->file = !c && luaL_testudata(L, 1, LUA_FILEHANDLE) != NULL;
    lua_pushvalue(L, lua_upvalueindex(2));       /* the one without __gc, found without a lookup */
    lua_setmetatable(L, -2);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);                 /* anchor the source */
    return 1;
}

/* core.bufio_init(sentinels, methods): bufio.lua hands over its sentinels
 * ({too_long =, no_progress =}) and the reader methods written in Lua. */
static int bufio_init(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushvalue(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &SENTINELS_KEY);
    luaL_getmetatable(L, BUFIO_READER_MT);
    lua_getfield(L, -1, "__index");
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);                       /* key, key, value */
        lua_rawset(L, -4);
    }
    lua_pop(L, 2);                               /* pop __index, metatable */
    return 0;
}

static const luaL_Reg bufr_methods[] = {
    {"_fill", bufr_fill},
    {"_read_full_at", bufr_read_full_at},
    {"_source", bufr_source},
    {"_take_into", bufr_take_into},
    {"_token", bufr_token},
    {"buffered", bufr_buffered},
    {"discard", bufr_discard},
    {"peek", bufr_peek},
    {"read", bufr_read},
    {"read_byte", bufr_read_byte},
    {"read_full", bufr_read_full},
    {"read_line", bufr_read_line},
    {"read_rune", bufr_read_rune},
    {"read_until", bufr_read_until},
    {"reset", bufr_reset},
    {"size", bufr_size},
    {"unread_byte", bufr_unread_byte},
    {"unread_rune", bufr_unread_rune},
    {NULL, NULL}
};

static const luaL_Reg bufr_meta[] = {
    {"__gc", bufr_gc},
    {"__tostring", bufr_tostring},
    {NULL, NULL}
};

static const luaL_Reg bufio_funcs[] = {
    {"bufio_init", bufio_init},
    {"bufio_reader", bufr_new},
    {NULL, NULL}
};

/* bufio_open: register the reader's metatable and add the bufio and
 * net.io functions to the core table on top of the stack. */
int bufio_open(lua_State *L) {
    int core = lua_gettop(L);
    luaL_newmetatable(L, BUFIO_READER_MT);       /* the metatable with __gc */
    int mt = lua_gettop(L);
    lua_createtable(L, 0, 3);                    /* the one without */
    int light = lua_gettop(L);
    lua_pushliteral(L, BUFIO_READER_MT);
    lua_setfield(L, light, "__name");
    lua_pushvalue(L, light);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &LIGHT_MT_KEY);
    /* Every function gets both as upvalues 1 and 2 (bufr_check, bufr_new). */
    lua_pushvalue(L, mt);
    lua_pushvalue(L, mt);
    lua_pushvalue(L, light);
    luaL_setfuncs(L, bufr_meta, 2);              /* __gc, __tostring into mt */
    lua_pop(L, 1);
    lua_getfield(L, mt, "__tostring");
    lua_setfield(L, light, "__tostring");        /* light shares all but __gc */
    luaL_newlibtable(L, bufr_methods);
    lua_pushvalue(L, mt);
    lua_pushvalue(L, light);
    luaL_setfuncs(L, bufr_methods, 2);
    lua_pushvalue(L, -1);
    lua_setfield(L, mt, "__index");
    lua_setfield(L, light, "__index");
    lua_settop(L, light);
    lua_pushvalue(L, core);
    lua_insert(L, mt);                           /* core, core, mt, light */
    luaL_setfuncs(L, bufio_funcs, 2);            /* into core */
    lua_pop(L, 1);
    return iocopy_open(L);
}
