/* listener.c - stream listeners (TCP, unix): accept parks on the handle
 * like a read; accepted TCP conns get TCP_NODELAY and keepalive as Go's. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "lauxlib.h"
#include "modules.h"
#include "class.h"
#include "conn.h"
#include "errors.h"
#include "sock.h"
#include "track.h"

#define LISTENER_MT "coronet.listener"
#define LISTENER_KEEPALIVE 15   /* seconds, Go's default for accepted conns */
#define LISTENER_BACKOFF_MIN 0.005  /* first pause after EMFILE and the like */
#define LISTENER_BACKOFF_MAX 1.0    /* the pause doubles up to this */

typedef struct listener {
    handle h;
    uint8_t net;          /* NET_* */
    uint8_t unlink;       /* remove the unix socket path on close */
    int keepalive;        /* seconds for accepted TCP conns; < 0 off */
    int notsent_lowat;    /* TCP_NOTSENT_LOWAT for them (0: the kernel's) */
    /* 1: TCP_NODELAY, keepalive and TCP_NOTSENT_LOWAT are set on the
     * listening socket and accepted ones inherit them (Linux does), so
     * accept sets none; 2: the first accepted conn showed they were
     * inherited; 0: set them per conn */
    uint8_t inherits;
    socklen_t alen;
    struct sockaddr_storage a;
    waitq aq;             /* acceptors waiting behind the one on h.rd */
    waitq bq;             /* acceptors pausing after a resource error */
    double backoff;       /* the current pause (s); 0 after a success */
} listener;

static const char LISTENERMT_KEY = 0;   /* registry: LISTENER_MT (class_check) */

static listener *listener_check(lua_State *L) {
    return class_check(L, 1, &LISTENERMT_KEY, LISTENER_MT);
}

static listener *listener_new(lua_State *L, int net) {
    listener *ln = lua_newuserdatauv(L, sizeof *ln, 0);
    memset(ln, 0, sizeof *ln);
    ln->h.fd = -1;
    ln->net = (uint8_t)net;
    ln->keepalive = LISTENER_KEEPALIVE;
    ln->notsent_lowat = CONN_NOTSENT_LOWAT;
    luaL_setmetatable(L, LISTENER_MT);
    return ln;
}

static int listener_fail(lua_State *L, listener *ln, const char *op, const char *sys, int cause,
                         int ctxidx) {
    char a[ADDR_STRLEN];
    sock_format(&ln->a, ln->alen, a);
    operr e = {op, sock_netnames[ln->net], NULL, a[0] ? a : NULL, sys, NULL, ctxidx};
    return errors_fail(L, &e, cause);
}

static int listener_ok(lua_State *L) {
    lua_pushboolean(L, 1);
    return 1;
}

/* core.listener_socket(net, family) -> listener | nil, err: a fresh socket
 * (family "4", "6" or "unix"); TCP ones get SO_REUSEADDR, as Go's. */
static int listener_socket(lua_State *L) {
    int net = luaL_checkoption(L, 1, NULL, sock_netnames);
    const char *fam = luaL_checkstring(L, 2);
    int family = strcmp(fam, "6") == 0 ? AF_INET6 : strcmp(fam, "4") == 0 ? AF_INET : AF_UNIX;
    listener *ln = listener_new(L, net);
    ln->a.ss_family = (sa_family_t)family;
    int fd = sock_open(family, SOCK_STREAM);
    if (fd < 0) return listener_fail(L, ln, "listen", "socket", -fd, 0);
    int e = handle_init(&ln->h, loop_get(L), fd);
    if (e) {
        close(fd);
        return listener_fail(L, ln, "listen", "epoll_ctl", e, 0);
    }
    if (family != AF_UNIX) sock_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    track_handle(L, -1);
    return 1;
}

/* listener:_bind(ip, port | path) -> true | nil, err. */
static int listener_bind(lua_State *L) {
    listener *ln = listener_check(L);
    int e = sock_sockaddr_arg(L, 2, ln->a.ss_family == AF_INET6, &ln->a, &ln->alen);
    if (!e && bind(ln->h.fd, (struct sockaddr *)&ln->a, ln->alen) < 0) e = errno;
    if (e) return listener_fail(L, ln, "listen", "bind", e, 0);
    return listener_ok(L);
}

/* TCP_NODELAY, ln's TCP_NOTSENT_LOWAT and, unless off, keepalive with
 * ln's period, on fd (an accepted conn, or the listening socket for its
 * conns to inherit). */
static int listener_set_conn_opts(const listener *ln, int fd) {
    int e = sock_set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (!e) e = sock_set_int(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, ln->notsent_lowat);
    if (!e && ln->keepalive >= 0) e = sock_keepalive(fd, 1, ln->keepalive);
    return e;
}

/* listener:_listen(backlog, unlink_on_close, keepalive, notsent_lowat)
 * -> true | nil, err. */
static int listener_listen(lua_State *L) {
    listener *ln = listener_check(L);
    int backlog = (int)luaL_optinteger(L, 2, SOMAXCONN);
    ln->unlink = (uint8_t)lua_toboolean(L, 3);
    lua_Number ka = luaL_optnumber(L, 4, 0);   /* seconds; 0: Go's default; < 0: off */
    if (!(ka <= SOCK_KEEPALIVE_MAX))           /* NaN, inf: no int holds them */
        return luaL_error(L, "listen: keepalive out of range (at most %d s, got %f)",
                          SOCK_KEEPALIVE_MAX, ka);
    ln->keepalive = ka < 0 ? -1 : ka == 0 ? LISTENER_KEEPALIVE : (int)ceil(ka);
    ln->notsent_lowat = sock_lowat_opt(L, 5, "listen", CONN_NOTSENT_LOWAT);
    if (listen(ln->h.fd, backlog) < 0) return listener_fail(L, ln, "listen", "listen", errno, 0);
    ln->inherits = ln->net != NET_UNIX && listener_set_conn_opts(ln, ln->h.fd) == 0;
    socklen_t n = sizeof ln->a;
    if (getsockname(ln->h.fd, (struct sockaddr *)&ln->a, &n) == 0) ln->alen = n;
    return listener_ok(L);
}

/* The local address of every conn ln accepts, when the bound address
 * says it (a specific IP and port, or a unix path): accept then needs no
 * getsockname. NULL for a wildcard (0.0.0.0, ::), where it depends on the
 * conn. */
static const struct sockaddr_storage *listener_conn_local(const listener *ln) {
    const struct sockaddr_storage *a = &ln->a;
    if (!ln->alen) return NULL;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY) ? NULL : a;
    if (a->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr) ? NULL : a;
    return a->ss_family == AF_UNIX ? a : NULL;
}

/* Whether fd has the options accepted conns must have (the first
 * accepted conn of a listener that relies on inheritance checks once). */
static int listener_conn_has_opts(const listener *ln, int fd) {
    int nodelay = 0, ka = 0, lowat = -1;
    socklen_t n = sizeof nodelay;
    if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &n) < 0) return 0;
    n = sizeof ka;
    if (getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, &n) < 0) return 0;
    n = sizeof lowat;
    if (getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, &n) < 0) return 0;
    return nodelay && !ka == (ln->keepalive < 0) && lowat == ln->notsent_lowat;
}

static int listener_setup_conn(listener *ln, int fd) {
    if (ln->net == NET_UNIX || ln->inherits == 2) return 0;
    if (ln->inherits == 1) {
        ln->inherits = listener_conn_has_opts(ln, fd) ? 2 : 0;
        if (ln->inherits) return 0;
    }
    return listener_set_conn_opts(ln, fd);
}

static int listener_accept_k(lua_State *L, int status, lua_KContext kctx);
static int listener_accept_run(lua_State *L, listener *ln, task *t, int status, lua_KContext kctx);

/* The continuation's context: ctxidx, the errno a pause reports, and how
 * the task waited (on the handle, queued behind it, pausing). */
enum { ACC_HANDLE = 0, ACC_QUEUED, ACC_PAUSE };
#define ACC_KCTX(ctxidx, e, mode) ((lua_KContext)(ctxidx) * 1024 + (e) * 4 + (mode))

/* listener:accept([ctx]) -> conn | nil, err: the next connection; a close
 * wakes it with ErrClosed. Several tasks may accept at once, as in Go: the
 * first waits on the handle, the others queue behind it and retry whenever
 * it runs again. Running out of fds or memory (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) is returned as an error, but only after the caller paused for a
 * backoff (5 ms, doubling to 1 s while the errors go on, reset by a
 * success; bounded by the deadline and ctx), so a plain retry loop lets
 * the tasks that would free fds run instead of spinning. */
static int listener_accept(lua_State *L) {
    listener *ln = listener_check(L);
    task *t = task_current(L);
    if (!t) return loop_block(L, listener_accept, lua_gettop(L));
    int ctxidx = ctx_find(L, 2);
    if (ctx_ended(L, ctxidx)) return listener_fail(L, ln, "accept", NULL, ERR_CTX, ctxidx);
    return listener_accept_run(L, ln, t, LUA_OK, ACC_KCTX(ctxidx, 0, ACC_HANDLE));
}

static int listener_resource_error(int e) {
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

/* Pause t after the resource error e, then report it (ACC_PAUSE). */
static int listener_pause(lua_State *L, listener *ln, task *t, int e, int ctxidx) {
    double b = ln->backoff * 2;
    ln->backoff = b < LISTENER_BACKOFF_MIN ? LISTENER_BACKOFF_MIN
                : b > LISTENER_BACKOFF_MAX ? LISTENER_BACKOFF_MAX : b;
    double until = loop_now() + ln->backoff;
    if (ln->h.rdl > 0 && ln->h.rdl < until) until = ln->h.rdl;
    waitq_push(&ln->bq, t);
    return task_park_ctx(L, t, NULL, until, PARK_ACCEPT, ctxidx,
                         ACC_KCTX(ctxidx, e & 255, ACC_PAUSE), listener_accept_k);
}

/* The continuation runs in the frame that parked: index 1 is the
 * listener listener_accept already checked, so it is taken as it is. */
static int listener_accept_k(lua_State *L, int status, lua_KContext kctx) {
    return listener_accept_run(L, lua_touserdata(L, 1), task_current(L), status, kctx);
}

/* The body of accept and its continuation: ln and t are the listener at 1
 * and the running task, status the continuation's (LUA_OK at first). */
static int listener_accept_run(lua_State *L, listener *ln, task *t, int status, lua_KContext kctx) {
    int ctxidx = (int)(kctx / 1024), mode = (int)(kctx & 3), pe = (int)((kctx / 4) & 255);
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (status == LUA_YIELD) {
        if (mode == ACC_QUEUED) waitq_remove(&ln->aq, t);
        else if (mode == ACC_PAUSE) waitq_remove(&ln->bq, t);
        if (mode != ACC_QUEUED) waitq_wake_all(&ln->aq, WAKE_READY);  /* the others retry */
    }
    if (mode == ACC_PAUSE && status == LUA_YIELD) {
        if (cause == ERR_TIMEOUT && !handle_deadline_passed(ln->h.rdl)) cause = 0;
        if (!cause && ln->h.fd >= 0) return listener_fail(L, ln, "accept", "accept4", pe, 0);
    }
    if (cause) return listener_fail(L, ln, "accept", NULL, cause, ctxidx);
    for (;;) {
        if (ln->h.fd < 0) return listener_fail(L, ln, "accept", NULL, ERR_CLOSED, 0);
        if (handle_deadline_passed(ln->h.rdl)) return listener_fail(L, ln, "accept", NULL, ERR_TIMEOUT, 0);
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(ln->h.fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED) continue;
            if (listener_resource_error(e)) return listener_pause(L, ln, t, e, ctxidx);
            if (e != EAGAIN && e != EWOULDBLOCK) return listener_fail(L, ln, "accept", "accept4", e, 0);
            if (!ln->h.rd)
                return task_park_ctx(L, t, &ln->h.rd, ln->h.rdl, PARK_ACCEPT, ctxidx,
                                     ACC_KCTX(ctxidx, 0, ACC_HANDLE), listener_accept_k);
            waitq_push(&ln->aq, t);
            return task_park_ctx(L, t, NULL, ln->h.rdl, PARK_ACCEPT, ctxidx,
                                 ACC_KCTX(ctxidx, 0, ACC_QUEUED), listener_accept_k);
        }
        ln->backoff = 0;
        listener_setup_conn(ln, fd);
        const struct sockaddr_storage *local = listener_conn_local(ln);
        conn *c = conn_new_addrlen(L, ln->net, local && ln->alen > plen ? ln->alen : plen);
        conn_attach(L, c, fd, local, ln->alen, &peer, plen);
        handle_accepted(&c->h);
        track_handle(L, -1);
        return 1;
    }
}

static void listener_unlink(listener *ln) {
    const struct sockaddr_un *su = (const struct sockaddr_un *)&ln->a;
    if (ln->unlink && ln->a.ss_family == AF_UNIX && ln->alen > sizeof(sa_family_t) &&
        su->sun_path[0] != 0)
        unlink(su->sun_path);
    ln->unlink = 0;
}

/* listener:close() -> true | nil, ErrClosed: a parked accept wakes with
 * ErrClosed; a unix socket path it created is removed (unlink_on_close). */
static int listener_close(lua_State *L) {
    listener *ln = listener_check(L);
    waitq_wake_all(&ln->aq, WAKE_CLOSED);
    waitq_wake_all(&ln->bq, WAKE_CLOSED);
    if (handle_close(&ln->h) < 0) return listener_fail(L, ln, "close", NULL, ERR_CLOSED, 0);
    listener_unlink(ln);
    return listener_ok(L);
}

static int listener_gc(lua_State *L) {
    listener *ln = listener_check(L);
    waitq_wake_all(&ln->aq, WAKE_CLOSED);
    waitq_wake_all(&ln->bq, WAKE_CLOSED);
    if (handle_close(&ln->h) == 0) listener_unlink(ln);
    return 0;
}

/* listener:addr() -> address object; still valid after close. */
static int listener_addr(lua_State *L) {
    listener *ln = listener_check(L);
    sock_push_addr(L, &ln->a, ln->alen, sock_netnames[ln->net]);
    return 1;
}

/* listener:set_deadline(t | nil): absolute deadline for accept. */
static int listener_set_deadline(lua_State *L) {
    listener *ln = listener_check(L);
    double t = handle_deadline_arg(L, 2);
    if (ln->h.fd < 0) return listener_fail(L, ln, "set", NULL, ERR_CLOSED, 0);
    handle_set_deadline(&ln->h, 1, 0, t);
    waitq_set_deadline(&ln->aq, t);
    waitq_wake_all(&ln->bq, WAKE_READY);  /* pausing acceptors report their error now */
    return listener_ok(L);
}

static int listener_fd(lua_State *L) {
    lua_pushinteger(L, listener_check(L)->h.fd);
    return 1;
}

/* listener:file() -> fd | nil, err: a dup without close-on-exec, to pass
 * the listening socket to a child (zero-downtime restart). */
static int listener_file(lua_State *L) {
    listener *ln = listener_check(L);
    if (ln->h.fd < 0) return listener_fail(L, ln, "file", NULL, ERR_CLOSED, 0);
    int fd = dup(ln->h.fd);
    if (fd < 0) return listener_fail(L, ln, "file", "dup", errno, 0);
    lua_pushinteger(L, fd);
    return 1;
}

/* listener:set_unlink_on_close(on): whether close removes the unix socket
 * path (Go's UnixListener.SetUnlinkOnClose). A listener handed to another
 * process (a restart) must not take the path with it. */
static int listener_set_unlink_on_close(lua_State *L) {
    listener *ln = listener_check(L);
    ln->unlink = (uint8_t)(lua_toboolean(L, 2) && ln->a.ss_family == AF_UNIX);
    return 0;
}

static int listener_tostring(lua_State *L) {
    listener *ln = listener_check(L);
    char a[ADDR_STRLEN];
    sock_format(&ln->a, ln->alen, a);
    lua_pushfstring(L, "listener %s %s%s", sock_netnames[ln->net], a,
                    ln->h.fd < 0 ? " (closed)" : "");
    return 1;
}

/* core.file_listener(fd) -> listener | nil, err: a listener over a dup of
 * an inherited listening stream socket (the caller keeps fd). */
static int listener_from_file(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    listener *ln = listener_new(L, NET_TCP);
    int nfd = sock_dup(fd);
    if (nfd < 0) return listener_fail(L, ln, "file", "dup", -nfd, 0);
    int acc = 0;
    socklen_t n = sizeof acc;
    ln->alen = sizeof ln->a;
    if (getsockopt(nfd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &n) < 0 || !acc ||
        getsockname(nfd, (struct sockaddr *)&ln->a, &ln->alen) < 0) {
        int e = acc ? errno : EINVAL;
        close(nfd);
        ln->alen = 0;
        return listener_fail(L, ln, "file", "getsockopt", e, 0);
    }
    ln->net = ln->a.ss_family == AF_UNIX ? NET_UNIX : NET_TCP;
    int e = handle_init(&ln->h, loop_get(L), nfd);
    if (e) {
        close(nfd);
        return listener_fail(L, ln, "file", "epoll_ctl", e, 0);
    }
    track_handle(L, -1);
    return 1;
}

static const luaL_Reg listener_methods[] = {
    {"_bind", listener_bind},
    {"_listen", listener_listen},
    {"accept", listener_accept},
    {"addr", listener_addr},
    {"close", listener_close},
    {"fd", listener_fd},
    {"file", listener_file},
    {"set_deadline", listener_set_deadline},
    {"set_unlink_on_close", listener_set_unlink_on_close},
    {NULL, NULL}
};

static const luaL_Reg listener_meta[] = {
    {"__close", listener_gc},
    {"__gc", listener_gc},
    {"__tostring", listener_tostring},
    {NULL, NULL}
};

static const luaL_Reg listener_funcs[] = {
    {"file_listener", listener_from_file},
    {"listener_socket", listener_socket},
    {NULL, NULL}
};

/* listener_open: register LISTENER_MT and add the listener constructors
 * to the table on top of the stack. */
int listener_open(lua_State *L) {
    class_register_keyed(L, LISTENER_MT, &LISTENERMT_KEY, listener_meta, listener_methods);
    luaL_setfuncs(L, listener_funcs, 0);
    return 0;
}
