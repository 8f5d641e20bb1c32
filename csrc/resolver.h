/* resolver.h - what resolver.c (the c-ares channel), dnsresult.c (answers
 * into Lua values) and sysresolve.c (the getaddrinfo worker pool) share. */
#ifndef CORONET_RESOLVER_H
#define CORONET_RESOLVER_H

#include <stddef.h>
#include "lua.h"
#include "addr.h"

struct ares_addrinfo;

/* The largest number of addresses one lookup returns; more are dropped. */
#define DNS_MAXADDRS 256

/* Lookup kinds, in the order of dns_kinds (resolver.c). */
enum { DNS_HOST, DNS_IP, DNS_CNAME, DNS_MX, DNS_TXT, DNS_SRV, DNS_NS, DNS_PTR };

/* dns_fail: push nil, code and, when detail is not NULL, detail; returns
 * the count. code is one of the short codes coronet.dns turns into a DNS
 * error ("nxdomain", "timeout", "ctx", ...). */
int dns_fail(lua_State *L, const char *code, const char *detail);

/* dns_code: the short code for a c-ares status ("nxdomain", ...). */
const char *dns_code(int status);

/* dns_push_ipaddrs: push a table of the n addresses a[] as IP strings
 * (as_addrs 0) or net.ip Addrs (as_addrs 1): duplicates dropped, IPv6
 * before IPv4, the resolver's order otherwise. Returns 1. */
int dns_push_ipaddrs(lua_State *L, const ipaddr *a, int n, int as_addrs);

/* dns_push_fqdn: push name as an absolute domain name (a trailing dot
 * added when missing), as Go returns names. */
void dns_push_fqdn(lua_State *L, const char *name);

/* dns_push_ai: the addresses of a c-ares getaddrinfo answer, as
 * dns_push_ipaddrs; nil, "nodata" when it has none. Returns the count. */
int dns_push_ai(lua_State *L, const struct ares_addrinfo *ai, int as_addrs);

/* dns_push_canon: where the answer's CNAME chain from name ends, as an
 * absolute name; nil, "nodata" when it has no address. */
int dns_push_canon(lua_State *L, const struct ares_addrinfo *ai, const char *name);

/* dns_push_answer: the records of a DNS answer (kind DNS_MX, DNS_TXT,
 * DNS_SRV, DNS_NS, or DNS_PTR for the address a) as Lua values; SRV
 * pushes its cname first. Returns the count (nil, code on a malformed
 * answer). */
int dns_push_answer(lua_State *L, int kind, const unsigned char *abuf, int alen,
                    const ipaddr *a);

/* dns_reverse_name: a's PTR name ("4.3.2.1.in-addr.arpa", or 32 nibbles
 * and "ip6.arpa") into buf, which needs DNS_REVERSE_LEN bytes. */
#define DNS_REVERSE_LEN 80
void dns_reverse_name(const ipaddr *a, char *buf);

/* sysresolve_open: add the system resolver's functions (dns_sys,
 * dns_sys_stats) to the core table on top of the stack. */
int sysresolve_open(lua_State *L);

#endif
