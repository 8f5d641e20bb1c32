/* addr_int.h - what addr.c (parsing, formatting, errors), ipaddr.c (the
 * Addr userdata) and ipprefix.c (Prefix, AddrPort, the module functions)
 * share. Internal to net.ip: other files use addr.h. */
#ifndef CORONET_ADDR_INT_H
#define CORONET_ADDR_INT_H

#include <stddef.h>
#include <stdint.h>
#include "lua.h"
#include "lauxlib.h"
#include "addr.h"

/* A parse failure: a static message, and the [at, at_end) span of the
 * input it points at (Go's "(at ...)"); the span is empty when the failure
 * concerns the whole input. */
typedef struct ipaddr_perr {
    const char *msg;
    size_t at, at_end;
} ipaddr_perr;

/* ===== addr.c ===== */

/* addr_decimal: s[0..n) in decimal; -1 if empty or not all digits, -2 if above max. */
long addr_decimal(const char *s, size_t n, long max);

/* ipaddr_set4: make *a the v4 address q[0..3] (zone cleared); q may point into a. */
void ipaddr_set4(ipaddr *a, const uint8_t *q);

/* ipaddr_copy: *a normalised into *dst: v4 gets ::ffff: and no zone, a zone is cut short. */
void ipaddr_copy(ipaddr *dst, const ipaddr *a);

/* ipaddr_is4in6: whether a is a v6 address of the form ::ffff:a.b.c.d. */
int ipaddr_is4in6(const ipaddr *a);

/* ipaddr_unmapped: a copy of *a, with a 4in6 address turned into plain v4. */
ipaddr ipaddr_unmapped(const ipaddr *a);

/* ipaddr_zone: check zone s[from..to), copy it NUL-terminated to zone; 0, or -1 and *e. */
int ipaddr_zone(const char *s, size_t from, size_t to, char *zone, ipaddr_perr *e);

/* IPADDRMT_KEY: the light registry key of IPADDR_MT (ipaddr.c defines it,
 * addr_open registers the class under it). */
extern const char IPADDRMT_KEY;

/* ipaddr_parse_at: ipaddr_parse; returns 0, or -1 with the reason and its span in *e. */
int ipaddr_parse_at(const char *s, size_t len, ipaddr *out, ipaddr_perr *e);

/* ipaddr_format_expanded: a as Go's StringExpanded into buf (IPADDR_STRLEN); the length. */
size_t ipaddr_format_expanded(const ipaddr *a, char *buf);

/* addr_errorf: push nil and a message from fmt (%q, %e, %s, %I; see addr.c); returns 2. */
int addr_errorf(lua_State *L, const char *fmt, ...);

/* addr_pushbool: push the boolean v; returns 1. */
int addr_pushbool(lua_State *L, int v);

/* ===== ipaddr.c ===== */

/* ipaddr_check: the Addr userdata at idx; raises a type error otherwise. */
ipaddr *ipaddr_check(lua_State *L, int idx);

/* ipaddr_cmp: -1, 0 or 1, ordering by family, then bytes, then zone. */
int ipaddr_cmp(const ipaddr *x, const ipaddr *y);

/* ipaddr_meta, ipaddr_methods: the Addr metamethods and methods, for addr_open. */
extern const luaL_Reg ipaddr_meta[];
extern const luaL_Reg ipaddr_methods[];

/* ===== ipprefix.c ===== */

/* ipprefix_make: push Prefix a/bits (masked if mask), returns 1; nil, err if bits is bad. */
int ipprefix_make(lua_State *L, const ipaddr *a, lua_Integer bits, int mask);

#endif
