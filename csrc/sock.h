/* sock.h - fd-level socket helpers shared by conns, listeners and packet
 * conns: socket creation, socket addresses from Lua arguments, rendering
 * addresses, and socket options by their C names. */
#ifndef CORONET_SOCK_H
#define CORONET_SOCK_H

#include <limits.h>
#include <sys/socket.h>
#include "lua.h"

#define ADDR_STRLEN 128

/* Network names, as the user spells them; kept in handles and errors. */
enum { NET_TCP, NET_TCP4, NET_TCP6, NET_UNIX, NET_UDP, NET_UDP4, NET_UDP6,
       NET_UNIXGRAM, NET_N };
extern const char *const sock_netnames[NET_N];

/* sock_open: a new non-blocking, close-on-exec socket; fd or -errno. */
int sock_open(int family, int type);

/* sock_dup: a close-on-exec duplicate of fd; the new fd or -errno. */
int sock_dup(int fd);

/* sock_sockaddr_arg: read a socket address from the Lua arguments at idx:
 * an net.ip Addr and a port at idx+1, or a unix path string ("@name" is
 * Linux's abstract namespace). want6 maps a v4 Addr into an AF_INET6
 * sockaddr. Returns 0, or an errno (EINVAL, ENAMETOOLONG, ENXIO). */
int sock_sockaddr_arg(lua_State *L, int idx, int want6,
                      struct sockaddr_storage *ss, socklen_t *len);

/* sock_format: render sa as Go does ("1.2.3.4:80", "[::1]:80", "/p",
 * "@abstract"); an empty unix address renders as "". */
void sock_format(const struct sockaddr_storage *sa, socklen_t len, char *buf);

/* sock_push_addr: push an address object (net.addr) for sa, or nil when
 * len is 0. net is the network name it belongs to. */
void sock_push_addr(lua_State *L, const struct sockaddr_storage *sa,
                    socklen_t len, const char *net);

/* sock_set_int: setsockopt with an int value; 0 or errno. */
int sock_set_int(int fd, int level, int name, int value);

/* sock_keepalive: SO_KEEPALIVE on or off, and with period > 0 the idle
 * time and probe interval (seconds); 0 or errno. */
int sock_keepalive(int fd, int on, int period);

/* sock_arg_error: raise "bad argument #argn to 'fname' (msg)" naming the
 * method even where Lua cannot (a call driven by the scheduler). argn
 * counts as the user sees it (the value after self is #1). */
int sock_arg_error(lua_State *L, int argn, const char *fname, const char *msg);

/* sock_int_arg: the integer at idx, in lo..hi, for an option setter
 * fname; anything else (a float without an integer value, NaN, out of
 * range) raises with sock_arg_error. */
int sock_int_arg(lua_State *L, int idx, const char *fname, lua_Integer lo, lua_Integer hi);

/* sock_lowat_opt: the notsent_lowat option of op ("dial", "listen") at
 * idx: dflt when nil or absent, else an integer in 0..INT_MAX; anything
 * else raises "op: notsent_lowat must be an integer in 0..INT_MAX". */
int sock_lowat_opt(lua_State *L, int idx, const char *op, int dflt);

/* sock_keepalive_arg: seconds at idx for a keepalive period, rounded up
 * to whole seconds, at least 1, at most SOCK_KEEPALIVE_MAX (Linux's limit
 * for TCP_KEEPIDLE); NaN, inf and larger values raise. */
#define SOCK_KEEPALIVE_MAX 32767
int sock_keepalive_arg(lua_State *L, int idx, const char *fname);

int sock_open_lib(lua_State *L);

#endif
