/* iocopy.c - net.io.copy's fast path: bytes move between descriptors in
 * the kernel and never become Lua strings. A socket source goes through a
 * pipe with splice(2) (socket -> pipe -> socket or file); a regular file
 * source is sent with sendfile(2). A side that would block parks the task
 * on that conn's handle, as conn.c's read and write do. For any other
 * pair, core.io_copy_fd returns false and net.io copies through a buffer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include "lauxlib.h"
#include "bufio.h"
#include "class.h"
#include "errors.h"

#define IOCOPY_MT "coronet.iocopy"
#define IOCOPY_CHUNK 65536      /* a pipe's default capacity */

/* iocopy: one copy in progress (userdata at stack index 5, so __gc closes
 * the pipe even if the copy is abandoned). */
typedef struct iocopy {
    int pfd[2];             /* socket source: the pipe the bytes pass through */
    size_t inpipe;          /* bytes in the pipe, not yet written out */
    lua_Integer done;       /* bytes written to the destination */
    lua_Integer left;       /* bytes still to read; < 0: until EOF */
    off_t off;              /* file source: where to read next */
    conn *src, *dst;        /* the conn of each side, or NULL for a file */
    luaL_Stream *srcf, *dstf; /* the file of each side, or NULL for a conn */
    int cause;              /* a failure: errno or ERR_* */
    const char *sys;        /* the syscall that failed, or NULL */
    uint8_t wside;          /* the failure or the wait is on the destination */
    uint8_t wheld;          /* we hold dst's write lock (a wait on dst) */
} iocopy;

enum { STEP_MORE, STEP_EOF, STEP_DONE, STEP_WAIT, STEP_FAIL };

/* The file at idx if it is an open regular file (a destination must not
 * be in append mode: splice to one fails); NULL otherwise. */
static luaL_Stream *iocopy_file(lua_State *L, int idx, int dst) {
    luaL_Stream *p = luaL_testudata(L, idx, LUA_FILEHANDLE);
    struct stat st;
    if (!p || !p->closef) return NULL;
    int fd = fileno(p->f);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return NULL;
    if (dst && (fcntl(fd, F_GETFL) & O_APPEND)) return NULL;
    return p;
}

static void iocopy_close_pipe(iocopy *st) {
    for (int i = 0; i < 2; i++) {
        if (st->pfd[i] >= 0) close(st->pfd[i]);
        st->pfd[i] = -1;
    }
}

/* Leave the files where the copy left them, so the Lua file handles go
 * on from there. */
static void iocopy_finish(iocopy *st) {
    iocopy_close_pipe(st);
    if (st->wheld) {                             /* let queued writers go */
        st->wheld = 0;
        conn_write_unlock(st->dst);
    }
    if (st->srcf && st->srcf->closef) fseeko(st->srcf->f, st->off, SEEK_SET);
    if (st->dstf && st->dstf->closef) {
        off_t pos = lseek(fileno(st->dstf->f), 0, SEEK_CUR);
        if (pos >= 0) fseeko(st->dstf->f, pos, SEEK_SET);
    }
}

static int iocopy_gc(lua_State *L) {
    iocopy_close_pipe(luaL_checkudata(L, 1, IOCOPY_MT));
    return 0;
}

static int iocopy_failed(iocopy *st, int wside, const char *sys, int cause) {
    st->wside = (uint8_t)wside;
    st->sys = sys;
    st->cause = cause;
    return STEP_FAIL;
}

/* The descriptor of a side, or -1 with the failure noted (closed or past
 * its deadline). */
static int iocopy_fd(iocopy *st, int wside) {
    conn *c = wside ? st->dst : st->src;
    luaL_Stream *f = wside ? st->dstf : st->srcf;
    if (f) {
        if (f->closef) return fileno(f->f);
    } else if (c->h.fd >= 0) {
        if (!handle_deadline_passed(wside ? c->h.wrl : c->h.rdl)) return c->h.fd;
        iocopy_failed(st, wside, NULL, ERR_TIMEOUT);
        return -1;
    }
    iocopy_failed(st, wside, NULL, ERR_CLOSED);
    return -1;
}

/* A syscall's result: progress, EOF, a wait on side wside, or a failure. */
static int iocopy_result(iocopy *st, ssize_t n, int wside, const char *sys) {
    if (n > 0) return STEP_MORE;
    if (n == 0) return STEP_EOF;
    int e = errno;
    if (e == EINTR) return STEP_MORE;
    if (e == EAGAIN || e == EWOULDBLOCK) {
        st->wside = (uint8_t)wside;
        return STEP_WAIT;
    }
    return iocopy_failed(st, wside, sys, e);
}

/* iocopy_step: one syscall's worth of copying. */
static int iocopy_step(iocopy *st) {
    size_t chunk = st->left < 0 || st->left > IOCOPY_CHUNK ? IOCOPY_CHUNK : (size_t)st->left;
    int out = -1, in = -1;
    ssize_t n;
    if (st->inpipe) {                            /* drain the pipe first */
        if ((out = iocopy_fd(st, 1)) < 0) return STEP_FAIL;
        n = splice(st->pfd[0], NULL, out, NULL, st->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            st->inpipe -= (size_t)n;
            st->done += n;
        }
        return n == 0 ? iocopy_failed(st, 1, "splice", EIO) : iocopy_result(st, n, 1, "splice");
    }
    if (st->left == 0) return STEP_DONE;
    if ((in = iocopy_fd(st, 0)) < 0) return STEP_FAIL;
    if (st->srcf) {                              /* file -> anything: sendfile */
        if ((out = iocopy_fd(st, 1)) < 0) return STEP_FAIL;
        n = sendfile(out, in, &st->off, chunk);
        if (n > 0) st->done += n;
        if (n > 0 && st->left > 0) st->left -= n;
        return iocopy_result(st, n, 1, "sendfile");
    }
    n = splice(in, NULL, st->pfd[1], NULL, chunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) st->inpipe += (size_t)n;
    if (n > 0 && st->left > 0) st->left -= n;
    return iocopy_result(st, n, 0, "splice");
}

/* nil, the error of the failed side, and the bytes copied. */
static int iocopy_fail(lua_State *L, iocopy *st) {
    int ctxidx = lua_isnil(L, 4) ? 0 : 4;
    const char *op = st->wside ? "write" : "read";
    conn *c = st->wside ? st->dst : st->src;
    iocopy_finish(st);
    if (c) {
        bufio_conn_fail(L, c, op, st->sys, st->cause, ctxidx);
    } else {
        operr e = {op, NULL, NULL, NULL, st->sys, NULL, ctxidx};
        errors_fail(L, &e, st->cause);
    }
    lua_pushinteger(L, st->done);
    return 3;
}

/* iocopy_abort: note a failure and return its results. */
static int iocopy_abort(lua_State *L, iocopy *st, int wside, const char *sys, int cause) {
    iocopy_failed(st, wside, sys, cause);
    return iocopy_fail(L, st);
}

/* iocopy_run: copy until done, EOF, a failure or a wait; the continuation
 * of every wait. Stack: 1 dst, 2 src, 3 n, 4 ctx or nil, 5 the state. */
static int iocopy_run(lua_State *L, int status, lua_KContext kctx) {
    iocopy *st = lua_touserdata(L, 5);
    int ctxidx = lua_isnil(L, 4) ? 0 : 4;
    int cause = task_resume_cause(L, task_current(L), status, ctxidx);
    if (cause) return iocopy_abort(L, st, st->wside, NULL, cause);
    int r;
    while ((r = iocopy_step(st)) == STEP_MORE) {}
    if (r == STEP_FAIL) return iocopy_fail(L, st);
    if (r == STEP_WAIT) {
        conn *c = st->wside ? st->dst : st->src;
        task **slot = !c ? NULL : st->wside ? &c->h.wr : &c->h.rd;
        if (!c) return iocopy_abort(L, st, st->wside, "splice", EAGAIN);
        if (*slot) return iocopy_abort(L, st, st->wside, NULL, ERR_BUSY);
        if (st->wside && !st->wheld) {           /* a writer like conn:write: */
            if (c->wlocked) return iocopy_abort(L, st, 1, NULL, ERR_BUSY);
            c->wlocked = 1;                      /* others queue behind the copy */
            st->wheld = 1;
        }
        return task_park_ctx(L, task_current(L), slot, st->wside ? c->h.wrl : c->h.rdl,
                             st->wside ? PARK_WRITE : PARK_READ, ctxidx, kctx, iocopy_run);
    }
    iocopy_finish(st);
    if (r == STEP_EOF && st->left > 0) {         /* fewer than n bytes: Go's CopyN */
        lua_pushnil(L);
        errors_push_sentinel(L, ERR_EOF);
        lua_pushinteger(L, st->done);
        return 3;
    }
    lua_pushinteger(L, st->done);
    return 1;
}

/* core.io_copy_fd(dst, src [, n] [, ctx]) -> false | copied | nil, err,
 * copied: copy src to dst (n bytes, or to EOF when n is nil or negative)
 * in the kernel when both are conns or regular files; false (at once,
 * nothing touched) when they are not, so the caller copies through a
 * buffer instead. EOF before n bytes is nil, net.EOF, copied. */
static int iocopy_copy(lua_State *L) {
    conn *dst = luaL_testudata(L, 1, CONN_MT), *src = luaL_testudata(L, 2, CONN_MT);
    luaL_Stream *dstf = dst ? NULL : iocopy_file(L, 1, 1);
    luaL_Stream *srcf = src ? NULL : iocopy_file(L, 2, 0);
    if ((!dst && !dstf) || (!src && !srcf)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    int ctxidx = ctx_find(L, 3);
    lua_Integer n = ctxidx == 3 || lua_isnoneornil(L, 3) ? -1 : luaL_checkinteger(L, 3);
    if (!task_current(L)) return loop_block(L, iocopy_copy, lua_gettop(L));
    lua_settop(L, 4);
    if (ctxidx != 4) {
        if (ctxidx) lua_copy(L, ctxidx, 4);
        else { lua_pushnil(L); lua_replace(L, 4); }
    }
    lua_pushinteger(L, n);
    lua_replace(L, 3);
    iocopy *st = lua_newuserdatauv(L, sizeof *st, 0); /* index 5 */
    memset(st, 0, sizeof *st);
    st->pfd[0] = st->pfd[1] = -1;
    luaL_setmetatable(L, IOCOPY_MT);
    st->src = src;
    st->dst = dst;
    st->srcf = srcf;
    st->dstf = dstf;
    st->left = n < 0 ? -1 : n;
    ctxidx = ctxidx ? 4 : 0;
    if (ctx_ended(L, ctxidx)) return iocopy_abort(L, st, 0, NULL, ERR_CTX);
    if ((src && src->h.rd) || (dst && dst->h.wr))
        return iocopy_abort(L, st, dst && dst->h.wr, NULL, ERR_BUSY);
    if (dstf && fflush(dstf->f) != 0) return iocopy_abort(L, st, 1, "fflush", errno);
    if (srcf) st->off = ftello(srcf->f);
    if (src && pipe2(st->pfd, O_NONBLOCK | O_CLOEXEC) < 0)
        return iocopy_abort(L, st, 0, "pipe2", errno);
    int e;                                       /* splice's EAGAIN parks: register both */
    if (src && (e = handle_register(&src->h, POLLER_BOTH)))
        return iocopy_abort(L, st, 0, "epoll_ctl", e);
    if (dst && (e = handle_register(&dst->h, POLLER_BOTH)))
        return iocopy_abort(L, st, 1, "epoll_ctl", e);
    return iocopy_run(L, LUA_OK, 0);
}

static const luaL_Reg iocopy_meta[] = {
    {"__gc", iocopy_gc},
    {NULL, NULL}
};

static const luaL_Reg iocopy_funcs[] = {
    {"io_copy_fd", iocopy_copy},
    {NULL, NULL}
};

/* iocopy_open: register the copy state's metatable and add io_copy_fd
 * to the core table on top of the stack. */
int iocopy_open(lua_State *L) {
    class_register(L, IOCOPY_MT, iocopy_meta, NULL);
    luaL_setfuncs(L, iocopy_funcs, 0);
    return 0;
}
