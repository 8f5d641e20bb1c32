/* conn.c - stream conns (TCP and unix): read, write, half-close, deadlines
 * and options. A call that would block parks its task on the conn's handle
 * (lua_yieldk) and its continuation retries the syscall, so no Lua code
 * stands between the user and the syscall. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "lauxlib.h"
#include "addr.h"
#include "buffer.h"
#include "class.h"
#include "conn.h"
#include "errors.h"
#include "sock.h"
#include "tls.h"

#define CONN_READ_DEFAULT 16384  /* read's max when none is given; the ceiling is the loop's
                                  * shared buffer, 64 KiB (loop.c) */

/* Registry keys of the plain and TLS conn metatables (class_register_keyed):
 * a conn is recognised by comparing its metatable with the cached one
 * instead of looking the class up by name on every call. */
static const char CONNMT_KEY = 0;
static const char TLSCONNMT_KEY = 0;

conn *conn_check_at(lua_State *L, int idx) {
    conn *c = class_test(L, idx, &CONNMT_KEY);
    return c ? c : class_check(L, idx, &TLSCONNMT_KEY, TLSCONN_MT);
}

conn *conn_test_plain(lua_State *L, int idx) {
    return class_test(L, idx, &CONNMT_KEY);
}

static conn *conn_check(lua_State *L) {
    return conn_check_at(L, 1);
}

/* Whether a read is already in progress: a TLS read may wait off the
 * read slot (behind a writer, or for writability). */
int conn_reader_busy(conn *c) {
    return c->tls ? tls_reader_busy(c) : c->h.rd != NULL;
}

/* Bytes per address: an IPv6 sockaddr (28) or a unix one (110), rounded
 * up to 8; a conn from a file may be either. */
#define CONN_ACAP_IP 32
#define CONN_ACAP_UNIX 112
#define CONN_ACAP_ANY ((uint16_t)sizeof(struct sockaddr_storage))

static conn *conn_newx(lua_State *L, int net, uint16_t acap) {
    size_t size = sizeof(conn) + 2 * (size_t)acap;
    conn *c = lua_newuserdatauv(L, size, 0);
    memset(c, 0, size);
    c->h.fd = -1;
    c->net = (uint8_t)net;
    c->acap = acap;
    loop *lp = loop_get(L);
    if (!lp->ref_connmt) {                       /* an array slot: no hashed lookup per conn */
        lua_rawgetp(L, LUA_REGISTRYINDEX, &CONNMT_KEY);
        lp->ref_connmt = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, lp->ref_connmt);
    lua_setmetatable(L, -2);
    return c;
}

conn *conn_new(lua_State *L, int net) {
    return conn_newx(L, net, net == NET_UNIX ? CONN_ACAP_UNIX : CONN_ACAP_IP);
}

conn *conn_new_addrlen(lua_State *L, int net, socklen_t len) {
    size_t acap = ((size_t)len + 7) & ~(size_t)7;
    if (acap < 16) acap = 16;
    if (acap > CONN_ACAP_ANY) acap = CONN_ACAP_ANY;
    return conn_newx(L, net, (uint16_t)acap);
}

/* conn_set_addr: store the address sa (len bytes) at dst (la or ra) and
 * return its length, or 0 when it does not fit (an address of another
 * family than the conn was made for: treated as unknown). */
static socklen_t conn_set_addr(conn *c, struct sockaddr_storage *dst,
                               const struct sockaddr_storage *sa, socklen_t len) {
    if (len > c->acap) return 0;
    memcpy(dst, sa, len);
    return len;
}

static void conn_fill_addrs(conn *c, const struct sockaddr_storage *local, socklen_t llen,
                            const struct sockaddr_storage *peer, socklen_t plen) {
    struct sockaddr_storage ss;
    socklen_t n = sizeof ss;
    if (!local) {
        local = getsockname(c->h.fd, (struct sockaddr *)&ss, &n) < 0 ? NULL : &ss;
        llen = n;
    }
    c->llen = local ? conn_set_addr(c, conn_la(c), local, llen) : 0;
    if (!peer) {
        n = sizeof ss;
        peer = getpeername(c->h.fd, (struct sockaddr *)&ss, &n) < 0 ? NULL : &ss;
        plen = n;
    }
    c->rlen = peer ? conn_set_addr(c, conn_ra(c), peer, plen) : 0;
}

void conn_attach(lua_State *L, conn *c, int fd, const struct sockaddr_storage *local,
                 socklen_t llen, const struct sockaddr_storage *peer, socklen_t plen) {
    handle_init_lazy(&c->h, loop_get(L), fd);   /* registered when it first waits */
    c->h.rexact = c->net == NET_UNIX;            /* see handle.rexact */
    conn_fill_addrs(c, local, llen, peer, plen);
}

int conn_failx(lua_State *L, conn *c, const char *op, const char *sys, int cause, int ctxidx) {
    char src[ADDR_STRLEN], dst[ADDR_STRLEN];
    sock_format(conn_la(c), c->llen, src);
    sock_format(conn_ra(c), c->rlen, dst);
    operr e = {op, sock_netnames[c->net], src[0] ? src : NULL, dst[0] ? dst : NULL, sys, NULL,
               ctxidx};
    if (tls_in_handshake(c) && cause != ERR_BUSY && (op[0] == 'r' || op[0] == 'w')) {
        /* a read or write ran the handshake: Go's error sticks */
        tls_failed(c, cause == ERR_CTX ? ctx_cause(L, ctxidx) : cause);
        e.op = "handshake";
    }
    if (cause == ERR_TLS) return errors_fail_tls(L, &e, tls_error_code(c), tls_error_msg(c));
    if (strcmp(op, "dial") == 0) { /* Go: dial errors name the target only */
        e.source = NULL;
        e.addr = dst;
    }
    return errors_fail(L, &e, cause);
}

static int conn_fail(lua_State *L, conn *c, const char *op, const char *sys, int cause) {
    return conn_failx(L, c, op, sys, cause, 0);
}

/* ---- read ----------------------------------------------------------- */

static int conn_read_k(lua_State *L, int status, lua_KContext kctx);
static int conn_read_run(lua_State *L, conn *c, task *t, int status, int ctxidx, size_t max);

/* conn:read([max] [, ctx]) -> data | nil, err: 1..min(max, 64 KiB)
 * bytes (max defaults to 16 KiB), or nil, net.EOF at end of stream. One
 * recv into the loop's shared 64 KiB buffer; read_full and read_into take
 * bigger pieces. */
static int conn_read(lua_State *L) {
    conn *c = conn_check(L);
    int top = lua_gettop(L), ctxidx = 0;
    lua_Integer max = CONN_READ_DEFAULT;
    if (top == 2 && lua_isinteger(L, 2)) {       /* read(max), the usual call: no ctx */
        max = lua_tointeger(L, 2);
    } else if (top > 1) {
        ctxidx = ctx_find(L, 2);
        if (ctxidx != 2) max = luaL_optinteger(L, 2, CONN_READ_DEFAULT);
    }
    if (max <= 0) return sock_arg_error(L, 1, "read", "max must be positive");
    task *t = task_current(L);
    if (!t) return loop_block(L, conn_read, lua_gettop(L));
    if (ctx_ended(L, ctxidx)) return conn_failx(L, c, "read", NULL, ERR_CTX, ctxidx);
    if (conn_reader_busy(c)) return conn_fail(L, c, "read", NULL, ERR_BUSY);
    return conn_read_run(L, c, t, LUA_OK, ctxidx, (size_t)max);
}

/* conn_tls_read_fail: a TLS read's failure (cause from tls_read): EOF and
 * unexpected EOF are nil and the sentinel; the rest error objects. */
static int conn_tls_read_fail(lua_State *L, conn *c, int cause, int ctxidx) {
    if ((cause == ERR_EOF || cause == ERR_UNEXPECTED_EOF) && !tls_in_handshake(c)) {
        lua_pushnil(L);                          /* bare sentinels, as Go's tls.Conn.Read */
        errors_push_sentinel(L, cause);
        return 2;
    }
    return conn_failx(L, c, "read", cause > 0 ? "read" : NULL, cause, ctxidx);
}

/* One read for read and read_into (buffer.c): see conn.h. */
ssize_t conn_read_once(lua_State *L, conn *c, char *dst, size_t max, int ctxidx, int *want) {
    for (;;) {
        if (c->h.fd < 0) return -conn_fail(L, c, "read", NULL, ERR_CLOSED);
        if (handle_deadline_passed(c->h.rdl)) return -conn_fail(L, c, "read", NULL, ERR_TIMEOUT);
        if (c->tls) {
            int cause;
            ssize_t n = tls_read(c, dst, max, &cause);
            if (n > 0) return n;
            if (cause != TLS_WANT_IN && cause != TLS_WANT_OUT)
                return -conn_tls_read_fail(L, c, cause, ctxidx);
            *want = cause;
            return 0;
        }
        ssize_t n = handle_recv(&c->h, dst, max);
        if (n > 0) return n;
        if (n == 0) {
            lua_pushnil(L);
            errors_push_sentinel(L, ERR_EOF);
            return -2;
        }
        int e = errno;
        if (e == EINTR) continue;
        if (e != EAGAIN && e != EWOULDBLOCK) return -conn_fail(L, c, "read", "read", e);
        *want = TLS_WANT_IN;
        return 0;
    }
}

int conn_read_park(lua_State *L, conn *c, task *t, int want, int ctxidx, lua_KContext kctx,
                   lua_KFunction k) {
    if (c->tls) return tls_park(L, c, t, want, TLS_ROLE_READ, ctxidx, kctx, k);
    return task_park_ctx(L, t, &c->h.rd, c->h.rdl, PARK_READ, ctxidx, kctx, k);
}

/* A read's continuation context: the ctx index (0, 2 or 3) in the low
 * byte, the byte limit (at most the shared buffer's 64 KiB) above it. */
#define READ_KCTX(ctxidx, max) ((lua_KContext)(((lua_KContext)(max) << 8) | (ctxidx)))

/* The continuation runs in the frame that parked: index 1 is the conn
 * conn_read already checked, so it is taken as it is. */
static int conn_read_k(lua_State *L, int status, lua_KContext kctx) {
    return conn_read_run(L, lua_touserdata(L, 1), task_current(L), status, (int)(kctx & 0xff),
                         (size_t)(kctx >> 8));
}

/* The body of read and its continuation: c and t are the conn at 1 and
 * the running task, status the continuation's (LUA_OK on the first try),
 * max the byte limit of the read argument. */
static int conn_read_run(lua_State *L, conn *c, task *t, int status, int ctxidx, size_t max) {
    tls_resumed(c, t, TLS_ROLE_READ);
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (cause) return conn_failx(L, c, "read", NULL, cause, ctxidx);
    loop *lp = c->h.lp;
    if (max > lp->rbufsz) max = lp->rbufsz;
    lua_KContext kctx = READ_KCTX(ctxidx, max);
    int want;
    ssize_t n = conn_read_once(L, c, lp->rbuf, max, ctxidx, &want);
    if (n > 0) {
        lua_pushlstring(L, lp->rbuf, (size_t)n);
        return 1;
    }
    if (n < 0) return (int)-n;
    return conn_read_park(L, c, t, want, ctxidx, kctx, conn_read_k);
}

/* ---- read_full ------------------------------------------------------ */

static int conn_read_full_k(lua_State *L, int status, lua_KContext kctx);
static int conn_read_full_fail(lua_State *L, conn *c, const char *sys, int cause, size_t got);

/* conn:read_full(n [, ctx]) -> data | nil, err, partial: exactly n bytes;
 * EOF after some of them is net.ErrUnexpectedEOF (with what arrived).
 * The buffer starts at most CONN_READ_DEFAULT bytes and doubles as data
 * arrives, so a huge n taken from a hostile peer costs memory only for
 * what the peer really sends.
 * Stack while it runs: 1 conn, 2 n, 3 ctx or nil, 4 the buffer. */
static int conn_read_full(lua_State *L) {
    conn *c = conn_check(L);
    lua_Integer n = luaL_checkinteger(L, 2);
    if (n < 0) return sock_arg_error(L, 1, "read_full", "negative length");
    task *t = task_current(L);
    if (!t) return loop_block(L, conn_read_full, lua_gettop(L));
    int ctxidx = ctx_find(L, 3);
    if (ctxidx > 3) {                            /* read_full(n, nil, ctx) */
        lua_pushvalue(L, ctxidx);
        lua_replace(L, 3);
        ctxidx = 3;
    }
    lua_settop(L, 3);
    if (!ctxidx) {
        lua_pushnil(L);
        lua_replace(L, 3);
    }
    lua_newuserdatauv(L, n == 0 ? 1 : n < CONN_READ_DEFAULT ? (size_t)n : CONN_READ_DEFAULT, 0);
    if (ctx_ended(L, ctxidx)) return conn_read_full_fail(L, c, NULL, ERR_CTX, 0);
    if (conn_reader_busy(c)) return conn_read_full_fail(L, c, NULL, ERR_BUSY, 0);
    return conn_read_full_k(L, LUA_OK, 0);
}

static int conn_read_full_fail(lua_State *L, conn *c, const char *sys, int cause, size_t got) {
    const char *buf = lua_touserdata(L, 4);
    lua_pushnil(L);
    if ((cause == ERR_EOF || cause == ERR_UNEXPECTED_EOF) && !tls_in_handshake(c)) {
        /* bare sentinels, as read(); a TLS FIN mid-record is unexpected even at 0 */
        errors_push_sentinel(L, got || cause == ERR_UNEXPECTED_EOF ? ERR_UNEXPECTED_EOF : ERR_EOF);
    } else {
        conn_failx(L, c, "read", sys, cause, lua_isnil(L, 3) ? 0 : 3);
        lua_remove(L, -2);                       /* its nil */
    }
    lua_pushlstring(L, buf, got);
    return 3;
}

static int conn_read_full_k(lua_State *L, int status, lua_KContext kctx) {
    conn *c = conn_check(L);
    task *t = task_current(L);
    int ctxidx = lua_isnil(L, 3) ? 0 : 3;
    size_t got = (size_t)kctx, n = (size_t)lua_tointeger(L, 2);
    char *buf = lua_touserdata(L, 4);
    size_t cap = lua_rawlen(L, 4);
    tls_resumed(c, t, TLS_ROLE_READ);
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (cause) return conn_read_full_fail(L, c, NULL, cause, got);
    while (got < n) {
        if (c->h.fd < 0) return conn_read_full_fail(L, c, NULL, ERR_CLOSED, got);
        if (handle_deadline_passed(c->h.rdl)) return conn_read_full_fail(L, c, NULL, ERR_TIMEOUT, got);
        if (got == cap) {                        /* full: double it, up to n */
            size_t ncap = cap > n / 2 ? n : cap * 2;
            char *nbuf = lua_newuserdatauv(L, ncap, 0);
            memcpy(nbuf, buf, got);
            lua_replace(L, 4);
            buf = nbuf;
            cap = ncap;
        }
        if (c->tls) {
            ssize_t r = tls_read(c, buf + got, cap - got, &cause);
            if (r > 0) {
                got += (size_t)r;
                continue;
            }
            if (cause != TLS_WANT_IN && cause != TLS_WANT_OUT)
                return conn_read_full_fail(L, c, cause > 0 ? "read" : NULL, cause, got);
            return tls_park(L, c, t, cause, TLS_ROLE_READ, ctxidx, (lua_KContext)got,
                            conn_read_full_k);
        }
        ssize_t r = handle_recv(&c->h, buf + got, cap - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0) return conn_read_full_fail(L, c, NULL, ERR_EOF, got);
        int e = errno;
        if (e == EINTR) continue;
        if (e != EAGAIN && e != EWOULDBLOCK) return conn_read_full_fail(L, c, "read", e, got);
        return task_park_ctx(L, t, &c->h.rd, c->h.rdl, PARK_READ, ctxidx, (lua_KContext)got,
                             conn_read_full_k);
    }
    lua_pushlstring(L, buf, n);
    return 1;
}

/* ---- write ---------------------------------------------------------- */

/* The byte range [*from, *to) of the data argument (a string or a
 * net.buffer's bytes), string.sub-style. */
static const char *conn_write_range(lua_State *L, size_t *from, size_t *to) {
    size_t len;
    const char *s = lua_type(L, 2) == LUA_TSTRING ? NULL : buffer_bytes(L, 2, &len);
    if (!s) s = luaL_checklstring(L, 2, &len);
    lua_Integer i = luaL_optinteger(L, 3, 1), j = luaL_optinteger(L, 4, -1);
    if (i < 0) i = (lua_Integer)len + i + 1;
    if (j < 0) j = (lua_Integer)len + j + 1;
    if (i < 1) i = 1;
    if (j > (lua_Integer)len) j = (lua_Integer)len;
    *from = (size_t)i - 1;
    *to = j >= i ? (size_t)j : *from;
    return s;
}

static int conn_write_k(lua_State *L, int status, lua_KContext kctx);
static int conn_write_run(lua_State *L, conn *c, task *t, int status, size_t done,
                          const char *p, size_t len);

/* The bytes to write (data:sub(i, j) of the arguments): *len of them at the result. */
static const char *conn_write_bytes(lua_State *L, size_t *len) {
    size_t from, to;
    const char *s = conn_write_range(L, &from, &to);
    *len = to - from;
    return s + from;
}
static int conn_write_fail(lua_State *L, conn *c, const char *sys, int cause, size_t done);

/* Writers are serialised, as in Go: each write goes out whole. A write that
 * parks mid-way holds c->wlocked until it returns; writers arriving
 * meanwhile queue (FIFO) and the lock is handed to the first on return. */
void conn_write_unlock(conn *c) {
    task *next;
    c->wlocked = 0;
    while ((next = waitq_pop(&c->wq))) {
        if (task_wake(next, WAKE_READY)) { /* handed over */
            c->wlocked = 1;
            return;
        }
        /* already woken (its ctx or deadline ended): it leaves on its own */
    }
}

static int conn_write_wait_k(lua_State *L, int status, lua_KContext kctx) {
    conn *c = conn_check(L);
    task *t = task_current(L);
    int ctxidx = lua_isnoneornil(L, 5) ? 0 : 5;
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (cause) {                          /* gave up waiting: not our turn yet */
        buffer_unpin(L, 2);
        waitq_remove(&c->wq, t);
        conn_failx(L, c, "write", NULL, cause, ctxidx);
        lua_pushinteger(L, 0);
        return 3;
    }
    size_t len;
    const char *p = conn_write_bytes(L, &len);
    return conn_write_run(L, c, t, LUA_YIELD, (size_t)kctx, p, len); /* the lock is ours now */
}

/* conn:write(data [, i, j] [, ctx]) -> n | nil, err, n_written: write all
 * of data:sub(i, j), parking as often as the socket buffer fills. data
 * may be a net.buffer: its bytes are written, not consumed (discard them
 * after), and it stays busy (buffer.h) while the write is parked.
 * Stack while it runs: 1 conn, 2 data, 3 i, 4 j, 5 ctx or nil; or, for
 * write(string) (the usual call), just 1 and 2: the continuations read a
 * missing i, j and ctx as their defaults. */
static int conn_write(lua_State *L) {
    conn *c = conn_check(L);
    task *t = task_current(L);
    if (!t) return loop_block(L, conn_write, lua_gettop(L));
    if (lua_gettop(L) == 2 && lua_type(L, 2) == LUA_TSTRING && !c->wlocked) {
        size_t len;
        const char *p = lua_tolstring(L, 2, &len);
        return conn_write_run(L, c, t, LUA_OK, 0, p, len);
    }
    int ctxidx = ctx_find(L, 3);
    lua_settop(L, 5);
    if (ctxidx && ctxidx != 5) {
        lua_pushvalue(L, ctxidx);
        lua_replace(L, 5);
        lua_pushnil(L);
        lua_replace(L, ctxidx);
    }
    size_t from, to;
    const char *p = conn_write_range(L, &from, &to) + from;
    size_t len = to - from;
    if (lua_type(L, 2) == LUA_TUSERDATA) {      /* a buffer's range is fixed now: it may grow */
        lua_pushinteger(L, (lua_Integer)from + 1);
        lua_replace(L, 3);
        lua_pushinteger(L, (lua_Integer)to);
        lua_replace(L, 4);
    }
    if (ctx_ended(L, ctxidx ? 5 : 0)) return conn_write_fail(L, c, NULL, ERR_CTX, 0);
    if (c->wlocked && c->h.fd >= 0) {
        buffer_pin(L, 2);
        waitq_push(&c->wq, t);
        return task_park_ctx(L, t, NULL, c->h.wrl, PARK_WRITE, ctxidx ? 5 : 0, 0, conn_write_wait_k);
    }
    return conn_write_run(L, c, t, LUA_OK, 0, p, len);
}

static int conn_write_fail(lua_State *L, conn *c, const char *sys, int cause, size_t done) {
    conn_failx(L, c, "write", sys, cause, lua_isnoneornil(L, 5) ? 0 : 5);
    lua_pushinteger(L, (lua_Integer)done);
    return 3;
}

static int conn_write_k(lua_State *L, int status, lua_KContext kctx) {
    size_t len;
    const char *p = conn_write_bytes(L, &len);
    return conn_write_run(L, lua_touserdata(L, 1), task_current(L), status, (size_t)kctx, p, len);   /* checked by conn_write */
}

/* TCP_SEND_PIECE: the most one send(2) of a TCP conn's write hands the
 * kernel. A longer write still sends all its bytes, in order and under the
 * write lock, in pieces this size: on the benchmark host (Linux 6.18, BBR)
 * a 64 KiB send cost the kernel about twice what two 32 KiB sends did, and
 * never less (docs/performance.md, the eleventh round). Unix conns send
 * whole; TLS records are 16 KiB already. */
enum { TCP_SEND_PIECE = 32768 };

/* The body of write and its continuations: done bytes went out already. */
static int conn_write_run(lua_State *L, conn *c, task *t, int status, size_t done,
                          const char *p, size_t len) {
    int ctxidx = lua_isnoneornil(L, 5) ? 0 : 5;
    int held = status == LUA_YIELD;      /* we parked before: we hold the lock */
    if (held) buffer_unpin(L, 2);
    tls_resumed(c, t, TLS_ROLE_WRITE);
    int cause = task_resume_cause(L, t, status, ctxidx);
    int r = 0;
    while (!cause) {
        if (c->h.fd < 0) { cause = ERR_CLOSED; break; }
        if (handle_deadline_passed(c->h.wrl)) { cause = ERR_TIMEOUT; break; }
        if (done >= len) break;
        if (c->tls) {
            int why;
            ssize_t n = tls_write(c, p + done, len - done, &why);
            if (n > 0) {
                done += (size_t)n;
                continue;
            }
            if (why != TLS_WANT_IN && why != TLS_WANT_OUT) {
                r = why;                 /* an errno or an ERR_* cause */
                break;
            }
            c->wlocked = 1;
            buffer_pin(L, 2);
            return tls_park(L, c, t, why, TLS_ROLE_WRITE, ctxidx, (lua_KContext)done,
                            conn_write_k);
        }
        size_t piece = len - done;
        if (piece > TCP_SEND_PIECE && c->net != NET_UNIX) piece = TCP_SEND_PIECE;
        ssize_t n = handle_send(&c->h, p + done, piece);
        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        int e = errno;
        if (e == EINTR) continue;
        if (e != EAGAIN && e != EWOULDBLOCK) {
            r = e;
            break;
        }
        c->wlocked = 1;
        buffer_pin(L, 2);
        return task_park_ctx(L, t, &c->h.wr, c->h.wrl, PARK_WRITE, ctxidx, (lua_KContext)done,
                             conn_write_k);
    }
    if (cause && c->tls) tls_gave_up(c, cause == ERR_CTX ? ctx_cause(L, ctxidx) : cause);
    if (held) conn_write_unlock(c);
    if (r) return conn_write_fail(L, c, "write", r, done);
    if (cause) return conn_write_fail(L, c, NULL, cause, done);
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
}

/* ---- connect and bind (used by net.dial in Lua) ---------------------- */

static int conn_connect_k(lua_State *L, int status, lua_KContext kctx);

/* conn:_connect(deadline, ip, port | path [, ctx]) -> true | nil, err:
 * connect the fresh socket, bounded by deadline (absolute, 0: none) and
 * ctx. The continuation's context is ctxidx * 2 + (already connected). */
static int conn_connect(lua_State *L) {
    conn *c = conn_check(L);
    double deadline = luaL_optnumber(L, 2, 0);
    task *t = task_current(L);
    if (!t) return loop_block(L, conn_connect, lua_gettop(L));
    int ctxidx = ctx_find(L, 3);
    struct sockaddr_storage ss;
    socklen_t len;
    int e = sock_sockaddr_arg(L, 3, conn_la(c)->ss_family == AF_INET6, &ss, &len);
    if (!e && !(c->rlen = conn_set_addr(c, conn_ra(c), &ss, len))) e = EAFNOSUPPORT;
    if (e) return conn_fail(L, c, "dial", NULL, e);
    if (c->h.fd < 0) return conn_fail(L, c, "dial", NULL, ERR_CLOSED);
    if (ctx_ended(L, ctxidx)) return conn_failx(L, c, "dial", NULL, ERR_CTX, ctxidx);
    if (handle_deadline_passed(deadline)) return conn_fail(L, c, "dial", NULL, ERR_TIMEOUT);
    int r;
    do r = connect(c->h.fd, (struct sockaddr *)conn_ra(c), c->rlen);
    while (r < 0 && errno == EINTR);
    if (r == 0) return conn_connect_k(L, LUA_OK, ctxidx * 2 + 1);
    e = errno;
    if (e != EINPROGRESS) return conn_fail(L, c, "dial", "connect", e);
    /* a conn from conn_socket is registered; one from file_conn may not be */
    if ((e = handle_register(&c->h, POLLER_BOTH))) return conn_fail(L, c, "dial", "epoll_ctl", e);
    return task_park_ctx(L, t, &c->h.wr, deadline, PARK_CONNECT, ctxidx, ctxidx * 2, conn_connect_k);
}

static int conn_connect_k(lua_State *L, int status, lua_KContext kctx) {
    conn *c = conn_check(L);
    task *t = task_current(L);
    int ctxidx = (int)(kctx / 2);
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (cause) return conn_failx(L, c, "dial", NULL, cause, ctxidx);
    if (!(kctx & 1)) {
        int e = 0;
        socklen_t n = sizeof e;
        if (getsockopt(c->h.fd, SOL_SOCKET, SO_ERROR, &e, &n) < 0) e = errno;
        if (e) return conn_fail(L, c, "dial", "connect", e);
    }
    struct sockaddr_storage peer;
    memcpy(&peer, conn_ra(c), c->rlen);
    conn_fill_addrs(c, NULL, 0, &peer, c->rlen);
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:_bind(ip, port | path) -> true | nil, err: bind before connect
 * (the dial option local_addr). */
static int conn_bind(lua_State *L) {
    conn *c = conn_check(L);
    struct sockaddr_storage ss;
    socklen_t len;
    int e = sock_sockaddr_arg(L, 2, conn_la(c)->ss_family == AF_INET6, &ss, &len);
    if (!e && bind(c->h.fd, (struct sockaddr *)&ss, len) < 0) e = errno;
    if (e) return conn_fail(L, c, "dial", "bind", e);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.conn_socket(net, family [, notsent_lowat]) -> conn | nil, err: a
 * fresh unconnected stream socket (family 4, 6 or "unix"), registered
 * with the loop; a TCP one has TCP_NODELAY and the dial option
 * notsent_lowat (CONN_NOTSENT_LOWAT when nil). */
static int conn_socket(lua_State *L) {
    int net = luaL_checkoption(L, 1, NULL, sock_netnames);
    const char *fam = luaL_checkstring(L, 2);
    int family = strcmp(fam, "6") == 0 ? AF_INET6 : strcmp(fam, "4") == 0 ? AF_INET : AF_UNIX;
    int lowat = sock_lowat_opt(L, 3, "dial", CONN_NOTSENT_LOWAT);
    conn *c = conn_new(L, net);
    int fd = sock_open(family, SOCK_STREAM);
    if (fd < 0) return conn_fail(L, c, "dial", "socket", -fd);
    /* registered now, not lazily: a dial always waits for connect, and a
     * socket watched before connect() has its handshake's readiness queued
     * ahead of the listener's, so a loopback server in the same loop sees
     * the dial complete before it runs (and before it can reset the conn) */
    int e = handle_init(&c->h, loop_get(L), fd);
    if (e) {
        close(fd);
        return conn_fail(L, c, "dial", "epoll_ctl", e);
    }
    c->h.rexact = family == AF_UNIX;             /* see handle.rexact */
    conn_la(c)->ss_family = (sa_family_t)family;  /* remembered until bind/connect */
    if (family != AF_UNIX) {
        sock_set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
        sock_set_int(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, lowat);
    }
    return 1;
}

/* ---- close and half-close ------------------------------------------- */

static int conn_ok(lua_State *L) {
    lua_pushboolean(L, 1);
    return 1;
}

/* conn_release: the one close routine: wake queued writers, end a TLS
 * layer (close_notify if it can go without waiting), close the handle
 * (which wakes the parked reader and writer). 0, or -1 if already closed. */
static int conn_release(conn *c) {
    waitq_wake_all(&c->wq, WAKE_CLOSED);
    if (c->tls && c->h.fd >= 0) tls_close(c);
    return handle_close(&c->h);
}

/* conn:close() -> true | nil, ErrClosed: wakes parked readers/writers; a
 * TLS conn first sends close_notify if it can without waiting. */
static int conn_close(lua_State *L) {
    conn *c = conn_check(L);
    if (conn_release(c) < 0) return conn_fail(L, c, "close", NULL, ERR_CLOSED);
    return conn_ok(L);
}

static int conn_gc(lua_State *L) {
    conn *c = conn_check(L);
    conn_release(c);
    if (c->tls) tls_free(c);
    return 0;
}

static int conn_shutdown(lua_State *L, int how) {
    conn *c = conn_check(L);
    if (c->h.fd < 0) return conn_fail(L, c, "close", NULL, ERR_CLOSED);
    if (shutdown(c->h.fd, how) < 0) return conn_fail(L, c, "close", "shutdown", errno);
    return conn_ok(L);
}

/* conn:close_read() -> true | nil, err: shut the reading half. */
static int conn_close_read(lua_State *L) { return conn_shutdown(L, SHUT_RD); }
/* conn:close_write() -> true | nil, err: send FIN (on a TLS conn:
 * close_notify, and no FIN, as Go's); reading goes on. */
static int conn_close_write(lua_State *L) {
    if (conn_check(L)->tls) return tls_close_write(L);
    return conn_shutdown(L, SHUT_WR);
}

/* ---- addresses, deadlines, options ----------------------------------- */

static int conn_local_addr(lua_State *L) {
    conn *c = conn_check(L);
    sock_push_addr(L, conn_la(c), c->llen, sock_netnames[c->net]);
    return 1;
}

static int conn_remote_addr(lua_State *L) {
    conn *c = conn_check(L);
    sock_push_addr(L, conn_ra(c), c->rlen, sock_netnames[c->net]);
    return 1;
}

static int conn_deadline(lua_State *L, int rd, int wr) {
    conn *c = conn_check(L);
    double t = handle_deadline_arg(L, 2);
    if (c->h.fd < 0) return conn_fail(L, c, "set", NULL, ERR_CLOSED);
    if (c->tls) tls_set_deadline(c, rd, wr, t);  /* by each parked task's role, not its slot */
    else handle_set_deadline(&c->h, rd, wr, t);
    if (wr) waitq_set_deadline(&c->wq, t);
    return conn_ok(L);
}

/* conn:set_deadline(t | nil): absolute read and write deadline. */
static int conn_set_deadline(lua_State *L) { return conn_deadline(L, 1, 1); }
static int conn_set_read_deadline(lua_State *L) { return conn_deadline(L, 1, 0); }
static int conn_set_write_deadline(lua_State *L) { return conn_deadline(L, 0, 1); }

static int conn_setopt(lua_State *L, int level, int name, int value) {
    conn *c = conn_check(L);
    if (c->h.fd < 0) return conn_fail(L, c, "set", NULL, ERR_CLOSED);
    int e = sock_set_int(c->h.fd, level, name, value);
    if (e) return conn_fail(L, c, "set", "setsockopt", e);
    return conn_ok(L);
}

static int conn_set_nodelay(lua_State *L) {
    return conn_setopt(L, IPPROTO_TCP, TCP_NODELAY, lua_toboolean(L, 2));
}

/* conn:set_notsent_lowat(n): TCP_NOTSENT_LOWAT, the unsent bytes the
 * kernel may hold before a write waits; 0: the kernel's default. */
static int conn_set_notsent_lowat(lua_State *L) {
    return conn_setopt(L, IPPROTO_TCP, TCP_NOTSENT_LOWAT,
                       sock_int_arg(L, 2, "set_notsent_lowat", 0, INT_MAX));
}

static int conn_set_keepalive(lua_State *L) {
    return conn_setopt(L, SOL_SOCKET, SO_KEEPALIVE, lua_toboolean(L, 2));
}

/* conn:set_keepalive_period(s): idle time and probe interval (whole
 * seconds, rounded up, at least 1), as Go's SetKeepAlivePeriod. */
static int conn_set_keepalive_period(lua_State *L) {
    conn *c = conn_check(L);
    int secs = sock_keepalive_arg(L, 2, "set_keepalive_period");
    if (c->h.fd < 0) return conn_fail(L, c, "set", NULL, ERR_CLOSED);
    int e = sock_keepalive(c->h.fd, 1, secs);
    if (e) return conn_fail(L, c, "set", "setsockopt", e);
    return conn_ok(L);
}

/* conn:set_linger(s): s < 0 restores the default (close in background),
 * 0 discards unsent data and sends RST on close, s > 0 lingers. */
static int conn_set_linger(lua_State *L) {
    conn *c = conn_check(L);
    lua_Integer s = sock_int_arg(L, 2, "set_linger", INT_MIN, INT_MAX);
    struct linger lg = {s >= 0, s >= 0 ? (int)s : 0};
    if (c->h.fd < 0) return conn_fail(L, c, "set", NULL, ERR_CLOSED);
    if (setsockopt(c->h.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0)
        return conn_fail(L, c, "set", "setsockopt", errno);
    return conn_ok(L);
}

static int conn_set_read_buffer(lua_State *L) {
    return conn_setopt(L, SOL_SOCKET, SO_RCVBUF, sock_int_arg(L, 2, "set_read_buffer", 0, INT_MAX));
}

static int conn_set_write_buffer(lua_State *L) {
    return conn_setopt(L, SOL_SOCKET, SO_SNDBUF, sock_int_arg(L, 2, "set_write_buffer", 0, INT_MAX));
}

/* conn:fd() -> the descriptor (-1 once closed); it stays owned by c. */
static int conn_fd(lua_State *L) {
    lua_pushinteger(L, conn_check(L)->h.fd);
    return 1;
}

/* conn:file() -> fd | nil, err: a dup of the descriptor, without
 * close-on-exec (to hand to a child); the caller owns and closes it. */
static int conn_file(lua_State *L) {
    conn *c = conn_check(L);
    if (c->h.fd < 0) return conn_fail(L, c, "file", NULL, ERR_CLOSED);
    int fd = dup(c->h.fd);
    if (fd < 0) return conn_fail(L, c, "file", "dup", errno);
    lua_pushinteger(L, fd);
    return 1;
}

static int conn_tostring(lua_State *L) {
    conn *c = conn_check(L);
    char src[ADDR_STRLEN], dst[ADDR_STRLEN];
    sock_format(conn_la(c), c->llen, src);
    sock_format(conn_ra(c), c->rlen, dst);
    if (c->tls)
        lua_pushfstring(L, "tls conn %s %s->%s (%s)", sock_netnames[c->net], src, dst,
                        c->h.fd < 0 ? "closed" : tls_tostring_state(c));
    else
        lua_pushfstring(L, "conn %s %s->%s%s", sock_netnames[c->net], src, dst,
                        c->h.fd < 0 ? " (closed)" : "");
    return 1;
}

/* core.file_conn(fd) -> conn | nil, err: a conn over a dup of an inherited
 * stream socket fd (the caller keeps fd). */
static int conn_from_file(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    int family = 0, type = 0;
    socklen_t n = sizeof type;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int nfd = sock_dup(fd);
    conn *c = conn_newx(L, NET_TCP, CONN_ACAP_ANY);   /* TCP or unix: not known yet */
    if (nfd < 0) return conn_fail(L, c, "file", "dup", -nfd);
    if (getsockopt(nfd, SOL_SOCKET, SO_TYPE, &type, &n) < 0 || type != SOCK_STREAM ||
        getsockname(nfd, (struct sockaddr *)&ss, &sl) < 0) {
        int e = type && type != SOCK_STREAM ? EPROTOTYPE : errno;
        close(nfd);
        return conn_fail(L, c, "file", "getsockopt", e);
    }
    family = ss.ss_family;
    c->net = family == AF_UNIX ? NET_UNIX : NET_TCP;
    conn_attach(L, c, nfd, NULL, 0, NULL, 0);
    return 1;
}

static const luaL_Reg conn_methods[] = {
    {"_bind", conn_bind},
    {"_connect", conn_connect},
    {"close", conn_close},
    {"close_read", conn_close_read},
    {"close_write", conn_close_write},
    {"fd", conn_fd},
    {"file", conn_file},
    {"local_addr", conn_local_addr},
    {"read", conn_read},
    {"read_full", conn_read_full},
    {"read_into", buffer_read_into},
    {"remote_addr", conn_remote_addr},
    {"set_deadline", conn_set_deadline},
    {"set_keepalive", conn_set_keepalive},
    {"set_keepalive_period", conn_set_keepalive_period},
    {"set_linger", conn_set_linger},
    {"set_nodelay", conn_set_nodelay},
    {"set_notsent_lowat", conn_set_notsent_lowat},
    {"set_read_buffer", conn_set_read_buffer},
    {"set_read_deadline", conn_set_read_deadline},
    {"set_write_buffer", conn_set_write_buffer},
    {"set_write_deadline", conn_set_write_deadline},
    {"write", conn_write},
    {NULL, NULL}
};

static const luaL_Reg conn_meta[] = {
    {"__close", conn_gc},
    {"__gc", conn_gc},
    {"__tostring", conn_tostring},
    {NULL, NULL}
};

static const luaL_Reg conn_funcs[] = {
    {"conn_socket", conn_socket},
    {"file_conn", conn_from_file},
    {NULL, NULL}
};

void conn_register_class(lua_State *L, const char *mt, const luaL_Reg *extra) {
    class_register_keyed(L, mt, strcmp(mt, CONN_MT) == 0 ? &CONNMT_KEY : &TLSCONNMT_KEY,
                         conn_meta, conn_methods);
    luaL_getmetatable(L, mt);
    if (extra) {
        lua_getfield(L, -1, "__index");
        luaL_setfuncs(L, extra, 0);
        lua_pop(L, 1);                           /* pop methods */
    }
    lua_pop(L, 1);                               /* pop metatable */
}

/* conn_open: register CONN_MT and add the conn constructors to the table
 * on top of the stack. */
int conn_open(lua_State *L) {
    conn_register_class(L, CONN_MT, NULL);
    luaL_setfuncs(L, conn_funcs, 0);
    return 0;
}
