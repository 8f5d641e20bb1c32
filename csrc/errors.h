/* errors.h - error objects shared with lua/coronet/errors.lua: C builds
 * the table, Lua owns its metatable and the sentinels it wraps. */
#ifndef CORONET_ERRORS_H
#define CORONET_ERRORS_H

#include "lua.h"

/* Causes that are not an errno: each maps to a sentinel in net.errors. */
enum {
    ERR_CLOSED = -1,     /* net.ErrClosed */
    ERR_TIMEOUT = -2,    /* net.ErrDeadlineExceeded */
    ERR_CANCELED = -3,   /* net.ErrCanceled */
    ERR_EOF = -4,        /* net.EOF */
    ERR_UNEXPECTED_EOF = -5, /* net.ErrUnexpectedEOF */
    ERR_BUSY = -6,       /* net.errors.ErrBusy: a second concurrent reader or writer */
    ERR_BADADDR = -7,    /* net.errors.ErrBadAddr: malformed address */
    ERR_CTX = -8,        /* the net.context at operr.ctxidx ended: its err() */
    ERR_TLS = -9         /* a TLS failure: see errors_fail_tls */
};

/* operr: what an operation failed on; NULL fields are left out. */
typedef struct operr {
    const char *op;      /* "read", "dial", ... */
    const char *net;     /* "tcp", "unix", ... */
    const char *source;  /* local address, rendered */
    const char *addr;    /* remote address, rendered */
    const char *syscall; /* the failing syscall for errno causes, or NULL */
    const char *detail;  /* for ERR_BADADDR: what is wrong */
    int ctxidx;          /* for ERR_CTX: stack index of the net.context */
} operr;

/* errors_push: push an error object for cause (an errno > 0 or ERR_*). */
void errors_push(lua_State *L, const operr *e, int cause);

/* errors_fail: push nil and the error; returns 2 (a C function's result). */
int errors_fail(lua_State *L, const operr *e, int cause);

/* errors_fail_tls: push nil and an error for e whose cause is a TLS
 * failure with its own stable code and message; returns 2. */
int errors_fail_tls(lua_State *L, const operr *e, const char *code, const char *msg);

/* errors_push_sentinel: push the sentinel for an ERR_* cause. */
void errors_push_sentinel(lua_State *L, int cause);

int errors_open(lua_State *L);

#endif
