/* ipaddr.c - the net.ip Addr userdata (Go's netip.Addr): the C API to
 * push and test it, its predicates, methods and metamethods. Parsing and
 * formatting live in addr.c. */
#include <string.h>

#include "lauxlib.h"
#include "addr_int.h"
#include "class.h"

/* registry: IPADDR_MT, by a light key (class_test's fast path) */
const char IPADDRMT_KEY = 0;

/* ===== Addr userdata ===== */

/* ipaddr_push: see addr.h; a v4 address is normalised (no zone). */
void ipaddr_push(lua_State *L, const ipaddr *a)
{
    ipaddr *u = lua_newuserdatauv(L, sizeof *u, 0);
    ipaddr_copy(u, a);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &IPADDRMT_KEY);
    lua_setmetatable(L, -2);
}

/* ipaddr_test: see addr.h. */
ipaddr *ipaddr_test(lua_State *L, int idx)
{
    return class_test(L, idx, &IPADDRMT_KEY);
}

ipaddr *ipaddr_check(lua_State *L, int idx)
{
    return class_check(L, idx, &IPADDRMT_KEY, IPADDR_MT);
}

int ipaddr_cmp(const ipaddr *x, const ipaddr *y)
{
    int c;
    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    c = memcmp(x->b, y->b, 16);
    if (c == 0)
        c = strcmp(x->zone, y->zone);
    return (c > 0) - (c < 0);
}

/* ===== Addr predicates (Go's, on the unmapped address) ===== */

static int ipaddr_loopback(const ipaddr *a)
{
    static const uint8_t one[16] = {[15] = 1};
    ipaddr u = ipaddr_unmapped(a);
    if (u.family == 4)
        return u.b[12] == 127;
    return memcmp(u.b, one, 16) == 0;
}

static int ipaddr_multicast(const ipaddr *a)
{
    ipaddr u = ipaddr_unmapped(a);
    if (u.family == 4)
        return (u.b[12] & 0xf0) == 0xe0;
    return u.b[0] == 0xff;
}

static int ipaddr_linklocal(const ipaddr *a)
{
    ipaddr u = ipaddr_unmapped(a);
    if (u.family == 4)
        return u.b[12] == 169 && u.b[13] == 254;
    return u.b[0] == 0xfe && (u.b[1] & 0xc0) == 0x80;
}

static int ipaddr_private(const ipaddr *a)
{
    ipaddr u = ipaddr_unmapped(a);
    const uint8_t *q = u.b + 12;
    if (u.family == 6)
        return (u.b[0] & 0xfe) == 0xfc;
    return q[0] == 10 || (q[0] == 172 && (q[1] & 0xf0) == 16) ||
           (q[0] == 192 && q[1] == 168);
}

/* ipaddr_unspecified: 0.0.0.0 or :: (not ::ffff:0.0.0.0); zone ignored. */
static int ipaddr_unspecified(const ipaddr *a)
{
    static const uint8_t zero[16];
    if (a->family == 4)
        return memcmp(a->b + 12, zero, 4) == 0;
    return memcmp(a->b, zero, 16) == 0;
}

static int ipaddr_global(const ipaddr *a)
{
    static const uint8_t bcast[4] = {255, 255, 255, 255};
    ipaddr u = ipaddr_unmapped(a);
    if (ipaddr_unspecified(&u) ||
        (u.family == 4 && memcmp(u.b + 12, bcast, 4) == 0))
        return 0;
    return !ipaddr_loopback(&u) && !ipaddr_multicast(&u) &&
           !ipaddr_linklocal(&u);
}

static int ipaddr_is_v4(lua_State *L)
{
    return addr_pushbool(L, ipaddr_check(L, 1)->family == 4);
}

static int ipaddr_is_v6(lua_State *L)
{
    return addr_pushbool(L, ipaddr_check(L, 1)->family == 6);
}

static int ipaddr_is_4in6(lua_State *L)
{
    return addr_pushbool(L, ipaddr_is4in6(ipaddr_check(L, 1)));
}

static int ipaddr_is_loopback(lua_State *L)
{
    return addr_pushbool(L, ipaddr_loopback(ipaddr_check(L, 1)));
}

static int ipaddr_is_multicast(lua_State *L)
{
    return addr_pushbool(L, ipaddr_multicast(ipaddr_check(L, 1)));
}

static int ipaddr_is_link_local_unicast(lua_State *L)
{
    return addr_pushbool(L, ipaddr_linklocal(ipaddr_check(L, 1)));
}

static int ipaddr_is_link_local_multicast(lua_State *L)
{
    ipaddr u = ipaddr_unmapped(ipaddr_check(L, 1));
    if (u.family == 4)
        return addr_pushbool(L, u.b[12] == 224 && u.b[13] == 0 &&
                                u.b[14] == 0);
    return addr_pushbool(L, u.b[0] == 0xff && (u.b[1] & 0x0f) == 0x02);
}

static int ipaddr_is_interface_local_multicast(lua_State *L)
{
    const ipaddr *a = ipaddr_check(L, 1);
    return addr_pushbool(L, a->family == 6 && !ipaddr_is4in6(a) &&
                            a->b[0] == 0xff && (a->b[1] & 0x0f) == 0x01);
}

static int ipaddr_is_private(lua_State *L)
{
    return addr_pushbool(L, ipaddr_private(ipaddr_check(L, 1)));
}

static int ipaddr_is_unspecified(lua_State *L)
{
    return addr_pushbool(L, ipaddr_unspecified(ipaddr_check(L, 1)));
}

static int ipaddr_is_global_unicast(lua_State *L)
{
    return addr_pushbool(L, ipaddr_global(ipaddr_check(L, 1)));
}

/* ===== Addr methods ===== */

static int ipaddr_bit_len(lua_State *L)
{
    lua_pushinteger(L, ipaddr_check(L, 1)->family == 4 ? 32 : 128);
    return 1;
}

static int ipaddr_bytes(lua_State *L)
{
    const ipaddr *a = ipaddr_check(L, 1);
    if (a->family == 4)
        lua_pushlstring(L, (const char *)a->b + 12, 4);
    else
        lua_pushlstring(L, (const char *)a->b, 16);
    return 1;
}

static int ipaddr_compare(lua_State *L)
{
    lua_pushinteger(L, ipaddr_cmp(ipaddr_check(L, 1), ipaddr_check(L, 2)));
    return 1;
}

/* ipaddr_equal: like net.IP.Equal: a 4in6 address equals its v4 form. */
static int ipaddr_equal(lua_State *L)
{
    ipaddr x = ipaddr_unmapped(ipaddr_check(L, 1));
    ipaddr y = ipaddr_unmapped(ipaddr_check(L, 2));
    return addr_pushbool(L, ipaddr_cmp(&x, &y) == 0);
}

static int ipaddr_family(lua_State *L)
{
    lua_pushinteger(L, ipaddr_check(L, 1)->family);
    return 1;
}

/* ipaddr_step: add delta (+1 or -1) to a; 0 when it wraps around. */
static int ipaddr_step(ipaddr *a, int delta)
{
    int i, lo = a->family == 4 ? 12 : 0;
    for (i = 15; i >= lo; i--) {
        a->b[i] = (uint8_t)(a->b[i] + delta);
        if (a->b[i] != (delta > 0 ? 0x00 : 0xff))
            return 1;
    }
    return 0;
}

static int ipaddr_pushstep(lua_State *L, int delta)
{
    ipaddr a = *ipaddr_check(L, 1);
    if (ipaddr_step(&a, delta))
        ipaddr_push(L, &a);
    else
        lua_pushnil(L);                    /* wrapped: no next/prev */
    return 1;
}

static int ipaddr_next(lua_State *L)
{
    return ipaddr_pushstep(L, 1);
}

static int ipaddr_prev(lua_State *L)
{
    return ipaddr_pushstep(L, -1);
}

static int ipaddr_prefix(lua_State *L)
{
    return ipprefix_make(L, ipaddr_check(L, 1), luaL_checkinteger(L, 2), 1);
}

static int ipaddr_string_expanded(lua_State *L)
{
    char buf[IPADDR_STRLEN];
    size_t n = ipaddr_format_expanded(ipaddr_check(L, 1), buf);
    lua_pushlstring(L, buf, n);
    return 1;
}

static int ipaddr_unmap(lua_State *L)
{
    ipaddr u = ipaddr_unmapped(ipaddr_check(L, 1));
    ipaddr_push(L, &u);
    return 1;
}

/* ipaddr_with_zone: a copy with zone z ("" removes it); v4 ignores it. */
static int ipaddr_with_zone(lua_State *L)
{
    ipaddr a = *ipaddr_check(L, 1);
    size_t n;
    const char *z = luaL_checklstring(L, 2, &n);
    ipaddr_perr e;
    if (a.family == 4) {
        lua_settop(L, 1);
        return 1;
    }
    a.zone[0] = '\0';
    if (n > 0 && ipaddr_zone(z, 0, n, a.zone, &e) != 0)
        return addr_errorf(L, "invalid zone %q: %s", z, n, e.msg);
    ipaddr_push(L, &a);
    return 1;
}

static int ipaddr_zone_get(lua_State *L)
{
    lua_pushstring(L, ipaddr_check(L, 1)->zone);
    return 1;
}

static int ipaddr_eq(lua_State *L)
{
    const ipaddr *x = ipaddr_test(L, 1), *y = ipaddr_test(L, 2);
    return addr_pushbool(L, x && y && ipaddr_cmp(x, y) == 0);
}

static int ipaddr_le(lua_State *L)
{
    return addr_pushbool(L, ipaddr_cmp(ipaddr_check(L, 1),
                                       ipaddr_check(L, 2)) <= 0);
}

static int ipaddr_lt(lua_State *L)
{
    return addr_pushbool(L, ipaddr_cmp(ipaddr_check(L, 1),
                                       ipaddr_check(L, 2)) < 0);
}

static int ipaddr_tostring(lua_State *L)
{
    char buf[IPADDR_STRLEN];
    size_t n = ipaddr_format(ipaddr_check(L, 1), buf);
    lua_pushlstring(L, buf, n);
    return 1;
}

/* ===== registration ===== */

const luaL_Reg ipaddr_meta[] = {
    {"__eq", ipaddr_eq},
    {"__le", ipaddr_le},
    {"__lt", ipaddr_lt},
    {"__tostring", ipaddr_tostring},
    {NULL, NULL}
};

const luaL_Reg ipaddr_methods[] = {
    {"bit_len", ipaddr_bit_len},
    {"bytes", ipaddr_bytes},
    {"compare", ipaddr_compare},
    {"equal", ipaddr_equal},
    {"family", ipaddr_family},
    {"is_4in6", ipaddr_is_4in6},
    {"is_global_unicast", ipaddr_is_global_unicast},
    {"is_interface_local_multicast", ipaddr_is_interface_local_multicast},
    {"is_link_local_multicast", ipaddr_is_link_local_multicast},
    {"is_link_local_unicast", ipaddr_is_link_local_unicast},
    {"is_loopback", ipaddr_is_loopback},
    {"is_multicast", ipaddr_is_multicast},
    {"is_private", ipaddr_is_private},
    {"is_unspecified", ipaddr_is_unspecified},
    {"is_v4", ipaddr_is_v4},
    {"is_v6", ipaddr_is_v6},
    {"next", ipaddr_next},
    {"prefix", ipaddr_prefix},
    {"prev", ipaddr_prev},
    {"string_expanded", ipaddr_string_expanded},
    {"unmap", ipaddr_unmap},
    {"with_zone", ipaddr_with_zone},
    {"zone", ipaddr_zone_get},
    {NULL, NULL}
};
