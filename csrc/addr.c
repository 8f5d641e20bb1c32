/* addr.c - IP addresses (net.ip), modelled on Go's net/netip: parsing and
 * RFC 5952 formatting, conversion to and from socket addresses, and the
 * helpers ipaddr.c (the Addr userdata) and ipprefix.c (Prefix, AddrPort,
 * the module functions) share through addr_int.h. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "addr_int.h"

/* The state of an IPv6 parse: the address part is s[0..end). */
typedef struct ipaddr_v6p {
    const char *s;
    size_t p, end;
    uint8_t b[16];
    int i, ellipsis;
} ipaddr_v6p;

/* ===== small helpers ===== */

/* addr_decimal: s[0..n) as a decimal number: -1 if empty or not all digits,
 * -2 if larger than max. Leading zeros are the caller's business. */
long addr_decimal(const char *s, size_t n, long max)
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
void ipaddr_set4(ipaddr *a, const uint8_t *q)
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
void ipaddr_copy(ipaddr *dst, const ipaddr *a)
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

int ipaddr_is4in6(const ipaddr *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0xff, 0xff};
    return a->family == 6 && memcmp(a->b, mapped, 12) == 0;
}

/* ipaddr_unmapped: a with a 4in6 address turned into plain v4. */
ipaddr ipaddr_unmapped(const ipaddr *a)
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
int ipaddr_zone(const char *s, size_t from, size_t to, char *zone,
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
        return ipaddr_fail(e, "unexpected character", end, len);   /* Go's parseIPv4 */
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
int ipaddr_parse_at(const char *s, size_t len, ipaddr *out,
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
size_t ipaddr_format_expanded(const ipaddr *a, char *buf)
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
int addr_errorf(lua_State *L, const char *fmt, ...)
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

int addr_pushbool(lua_State *L, int v)
{
    lua_pushboolean(L, v);
    return 1;
}
