/* dnsresult.c - DNS answers into Lua values, for resolver.c and
 * sysresolve.c: address lists (deduplicated, IPv6 first), canonical names,
 * MX, TXT, SRV and NS records, and the short error codes coronet.dns
 * turns into DNS errors. Runs in a resumed task, never in a callback. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <arpa/nameser.h>
#include <ares.h>
#include "lauxlib.h"
#include "addr.h"
#include "resolver.h"

#define DNS_U16(p) ((int)((unsigned)(p)[0] << 8 | (p)[1]))

int dns_fail(lua_State *L, const char *code, const char *detail) {
    lua_pushnil(L);
    lua_pushstring(L, code);
    if (!detail) return 2;
    lua_pushstring(L, detail);
    return 3;
}

const char *dns_code(int status) {
    switch (status) {
    case ARES_ENODATA: return "nodata";
    case ARES_ENOTFOUND: return "nxdomain";
    case ARES_ESERVFAIL: return "servfail";
    case ARES_EREFUSED: return "refused";
    case ARES_EFORMERR: return "formerr";
    case ARES_ENOTIMP: return "notimp";
    case ARES_ETIMEOUT: return "timeout";
    case ARES_EBADRESP: return "badresp";
    case ARES_ECONNREFUSED: return "unreachable";
    case ARES_EOF: return "eof";
    case ARES_ENOMEM: return "nomem";
    case ARES_EDESTRUCTION: case ARES_ECANCELLED: return "closed";
    case ARES_EBADNAME: case ARES_EBADQUERY: case ARES_EBADFAMILY: case ARES_ENONAME:
    case ARES_EBADFLAGS: case ARES_EBADHINTS: case ARES_EBADSTR: return "badname";
    default: return "other";
    }
}

void dns_push_fqdn(lua_State *L, const char *name) {
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.') lua_pushlstring(L, name, n);
    else lua_pushfstring(L, "%s.", name);
}

/* ---- addresses ------------------------------------------------------ */

static int dns_ipaddr_eq(const ipaddr *x, const ipaddr *y) {
    return x->family == y->family && memcmp(x->b, y->b, 16) == 0 &&
           strcmp(x->zone, y->zone) == 0;
}

int dns_push_ipaddrs(lua_State *L, const ipaddr *a, int n, int as_addrs) {
    char buf[IPADDR_STRLEN];
    lua_createtable(L, n, 0);
    int k = 0;
    for (int fam = 6; fam >= 4; fam -= 2) {   /* IPv6 first: RFC 6724's default policy */
        for (int i = 0; i < n; i++) {
            int dup = 0;
            if (a[i].family != fam) continue;
            for (int j = 0; j < i && !dup; j++) dup = dns_ipaddr_eq(&a[i], &a[j]);
            if (dup) continue;
            if (as_addrs) {
                ipaddr_push(L, &a[i]);
            } else {
                ipaddr_format(&a[i], buf);
                lua_pushstring(L, buf);
            }
            lua_rawseti(L, -2, ++k);
        }
    }
    return 1;
}

int dns_push_ai(lua_State *L, const struct ares_addrinfo *ai, int as_addrs) {
    ipaddr a[DNS_MAXADDRS];
    int n = 0, port;
    for (const struct ares_addrinfo_node *p = ai ? ai->nodes : NULL; p && n < DNS_MAXADDRS;
         p = p->ai_next)
        if (ipaddr_from_sockaddr(p->ai_addr, &a[n], &port) == 0) n++;
    if (n == 0) return dns_fail(L, "nodata", NULL);
    return dns_push_ipaddrs(L, a, n, as_addrs);
}

int dns_push_canon(lua_State *L, const struct ares_addrinfo *ai, const char *name) {
    const char *cur = ai && ai->name ? ai->name : name;
    int hops = 0;
    for (const struct ares_addrinfo_cname *c = ai ? ai->cnames : NULL; c && hops < 64;) {
        if (c->alias && c->name && strcasecmp(c->alias, cur) == 0 && strcasecmp(c->name, cur)) {
            cur = c->name;
            hops++;
            c = ai->cnames;                      /* follow the chain from the start */
            continue;
        }
        c = c->next;
    }
    if (!ai || !ai->nodes) return dns_fail(L, "nodata", NULL);
    dns_push_fqdn(L, cur);
    return 1;
}

/* ---- records -------------------------------------------------------- */

/* Go's isDomainName (net/dnsclient.go), applied to MX and SRV names since
 * CVE-2021-33195: letters, digits, '_' and '-' in labels of 1..63 octets,
 * at most 253 octets besides a final dot, not all-numeric. c-ares renders
 * other bytes ('\0', ';', '<') as they are or as escapes, which fail here.
 * "" and "." (the root: a null MX) pass. */
static int dns_name_ok(const char *s) {
    size_t l = strlen(s);
    if (l == 0 || (l == 1 && s[0] == '.')) return 1;
    if (l > 254 || (l == 254 && s[l - 1] != '.')) return 0;
    char last = '.';
    int nonnum = 0, part = 0;
    for (size_t i = 0; i < l; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            nonnum = 1;
            part++;
        } else if (c >= '0' && c <= '9') {
            part++;
        } else if (c == '-') {
            if (last == '.') return 0;
            part++;
            nonnum = 1;
        } else if (c == '.') {
            if (last == '.' || last == '-' || part > 63 || part == 0) return 0;
            part = 0;
        } else {
            return 0;
        }
        last = c;
    }
    return last != '-' && part <= 63 && nonnum;
}

/* An answer c-ares accepted but its parser refuses is malformed. */
static int dns_parse_fail(lua_State *L, int st) {
    return dns_fail(L, st == ARES_ENODATA ? "nodata" : st == ARES_ENOMEM ? "nomem" : "badresp",
                    NULL);
}

static int dns_push_mx(lua_State *L, const unsigned char *abuf, int alen) {
    struct ares_mx_reply *mx = NULL;
    int st = ares_parse_mx_reply(abuf, alen, &mx);
    if (st != ARES_SUCCESS) return dns_parse_fail(L, st);
    if (!mx) return dns_fail(L, "nodata", NULL);        /* records of another type only */
    for (struct ares_mx_reply *p = mx; p; p = p->next)
        if (!dns_name_ok(p->host)) {
            ares_free_data(mx);
            return dns_fail(L, "badresp", NULL);
        }
    lua_newtable(L);
    int i = 0;
    for (struct ares_mx_reply *p = mx; p; p = p->next) {
        lua_createtable(L, 0, 2);
        dns_push_fqdn(L, p->host);
        lua_setfield(L, -2, "host");
        lua_pushinteger(L, p->priority);
        lua_setfield(L, -2, "pref");
        lua_rawseti(L, -2, ++i);
    }
    ares_free_data(mx);
    return 1;
}

/* TXT: one string per record, its character-strings joined (as Go). */
static int dns_push_txt(lua_State *L, const unsigned char *abuf, int alen) {
    struct ares_txt_ext *txt = NULL;
    int st = ares_parse_txt_reply_ext(abuf, alen, &txt);
    if (st != ARES_SUCCESS) return dns_parse_fail(L, st);
    if (!txt) return dns_fail(L, "nodata", NULL);       /* records of another type only */
    lua_newtable(L);
    int i = 0;
    luaL_Buffer b;
    for (struct ares_txt_ext *p = txt; p;) {
        luaL_buffinit(L, &b);
        do {
            luaL_addlstring(&b, (const char *)p->txt, p->length);
            p = p->next;
        } while (p && !p->record_start);
        luaL_pushresult(&b);
        lua_rawseti(L, -2, ++i);
    }
    ares_free_data(txt);
    return 1;
}

/* PTR: the names, deduplicated (c-ares repeats h_name in h_aliases). */
static int dns_push_ptr(lua_State *L, const unsigned char *abuf, int alen, const ipaddr *a) {
    struct hostent *he = NULL;
    int v4 = a->family == 4;
    int st = ares_parse_ptr_reply(abuf, alen, v4 ? a->b + 12 : a->b, v4 ? 4 : 16,
                                  v4 ? AF_INET : AF_INET6, &he);
    if (st != ARES_SUCCESS) return dns_parse_fail(L, st);
    lua_newtable(L);
    int i = 0;
    dns_push_fqdn(L, he->h_name);
    lua_rawseti(L, -2, ++i);
    for (char **p = he->h_aliases; p && *p; p++) {
        int dup = strcasecmp(*p, he->h_name) == 0;
        for (char **q = he->h_aliases; q < p && !dup; q++) dup = strcasecmp(*p, *q) == 0;
        if (dup) continue;
        dns_push_fqdn(L, *p);
        lua_rawseti(L, -2, ++i);
    }
    ares_free_hostent(he);
    return 1;
}

static int dns_push_ns(lua_State *L, const unsigned char *abuf, int alen) {
    struct hostent *he = NULL;
    int st = ares_parse_ns_reply(abuf, alen, &he);
    if (st != ARES_SUCCESS) return dns_parse_fail(L, st);
    lua_newtable(L);
    int i = 0;
    for (char **a = he->h_aliases; a && *a; a++) {
        dns_push_fqdn(L, *a);
        lua_rawseti(L, -2, ++i);
    }
    ares_free_hostent(he);
    return 1;
}

/* The name the answer's CNAME chain ends at, starting from the question
 * (lookup_srv's cname); NULL when the answer is malformed. */
static char *dns_answer_owner(const unsigned char *abuf, int alen) {
    char *cur = NULL, *name = NULL, *target = NULL;
    long len;
    if (alen < NS_HFIXEDSZ || DNS_U16(abuf + 4) < 1) return NULL;
    int an = DNS_U16(abuf + 6);
    const unsigned char *p = abuf + NS_HFIXEDSZ, *end = abuf + alen;
    if (ares_expand_name(p, abuf, alen, &cur, &len) != ARES_SUCCESS) return NULL;
    p += len + NS_QFIXEDSZ;
    for (int i = 0; i < an && p < end; i++) {
        if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS) break;
        p += len;
        if (p + NS_RRFIXEDSZ > end) {
            ares_free_string(name);
            break;
        }
        int type = DNS_U16(p), rdlen = DNS_U16(p + 8);
        p += NS_RRFIXEDSZ;
        if (type == ns_t_cname && strcasecmp(name, cur) == 0 &&
            ares_expand_name(p, abuf, alen, &target, &len) == ARES_SUCCESS) {
            ares_free_string(cur);
            cur = target;
        }
        ares_free_string(name);
        p += rdlen;
    }
    return cur;
}

static int dns_push_srv(lua_State *L, const unsigned char *abuf, int alen) {
    struct ares_srv_reply *srv = NULL;
    int st = ares_parse_srv_reply(abuf, alen, &srv);
    if (st != ARES_SUCCESS) return dns_parse_fail(L, st);
    if (!srv) return dns_fail(L, "nodata", NULL);       /* records of another type only */
    for (struct ares_srv_reply *p = srv; p; p = p->next)
        if (!dns_name_ok(p->host)) {
            ares_free_data(srv);
            return dns_fail(L, "badresp", NULL);
        }
    char *owner = dns_answer_owner(abuf, alen);
    if (owner) dns_push_fqdn(L, owner);
    else lua_pushnil(L);
    ares_free_string(owner);
    lua_newtable(L);
    int i = 0;
    for (struct ares_srv_reply *p = srv; p; p = p->next) {
        lua_createtable(L, 0, 4);
        dns_push_fqdn(L, p->host);
        lua_setfield(L, -2, "target");
        lua_pushinteger(L, p->port);
        lua_setfield(L, -2, "port");
        lua_pushinteger(L, p->priority);
        lua_setfield(L, -2, "priority");
        lua_pushinteger(L, p->weight);
        lua_setfield(L, -2, "weight");
        lua_rawseti(L, -2, ++i);
    }
    ares_free_data(srv);
    return 2;
}

void dns_reverse_name(const ipaddr *a, char *buf) {
    static const char hex[] = "0123456789abcdef";
    char *p = buf;
    if (a->family == 4) {
        const uint8_t *b = a->b + 12;
        sprintf(buf, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
        return;
    }
    for (int i = 15; i >= 0; i--) {
        *p++ = hex[a->b[i] & 15];
        *p++ = '.';
        *p++ = hex[a->b[i] >> 4];
        *p++ = '.';
    }
    strcpy(p, "ip6.arpa");
}

int dns_push_answer(lua_State *L, int kind, const unsigned char *abuf, int alen,
                    const ipaddr *a) {
    switch (kind) {
    case DNS_PTR: return dns_push_ptr(L, abuf, alen, a);
    case DNS_MX: return dns_push_mx(L, abuf, alen);
    case DNS_TXT: return dns_push_txt(L, abuf, alen);
    case DNS_SRV: return dns_push_srv(L, abuf, alen);
    default: return dns_push_ns(L, abuf, alen);
    }
}
