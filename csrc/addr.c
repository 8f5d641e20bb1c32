/* addr.c - IP addresses (net.ip), modelled on Go's net/netip: parsing and
 * RFC 5952 formatting, the Addr, Prefix and AddrPort userdata, host:port
 * splitting, and conversion to and from socket addresses. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "addr.h"

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

/* A parse failure: a static message, and the [at, at_end) span of the
 * input it points at (Go's "(at ...)"); the span is empty when the failure
 * concerns the whole input. */
typedef struct ipaddr_perr {
    const char *msg;
    size_t at, at_end;
} ipaddr_perr;

/* The state of an IPv6 parse: the address part is s[0..end). */
typedef struct ipaddr_v6p {
    const char *s;
    size_t p, end;
    uint8_t b[16];
    int i, ellipsis;
} ipaddr_v6p;

/* ===== small helpers ===== */

static size_t addr_lastindex(const char *s, size_t n, char c)
{
    while (n-- > 0)
        if (s[n] == c)
            return n;
    return ADDR_NPOS;
}

/* addr_decimal: s[0..n) as a decimal number: -1 if empty or not all digits,
 * -2 if larger than max. Leading zeros are the caller's business. */
static long addr_decimal(const char *s, size_t n, long max)
{
    long v = 0;
    size_t i;
    int big = 0;
    if (n == 0)
        return -1;
    for (i = 0; i < n; i++) {
        int d = s[i] - '0';
        if (d < 0 || d > 9)
            return -1;
        big = big || v > max / 10 || (v == max / 10 && d > max % 10);
        if (!big)
            v = v * 10 + d;
    }
    return big ? -2 : v;
}

static int ipaddr_fail(ipaddr_perr *e, const char *msg, size_t at,
                       size_t at_end)
{
    e->msg = msg;
    e->at = at;
    e->at_end = at_end;
    return -1;
}

/* ipaddr_set4: make a the v4 address q[0..3]; q may point into a. */
static void ipaddr_set4(ipaddr *a, const uint8_t *q)
{
    uint8_t v4[4];
    memcpy(v4, q, 4);
    memset(a, 0, sizeof *a);
    a->b[10] = a->b[11] = 0xff;
    memcpy(a->b + 12, v4, 4);
    a->family = 4;
}

/* ipaddr_copy: *a normalised: a v4 address gets the ::ffff: prefix and no
 * zone, a zone is cut to IPADDR_ZONE_MAX bytes. */
static void ipaddr_copy(ipaddr *dst, const ipaddr *a)
{
    int i;
    if (a->family == 4) {
        ipaddr_set4(dst, a->b + 12);
        return;
    }
    memset(dst, 0, sizeof *dst);
    memcpy(dst->b, a->b, 16);
    dst->family = 6;
    for (i = 0; i < IPADDR_ZONE_MAX && a->zone[i] != '\0'; i++)
        dst->zone[i] = a->zone[i];
}

static int ipaddr_is4in6(const ipaddr *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0xff, 0xff};
    return a->family == 6 && memcmp(a->b, mapped, 12) == 0;
}

/* ipaddr_unmapped: a with a 4in6 address turned into plain v4. */
static ipaddr ipaddr_unmapped(const ipaddr *a)
{
    ipaddr u = *a;
    if (ipaddr_is4in6(a))
        ipaddr_set4(&u, a->b + 12);
    return u;
}

static unsigned ipaddr_group(const uint8_t *b, int i)
{
    return (unsigned)b[2 * i] << 8 | b[2 * i + 1];
}

/* ===== parsing ===== */

/* ipaddr_v4fields: parse the dotted quad s[from..to) into q[0..3]. */
static int ipaddr_v4fields(const char *s, size_t from, size_t to, uint8_t *q,
                           ipaddr_perr *e)
{
    int val = 0, digits = 0, pos = 0;
    size_t i;
    for (i = from; i < to; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (digits == 1 && val == 0)
                return ipaddr_fail(e, "IPv4 field has octet with leading zero",
                                   0, 0);
            val = val * 10 + (s[i] - '0');
            digits++;
            if (val > 255)
                return ipaddr_fail(e, "IPv4 field has value >255", 0, 0);
        } else if (s[i] == '.') {
            if (i == from || i == to - 1 || s[i - 1] == '.')
                return ipaddr_fail(e, "IPv4 field must have at least one "
                                   "digit", i, to);
            if (pos == 3)
                return ipaddr_fail(e, "IPv4 address too long", 0, 0);
            q[pos++] = (uint8_t)val;
            val = digits = 0;
        } else {
            return ipaddr_fail(e, "unexpected character", i, to);
        }
    }
    if (pos < 3)
        return ipaddr_fail(e, "IPv4 address too short", 0, 0);
    q[3] = (uint8_t)val;
    return 0;
}

/* ipaddr_zone: check the zone s[from..to) and copy it to zone. Stricter
 * than Go: at most IPADDR_ZONE_MAX bytes, no space, control character,
 * '%', '/', '[' or ']' (none can be part of an interface name). */
static int ipaddr_zone(const char *s, size_t from, size_t to, char *zone,
                       ipaddr_perr *e)
{
    size_t i;
    if (from == to)
        return ipaddr_fail(e, "zone must be a non-empty string", 0, 0);
    if (to - from > IPADDR_ZONE_MAX)
        return ipaddr_fail(e, "zone is too long", from, to);
    for (i = from; i < to; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || strchr("%/[]", c) != NULL)
            return ipaddr_fail(e, "zone has an invalid character", i, to);
    }
    memcpy(zone, s + from, to - from);
    zone[to - from] = '\0';
    return 0;
}

static int ipaddr_parse4(const char *s, size_t len, ipaddr *out,
                         ipaddr_perr *e)
{
    const char *pct = memchr(s, '%', len);
    size_t end = pct ? (size_t)(pct - s) : len;
    uint8_t q[4];
    if (ipaddr_v4fields(s, 0, end, q, e) != 0)
        return -1;
    if (pct)
        return ipaddr_fail(e, "IPv4 addresses cannot have a zone", end, len);
    ipaddr_set4(out, q);
    return 0;
}

static int ipaddr_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ipaddr_v6tail: the dotted quad that ends an IPv6 address, at v->p. */
static int ipaddr_v6tail(ipaddr_v6p *v, ipaddr_perr *e)
{
    if (v->ellipsis < 0 && v->i != 12)
        return ipaddr_fail(e, "embedded IPv4 address must replace the final "
                           "2 fields of the address", v->p, v->end);
    if (v->i + 4 > 16)
        return ipaddr_fail(e, "too many hex fields to fit an embedded IPv4 "
                           "at the end of the address", v->p, v->end);
    if (ipaddr_v4fields(v->s, v->p, v->end, v->b + v->i, e) != 0)
        return -1;
    v->i += 4;
    v->p = v->end;
    return 1;
}

/* ipaddr_v6step: parse one group and the ':' or '::' after it. Returns 1
 * at the end of the address, 0 to go on, -1 on error. */
static int ipaddr_v6step(ipaddr_v6p *v, ipaddr_perr *e)
{
    size_t q = v->p;
    unsigned acc = 0;
    int d;
    while (q < v->end && (d = ipaddr_hexval(v->s[q])) >= 0) {
        if (q - v->p == 4)
            return ipaddr_fail(e, "each group must have 4 or less digits",
                               v->p, v->end);
        acc = acc << 4 | (unsigned)d;
        q++;
    }
    if (q == v->p)
        return ipaddr_fail(e, "each colon-separated field must have at least "
                           "one digit", v->p, v->end);
    if (q < v->end && v->s[q] == '.')
        return ipaddr_v6tail(v, e);
    v->b[v->i] = (uint8_t)(acc >> 8);
    v->b[v->i + 1] = (uint8_t)acc;
    v->i += 2;
    if ((v->p = q) == v->end)
        return 1;
    if (v->s[q] != ':')
        return ipaddr_fail(e, "unexpected character, want colon", q, v->end);
    if (q + 1 == v->end)
        return ipaddr_fail(e, "colon must be followed by more characters",
                           q, v->end);
    v->p = q + 1;
    if (v->s[v->p] != ':')
        return 0;
    if (v->ellipsis >= 0)
        return ipaddr_fail(e, "multiple :: in address", v->p, v->end);
    v->ellipsis = v->i;
    return ++v->p == v->end;
}

/* ipaddr_v6expand: widen the "::" of a parsed address to 16 bytes. */
static int ipaddr_v6expand(ipaddr_v6p *v, ipaddr_perr *e)
{
    int n = 16 - v->i;
    if (v->i == 16 && v->ellipsis >= 0)
        return ipaddr_fail(e, "the :: must expand to at least one field of "
                           "zeros", v->p, v->end);
    if (v->i == 16)
        return 0;
    if (v->ellipsis < 0)
        return ipaddr_fail(e, "address string too short", 0, 0);
    memmove(v->b + v->ellipsis + n, v->b + v->ellipsis,
            (size_t)(v->i - v->ellipsis));
    memset(v->b + v->ellipsis, 0, (size_t)n);
    return 0;
}

static int ipaddr_parse6(const char *s, size_t len, ipaddr *out,
                         ipaddr_perr *e)
{
    const char *pct = memchr(s, '%', len);
    ipaddr_v6p v;
    int r = 0;
    memset(&v, 0, sizeof v);
    memset(out, 0, sizeof *out);
    v.s = s;
    v.end = pct ? (size_t)(pct - s) : len;
    v.ellipsis = -1;
    if (pct && ipaddr_zone(s, v.end + 1, len, out->zone, e) != 0)
        return -1;
    if (v.end >= 2 && s[0] == ':' && s[1] == ':') {
        v.ellipsis = 0;
        v.p = 2;
        r = v.p == v.end;                  /* "::" alone */
    }
    while (r == 0 && v.i < 16)
        if ((r = ipaddr_v6step(&v, e)) < 0)
            return -1;
    if (v.p != v.end)
        return ipaddr_fail(e, "trailing garbage after address", v.p, v.end);
    if (ipaddr_v6expand(&v, e) != 0)
        return -1;
    memcpy(out->b, v.b, 16);
    out->family = 6;
    return 0;
}

/* ipaddr_parse_at: ipaddr_parse, with where the failure is in *e. */
static int ipaddr_parse_at(const char *s, size_t len, ipaddr *out,
                           ipaddr_perr *e)
{
    size_t i;
    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '.':
            return ipaddr_parse4(s, len, out, e);
        case ':':
            return ipaddr_parse6(s, len, out, e);
        case '%':
            return ipaddr_fail(e, "missing IPv6 address", 0, 0);
        }
    }
    return ipaddr_fail(e, "unable to parse IP", 0, 0);
}

/* ipaddr_parse: see addr.h; the message is Go's ParseAddr reason. */
const char *ipaddr_parse(const char *s, size_t len, ipaddr *out)
{
    ipaddr a;
    ipaddr_perr e;
    if (ipaddr_parse_at(s, len, &a, &e) != 0)
        return e.msg;
    *out = a;
    return NULL;
}

/* ===== formatting ===== */

static size_t ipaddr_format4(const uint8_t *q, char *buf)
{
    return (size_t)sprintf(buf, "%u.%u.%u.%u", q[0], q[1], q[2], q[3]);
}

static size_t ipaddr_hex(unsigned v, char *buf)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 0;
    int shift = 12;
    while (shift > 0 && (v >> shift) == 0)
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        buf[n++] = digits[(v >> shift) & 0xf];
    return n;
}

/* ipaddr_format6: RFC 5952: lowercase, no leading zeros, the longest run
 * of two or more zero groups (the leftmost on a tie) becomes "::". */
static size_t ipaddr_format6(const uint8_t *b, char *buf)
{
    int best = -1, bestlen = 1, i, j;
    size_t n = 0;
    for (i = 0; i < 8; i++) {
        for (j = i; j < 8 && ipaddr_group(b, j) == 0; j++)
            ;
        if (j - i > bestlen) {
            best = i;
            bestlen = j - i;
        }
    }
    for (i = 0; i < 8; i++) {
        if (i == best) {
            buf[n++] = ':';
            buf[n++] = ':';
            if ((i += bestlen) >= 8)
                break;
        } else if (i > 0) {
            buf[n++] = ':';
        }
        n += ipaddr_hex(ipaddr_group(b, i), buf + n);
    }
    buf[n] = '\0';
    return n;
}

/* ipaddr_format: see addr.h. */
size_t ipaddr_format(const ipaddr *a, char *buf)
{
    size_t n;
    if (a->family == 4)
        return ipaddr_format4(a->b + 12, buf);
    if (ipaddr_is4in6(a)) {
        memcpy(buf, "::ffff:", 7);
        n = 7 + ipaddr_format4(a->b + 12, buf + 7);
    } else {
        n = ipaddr_format6(a->b, buf);
    }
    if (a->zone[0] != '\0')
        n += (size_t)sprintf(buf + n, "%%%.*s", IPADDR_ZONE_MAX, a->zone);
    return n;
}

/* ipaddr_format_expanded: Go's StringExpanded: eight 4-digit groups. */
static size_t ipaddr_format_expanded(const ipaddr *a, char *buf)
{
    size_t n = 0;
    int i;
    if (a->family == 4)
        return ipaddr_format4(a->b + 12, buf);
    for (i = 0; i < 8; i++)
        n += (size_t)sprintf(buf + n, i ? ":%04x" : "%04x",
                             ipaddr_group(a->b, i));
    if (a->zone[0] != '\0')
        n += (size_t)sprintf(buf + n, "%%%.*s", IPADDR_ZONE_MAX, a->zone);
    return n;
}

/* ===== socket addresses ===== */

/* ipaddr_zone_index: the interface index a zone names: a decimal number
 * as is, otherwise an interface name. */
static int ipaddr_zone_index(const char *zone, uint32_t *idx)
{
    size_t n = strlen(zone);
    long v = addr_decimal(zone, n, 0xffffffffL);
    if (v >= 0) {
        *idx = (uint32_t)v;
        return 0;
    }
    *idx = if_nametoindex(zone);
    return *idx != 0 ? 0 : ENXIO;
}

/* ipaddr_zone_name: the zone for an interface index: its name, or the
 * number when the interface is gone. */
static void ipaddr_zone_name(uint32_t idx, char *zone)
{
    char name[IF_NAMESIZE];
    if (if_indextoname(idx, name) != NULL)
        snprintf(zone, IPADDR_ZONE_MAX + 1, "%s", name);
    else
        snprintf(zone, IPADDR_ZONE_MAX + 1, "%lu", (unsigned long)idx);
}

/* ipaddr_to_sockaddr: see addr.h; EINVAL for a port out of 0..65535. */
int ipaddr_to_sockaddr(const ipaddr *a, int port, int want6,
                       struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    uint32_t idx = 0;
    if (port < 0 || port > 65535)
        return EINVAL;
    memset(ss, 0, sizeof *ss);
    if (a->family == 4 && !want6) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, a->b + 12, 4);
        *len = sizeof *sin;
        return 0;
    }
    if (a->family == 6 && a->zone[0] != '\0' &&
        ipaddr_zone_index(a->zone, &idx) != 0)
        return ENXIO;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    sin6->sin6_scope_id = idx;
    memcpy(&sin6->sin6_addr, a->b, 16);
    if (a->family == 4)                    /* whatever b[0..11] holds */
        memcpy(&sin6->sin6_addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
    *len = sizeof *sin6;
    return 0;
}

/* ipaddr_from_sockaddr: see addr.h; port may be NULL. */
int ipaddr_from_sockaddr(const struct sockaddr *sa, ipaddr *a, int *port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    if (sa->sa_family == AF_INET) {
        ipaddr_set4(a, (const uint8_t *)&sin->sin_addr);
        if (port)
            *port = ntohs(sin->sin_port);
        return 0;
    }
    if (sa->sa_family != AF_INET6)
        return -1;
    memset(a, 0, sizeof *a);
    memcpy(a->b, &sin6->sin6_addr, 16);
    a->family = 6;
    if (port)
        *port = ntohs(sin6->sin6_port);
    if (ipaddr_is4in6(a))
        ipaddr_set4(a, a->b + 12);         /* as Go does for sockets */
    else if (sin6->sin6_scope_id != 0)
        ipaddr_zone_name(sin6->sin6_scope_id, a->zone);
    return 0;
}

/* ===== Lua helpers ===== */

static void addr_addquoted(luaL_Buffer *b, const char *s, size_t n)
{
    char hex[8];
    size_t i;
    luaL_addchar(b, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            luaL_addchar(b, '\\');
            luaL_addchar(b, (char)c);
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(hex, sizeof hex, "\\x%02x", c);
            luaL_addstring(b, hex);
        } else {
            luaL_addchar(b, (char)c);
        }
    }
    luaL_addchar(b, '"');
}

/* addr_addperr: append Go's ParseAddr error text for input s[0..n). */
static void addr_addperr(luaL_Buffer *b, const char *s, size_t n,
                         const ipaddr_perr *e)
{
    luaL_addstring(b, "ParseAddr(");
    addr_addquoted(b, s, n);
    luaL_addstring(b, "): ");
    luaL_addstring(b, e->msg);
    if (e->at_end > e->at) {
        luaL_addstring(b, " (at ");
        addr_addquoted(b, s + e->at, e->at_end - e->at);
        luaL_addchar(b, ')');
    }
}

/* addr_errorf: push nil and a message; in fmt "%q" takes (const char *,
 * size_t) and quotes it like Go, "%e" takes (const char *, size_t,
 * const ipaddr_perr *) for a ParseAddr error, "%s" a C string, "%I" a
 * lua_Integer. Returns 2, for `return addr_errorf(...)`. */
static int addr_errorf(lua_State *L, const char *fmt, ...)
{
    luaL_Buffer b;
    va_list ap;
    const char *s;
    size_t n;
    lua_pushnil(L);
    luaL_buffinit(L, &b);
    va_start(ap, fmt);
    for (; *fmt != '\0'; fmt++) {
        if (*fmt != '%') {
            luaL_addchar(&b, *fmt);
            continue;
        }
        switch (*++fmt) {
        case 's':
            luaL_addstring(&b, va_arg(ap, const char *));
            break;
        case 'I':
            lua_pushinteger(L, va_arg(ap, lua_Integer));
            luaL_addvalue(&b);
            break;
        case 'q':
            s = va_arg(ap, const char *);
            n = va_arg(ap, size_t);
            addr_addquoted(&b, s, n);
            break;
        default:                           /* 'e' */
            s = va_arg(ap, const char *);
            n = va_arg(ap, size_t);
            addr_addperr(&b, s, n, va_arg(ap, const ipaddr_perr *));
        }
    }
    va_end(ap);
    luaL_pushresult(&b);
    return 2;
}

static int addr_pushbool(lua_State *L, int v)
{
    lua_pushboolean(L, v);
    return 1;
}

/* ipaddr_push: see addr.h; a v4 address is normalised (no zone). */
void ipaddr_push(lua_State *L, const ipaddr *a)
{
    ipaddr *u = lua_newuserdatauv(L, sizeof *u, 0);
    ipaddr_copy(u, a);
    luaL_setmetatable(L, IPADDR_MT);
}

/* ipaddr_test: see addr.h. */
ipaddr *ipaddr_test(lua_State *L, int idx)
{
    return luaL_testudata(L, idx, IPADDR_MT);
}

static ipaddr *ipaddr_check(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, IPADDR_MT);
}

static int ipaddr_cmp(const ipaddr *x, const ipaddr *y)
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
static int ipprefix_make(lua_State *L, const ipaddr *a, lua_Integer bits,
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

static int ipaddr_prefix(lua_State *L)
{
    return ipprefix_make(L, ipaddr_check(L, 1), luaL_checkinteger(L, 2), 1);
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

static const luaL_Reg ipaddr_meta[] = {
    {"__eq", ipaddr_eq},
    {"__le", ipaddr_le},
    {"__lt", ipaddr_lt},
    {"__tostring", ipaddr_tostring},
    {NULL, NULL}
};

static const luaL_Reg ipaddr_methods[] = {
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

static const luaL_Reg ipprefix_meta[] = {
    {"__eq", ipprefix_eq},
    {"__tostring", ipprefix_tostring},
    {NULL, NULL}
};

static const luaL_Reg ipprefix_methods[] = {
    {"addr", ipprefix_addr},
    {"bits", ipprefix_bits},
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

static void addr_newmeta(lua_State *L, const char *name, const luaL_Reg *meta,
                         const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");        /* metatable.__index = methods */
    lua_pop(L, 1);                         /* pop metatable */
}

/* addr_open: see addr.h. */
int addr_open(lua_State *L)
{
    addr_newmeta(L, IPADDR_MT, ipaddr_meta, ipaddr_methods);
    addr_newmeta(L, IPPREFIX_MT, ipprefix_meta, ipprefix_methods);
    addr_newmeta(L, IPADDRPORT_MT, ipaddrport_meta, ipaddrport_methods);
    luaL_newlib(L, addr_funcs);
    return 1;
}
