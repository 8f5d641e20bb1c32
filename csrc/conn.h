/* conn.h - stream conns (TCP, unix): the userdata conns and listeners share. */
#ifndef CORONET_CONN_H
#define CORONET_CONN_H

#include <sys/socket.h>
#include <sys/types.h>
#include "lauxlib.h"
#include "loop.h"

#define CONN_MT "coronet.conn"

/* CONN_NOTSENT_LOWAT: the TCP_NOTSENT_LOWAT dialed and accepted TCP conns
 * get (bytes): a write waits once this much is queued in the kernel but
 * not yet sent, instead of filling the whole send buffer, so an echo or a
 * proxy stops reading while its peer cannot take more (docs/stream.md;
 * docs/performance.md, the thirteenth round). 0 in the options: the
 * kernel's default (net.ipv4.tcp_notsent_lowat, unlimited unless set). */
#define CONN_NOTSENT_LOWAT 65536

/* conn: a stream socket. Addresses are kept from creation so they still
 * render in errors and local_addr()/remote_addr() after close. */
struct tls_state;

typedef struct conn {
    handle h;
    struct tls_state *tls; /* the TLS byte layer (tls.c), or NULL: plain bytes */
    waitq wq;             /* writers queued behind it, FIFO */
    uint8_t net;          /* NET_* */
    uint8_t wlocked;      /* a write is in progress across parks */
    uint16_t acap;        /* bytes for each address below */
    uint8_t llen, rlen;   /* 0 when unknown (at most a sockaddr_storage) */
    /* The local then the remote address, acap bytes each, sized by the
     * network when the conn is made: an IP conn keeps 32 bytes per address
     * rather than a whole sockaddr_storage (the idle-memory budget). Read
     * them through conn_la / conn_ra. */
    uint64_t addr[];
} conn;

/* conn_la / conn_ra: c's local / remote address (llen / rlen bytes valid). */
static inline struct sockaddr_storage *conn_la(conn *c) {
    return (struct sockaddr_storage *)(void *)c->addr;
}
static inline struct sockaddr_storage *conn_ra(conn *c) {
    return (struct sockaddr_storage *)(void *)((char *)c->addr + c->acap);
}

/* conn_new: push a new closed conn of network net (fd -1), with room for
 * that network's addresses. */
conn *conn_new(lua_State *L, int net);

/* conn_new_addrlen: conn_new with room for addresses of at most len bytes
 * (an accepted conn: its addresses are the size of the listener's family;
 * an IPv4 conn then keeps 16 bytes per address instead of 32). */
conn *conn_new_addrlen(lua_State *L, int net, socklen_t len);

/* conn_attach: make c own fd (registered with the poller when it first
 * waits: handle_init_lazy). The local address is local (llen bytes) when
 * given, else read from fd; the remote one is peer (plen bytes, from
 * accept) when given, else read from fd. */
void conn_attach(lua_State *L, conn *c, int fd, const struct sockaddr_storage *local,
                 socklen_t llen, const struct sockaddr_storage *peer, socklen_t plen);

/* conn_write_unlock: release c's write lock (c->wlocked), handing it to
 * the first queued writer. For anything that writes to a conn across
 * parks outside conn_write (io.copy), after setting c->wlocked itself. */
void conn_write_unlock(conn *c);

/* conn_check_at: the conn (plain or TLS) at idx, or raise. */
conn *conn_check_at(lua_State *L, int idx);

/* conn_test_plain: the plain (not TLS) conn at idx, or NULL. */
conn *conn_test_plain(lua_State *L, int idx);

/* conn_register_class: register metatable mt with every conn method and
 * metamethod plus extra (may be NULL): a TLS conn is a conn. */
void conn_register_class(lua_State *L, const char *mt, const luaL_Reg *extra);

/* conn_failx: push nil and an error for op on c (source and addr from c);
 * ctxidx locates the net.context an ERR_CTX cause wraps. Returns 2. */
int conn_failx(lua_State *L, conn *c, const char *op, const char *sys, int cause, int ctxidx);

/* conn_reader_busy: whether a read is in progress on c (plain or TLS). */
int conn_reader_busy(conn *c);

/* conn_read_once: the one read that read and read_into share: up to max
 * (> 0) bytes into dst, after the closed and deadline checks. Returns
 * n > 0; 0 when nothing is there yet (park with conn_read_park, passing
 * *want); or -r after pushing the r results of EOF or a failure (nil,
 * net.EOF or nil, err, as conn:read returns them). */
ssize_t conn_read_once(lua_State *L, conn *c, char *dst, size_t max, int ctxidx, int *want);

/* conn_read_park: park the reading task t until c is readable (or, on a
 * TLS conn, whatever want says), under the read deadline and the ctx at
 * ctxidx; k runs with kctx on resume. Never returns (yields). */
int conn_read_park(lua_State *L, conn *c, task *t, int want, int ctxidx, lua_KContext kctx,
                   lua_KFunction k);

int conn_open(lua_State *L);

#endif
