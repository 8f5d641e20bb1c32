/* addr.h - IP addresses (net.ip, modelled on Go's net/netip) and their
 * conversion to and from socket addresses. */
#ifndef CORONET_ADDR_H
#define CORONET_ADDR_H

#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>
#include "lua.h"

#define IPADDR_MT "coronet.ip.addr"
#define IPPREFIX_MT "coronet.ip.prefix"
#define IPADDR_ZONE_MAX 31

/* ipaddr: an IPv4 or IPv6 address with an optional zone (v6 only).
 * family is 4 or 6; a v4 address keeps its 4 bytes in b[12..15] and
 * b[0..11] hold the ::ffff: prefix, so a v4 and its 4in6 form differ
 * only by family. zone is "" when absent. */
typedef struct ipaddr {
    uint8_t b[16];
    uint8_t family;
    char zone[IPADDR_ZONE_MAX + 1];
} ipaddr;

/* ipaddr_parse: parse s[0..len) as an IPv4 dotted quad or an IPv6 address
 * (RFC 4291 forms, optional %zone). Returns NULL and fills *out on success,
 * otherwise a static string saying what is wrong ("leading zero in IPv4
 * field", ...). Never reads past len. */
const char *ipaddr_parse(const char *s, size_t len, ipaddr *out);

/* ipaddr_format: render a in canonical form (IPv4 dotted, IPv6 RFC 5952,
 * with %zone) into buf (NUL-terminated); returns the length. buf needs
 * IPADDR_STRLEN bytes. */
#define IPADDR_STRLEN 80
size_t ipaddr_format(const ipaddr *a, char *buf);

/* ipaddr_push: push a new immutable Addr userdata equal to *a. */
void ipaddr_push(lua_State *L, const ipaddr *a);

/* ipaddr_test: the ipaddr at idx if it is an Addr userdata, else NULL. */
ipaddr *ipaddr_test(lua_State *L, int idx);

/* ipaddr_to_sockaddr: fill ss with a's address and port (host order).
 * A v4 address yields sockaddr_in unless want6 is set (then ::ffff:a.b.c.d
 * in a sockaddr_in6); a zone becomes sin6_scope_id (interface name or
 * number). Returns 0, or an errno-style value (ENXIO for an unknown zone). */
int ipaddr_to_sockaddr(const ipaddr *a, int port, int want6,
                       struct sockaddr_storage *ss, socklen_t *len);

/* ipaddr_from_sockaddr: the address and port of an AF_INET or AF_INET6
 * sockaddr. A v4-mapped v6 address is unmapped (as Go does for sockets).
 * Returns 0, or -1 for another family. */
int ipaddr_from_sockaddr(const struct sockaddr *sa, ipaddr *a, int *port);

/* addr_open: register the Addr/Prefix metatables and push the net.ip
 * table (parse, prefix, addr_port, from_bytes, v4, v6_unspecified, ...). */
int addr_open(lua_State *L);

#endif
