/* sock.c - fd-level socket helpers: creation, addresses, options by name.
 * net.setsockopt / net.getsockopt take C names as strings so a `control`
 * callback reads like the C it replaces. */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "lauxlib.h"
#include "addr.h"
#include "errors.h"
#include "sock.h"

static const char ADDRMT_KEY = 0;   /* registry: metatable of net.addr objects */

const char *const sock_netnames[NET_N] = {
    "tcp", "tcp4", "tcp6", "unix", "udp", "udp4", "udp6", "unixgram"};

int sock_open(int family, int type) {
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

int sock_dup(int fd) {
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return nfd < 0 ? -errno : nfd;
}

static int sock_unix_sockaddr(const char *path, size_t n,
                              struct sockaddr_storage *ss, socklen_t *len) {
    struct sockaddr_un *su = (struct sockaddr_un *)ss;
    memset(su, 0, sizeof *su);
    su->sun_family = AF_UNIX;
    if (n == 0) return EINVAL;
    /* a path needs its NUL; an abstract name's '@' becomes the leading NUL */
    if (n > sizeof su->sun_path - (path[0] != '@')) return ENAMETOOLONG;
    memcpy(su->sun_path, path, n);
    if (path[0] == '@') su->sun_path[0] = 0;         /* abstract */
    else if (memchr(path, 0, n)) return EINVAL;
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] != '@'));
    return 0;
}

int sock_sockaddr_arg(lua_State *L, int idx, int want6,
                      struct sockaddr_storage *ss, socklen_t *len) {
    ipaddr *a = ipaddr_test(L, idx);
    if (a) {
        lua_Integer port = luaL_checkinteger(L, idx + 1);
        if (port < 0 || port > 65535) return EINVAL;
        return ipaddr_to_sockaddr(a, (int)port, want6, ss, len);
    }
    size_t n;
    const char *path = luaL_checklstring(L, idx, &n);
    return sock_unix_sockaddr(path, n, ss, len);
}

void sock_format(const struct sockaddr_storage *sa, socklen_t len, char *buf) {
    buf[0] = 0;
    if (len == 0) return;
    if (sa->ss_family == AF_UNIX) {
        const struct sockaddr_un *su = (const struct sockaddr_un *)sa;
        size_t n = len - offsetof(struct sockaddr_un, sun_path);
        if (len <= offsetof(struct sockaddr_un, sun_path) || n == 0) return;
        if (su->sun_path[0] == 0) {
            snprintf(buf, ADDR_STRLEN, "@%.*s", (int)(n - 1), su->sun_path + 1);
        } else {
            snprintf(buf, ADDR_STRLEN, "%.*s", (int)strnlen(su->sun_path, n), su->sun_path);
        }
        return;
    }
    ipaddr a;
    int port;
    char ip[IPADDR_STRLEN];
    if (ipaddr_from_sockaddr((const struct sockaddr *)sa, &a, &port) < 0) return;
    ipaddr_format(&a, ip);
    snprintf(buf, ADDR_STRLEN, a.family == 6 ? "[%s]:%d" : "%s:%d", ip, port);
}

void sock_push_addr(lua_State *L, const struct sockaddr_storage *sa,
                    socklen_t len, const char *net) {
    if (len == 0) {
        lua_pushnil(L);
        return;
    }
    lua_createtable(L, 0, 4);
    lua_pushstring(L, net);
    lua_setfield(L, -2, "network");
    if (sa->ss_family == AF_UNIX) {
        char buf[ADDR_STRLEN];
        sock_format(sa, len, buf);
        lua_pushstring(L, buf);
        lua_setfield(L, -2, "name");
    } else {
        ipaddr a;
        int port;
        ipaddr_from_sockaddr((const struct sockaddr *)sa, &a, &port);
        ipaddr_push(L, &a);
        lua_setfield(L, -2, "ip");
        lua_pushinteger(L, port);
        lua_setfield(L, -2, "port");
        if (a.zone[0]) {
            lua_pushstring(L, a.zone);
            lua_setfield(L, -2, "zone");
        }
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ADDRMT_KEY);
    lua_setmetatable(L, -2);
}

int sock_set_int(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value) < 0 ? errno : 0;
}

int sock_keepalive(int fd, int on, int period) {
    int e = sock_set_int(fd, SOL_SOCKET, SO_KEEPALIVE, on);
    if (e || !on || period <= 0) return e;
    e = sock_set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, period);
    return e ? e : sock_set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, period);
}

int sock_arg_error(lua_State *L, int argn, const char *fname, const char *msg) {
    return luaL_error(L, "bad argument #%d to '%s' (%s)", argn, fname, msg);
}

int sock_int_arg(lua_State *L, int idx, const char *fname, lua_Integer lo, lua_Integer hi) {
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    if (!isnum)
        return sock_arg_error(L, idx - 1, fname, lua_isnumber(L, idx)
                              ? "number has no integer representation" : "integer expected");
    if (v < lo || v > hi) {
        lua_pushfstring(L, "out of range: must be in %I..%I", lo, hi);
        return sock_arg_error(L, idx - 1, fname, lua_tostring(L, -1));
    }
    return (int)v;
}

int sock_lowat_opt(lua_State *L, int idx, const char *op, int dflt) {
    if (lua_isnoneornil(L, idx)) return dflt;
    int isint = 0;
    lua_Integer v = lua_tointegerx(L, idx, &isint);
    if (!isint || v < 0 || v > INT_MAX)
        return luaL_error(L, "%s: notsent_lowat must be an integer in 0..%d", op, INT_MAX);
    return (int)v;
}

int sock_keepalive_arg(lua_State *L, int idx, const char *fname) {
    if (lua_type(L, idx) != LUA_TNUMBER) return sock_arg_error(L, idx - 1, fname, "number expected");
    double s = lua_tonumber(L, idx);
    if (!(s <= SOCK_KEEPALIVE_MAX))          /* NaN and +inf too */
        return sock_arg_error(L, idx - 1, fname, "keepalive period out of range (at most 32767 s)");
    if (!(s > -HUGE_VAL)) return sock_arg_error(L, idx - 1, fname, "keepalive period is -inf");
    return s < 1 ? 1 : (int)ceil(s);
}

/* ---- socket options by name ----------------------------------------- */

typedef struct sockopt_name { const char *name; int level, opt; } sockopt_name;

static const sockopt_name sock_opts[] = {
    {"SO_BROADCAST", SOL_SOCKET, SO_BROADCAST},
    {"SO_DONTROUTE", SOL_SOCKET, SO_DONTROUTE},
    {"SO_ERROR", SOL_SOCKET, SO_ERROR},
    {"SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE},
    {"SO_MARK", SOL_SOCKET, SO_MARK},
    {"SO_PRIORITY", SOL_SOCKET, SO_PRIORITY},
    {"SO_RCVBUF", SOL_SOCKET, SO_RCVBUF},
    {"SO_RCVLOWAT", SOL_SOCKET, SO_RCVLOWAT},
    {"SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR},
    {"SO_REUSEPORT", SOL_SOCKET, SO_REUSEPORT},
    {"SO_SNDBUF", SOL_SOCKET, SO_SNDBUF},
    {"SO_TYPE", SOL_SOCKET, SO_TYPE},
    {"TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT},
    {"TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE},
    {"TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL},
    {"TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY},
    {"TCP_NOTSENT_LOWAT", IPPROTO_TCP, TCP_NOTSENT_LOWAT},
    {"TCP_QUICKACK", IPPROTO_TCP, TCP_QUICKACK},
    {"TCP_USER_TIMEOUT", IPPROTO_TCP, TCP_USER_TIMEOUT},
    {"IP_MULTICAST_LOOP", IPPROTO_IP, IP_MULTICAST_LOOP},
    {"IP_MULTICAST_TTL", IPPROTO_IP, IP_MULTICAST_TTL},
    {"IP_TOS", IPPROTO_IP, IP_TOS},
    {"IP_TTL", IPPROTO_IP, IP_TTL},
    {"IPV6_MULTICAST_HOPS", IPPROTO_IPV6, IPV6_MULTICAST_HOPS},
    {"IPV6_MULTICAST_LOOP", IPPROTO_IPV6, IPV6_MULTICAST_LOOP},
    {"IPV6_UNICAST_HOPS", IPPROTO_IPV6, IPV6_UNICAST_HOPS},
    {"IPV6_V6ONLY", IPPROTO_IPV6, IPV6_V6ONLY},
    {NULL, 0, 0}
};

static int sock_levelarg(lua_State *L, int idx) {
    static const char *const names[] = {"SOL_SOCKET", "IPPROTO_TCP", "IPPROTO_IP",
                                        "IPPROTO_IPV6", NULL};
    static const int levels[] = {SOL_SOCKET, IPPROTO_TCP, IPPROTO_IP, IPPROTO_IPV6};
    return levels[luaL_checkoption(L, idx, NULL, names)];
}

static int sock_optarg(lua_State *L, int idx, int level) {
    const char *name = luaL_checkstring(L, idx);
    for (const sockopt_name *o = sock_opts; o->name; o++)
        if (o->level == level && strcmp(o->name, name) == 0) return o->opt;
    return luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s' at this level", name));
}

/* nil and an error object ("setsockopt: protocol not available", code
 * "ENOPROTOOPT") for the fd-level call sys. */
static int sock_fail(lua_State *L, const char *sys, int e) {
    operr oe = {sys, NULL, NULL, NULL, NULL, NULL, 0};
    return errors_fail(L, &oe, e);
}

/* net.setsockopt(fd, level, name, value) -> true | nil, err.
 * value is an integer or a boolean. */
static int sock_setsockopt(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    int level = sock_levelarg(L, 2);
    int opt = sock_optarg(L, 3, level);
    int v = lua_isboolean(L, 4) ? lua_toboolean(L, 4) : (int)luaL_checkinteger(L, 4);
    int e = sock_set_int(fd, level, opt, v);
    if (e) return sock_fail(L, "setsockopt", e);
    lua_pushboolean(L, 1);
    return 1;
}

/* net.getsockopt(fd, level, name) -> integer | nil, err. */
static int sock_getsockopt(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    int level = sock_levelarg(L, 2);
    int opt = sock_optarg(L, 3, level);
    int v = 0;
    socklen_t n = sizeof v;
    if (getsockopt(fd, level, opt, &v, &n) < 0) return sock_fail(L, "getsockopt", errno);
    lua_pushinteger(L, v);
    return 1;
}

/* core.addr_init(mt): errors.lua/addr.lua hands over net.addr's metatable. */
static int sock_addr_init(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ADDRMT_KEY);
    return 0;
}

/* net.close_fd(fd) -> true | nil, err: close a raw descriptor, such
 * as one conn:file() returned. Never use it on an fd a conn still owns. */
static int sock_close_fd(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    if (close(fd) < 0 && errno != EINTR) return sock_fail(L, "close", errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.getpid() -> this process's id (for LISTEN_PID). */
static int sock_getpid(lua_State *L) {
    lua_pushinteger(L, getpid());
    return 1;
}

static const luaL_Reg sock_funcs[] = {
    {"addr_init", sock_addr_init},
    {"close_fd", sock_close_fd},
    {"getpid", sock_getpid},
    {"getsockopt", sock_getsockopt},
    {"setsockopt", sock_setsockopt},
    {NULL, NULL}
};

/* sock_open_lib: add the socket functions to the table on top of the stack. */
int sock_open_lib(lua_State *L) {
    luaL_setfuncs(L, sock_funcs, 0);
    return 0;
}
