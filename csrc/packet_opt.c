/* packet_opt.c - socket options of packet conns: buffers, broadcast and
 * multicast (TTL, loopback, outgoing interface, group membership). An IP
 * option goes to the level of the socket's family; on a dual-stack socket
 * the v4 one is set too, for v4 traffic. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "lauxlib.h"
#include "addr.h"
#include "errors.h"
#include "packet.h"
#include "sock.h"

static int packet_setopt(lua_State *L, int level, int name, int value) {
    pconn *p = packet_check(L);
    if (p->h.fd < 0) return packet_fail(L, p, "set", NULL, ERR_CLOSED);
    int e = sock_set_int(p->h.fd, level, name, value);
    if (e) return packet_fail(L, p, "set", "setsockopt", e);
    return packet_ok(L);
}

/* An IP option that exists per family: the v6 one on AF_INET6 sockets
 * (plus the v4 one, for v4 traffic on a dual-stack socket), else v4. */
static int packet_setopt_ip(lua_State *L, int opt4, int opt6, int value) {
    pconn *p = packet_check(L);
    if (p->net == NET_UNIXGRAM) return packet_fail(L, p, "set", "setsockopt", ENOPROTOOPT);
    if (!packet_want6(p)) return packet_setopt(L, IPPROTO_IP, opt4, value);
    if (p->h.fd >= 0) sock_set_int(p->h.fd, IPPROTO_IP, opt4, value);
    return packet_setopt(L, IPPROTO_IPV6, opt6, value);
}

static int packet_set_read_buffer(lua_State *L) {
    return packet_setopt(L, SOL_SOCKET, SO_RCVBUF, sock_int_arg(L, 2, "set_read_buffer", 0, INT_MAX));
}

static int packet_set_write_buffer(lua_State *L) {
    return packet_setopt(L, SOL_SOCKET, SO_SNDBUF, sock_int_arg(L, 2, "set_write_buffer", 0, INT_MAX));
}

/* pc:set_broadcast(on): SO_BROADCAST (on by default for UDP, as in Go). */
static int packet_set_broadcast(lua_State *L) {
    if (packet_check(L)->net == NET_UNIXGRAM)
        return packet_fail(L, packet_check(L), "set", "setsockopt", ENOPROTOOPT);
    return packet_setopt(L, SOL_SOCKET, SO_BROADCAST, lua_toboolean(L, 2));
}

/* pc:set_multicast_ttl(n): hop limit of outgoing multicast (default 1). */
static int packet_set_multicast_ttl(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && n <= 255, 2, "ttl must be in 0..255");
    return packet_setopt_ip(L, IP_MULTICAST_TTL, IPV6_MULTICAST_HOPS, (int)n);
}

/* pc:set_multicast_loopback(on): whether our multicast is delivered to
 * local members too (default on). */
static int packet_set_multicast_loopback(lua_State *L) {
    return packet_setopt_ip(L, IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP, lua_toboolean(L, 2));
}

/* The interface index of the optional name at idx (0: the kernel picks);
 * 0 or ENODEV. */
static int packet_ifindex(lua_State *L, int idx, unsigned *index) {
    *index = 0;
    if (lua_isnoneornil(L, idx)) return 0;
    *index = if_nametoindex(luaL_checkstring(L, idx));
    return *index ? 0 : ENODEV;
}

/* A failure naming the interface at ifidx: "join_group udp 239.1.2.3:
 * if_nametoindex(eth9): no such device". */
static int packet_if_fail(lua_State *L, pconn *p, const char *op, int ifidx, const char *what) {
    char sys[64 + IF_NAMESIZE];
    snprintf(sys, sizeof sys, "if_nametoindex(%.40s)", lua_tostring(L, ifidx));
    return packet_failx(L, p, op, sys, ENODEV, 0, what);
}

/* pc:set_multicast_interface(ifname) -> true | nil, err: the interface
 * outgoing multicast leaves by. */
static int packet_set_multicast_interface(lua_State *L) {
    pconn *p = packet_check(L);
    unsigned idx;
    luaL_checkstring(L, 2);
    if (packet_ifindex(L, 2, &idx)) return packet_if_fail(L, p, "set", 2, NULL);
    if (p->h.fd < 0) return packet_fail(L, p, "set", NULL, ERR_CLOSED);
    if (p->net == NET_UNIXGRAM) return packet_fail(L, p, "set", "setsockopt", ENOPROTOOPT);
    struct ip_mreqn mr;
    memset(&mr, 0, sizeof mr);
    mr.imr_ifindex = (int)idx;
    int e = setsockopt(p->h.fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr) < 0 ? errno : 0;
    if (packet_want6(p)) e = sock_set_int(p->h.fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, (int)idx);
    if (e) return packet_fail(L, p, "set", "setsockopt", e);
    return packet_ok(L);
}

/* Join (join = 1) or leave group (an Addr or a string) on the interface
 * named at index 3 (default: the kernel's choice). */
static int packet_group(lua_State *L, int join) {
    pconn *p = packet_check(L);
    const char *op = join ? "join_group" : "leave_group";
    ipaddr a, *u = ipaddr_test(L, 2);
    size_t n;
    const char *s = u ? NULL : luaL_checklstring(L, 2, &n);
    char what[IPADDR_STRLEN];
    if (u) a = *u;
    else if (ipaddr_parse(s, n, &a) != NULL)
        return packet_failx(L, p, op, NULL, ERR_BADADDR, 0, s);
    ipaddr_format(&a, what);
    unsigned idx;
    if (packet_ifindex(L, 3, &idx)) return packet_if_fail(L, p, op, 3, what);
    if (p->h.fd < 0) return packet_failx(L, p, op, NULL, ERR_CLOSED, 0, what);
    int r;
    if (a.family == 4) {
        struct ip_mreqn mr;
        memset(&mr, 0, sizeof mr);
        memcpy(&mr.imr_multiaddr, a.b + 12, 4);
        mr.imr_ifindex = (int)idx;
        r = setsockopt(p->h.fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &mr,
                       sizeof mr);
    } else {
        struct ipv6_mreq mr;
        memcpy(&mr.ipv6mr_multiaddr, a.b, 16);
        mr.ipv6mr_interface = idx;
        r = setsockopt(p->h.fd, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP,
                       &mr, sizeof mr);
    }
    if (r < 0) return packet_failx(L, p, op, "setsockopt", errno, 0, what);
    return packet_ok(L);
}

/* pc:join_group(group [, ifname]) -> true | nil, err: receive the
 * multicast group (an Addr or a string) on ifname (default: the kernel
 * picks by route). An interface that does not exist fails with ENODEV. */
static int packet_join_group(lua_State *L) { return packet_group(L, 1); }
/* pc:leave_group(group [, ifname]) -> true | nil, err. */
static int packet_leave_group(lua_State *L) { return packet_group(L, 0); }

const luaL_Reg packet_opt_methods[] = {
    {"join_group", packet_join_group},
    {"leave_group", packet_leave_group},
    {"set_broadcast", packet_set_broadcast},
    {"set_multicast_interface", packet_set_multicast_interface},
    {"set_multicast_loopback", packet_set_multicast_loopback},
    {"set_multicast_ttl", packet_set_multicast_ttl},
    {"set_read_buffer", packet_set_read_buffer},
    {"set_write_buffer", packet_set_write_buffer},
    {NULL, NULL}
};
