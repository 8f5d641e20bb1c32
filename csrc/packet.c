/* packet.c - packet conns (UDP and unixgram) with Go's PacketConn
 * semantics: read_from/write_to move exactly one datagram, read/write do
 * the same on connected sockets, and read_batch/write_batch move up to
 * PACKET_BATCH_MAX datagrams with one recvmmsg/sendmmsg. A call that would
 * block parks its task on the handle (lua_yieldk) and its continuation
 * retries the syscall, as in conn.c. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "lauxlib.h"
#include "addr.h"
#include "errors.h"
#include "loop.h"
#include "packet.h"
#include "sock.h"
#include "track.h"

#define PACKET_READ_DEFAULT 65536      /* read_from/read: any UDP datagram fits */
#define PACKET_READ_MAX (16 << 20)     /* larger than any datagram a socket takes */

static const char RESOLVE_KEY = 0;     /* registry: coronet.packet's name resolver */

pconn *packet_check(lua_State *L) {
    return luaL_checkudata(L, 1, PACKET_MT);
}

static pconn *packet_new(lua_State *L, int net) {
    pconn *p = lua_newuserdatauv(L, sizeof *p, PACKET_NUV);
    memset(p, 0, sizeof *p);
    p->h.fd = -1;
    p->net = (uint8_t)net;
    luaL_setmetatable(L, PACKET_MT);
    lua_createtable(L, PACKET_NSENDERS, 0);
    lua_setiuservalue(L, -2, PACKET_UV_SENDERS);
    return p;
}

/* packet_failx: nil and an error for op on p. The source is the local
 * address, the addr the peer (or dest, a write_to target, when given);
 * "dial" and "listen" errors name only their target, as Go's do. */
int packet_failx(lua_State *L, pconn *p, const char *op, const char *sys, int cause,
                 int ctxidx, const char *dest) {
    char src[ADDR_STRLEN], dst[ADDR_STRLEN];
    sock_format(&p->la, p->llen, src);
    sock_format(&p->ra, p->rlen, dst);
    operr e = {op, sock_netnames[p->net], src[0] ? src : NULL, dest ? dest : dst[0] ? dst : NULL,
               sys, NULL, ctxidx};
    if (strcmp(op, "dial") == 0 || strcmp(op, "listen") == 0) {
        e.source = NULL;
        e.addr = strcmp(op, "dial") == 0 ? (dst[0] ? dst : NULL) : (src[0] ? src : NULL);
    }
    return errors_fail(L, &e, cause);
}

int packet_fail(lua_State *L, pconn *p, const char *op, const char *sys, int cause) {
    return packet_failx(L, p, op, sys, cause, 0, NULL);
}

int packet_ok(lua_State *L) {
    lua_pushboolean(L, 1);
    return 1;
}

int packet_want6(const pconn *p) {
    return p->la.ss_family == AF_INET6;
}

/* ---- addresses ------------------------------------------------------- */

/* Push the address object for the sender sa (len bytes), or nil for an
 * unnamed unix socket (Go's ReadFrom gives a nil Addr there too). The last
 * PACKET_NSENDERS senders' objects are kept in the table at tidx and
 * returned again, so a busy peer costs no new table per datagram. */
void packet_push_sender(lua_State *L, pconn *p, int tidx,
                        const struct sockaddr_storage *sa, socklen_t len) {
    if (len <= offsetof(struct sockaddr_un, sun_path)) {
        lua_pushnil(L);
        return;
    }
    for (int i = 0; i < PACKET_NSENDERS; i++) {
        if (p->slen[i] == len && memcmp(&p->senders[i], sa, len) == 0) {
            lua_rawgeti(L, tidx, i + 1);
            return;
        }
    }
    int i = p->next;
    p->next = (uint8_t)((i + 1) % PACKET_NSENDERS);
    sock_push_addr(L, sa, len, sock_netnames[p->net]);
    lua_pushvalue(L, -1);
    lua_rawseti(L, tidx, i + 1);
    memcpy(&p->senders[i], sa, len);
    p->slen[i] = len;
}

static const char *const packet_keynames[PKEY_N] = {
    [PKEY_DATA] = "data", [PKEY_ADDR] = "addr", [PKEY_TRUNCATED] = "truncated",
    [PKEY_IP] = "ip", [PKEY_PORT] = "port", [PKEY_NAME] = "name",
};

int packet_push_keys(lua_State *L) {
    luaL_checkstack(L, PKEY_N, "packet keys");
    for (int k = 0; k < PKEY_N; k++) lua_pushstring(L, packet_keynames[k]);
    return lua_gettop(L) - PKEY_N + 1;
}

void packet_pushkey(lua_State *L, int keys, int k) {
    if (keys) lua_pushvalue(L, keys + k);
    else lua_pushstring(L, packet_keynames[k]);
}

int packet_rawfield(lua_State *L, int idx, int keys, int k) {
    packet_pushkey(L, keys, k);
    return lua_rawget(L, idx < 0 ? idx - 1 : idx);
}

/* Split "host:port" or "[host]:port" with host an IP literal and a decimal
 * port. Returns 0 with *a and *port set, or 1 for anything else (a name to
 * resolve, or a malformed address: the Lua resolver says which). */
static int packet_parse_literal(const char *s, size_t n, ipaddr *a, int *port) {
    const char *host = s, *colon;
    size_t hlen;
    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb || rb + 1 >= s + n || rb[1] != ':') return 1;
        host = s + 1;
        hlen = (size_t)(rb - host);
        colon = rb + 1;
    } else {
        colon = memrchr(s, ':', n);
        if (!colon) return 1;
        hlen = (size_t)(colon - s);
        if (memchr(host, ':', hlen)) return 1;
    }
    size_t plen = (size_t)(s + n - colon - 1);
    if (plen == 0 || plen > 5 || hlen == 0) return 1;
    int v = 0;
    for (size_t i = 0; i < plen; i++) {
        char c = colon[1 + i];
        if (c < '0' || c > '9') return 1;
        v = v * 10 + (c - '0');
    }
    if (v > 65535 || ipaddr_parse(host, hlen, a) != NULL) return 1;
    *port = v;
    return 0;
}

/* The sockaddr of an address object (or a plain table with the same
 * fields) at idx: {ip = Addr or string, port} or {name = path}. */
static int packet_dest_table(lua_State *L, pconn *p, int idx,
                             struct sockaddr_storage *ss, socklen_t *len, int keys) {
    ipaddr a;
    int ok = 0;
    if (packet_rawfield(L, idx, keys, PKEY_IP) != LUA_TNIL) {
        ipaddr *u = ipaddr_test(L, -1);
        size_t n = 0;
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
        if (u) a = *u;
        ok = u || (s && ipaddr_parse(s, n, &a) == NULL);
        packet_rawfield(L, idx, keys, PKEY_PORT);
        int isint;
        lua_Integer port = lua_tointegerx(L, -1, &isint);
        lua_pop(L, 2);
        if (!ok || !isint || port < 0 || port > 65535) return ERR_BADADDR;
        return ipaddr_to_sockaddr(&a, (int)port, packet_want6(p), ss, len);
    }
    lua_pop(L, 1);
    if (packet_rawfield(L, idx, keys, PKEY_NAME) != LUA_TSTRING) {
        lua_pop(L, 1);
        return ERR_BADADDR;
    }
    int e = sock_sockaddr_arg(L, lua_gettop(L), 0, ss, len);
    lua_pop(L, 1);
    return e;
}

/* The sockaddr of the destination argument at idx (an address object or
 * a string). Returns 0, an errno or ERR_BADADDR; sets *resolve (and
 * returns 0) when idx is a host name the Lua resolver must look up. The
 * last literal string is cached, so a loop writing to one string parses
 * it once. */
int packet_dest(lua_State *L, pconn *p, int idx, struct sockaddr_storage *ss,
                socklen_t *len, int *resolve, int keys) {
    *resolve = 0;
    if (lua_type(L, idx) != LUA_TSTRING) return packet_dest_table(L, p, idx, ss, len, keys);
    if (p->net == NET_UNIXGRAM) return sock_sockaddr_arg(L, idx, 0, ss, len);
    lua_getiuservalue(L, 1, PACKET_UV_DEST);
    int hit = lua_rawequal(L, -1, idx);
    lua_pop(L, 1);
    if (hit) {
        memcpy(ss, &p->dst, p->dlen);
        *len = p->dlen;
        return 0;
    }
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    ipaddr a;
    int port;
    if (packet_parse_literal(s, n, &a, &port)) {
        *resolve = 1;
        return 0;
    }
    int e = ipaddr_to_sockaddr(&a, port, packet_want6(p), ss, len);
    if (e) return e;
    memcpy(&p->dst, ss, *len);
    p->dlen = *len;
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, 1, PACKET_UV_DEST);
    return 0;
}

/* Render the destination at idx for an error message (ss: its sockaddr,
 * or NULL when it did not convert). */
const char *packet_dest_name(lua_State *L, int idx, const struct sockaddr_storage *ss,
                             socklen_t len, char *buf) {
    if (lua_type(L, idx) == LUA_TSTRING) return lua_tostring(L, idx);
    if (!ss) return NULL;
    sock_format(ss, len, buf);
    return buf[0] ? buf : NULL;
}

/* ---- read_from and read ---------------------------------------------- */

/* A receive buffer of n bytes: the loop's shared one when it is big
 * enough, else one kept in the conn's uservalue (p at index 1). */
char *packet_buffer(lua_State *L, pconn *p, size_t n) {
    loop *lp = p->h.lp;
    if (n <= lp->rbufsz) return lp->rbuf;
    lua_getiuservalue(L, 1, PACKET_UV_BUF);
    char *b = lua_touserdata(L, -1);
    if (b && lua_rawlen(L, -1) >= n) {
        lua_pop(L, 1);
        return b;
    }
    lua_pop(L, 1);
    b = lua_newuserdatauv(L, n, 0);
    lua_setiuservalue(L, 1, PACKET_UV_BUF);     /* pops it; the conn anchors it */
    return b;
}

static lua_Integer packet_max_arg(lua_State *L, int ctxidx, lua_Integer def, lua_Integer cap) {
    lua_Integer max = ctxidx == 2 ? def : luaL_optinteger(L, 2, def);
    luaL_argcheck(L, max > 0, 2, "max must be positive");
    return max > cap ? cap : max;
}

/* Receive one datagram into the results data, addr (nil for read or an
 * unnamed sender), truncated; or -errno. */
static int packet_recv_one(lua_State *L, pconn *p, size_t max, int from) {
    char *buf = packet_buffer(L, p, max);
    struct sockaddr_storage sa;
    struct iovec iov = {buf, max};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = from ? &sa : NULL;
    m.msg_namelen = from ? sizeof sa : 0;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t n = recvmsg(p->h.fd, &m, 0);
    if (n < 0) return -errno;
    lua_pushlstring(L, buf, (size_t)n);            /* a zero-length datagram is "" */
    if (from) {
        lua_getiuservalue(L, 1, PACKET_UV_SENDERS);
        packet_push_sender(L, p, lua_gettop(L), &sa, m.msg_namelen);
        lua_remove(L, -2);                         /* the senders table */
    } else {
        lua_pushnil(L);
    }
    lua_pushboolean(L, (m.msg_flags & MSG_TRUNC) != 0);
    return 3;
}

static int packet_read_k(lua_State *L, int status, lua_KContext kctx);

/* Shared by read_from (from = 1) and read: the continuation's context is
 * ctxidx * 2 + from. */
static int packet_read_start(lua_State *L, lua_CFunction self, int from) {
    pconn *p = packet_check(L);
    int ctxidx = ctx_find(L, 2);
    packet_max_arg(L, ctxidx, PACKET_READ_DEFAULT, PACKET_READ_MAX);
    task *t = task_current(L);
    if (!t) return loop_block(L, self, lua_gettop(L));
    if (ctx_ended(L, ctxidx)) return packet_failx(L, p, "read", NULL, ERR_CTX, ctxidx, NULL);
    if (p->h.rd) return packet_fail(L, p, "read", NULL, ERR_BUSY);
    return packet_read_k(L, LUA_OK, ctxidx * 2 + from);
}

static int packet_read_k(lua_State *L, int status, lua_KContext kctx) {
    pconn *p = packet_check(L);
    task *t = task_current(L);
    int ctxidx = (int)(kctx / 2), from = (int)(kctx & 1);
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (cause) return packet_failx(L, p, "read", NULL, cause, ctxidx, NULL);
    size_t max = (size_t)packet_max_arg(L, ctxidx, PACKET_READ_DEFAULT, PACKET_READ_MAX);
    for (;;) {
        if (p->h.fd < 0) return packet_fail(L, p, "read", NULL, ERR_CLOSED);
        if (handle_deadline_passed(p->h.rdl)) return packet_fail(L, p, "read", NULL, ERR_TIMEOUT);
        int r = packet_recv_one(L, p, max, from);
        if (r > 0) return r;
        if (r == -EINTR) continue;
        if (r != -EAGAIN && r != -EWOULDBLOCK)
            return packet_fail(L, p, "read", from ? "recvfrom" : "read", -r);
        return task_park_ctx(L, t, &p->h.rd, p->h.rdl, PARK_READ, ctxidx, kctx, packet_read_k);
    }
}

/* pc:read_from([max] [, ctx]) -> data, addr, truncated | nil, err: the
 * next datagram (at most max bytes, default 64 KiB; a longer one gives its
 * head and truncated = true) and its sender (nil for an unnamed unixgram
 * socket). The addr object of a recent sender is returned again. */
static int packet_read_from(lua_State *L) {
    return packet_read_start(L, packet_read_from, 1);
}

/* pc:read([max] [, ctx]) -> data, nil, truncated | nil, err: read_from
 * without the sender, for connected conns. */
static int packet_read(lua_State *L) {
    return packet_read_start(L, packet_read, 0);
}

/* ---- write_to and write ---------------------------------------------- */

/* Move the net.context among the arguments from first on to stack slot
 * pos (nil when there is none), pad the arguments below it with nil and
 * drop the rest. Returns pos, or 0 without a ctx. */
int packet_ctx_to(lua_State *L, int first, int pos) {
    int ctxidx = ctx_find(L, first);
    if (ctxidx) lua_pushvalue(L, ctxidx);
    else lua_pushnil(L);
    lua_insert(L, 1);                              /* ctx below the arguments */
    if (ctxidx) {
        lua_pushnil(L);
        lua_replace(L, ctxidx + 1);
    }
    lua_settop(L, pos);
    lua_rotate(L, 1, -1);                          /* ctx up to pos */
    return ctxidx ? pos : 0;
}

static int packet_send_k(lua_State *L, int status, lua_KContext kctx);

/* Park a writer: on the handle, or, when another writer already waits
 * there, in a FIFO behind it (datagram writes are atomic, so concurrent
 * writers are fine; only the waiting needs a slot). When the writer on
 * the handle runs again, the socket moved: the queue is woken to retry. */
int packet_park_writer(lua_State *L, pconn *p, task *t, int ctxidx, lua_KContext kctx,
                       lua_KFunction k) {
    if (!p->h.wr)
        return task_park_ctx(L, t, &p->h.wr, p->h.wrl, PARK_WRITE, ctxidx, kctx * 2, k);
    waitq_push(&p->wq, t);
    return task_park_ctx(L, t, NULL, p->h.wrl, PARK_WRITE, ctxidx, kctx * 2 + 1, k);
}

/* The outcome of a writer's park (see packet_park_writer). */
int packet_writer_cause(lua_State *L, task *t, int status, int ctxidx, lua_KContext kctx) {
    pconn *p = packet_check(L);
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (status == LUA_YIELD) {
        if (kctx & 1) waitq_remove(&p->wq, t);    /* a queued writer: out of the queue */
        else waitq_wake_all(&p->wq, WAKE_READY);  /* the handle's writer: let them retry */
    }
    return cause;
}

/* A write failure naming the destination at 3 (when there is one). */
static int packet_send_fail(lua_State *L, pconn *p, const char *sys, int cause,
                            const struct sockaddr_storage *ss, socklen_t len) {
    char name[ADDR_STRLEN];
    const char *dest = lua_isnil(L, 3) ? NULL : packet_dest_name(L, 3, ss, len, name);
    return packet_failx(L, p, "write", sys, cause, 0, dest);
}

/* Stack: 1 pc, 2 data, 3 destination or nil (write), 4 ctx or nil. */
static int packet_send_k(lua_State *L, int status, lua_KContext kctx) {
    pconn *p = packet_check(L);
    task *t = task_current(L);
    int ctxidx = lua_isnil(L, 4) ? 0 : 4, to = !lua_isnil(L, 3), resolve;
    int cause = packet_writer_cause(L, t, status, ctxidx, kctx);
    if (cause) return packet_failx(L, p, "write", NULL, cause, ctxidx, NULL);
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (to && (cause = packet_dest(L, p, 3, &ss, &len, &resolve, 0)) == 0 && resolve)
        cause = ERR_BADADDR;                       /* the resolver gave no address */
    if (cause) return packet_send_fail(L, p, NULL, cause, NULL, 0);
    size_t n;
    const char *s = lua_tolstring(L, 2, &n);
    for (;;) {
        if (p->h.fd < 0) return packet_send_fail(L, p, NULL, ERR_CLOSED, &ss, len);
        if (handle_deadline_passed(p->h.wrl)) return packet_send_fail(L, p, NULL, ERR_TIMEOUT, &ss, len);
        ssize_t r = sendto(p->h.fd, s, n, MSG_NOSIGNAL, to ? (struct sockaddr *)&ss : NULL, len);
        if (r >= 0) {
            lua_pushinteger(L, (lua_Integer)r);
            return 1;
        }
        int e = errno;
        if (e == EINTR) continue;
        if (e != EAGAIN && e != EWOULDBLOCK)
            return packet_send_fail(L, p, to ? "sendto" : "write", e, &ss, len);
        return packet_park_writer(L, p, t, ctxidx, 0, packet_send_k);
    }
}

/* After the Lua resolver ran (results on top: addr | nil, err). */
static int packet_resolved_k(lua_State *L, int status, lua_KContext kctx) {
    (void)status;
    (void)kctx;
    if (lua_isnil(L, -2)) return 2;
    lua_pop(L, 1);
    lua_replace(L, 3);                             /* the addr object for the name */
    return packet_send_k(L, LUA_OK, 0);
}

/* Checks common to write_to and write, then the first attempt. A host
 * name is resolved by coronet.packet's resolver (which may park). */
static int packet_send_start(lua_State *L, pconn *p) {
    int ctxidx = lua_isnil(L, 4) ? 0 : 4, resolve = 0;
    if (ctx_ended(L, ctxidx)) return packet_failx(L, p, "write", NULL, ERR_CTX, ctxidx, NULL);
    if (lua_isnil(L, 3) || lua_type(L, 3) != LUA_TSTRING || p->net == NET_UNIXGRAM)
        return packet_send_k(L, LUA_OK, 0);
    struct sockaddr_storage ss;
    socklen_t len;
    int e = packet_dest(L, p, 3, &ss, &len, &resolve, 0);
    if (e || !resolve) return packet_send_k(L, LUA_OK, 0);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &RESOLVE_KEY);
    if (lua_isnil(L, -1))
        return packet_failx(L, p, "write", NULL, ERR_BADADDR, 0, lua_tostring(L, 3));
    lua_pushstring(L, sock_netnames[p->net]);
    lua_pushvalue(L, 3);
    lua_pushstring(L, packet_want6(p) ? "6" : "4");
    lua_pushnumber(L, p->h.wrl);                   /* the write deadline and the */
    lua_pushvalue(L, 4);                           /* ctx bound the lookup too */
    lua_callk(L, 5, 2, 0, packet_resolved_k);
    return packet_resolved_k(L, LUA_OK, 0);
}

/* pc:write_to(data, addr [, ctx]) -> n | nil, err: send data as one
 * datagram to addr (an address object or a string: "host:port", a unix
 * path or "@abstract"). A malformed or unreachable address is nil, err. */
static int packet_write_to(lua_State *L) {
    pconn *p = packet_check(L);
    luaL_checkstring(L, 2);
    int at = lua_type(L, 3);
    luaL_argexpected(L, at == LUA_TSTRING || at == LUA_TTABLE, 3, "address object or string");
    task *t = task_current(L);
    if (!t) return loop_block(L, packet_write_to, lua_gettop(L));
    packet_ctx_to(L, 4, 4);
    if (p->connected) return packet_failx(L, p, "write", NULL, EISCONN, 0, NULL);
    return packet_send_start(L, p);
}

/* pc:write(data [, ctx]) -> n | nil, err: send data as one datagram to
 * the connected peer. */
static int packet_write(lua_State *L) {
    pconn *p = packet_check(L);
    luaL_checkstring(L, 2);
    task *t = task_current(L);
    if (!t) return loop_block(L, packet_write, lua_gettop(L));
    packet_ctx_to(L, 3, 4);
    lua_pushnil(L);
    lua_replace(L, 3);                             /* no destination */
    return packet_send_start(L, p);
}

/* ---- sockets, bind, connect (used by coronet.packet) ------------------- */

/* core.packet_socket(net, family, dialing) -> pc | nil, err: a fresh
 * datagram socket (family "4", "6" or "unix") registered with the loop;
 * UDP ones may broadcast, as Go's. */
static int packet_socket(lua_State *L) {
    int net = luaL_checkoption(L, 1, NULL, sock_netnames);
    const char *fam = luaL_checkstring(L, 2);
    int family = strcmp(fam, "6") == 0 ? AF_INET6 : strcmp(fam, "4") == 0 ? AF_INET : AF_UNIX;
    pconn *p = packet_new(L, net);
    p->dialing = (uint8_t)lua_toboolean(L, 3);
    p->la.ss_family = (sa_family_t)family;         /* remembered until bind/connect */
    const char *op = p->dialing ? "dial" : "listen";
    int fd = sock_open(family, SOCK_DGRAM);
    if (fd < 0) return packet_fail(L, p, op, "socket", -fd);
    int e = handle_init(&p->h, loop_get(L), fd);
    if (e) {
        close(fd);
        return packet_fail(L, p, op, "epoll_ctl", e);
    }
    if (family != AF_UNIX) sock_set_int(fd, SOL_SOCKET, SO_BROADCAST, 1);
    track_handle(L, -1);
    return 1;
}

static void packet_fill_local(pconn *p) {
    socklen_t n = sizeof p->la;
    if (getsockname(p->h.fd, (struct sockaddr *)&p->la, &n) == 0) p->llen = n;
}

/* pc:_bind(ip, port | path [, unlink]) -> true | nil, err: bind to a
 * local address; a unixgram path is removed on close when unlink. */
static int packet_bind(lua_State *L) {
    pconn *p = packet_check(L);
    const char *op = p->dialing ? "dial" : "listen";
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int e = sock_sockaddr_arg(L, 2, packet_want6(p), &ss, &len);
    int uidx = ipaddr_test(L, 2) ? 4 : 3;
    if (!e && bind(p->h.fd, (struct sockaddr *)&ss, len) < 0) e = errno;
    if (e) {
        if (!p->dialing && len > 0) {              /* "listen udp 1.2.3.4:53: bind: ..." */
            memcpy(&p->la, &ss, len);
            p->llen = len;
        }
        return packet_fail(L, p, op, "bind", e);
    }
    packet_fill_local(p);
    p->unlink = (uint8_t)(p->net == NET_UNIXGRAM && lua_toboolean(L, uidx));
    return packet_ok(L);
}

/* pc:_autobind() -> true | nil, err: give a unixgram socket an abstract
 * name of the kernel's choosing, so its peer can answer. */
static int packet_autobind(lua_State *L) {
    pconn *p = packet_check(L);
    struct sockaddr_un su;
    memset(&su, 0, sizeof su);
    su.sun_family = AF_UNIX;
    if (bind(p->h.fd, (struct sockaddr *)&su, sizeof(sa_family_t)) < 0)
        return packet_fail(L, p, "dial", "bind", errno);
    packet_fill_local(p);
    return packet_ok(L);
}

/* pc:_connect(ip, port | path) -> true | nil, err: fix the peer (a
 * datagram connect never blocks). */
static int packet_connect(lua_State *L) {
    pconn *p = packet_check(L);
    int e = sock_sockaddr_arg(L, 2, packet_want6(p), &p->ra, &p->rlen);
    if (e) {
        p->rlen = 0;
        return packet_fail(L, p, "dial", NULL, e);
    }
    int r;
    do r = connect(p->h.fd, (struct sockaddr *)&p->ra, p->rlen);
    while (r < 0 && errno == EINTR);
    if (r < 0) return packet_fail(L, p, "dial", "connect", errno);
    packet_fill_local(p);
    p->connected = 1;
    p->dialing = 0;
    return packet_ok(L);
}

/* pc:_ready(): construction is over; errors now name read/write. */
static int packet_ready(lua_State *L) {
    packet_check(L)->dialing = 0;
    return 0;
}

/* core.packet_init(resolve): coronet.packet's resolver for write_to's
 * host names: resolve(net, address, family) -> addr | nil, err. */
static int packet_init(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &RESOLVE_KEY);
    return 0;
}

/* core.file_packet_conn(fd) -> pc | nil, err: a packet conn over a dup of
 * an inherited datagram socket fd (the caller keeps fd). */
static int packet_from_file(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    pconn *p = packet_new(L, NET_UDP);
    int nfd = sock_dup(fd), type = 0;
    socklen_t n = sizeof type;
    if (nfd < 0) return packet_fail(L, p, "file", "dup", -nfd);
    p->llen = sizeof p->la;
    if (getsockopt(nfd, SOL_SOCKET, SO_TYPE, &type, &n) < 0 || type != SOCK_DGRAM ||
        getsockname(nfd, (struct sockaddr *)&p->la, &p->llen) < 0) {
        int e = type && type != SOCK_DGRAM ? EPROTOTYPE : errno;
        close(nfd);
        p->llen = 0;
        return packet_fail(L, p, "file", "getsockopt", e);
    }
    p->net = p->la.ss_family == AF_UNIX ? NET_UNIXGRAM : NET_UDP;
    p->rlen = sizeof p->ra;
    if (getpeername(nfd, (struct sockaddr *)&p->ra, &p->rlen) < 0) p->rlen = 0;
    p->connected = p->rlen > 0;
    int e = handle_init(&p->h, loop_get(L), nfd);
    if (e) {
        close(nfd);
        return packet_fail(L, p, "file", "epoll_ctl", e);
    }
    track_handle(L, -1);
    return 1;
}

/* ---- close, addresses, deadlines -------------------------------------- */

static void packet_unlink(pconn *p) {
    const struct sockaddr_un *su = (const struct sockaddr_un *)&p->la;
    if (p->unlink && p->la.ss_family == AF_UNIX && p->llen > sizeof(sa_family_t) &&
        su->sun_path[0] != 0)
        unlink(su->sun_path);
    p->unlink = 0;
}

/* pc:close() -> true | nil, ErrClosed: parked readers and writers wake
 * with ErrClosed; a unixgram path listen_packet created is removed. */
static int packet_close(lua_State *L) {
    pconn *p = packet_check(L);
    waitq_wake_all(&p->wq, WAKE_CLOSED);
    if (handle_close(&p->h) < 0) return packet_fail(L, p, "close", NULL, ERR_CLOSED);
    packet_unlink(p);
    return packet_ok(L);
}

static int packet_gc(lua_State *L) {
    pconn *p = packet_check(L);
    waitq_wake_all(&p->wq, WAKE_CLOSED);
    if (handle_close(&p->h) == 0) packet_unlink(p);
    return 0;
}

/* pc:local_addr() -> addr: still valid after close. */
static int packet_local_addr(lua_State *L) {
    pconn *p = packet_check(L);
    sock_push_addr(L, &p->la, p->llen, sock_netnames[p->net]);
    return 1;
}

/* pc:remote_addr() -> addr | nil: the peer of a connected conn. */
static int packet_remote_addr(lua_State *L) {
    pconn *p = packet_check(L);
    sock_push_addr(L, &p->ra, p->rlen, sock_netnames[p->net]);
    return 1;
}

static int packet_deadline(lua_State *L, int rd, int wr) {
    pconn *p = packet_check(L);
    double t = handle_deadline_arg(L, 2);
    if (p->h.fd < 0) return packet_fail(L, p, "set", NULL, ERR_CLOSED);
    handle_set_deadline(&p->h, rd, wr, t);
    if (wr) waitq_set_deadline(&p->wq, t);
    return packet_ok(L);
}

/* pc:set_deadline(t | nil): absolute read and write deadline. */
static int packet_set_deadline(lua_State *L) { return packet_deadline(L, 1, 1); }
static int packet_set_read_deadline(lua_State *L) { return packet_deadline(L, 1, 0); }
static int packet_set_write_deadline(lua_State *L) { return packet_deadline(L, 0, 1); }

/* pc:fd() -> the descriptor (-1 once closed); it stays owned by pc. */
static int packet_fd(lua_State *L) {
    lua_pushinteger(L, packet_check(L)->h.fd);
    return 1;
}

/* pc:file() -> fd | nil, err: a dup without close-on-exec, to hand to a
 * child; the caller owns and closes it. */
static int packet_file(lua_State *L) {
    pconn *p = packet_check(L);
    if (p->h.fd < 0) return packet_fail(L, p, "file", NULL, ERR_CLOSED);
    int fd = dup(p->h.fd);
    if (fd < 0) return packet_fail(L, p, "file", "dup", errno);
    lua_pushinteger(L, fd);
    return 1;
}

static int packet_tostring(lua_State *L) {
    pconn *p = packet_check(L);
    char src[ADDR_STRLEN], dst[ADDR_STRLEN];
    sock_format(&p->la, p->llen, src);
    sock_format(&p->ra, p->rlen, dst);
    lua_pushfstring(L, "packet conn %s %s%s%s%s", sock_netnames[p->net], src, dst[0] ? "->" : "",
                    dst, p->h.fd < 0 ? " (closed)" : "");
    return 1;
}

static const luaL_Reg packet_methods[] = {
    {"_autobind", packet_autobind},
    {"_bind", packet_bind},
    {"_connect", packet_connect},
    {"_ready", packet_ready},
    {"close", packet_close},
    {"fd", packet_fd},
    {"file", packet_file},
    {"local_addr", packet_local_addr},
    {"read", packet_read},
    {"read_from", packet_read_from},
    {"remote_addr", packet_remote_addr},
    {"set_deadline", packet_set_deadline},
    {"set_read_deadline", packet_set_read_deadline},
    {"set_write_deadline", packet_set_write_deadline},
    {"write", packet_write},
    {"write_to", packet_write_to},
    {NULL, NULL}
};

static const luaL_Reg packet_meta[] = {
    {"__close", packet_gc},
    {"__gc", packet_gc},
    {"__tostring", packet_tostring},
    {NULL, NULL}
};

static const luaL_Reg packet_funcs[] = {
    {"file_packet_conn", packet_from_file},
    {"packet_init", packet_init},
    {"packet_socket", packet_socket},
    {NULL, NULL}
};

/* packet_open: see packet.h. */
int packet_open(lua_State *L) {
    luaL_newmetatable(L, PACKET_MT);
    luaL_setfuncs(L, packet_meta, 0);
    luaL_newlib(L, packet_methods);
    luaL_setfuncs(L, packet_batch_methods, 0);
    luaL_setfuncs(L, packet_opt_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_setfuncs(L, packet_funcs, 0);
    return 0;
}
