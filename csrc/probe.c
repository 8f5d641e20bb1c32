/* probe.c - the connection pool's health check (lua/coronet/pool.lua): one
 * non-blocking peek at an idle socket tells whether the peer has closed or
 * reset it, or sent bytes nobody asked for, before the pool hands it out. */
#include <errno.h>
#include <sys/socket.h>
#include "lauxlib.h"
#include "errors.h"
#include "modules.h"

/* The three verdicts, kept as upvalues so the healthy path pushes a string
 * that already exists: no allocation, no string-table lookup. */
enum { PROBE_OK = 1, PROBE_DUBIOUS = 2, PROBE_DEAD = 3 };

/* core.probe(fd) -> "ok" | "dubious" | "dead" [, err]: one
 * recv(fd, 1 byte, MSG_PEEK|MSG_DONTWAIT). Nothing to read (EAGAIN): "ok";
 * a byte waiting (the peer sent something unsolicited): "dubious"; EOF:
 * "dead", net.EOF; an error such as ECONNRESET (or EBADF for a closed fd,
 * -1): "dead" and the error object (op "probe"). Never blocks, never
 * consumes a byte. */
static int probe_fd(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    char b;
    ssize_t n;
    do n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    int e = errno;                      /* before any Lua API call */
    if (n < 0 && (e == EAGAIN || e == EWOULDBLOCK)) {
        lua_pushvalue(L, lua_upvalueindex(PROBE_OK));
        return 1;
    }
    if (n > 0) {
        lua_pushvalue(L, lua_upvalueindex(PROBE_DUBIOUS));
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(PROBE_DEAD));
    if (n == 0) {
        errors_push_sentinel(L, ERR_EOF);
    } else {
        operr oe = {"probe", NULL, NULL, NULL, "recv", NULL, 0};
        errors_push(L, &oe, e);
    }
    return 2;
}

/* probe_open: add core.probe to the table on top of the stack. */
int probe_open(lua_State *L) {
    lua_pushliteral(L, "ok");
    lua_pushliteral(L, "dubious");
    lua_pushliteral(L, "dead");
    lua_pushcclosure(L, probe_fd, 3);
    lua_setfield(L, -2, "probe");
    return 0;
}
