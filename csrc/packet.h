/* packet.h - packet conns (UDP, unixgram): the userdata and the helpers
 * packet.c shares with packet_batch.c (recvmmsg/sendmmsg) and packet_opt.c
 * (socket options, multicast). */
#ifndef CORONET_PACKET_H
#define CORONET_PACKET_H

#include <sys/socket.h>
#include "lua.h"
#include "lauxlib.h"
#include "loop.h"

#define PACKET_MT "coronet.packet"
#define PACKET_NSENDERS 8      /* sender address objects kept per conn */

/* Uservalues: the cached sender address objects (a table), the string of
 * the last write_to destination (its sockaddr is p->dst), a large buffer. */
enum { PACKET_UV_SENDERS = 1, PACKET_UV_DEST, PACKET_UV_BUF, PACKET_NUV = PACKET_UV_BUF };

/* pconn: a datagram socket. la/ra are kept so addresses still render after
 * close; senders[i] is the sockaddr whose address object is at index i+1
 * of the PACKET_UV_SENDERS table. */
typedef struct pconn {
    handle h;
    uint8_t net;          /* NET_UDP* or NET_UNIXGRAM */
    uint8_t connected;    /* dialed: read/write, no write_to */
    uint8_t dialing;      /* errors before it is ready say "dial", else "listen" */
    uint8_t unlink;       /* remove the unixgram path on close */
    uint8_t next;         /* the sender slot to replace next */
    uint16_t nogso;       /* write_batch: the smallest GSO segment refused (0: none yet) */
    socklen_t llen, rlen, dlen;
    struct sockaddr_storage la, ra, dst;
    socklen_t slen[PACKET_NSENDERS];
    struct sockaddr_storage senders[PACKET_NSENDERS];
    waitq wq;             /* writers waiting behind the one on h.wr */
} pconn;

/* packet_check: the packet conn at index 1 (raises otherwise). Every
 * helper below expects it there. */
pconn *packet_check(lua_State *L);

/* packet_failx: push nil and an error for op on p; returns 2. The source
 * is the local address, the addr the peer, or dest (a write_to target)
 * when not NULL; ctxidx locates the ctx an ERR_CTX cause wraps. */
int packet_failx(lua_State *L, pconn *p, const char *op, const char *sys, int cause,
                 int ctxidx, const char *dest);

/* packet_fail: packet_failx without a ctx or destination. */
int packet_fail(lua_State *L, pconn *p, const char *op, const char *sys, int cause);

/* packet_ok: push true; returns 1. */
int packet_ok(lua_State *L);

/* packet_want6: whether p is an AF_INET6 socket (v4 peers get mapped). */
int packet_want6(const pconn *p);

/* packet_push_sender: push the address object for the sender sa (len
 * bytes), reusing a recent sender's object from the table at tidx; nil
 * for an unnamed unix socket. */
void packet_push_sender(lua_State *L, pconn *p, int tidx, const struct sockaddr_storage *sa,
                        socklen_t len);

/* The field names of messages and address objects. A batch call pushes
 * them once (packet_push_keys, which returns the stack index of the first,
 * PKEY_DATA) and passes that index as keys, so each field it reads or
 * sets costs a lua_pushvalue instead of interning the C string again;
 * keys = 0 means they are not on the stack. */
enum { PKEY_DATA, PKEY_ADDR, PKEY_TRUNCATED, PKEY_IP, PKEY_PORT, PKEY_NAME, PKEY_N };
int packet_push_keys(lua_State *L);

/* packet_pushkey: push field name k (keys: as above). */
void packet_pushkey(lua_State *L, int keys, int k);

/* packet_rawfield: push t[name k] for the table at idx without
 * metamethods; returns its type. */
int packet_rawfield(lua_State *L, int idx, int keys, int k);

/* packet_dest: the sockaddr of the destination at idx (an address object
 * or a string). Returns 0, an errno or ERR_BADADDR; sets *resolve instead
 * when it is a host name only the Lua resolver can look up. keys: as for
 * packet_rawfield. */
int packet_dest(lua_State *L, pconn *p, int idx, struct sockaddr_storage *ss, socklen_t *len,
                int *resolve, int keys);

/* packet_dest_name: the destination at idx rendered for an error (ss, when
 * not NULL, is its sockaddr; buf holds ADDR_STRLEN bytes), or NULL. */
const char *packet_dest_name(lua_State *L, int idx, const struct sockaddr_storage *ss,
                             socklen_t len, char *buf);

/* packet_buffer: a receive buffer of n bytes: the loop's shared one when
 * it is big enough, else one the conn keeps (so no call allocates twice).
 * Valid until the next call that may run Lua code on this conn. */
char *packet_buffer(lua_State *L, pconn *p, size_t n);

/* packet_ctx_to: move the net.context among the arguments from first on
 * to stack slot pos (nil when none), pad with nil, drop the rest; returns
 * pos, or 0 without a ctx. */
int packet_ctx_to(lua_State *L, int first, int pos);

/* packet_park_writer: park the writer t on p's handle, or, when another
 * writer already waits there, poll (datagram writes are atomic, so
 * concurrent writers are fine). k resumes with kctx * 2 + polling. */
int packet_park_writer(lua_State *L, pconn *p, task *t, int ctxidx, lua_KContext kctx,
                       lua_KFunction k);

/* packet_writer_cause: task_resume_cause for a writer parked by
 * packet_park_writer: a poll's timeout means "retry" (0). */
int packet_writer_cause(lua_State *L, task *t, int status, int ctxidx, lua_KContext kctx);

/* The methods of packet_batch.c and packet_opt.c, for packet_open. */
extern const luaL_Reg packet_batch_methods[];
extern const luaL_Reg packet_opt_methods[];

/* packet_open: register PACKET_MT and add the packet constructors to the
 * core table on top of the stack. */
int packet_open(lua_State *L);

#endif
