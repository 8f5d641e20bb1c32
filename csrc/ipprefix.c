/* ipprefix.c - the net.ip Prefix and AddrPort userdata (Go's
 * netip.Prefix and netip.AddrPort), the module functions (parse, prefix,
 * addr_port, split_host_port, join_host_port, ...) and addr_open, which
 * registers the Addr, Prefix and AddrPort metatables. */
#include <stdint.h>
#include <string.h>

#include "lauxlib.h"
#include "addr_int.h"
#include "class.h"

#define IPADDRPORT_MT "coronet.ip.addrport"
#define ADDR_NPOS ((size_t)-1)

/* A Prefix keeps its address as given (not masked) and never has a zone. */
typedef struct ipprefix {
    ipaddr a;
    int bits;
} ipprefix;

typedef struct ipaddrport {
    ipaddr a;
    int port;
} ipaddrport;

/* ===== small helpers ===== */

static size_t addr_lastindex(const char *s, size_t n, char c)
{
    while (n-- > 0)
        if (s[n] == c)
            return n;
    return ADDR_NPOS;
}

/* ===== Prefix ===== */

static void ipaddr_mask(uint8_t *b, int bits)
{
    int i;
    for (i = 0; i < 16; i++, bits -= 8) {
        if (bits <= 0)
            b[i] = 0;
        else if (bits < 8)
            b[i] &= (uint8_t)(0xff << (8 - bits));
    }
}

/* ipaddr_samebits: x and y agree on their first bits bits. */
static int ipaddr_samebits(const uint8_t *x, const uint8_t *y, int bits)
{
    uint8_t a[16], b[16];
    memcpy(a, x, 16);
    memcpy(b, y, 16);
    ipaddr_mask(a, bits);
    ipaddr_mask(b, bits);
    return memcmp(a, b, 16) == 0;
}

static void ipprefix_push(lua_State *L, const ipaddr *a, int bits)
{
    ipprefix *p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    ipaddr_copy(&p->a, a);
    p->a.zone[0] = '\0';                  /* a prefix has no zone */
    p->bits = bits;
    luaL_setmetatable(L, IPPREFIX_MT);
}

static ipprefix *ipprefix_check(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, IPPREFIX_MT);
}

/* ipprefix_bits16: the prefix length counted over the 16-byte form. */
static int ipprefix_bits16(const ipprefix *p)
{
    return p->a.family == 4 ? p->bits + 96 : p->bits;
}

/* ipprefix_make: check bits for a (Go's Addr.Prefix errors) and push the
 * prefix, masked if asked; nil, err when bits is out of range. */
int ipprefix_make(lua_State *L, const ipaddr *a, lua_Integer bits,
                         int mask)
{
    ipaddr m = *a;
    int max = a->family == 4 ? 32 : 128;
    if (bits < 0)
        return addr_errorf(L, "negative Prefix bits");
    if (bits > max)
        return addr_errorf(L, "prefix length %I too large for IPv%I", bits,
                           (lua_Integer)a->family);
    if (mask)
        ipaddr_mask(m.b, (int)bits + (a->family == 4 ? 96 : 0));
    ipprefix_push(L, &m, (int)bits);
    return 1;
}

static int ipprefix_addr(lua_State *L)
{
    ipaddr_push(L, &ipprefix_check(L, 1)->a);
    return 1;
}

static int ipprefix_bits(lua_State *L)
{
    lua_pushinteger(L, ipprefix_check(L, 1)->bits);
    return 1;
}

/* ipprefix_contains: Go's Prefix.Contains: same family, no zone. */
static int ipprefix_contains(lua_State *L)
{
    const ipprefix *p = ipprefix_check(L, 1);
    const ipaddr *a = ipaddr_check(L, 2);
    if (a->zone[0] != '\0' || a->family != p->a.family)
        return addr_pushbool(L, 0);
    return addr_pushbool(L, ipaddr_samebits(p->a.b, a->b, ipprefix_bits16(p)));
}

static int ipprefix_is_single_ip(lua_State *L)
{
    const ipprefix *p = ipprefix_check(L, 1);
    return addr_pushbool(L, ipprefix_bits16(p) == 128);
}

static int ipprefix_masked(lua_State *L)
{
    const ipprefix *p = ipprefix_check(L, 1);
    return ipprefix_make(L, &p->a, p->bits, 1);
}

static int ipprefix_overlaps(lua_State *L)
{
    const ipprefix *p = ipprefix_check(L, 1), *o = ipprefix_check(L, 2);
    int bp = ipprefix_bits16(p), bo = ipprefix_bits16(o);
    if (p->a.family != o->a.family)
        return addr_pushbool(L, 0);
    return addr_pushbool(L, ipaddr_samebits(p->a.b, o->a.b,
                                            bp < bo ? bp : bo));
}

static int ipprefix_eq(lua_State *L)
{
    const ipprefix *p = luaL_testudata(L, 1, IPPREFIX_MT);
    const ipprefix *o = luaL_testudata(L, 2, IPPREFIX_MT);
    return addr_pushbool(L, p && o && p->bits == o->bits &&
                            ipaddr_cmp(&p->a, &o->a) == 0);
}

/* ipprefix_cmp: Go's Prefix.Compare: by family (IPv4 first), then
 * prefix length (shorter first), then address. */
static int ipprefix_cmp(const ipprefix *x, const ipprefix *y)
{
    if (x->a.family != y->a.family)
        return x->a.family < y->a.family ? -1 : 1;
    if (x->bits != y->bits)
        return x->bits < y->bits ? -1 : 1;
    return ipaddr_cmp(&x->a, &y->a);
}

/* prefix:compare(other) -> -1, 0 or 1 (Go's Prefix.Compare). */
static int ipprefix_compare(lua_State *L)
{
    lua_pushinteger(L, ipprefix_cmp(ipprefix_check(L, 1), ipprefix_check(L, 2)));
    return 1;
}

static int ipprefix_lt(lua_State *L)
{
    return addr_pushbool(L, ipprefix_cmp(ipprefix_check(L, 1), ipprefix_check(L, 2)) < 0);
}

static int ipprefix_le(lua_State *L)
{
    return addr_pushbool(L, ipprefix_cmp(ipprefix_check(L, 1), ipprefix_check(L, 2)) <= 0);
}

static int ipprefix_tostring(lua_State *L)
{
    const ipprefix *p = ipprefix_check(L, 1);
    char buf[IPADDR_STRLEN];
    lua_pushlstring(L, buf, ipaddr_format(&p->a, buf));
    lua_pushfstring(L, "/%d", p->bits);
    lua_concat(L, 2);
    return 1;
}

/* ===== AddrPort ===== */

static void ipaddrport_push(lua_State *L, const ipaddr *a, int port)
{
    ipaddrport *ap = lua_newuserdatauv(L, sizeof *ap, 0);
    memset(ap, 0, sizeof *ap);
    ipaddr_copy(&ap->a, a);
    ap->port = port;
    luaL_setmetatable(L, IPADDRPORT_MT);
}

static ipaddrport *ipaddrport_check(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, IPADDRPORT_MT);
}

static int ipaddrport_cmp(const ipaddrport *x, const ipaddrport *y)
{
    int c = ipaddr_cmp(&x->a, &y->a);
    return c != 0 ? c : (x->port > y->port) - (x->port < y->port);
}

static int ipaddrport_addr(lua_State *L)
{
    ipaddr_push(L, &ipaddrport_check(L, 1)->a);
    return 1;
}

static int ipaddrport_port(lua_State *L)
{
    lua_pushinteger(L, ipaddrport_check(L, 1)->port);
    return 1;
}

static int ipaddrport_eq(lua_State *L)
{
    const ipaddrport *x = luaL_testudata(L, 1, IPADDRPORT_MT);
    const ipaddrport *y = luaL_testudata(L, 2, IPADDRPORT_MT);
    return addr_pushbool(L, x && y && ipaddrport_cmp(x, y) == 0);
}

/* addr_port:compare(other) -> -1, 0 or 1 (Go's AddrPort.Compare). */
static int ipaddrport_compare(lua_State *L)
{
    lua_pushinteger(L, ipaddrport_cmp(ipaddrport_check(L, 1), ipaddrport_check(L, 2)));
    return 1;
}

static int ipaddrport_le(lua_State *L)
{
    return addr_pushbool(L, ipaddrport_cmp(ipaddrport_check(L, 1),
                                           ipaddrport_check(L, 2)) <= 0);
}

static int ipaddrport_lt(lua_State *L)
{
    return addr_pushbool(L, ipaddrport_cmp(ipaddrport_check(L, 1),
                                           ipaddrport_check(L, 2)) < 0);
}

/* ipaddrport_tostring: "1.2.3.4:80", "[::1%lo]:80". */
static int ipaddrport_tostring(lua_State *L)
{
    const ipaddrport *ap = ipaddrport_check(L, 1);
    char buf[IPADDR_STRLEN];
    ipaddr_format(&ap->a, buf);
    if (ap->a.family == 4)
        lua_pushfstring(L, "%s:%d", buf, ap->port);
    else
        lua_pushfstring(L, "[%s]:%d", buf, ap->port);
    return 1;
}

/* ===== module functions ===== */

static int addr_parse(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    ipaddr a;
    ipaddr_perr e;
    if (ipaddr_parse_at(s, n, &a, &e) != 0)
        return addr_errorf(L, "%e", s, n, &e);
    ipaddr_push(L, &a);
    return 1;
}

/* addr_prefix: Go's ParsePrefix; bits in decimal without leading zeros. */
static int addr_prefix(lua_State *L)
{
    size_t n, i;
    const char *s = luaL_checklstring(L, 1, &n);
    ipaddr a;
    ipaddr_perr e;
    long bits;
    if ((i = addr_lastindex(s, n, '/')) == ADDR_NPOS)
        return addr_errorf(L, "ParsePrefix(%q): no '/'", s, n);
    if (ipaddr_parse_at(s, i, &a, &e) != 0)
        return addr_errorf(L, "ParsePrefix(%q): %e", s, n, s, i, &e);
    if (a.zone[0] != '\0')
        return addr_errorf(L, "ParsePrefix(%q): IPv6 zones cannot be present "
                           "in a prefix", s, n);
    bits = addr_decimal(s + i + 1, n - i - 1, a.family == 4 ? 32 : 128);
    if (bits == -1 || (n - i > 2 && s[i + 1] == '0'))
        return addr_errorf(L, "ParsePrefix(%q): bad bits after slash: %q",
                           s, n, s + i + 1, n - i - 1);
    if (bits < 0)
        return addr_errorf(L, "ParsePrefix(%q): prefix length out of range",
                           s, n);
    ipprefix_push(L, &a, (int)bits);
    return 1;
}

/* addr_addr_port: Go's ParseAddrPort: "1.2.3.4:80", "[::1%lo]:80". */
static int addr_addr_port(lua_State *L)
{
    size_t n, i, h0 = 0, h1;
    const char *s = luaL_checklstring(L, 1, &n);
    ipaddr a;
    ipaddr_perr e;
    long port;
    if ((i = addr_lastindex(s, n, ':')) == ADDR_NPOS)
        return addr_errorf(L, "ParseAddrPort(%q): not an ip:port", s, n);
    if (i == 0 || i == n - 1)
        return addr_errorf(L, "ParseAddrPort(%q): %s", s, n,
                           i == 0 ? "no IP" : "no port");
    h1 = i;
    if (s[0] == '[' && (i < 2 || s[i - 1] != ']'))
        return addr_errorf(L, "ParseAddrPort(%q): missing ]", s, n);
    if (s[0] == '[')
        h0 = 1, h1 = i - 1;
    if ((port = addr_decimal(s + i + 1, n - i - 1, 65535)) < 0)
        return addr_errorf(L, "invalid port %q parsing %q", s + i + 1,
                           n - i - 1, s, n);
    if (ipaddr_parse_at(s + h0, h1 - h0, &a, &e) != 0)
        return addr_errorf(L, "%e", s + h0, h1 - h0, &e);
    if (h0 == 1 && a.family == 4)
        return addr_errorf(L, "invalid ip:port %q, square brackets can only "
                           "be used with IPv6 addresses", s, n);
    if (h0 == 0 && a.family == 6)
        return addr_errorf(L, "invalid ip:port %q, IPv6 addresses must be "
                           "surrounded by square brackets", s, n);
    ipaddrport_push(L, &a, (int)port);
    return 1;
}

static int addr_addr_port_from(lua_State *L)
{
    const ipaddr *a = ipaddr_check(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    luaL_argcheck(L, port >= 0 && port <= 65535, 2, "port out of range");
    ipaddrport_push(L, a, (int)port);
    return 1;
}

/* addr_from_bytes: 4 bytes make a v4 address, 16 a v6 one (4in6 kept). */
static int addr_from_bytes(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    ipaddr a;
    if (n != 4 && n != 16)
        return addr_errorf(L, "from_bytes: want 4 or 16 bytes, got %I",
                           (lua_Integer)n);
    memset(&a, 0, sizeof a);
    if (n == 4) {
        ipaddr_set4(&a, (const uint8_t *)s);
    } else {
        memcpy(a.b, s, 16);
        a.family = 6;
    }
    ipaddr_push(L, &a);
    return 1;
}

static int addr_hosterr(lua_State *L, const char *s, size_t n,
                        const char *why)
{
    lua_pushnil(L);
    if (n == 0) {
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushliteral(L, "address ");
    lua_pushlstring(L, s, n);
    lua_pushfstring(L, ": %s", why);
    lua_concat(L, 3);
    return 2;
}

/* addr_bracketed: the ']' of a "[host]:port" that Go accepts, or ADDR_NPOS
 * with *why set. i is the index of the last ':'. */
static size_t addr_bracketed(const char *s, size_t n, size_t i,
                             const char **why)
{
    const char *rb = memchr(s, ']', n);
    size_t end = rb ? (size_t)(rb - s) : ADDR_NPOS;
    if (end == ADDR_NPOS)
        *why = "missing ']' in address";
    else if (end + 1 == n)
        *why = "missing port in address";
    else if (end + 1 != i)
        *why = s[end + 1] == ':' ? "too many colons in address"
                                 : "missing port in address";
    else
        return end;
    return ADDR_NPOS;
}

/* addr_split_host_port: Go's net.SplitHostPort. */
static int addr_split_host_port(lua_State *L)
{
    size_t n, i, h0 = 0, h1, k = 0;
    const char *s = luaL_checklstring(L, 1, &n), *why = NULL;
    if ((i = addr_lastindex(s, n, ':')) == ADDR_NPOS)
        return addr_hosterr(L, s, n, "missing port in address");
    h1 = i;
    if (s[0] == '[') {
        if ((h1 = addr_bracketed(s, n, i, &why)) == ADDR_NPOS)
            return addr_hosterr(L, s, n, why);
        h0 = 1;                            /* no '[' or ']' before these */
        k = h1 + 1;
    } else if (memchr(s, ':', i) != NULL) {
        return addr_hosterr(L, s, n, "too many colons in address");
    }
    if (memchr(s + h0, '[', n - h0) != NULL)
        return addr_hosterr(L, s, n, "unexpected '[' in address");
    if (memchr(s + k, ']', n - k) != NULL)
        return addr_hosterr(L, s, n, "unexpected ']' in address");
    lua_pushlstring(L, s + h0, h1 - h0);
    lua_pushlstring(L, s + i + 1, n - i - 1);
    return 2;
}

/* addr_join_host_port: Go's net.JoinHostPort; port is a string or an
 * integer. */
static int addr_join_host_port(lua_State *L)
{
    size_t n;
    const char *host = luaL_checklstring(L, 1, &n);
    int colon = memchr(host, ':', n) != NULL;
    luaL_Buffer b;
    luaL_argexpected(L, lua_isinteger(L, 2) || lua_type(L, 2) == LUA_TSTRING,
                     2, "string or integer");
    luaL_buffinit(L, &b);
    if (colon)
        luaL_addchar(&b, '[');
    luaL_addlstring(&b, host, n);
    luaL_addstring(&b, colon ? "]:" : ":");
    lua_pushvalue(L, 2);
    luaL_addvalue(&b);                     /* an integer becomes "80" */
    luaL_pushresult(&b);
    return 1;
}

static int addr_prefix_from(lua_State *L)
{
    return ipprefix_make(L, ipaddr_check(L, 1), luaL_checkinteger(L, 2), 0);
}

/* addr_type: "addr", "prefix", "addr_port", or nil for anything else. */
static int addr_type(lua_State *L)
{
    luaL_checkany(L, 1);
    if (ipaddr_test(L, 1))
        lua_pushliteral(L, "addr");
    else if (luaL_testudata(L, 1, IPPREFIX_MT))
        lua_pushliteral(L, "prefix");
    else if (luaL_testudata(L, 1, IPADDRPORT_MT))
        lua_pushliteral(L, "addr_port");
    else
        lua_pushnil(L);
    return 1;
}

static int addr_v4(lua_State *L)
{
    uint8_t q[4];
    ipaddr a;
    int i;
    for (i = 0; i < 4; i++) {
        lua_Integer v = luaL_checkinteger(L, i + 1);
        luaL_argcheck(L, v >= 0 && v <= 255, i + 1, "out of range 0..255");
        q[i] = (uint8_t)v;
    }
    ipaddr_set4(&a, q);
    ipaddr_push(L, &a);
    return 1;
}

/* addr_push16: push the v6 address whose first and last bytes are given. */
static int addr_push16(lua_State *L, uint8_t b0, uint8_t b1, uint8_t b15)
{
    ipaddr a;
    memset(&a, 0, sizeof a);
    a.family = 6;
    a.b[0] = b0, a.b[1] = b1, a.b[15] = b15;
    ipaddr_push(L, &a);
    return 1;
}

static int addr_v4_unspecified(lua_State *L)
{
    static const uint8_t zero[4];
    ipaddr a;
    ipaddr_set4(&a, zero);
    ipaddr_push(L, &a);
    return 1;
}

static int addr_v6_link_local_all_nodes(lua_State *L)
{
    return addr_push16(L, 0xff, 0x02, 0x01);
}

static int addr_v6_link_local_all_routers(lua_State *L)
{
    return addr_push16(L, 0xff, 0x02, 0x02);
}

static int addr_v6_loopback(lua_State *L)
{
    return addr_push16(L, 0, 0, 1);
}

static int addr_v6_unspecified(lua_State *L)
{
    return addr_push16(L, 0, 0, 0);
}

/* ===== registration ===== */

static const luaL_Reg ipprefix_meta[] = {
    {"__eq", ipprefix_eq},
    {"__le", ipprefix_le},
    {"__lt", ipprefix_lt},
    {"__tostring", ipprefix_tostring},
    {NULL, NULL}
};

static const luaL_Reg ipprefix_methods[] = {
    {"addr", ipprefix_addr},
    {"bits", ipprefix_bits},
    {"compare", ipprefix_compare},
    {"contains", ipprefix_contains},
    {"is_single_ip", ipprefix_is_single_ip},
    {"masked", ipprefix_masked},
    {"overlaps", ipprefix_overlaps},
    {NULL, NULL}
};

static const luaL_Reg ipaddrport_meta[] = {
    {"__eq", ipaddrport_eq},
    {"__le", ipaddrport_le},
    {"__lt", ipaddrport_lt},
    {"__tostring", ipaddrport_tostring},
    {NULL, NULL}
};

static const luaL_Reg ipaddrport_methods[] = {
    {"addr", ipaddrport_addr},
    {"compare", ipaddrport_compare},
    {"port", ipaddrport_port},
    {NULL, NULL}
};

static const luaL_Reg addr_funcs[] = {
    {"addr_port", addr_addr_port},
    {"addr_port_from", addr_addr_port_from},
    {"from_bytes", addr_from_bytes},
    {"join_host_port", addr_join_host_port},
    {"parse", addr_parse},
    {"prefix", addr_prefix},
    {"prefix_from", addr_prefix_from},
    {"split_host_port", addr_split_host_port},
    {"type", addr_type},
    {"v4", addr_v4},
    {"v4_unspecified", addr_v4_unspecified},
    {"v6_link_local_all_nodes", addr_v6_link_local_all_nodes},
    {"v6_link_local_all_routers", addr_v6_link_local_all_routers},
    {"v6_loopback", addr_v6_loopback},
    {"v6_unspecified", addr_v6_unspecified},
    {NULL, NULL}
};

/* addr_open: see addr.h. */
int addr_open(lua_State *L)
{
    class_register_keyed(L, IPADDR_MT, &IPADDRMT_KEY, ipaddr_meta, ipaddr_methods);
    class_register(L, IPPREFIX_MT, ipprefix_meta, ipprefix_methods);
    class_register(L, IPADDRPORT_MT, ipaddrport_meta, ipaddrport_methods);
    luaL_newlib(L, addr_funcs);
    return 1;
}
