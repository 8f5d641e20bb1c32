/* errors.c - building error objects in C. The metatable and the sentinels
 * come from lua/coronet/errors.lua through core.errors_init, so a C error
 * and a Lua error are the same kind of object. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include "lauxlib.h"
#include "errors.h"
#include "loop.h"

static const char ERRMT_KEY = 0;     /* registry: the error metatable */
static const char SENTINELS_KEY = 0; /* registry: {closed = ErrClosed, ...} */

static const char *errors_sentinel_name(int cause) {
    switch (cause) {
    case ERR_CLOSED: return "closed";
    case ERR_TIMEOUT: return "timeout";
    case ERR_CANCELED: return "canceled";
    case ERR_EOF: return "eof";
    case ERR_UNEXPECTED_EOF: return "unexpected_eof";
    case ERR_BUSY: return "busy";
    default: return "badaddr";
    }
}

void errors_push_sentinel(lua_State *L, int cause) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SENTINELS_KEY);
    if (lua_isnil(L, -1)) {          /* errors.lua not loaded: a bare string */
        lua_pop(L, 1);
        lua_pushstring(L, errors_sentinel_name(cause));
        return;
    }
    if (lua_rawgeti(L, -1, -cause) == LUA_TNIL) {   /* cached by cause, at [-cause] */
        lua_pop(L, 1);
        lua_getfield(L, -1, errors_sentinel_name(cause));
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, -cause);
    }
    lua_remove(L, -2);              /* pop sentinels */
}

static void errors_setfield(lua_State *L, const char *k, const char *v) {
    if (!v) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

/* The errno's cause: an errno sentinel (net.errors.ECONNRESET) holding the
 * message "connection reset by peer", as Go's syscall.Errno prints it. */
static void errors_push_errno(lua_State *L, int e) {
    const char *name = strerrorname_np(e);
    char msg[128];
    strncpy(msg, strerror(e), sizeof msg - 1);
    msg[sizeof msg - 1] = 0;
    msg[0] = (char)tolower((unsigned char)msg[0]);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SENTINELS_KEY);
    if (lua_isnil(L, -1) || !name) {
        lua_pop(L, 1);
        lua_pushstring(L, msg);
        return;
    }
    lua_getfield(L, -1, "errno");   /* errno(name, number, msg) -> sentinel */
    lua_remove(L, -2);
    lua_pushstring(L, name);
    lua_pushinteger(L, e);
    lua_pushstring(L, msg);
    lua_call(L, 3, 1);
}

/* A leaf cause with its own code and message (a TLS failure), shaped like
 * the sentinels: {code, msg, timeout = false} with the error metatable. */
static void errors_push_coded(lua_State *L, const char *code, const char *msg) {
    lua_createtable(L, 0, 3);
    errors_setfield(L, "code", code ? code : "tls");
    errors_setfield(L, "msg", msg ? msg : "tls: error");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "timeout");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ERRMT_KEY);
    lua_setmetatable(L, -2);
}

/* errors_push_with: errors_push, with the code and message of an ERR_TLS cause. */
static void errors_push_with(lua_State *L, const operr *e, int cause, const char *tls_code,
                             const char *tls_msg) {
    lua_createtable(L, 0, 10);
    errors_setfield(L, "op", e->op);
    errors_setfield(L, "net", e->net);
    errors_setfield(L, "source", e->source);
    errors_setfield(L, "addr", e->addr);
    if (cause > 0) {
        errors_setfield(L, "syscall", e->syscall);
        lua_pushinteger(L, cause);
        lua_setfield(L, -2, "errno");
        errors_push_errno(L, cause);
        lua_pushboolean(L, cause == ETIMEDOUT);
    } else {
        errors_setfield(L, "detail", e->detail);
        if (cause == ERR_CTX) ctx_push_err(L, e->ctxidx);
        else if (cause == ERR_TLS) errors_push_coded(L, tls_code, tls_msg);
        else errors_push_sentinel(L, cause);
        lua_pushboolean(L, cause == ERR_TIMEOUT);
        if (lua_istable(L, -2)) {                /* a ctx's deadline is a timeout too */
            lua_getfield(L, -2, "timeout");
            if (lua_toboolean(L, -1)) lua_replace(L, -2);
            else lua_pop(L, 1);
        }
    }
    lua_setfield(L, -3, "timeout");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "code");
        lua_setfield(L, -3, "code");
    }
    lua_setfield(L, -2, "err");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ERRMT_KEY);
    lua_setmetatable(L, -2);
}

void errors_push(lua_State *L, const operr *e, int cause) {
    errors_push_with(L, e, cause, NULL, NULL);
}

int errors_fail_tls(lua_State *L, const operr *e, const char *code, const char *msg) {
    lua_pushnil(L);
    errors_push_with(L, e, ERR_TLS, code, msg);
    return 2;
}

int errors_fail(lua_State *L, const operr *e, int cause) {
    lua_pushnil(L);
    errors_push(L, e, cause);
    return 2;
}

/* core.errors_init(mt, sentinels): errors.lua hands over the metatable of
 * error objects and the sentinel table (with an errno constructor). */
static int errors_init(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushvalue(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ERRMT_KEY);
    lua_pushvalue(L, 2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &SENTINELS_KEY);
    return 0;
}

/* core.strerror(errno) -> name, message. */
static int errors_strerror(lua_State *L) {
    int e = (int)luaL_checkinteger(L, 1);
    const char *name = strerrorname_np(e);
    lua_pushstring(L, name ? name : "EUNKNOWN");
    lua_pushstring(L, strerror(e));
    return 2;
}

/* core.errno(name) -> number | nil: the errno called name ("ECONNRESET"). */
static int errors_errno(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    for (int e = 1; e < 256; e++) {
        const char *n = strerrorname_np(e);
        if (n && strcmp(n, name) == 0) {
            lua_pushinteger(L, e);
            return 1;
        }
    }
    lua_pushnil(L);
    return 1;
}

static const luaL_Reg errors_funcs[] = {
    {"errno", errors_errno},
    {"errors_init", errors_init},
    {"strerror", errors_strerror},
    {NULL, NULL}
};

/* errors_open: add the error functions to the table on top of the stack. */
int errors_open(lua_State *L) {
    luaL_setfuncs(L, errors_funcs, 0);
    return 0;
}
