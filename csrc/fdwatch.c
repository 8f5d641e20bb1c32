/* fdwatch.c - waiting for readiness on an fd coronet does not own (a
 * terminal, a pipe): the REPL reads stdin this way while tasks run. The fd
 * keeps its blocking mode, since O_NONBLOCK on a terminal would leak into
 * the shell; a read happens only after poll(2) said it won't block. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include "lauxlib.h"
#include "modules.h"
#include "class.h"
#include "errors.h"
#include "loop.h"

#define FDWATCH_MT "coronet.fdwatch"

typedef struct fdwatch {
    handle h;
    int fd;               /* the watched fd (not closed by us) */
    int plain;            /* a regular file: epoll refuses it, reads never block */
    int closed;
} fdwatch;

static fdwatch *fdwatch_check(lua_State *L) {
    return luaL_checkudata(L, 1, FDWATCH_MT);
}

static int fdwatch_ready(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

static int fdwatch_read_k(lua_State *L, int status, lua_KContext kctx);

/* watch:read([max] [, ctx]) -> data | nil, err: wait until the fd is
 * readable, then one read(2) of up to max bytes (default 4096); nil,
 * net.EOF at end of input. */
static int fdwatch_read(lua_State *L) {
    fdwatch_check(L);
    task *t = task_current(L);
    if (!t) return loop_block(L, fdwatch_read, lua_gettop(L));
    int ctxidx = ctx_find(L, 2);
    return fdwatch_read_k(L, LUA_OK, ctxidx);
}

static int fdwatch_fail(lua_State *L, int cause, int ctxidx) {
    operr e = {"read", "fd", NULL, NULL, "read", NULL, ctxidx};
    return errors_fail(L, &e, cause);
}

static int fdwatch_read_k(lua_State *L, int status, lua_KContext kctx) {
    fdwatch *w = fdwatch_check(L);
    task *t = task_current(L);
    int ctxidx = (int)kctx;
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (cause) return fdwatch_fail(L, cause, ctxidx);
    if (w->closed) return fdwatch_fail(L, ERR_CLOSED, 0);
    if (!w->plain && !fdwatch_ready(w->fd)) {
        if (w->h.rd) return fdwatch_fail(L, ERR_BUSY, 0);
        return task_park_ctx(L, t, &w->h.rd, 0, PARK_READ, ctxidx, kctx, fdwatch_read_k);
    }
    size_t max = (size_t)luaL_optinteger(L, 2, 4096);
    loop *lp = w->h.lp;
    if (max > lp->rbufsz) max = lp->rbufsz;
    ssize_t n;
    do n = read(w->fd, lp->rbuf, max);
    while (n < 0 && errno == EINTR);
    if (n < 0) return fdwatch_fail(L, errno, 0);
    if (n == 0) {
        lua_pushnil(L);
        errors_push_sentinel(L, ERR_EOF);
        return 2;
    }
    lua_pushlstring(L, lp->rbuf, (size_t)n);
    return 1;
}

/* watch:close(): stop watching (the fd itself stays open). */
static int fdwatch_close(lua_State *L) {
    fdwatch *w = fdwatch_check(L);
    w->closed = 1;
    if (w->h.fd >= 0) {
        if (w->h.rd) task_wake(w->h.rd, WAKE_CLOSED);
        handle_unwatch(&w->h);
    }
    return 0;
}

/* core.watch_fd(fd) -> watch | nil, err: watch a terminal or pipe fd. */
static int fdwatch_new(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    fdwatch *w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    w->h.fd = -1;
    w->fd = fd;
    luaL_setmetatable(L, FDWATCH_MT);
    int e = handle_init(&w->h, loop_get(L), fd);
    if (e == EPERM) {                    /* a regular file or /dev/null */
        w->plain = 1;
        e = 0;
    }
    if (e) {
        operr oe = {"watch", "fd", NULL, NULL, "epoll_ctl", NULL, 0};
        return errors_fail(L, &oe, e);
    }
    return 1;
}

static const luaL_Reg fdwatch_methods[] = {
    {"close", fdwatch_close},
    {"read", fdwatch_read},
    {NULL, NULL}
};

static const luaL_Reg fdwatch_meta[] = {
    {"__close", fdwatch_close},
    {"__gc", fdwatch_close},
    {NULL, NULL}
};

/* fdwatch_open: register FDWATCH_MT and add core.watch_fd to the table on
 * top of the stack. */
int fdwatch_open(lua_State *L) {
    class_register(L, FDWATCH_MT, fdwatch_meta, fdwatch_methods);
    lua_pushcfunction(L, fdwatch_new);
    lua_setfield(L, -2, "watch_fd");
    return 0;
}
