/* packet_batch.c - the batch path of packet conns: read_batch takes up to
 * PACKET_BATCH_MAX queued datagrams with one recvmmsg, write_batch sends
 * any number with as few sendmmsg calls as it takes, coalescing each run
 * of datagrams to one destination by UDP GSO where the path allows.
 * Messages are tables the caller owns and reuses ({data, addr, truncated},
 * like Go's ipv4.Message), so a batch allocates nothing but the
 * datagrams' strings. */
#include <errno.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include "lauxlib.h"
#include "errors.h"
#include "loop.h"
#include "packet.h"
#include "sock.h"

#define PACKET_BATCH_MAX 64            /* datagrams per recvmmsg/sendmmsg */
#define PACKET_BATCH_READ_DEFAULT 2048 /* read_batch: bytes per datagram */
#define PACKET_BATCH_READ_MAX 65536

/* The message table msgs[i] (msgs at index 2), pushed; raises if it is
 * not a table. */
static void packet_msg(lua_State *L, lua_Integer i) {
    if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
        luaL_error(L, "bad message #%d in batch (table expected, got %s)", (int)i,
                   luaL_typename(L, -1));
}

/* Store datagram mm of a recvmmsg in the message table on top: data, addr
 * and truncated (keys: packet_push_keys's; senders at tidx). */
static void packet_store_msg(lua_State *L, pconn *p, int keys, int tidx,
                             const struct mmsghdr *mm, const struct sockaddr_storage *sa,
                             int from) {
    const struct iovec *iov = mm->msg_hdr.msg_iov;
    packet_pushkey(L, keys, PKEY_DATA);
    lua_pushlstring(L, iov->iov_base, mm->msg_len);
    lua_rawset(L, -3);
    packet_pushkey(L, keys, PKEY_ADDR);
    if (from) packet_push_sender(L, p, tidx, sa, mm->msg_hdr.msg_namelen);
    else lua_pushnil(L);
    lua_rawset(L, -3);
    packet_pushkey(L, keys, PKEY_TRUNCATED);
    lua_pushboolean(L, (mm->msg_hdr.msg_flags & MSG_TRUNC) != 0);
    lua_rawset(L, -3);
}

/* One recvmmsg of up to count datagrams of max bytes into msgs[1..];
 * returns how many, or -errno. Fewer than count (or EAGAIN) means the
 * queue was empty: the readiness hint (loop.h) then skips the next call's
 * recvmmsg until the poller reports the socket readable again. */
static int packet_recv_batch(lua_State *L, pconn *p, int count, size_t max) {
    if (!p->h.rready) return -EAGAIN;
    struct mmsghdr mm[PACKET_BATCH_MAX];
    struct iovec iov[PACKET_BATCH_MAX];
    struct sockaddr_storage sa[PACKET_BATCH_MAX];
    char *buf = packet_buffer(L, p, (size_t)count * max);
    memset(mm, 0, sizeof mm[0] * (size_t)count);
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = buf + (size_t)i * max;
        iov[i].iov_len = max;
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_name = &sa[i];
        mm[i].msg_hdr.msg_namelen = sizeof sa[i];
    }
    int n = recvmmsg(p->h.fd, mm, (unsigned)count, 0, NULL);
    if (n < 0) {
        int e = errno;
        if (e == EAGAIN || e == EWOULDBLOCK) p->h.rready = 0;
        return -e;
    }
    if (n < count) p->h.rready = 0;
    int top = lua_gettop(L), keys = packet_push_keys(L);
    lua_getiuservalue(L, 1, PACKET_UV_SENDERS);
    int tidx = lua_gettop(L);
    for (int i = 0; i < n; i++) {
        packet_msg(L, i + 1);
        packet_store_msg(L, p, keys, tidx, &mm[i], &sa[i], !p->connected);
        lua_pop(L, 1);
    }
    lua_settop(L, top);                            /* the keys and the senders table */
    return n;
}

static int packet_read_batch_k(lua_State *L, int status, lua_KContext kctx);

/* pc:read_batch(msgs [, max] [, ctx]) -> n | nil, err: wait for at least
 * one datagram, then receive up to #msgs (at most 64) with one recvmmsg,
 * each of at most max bytes (default 2048). Message i gets data, addr and
 * truncated, like read_from's results; messages after n are untouched. */
static int packet_read_batch(lua_State *L) {
    pconn *p = packet_check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    int ctxidx = ctx_find(L, 3);
    lua_Integer max = ctxidx == 3 ? PACKET_BATCH_READ_DEFAULT
                                  : luaL_optinteger(L, 3, PACKET_BATCH_READ_DEFAULT);
    luaL_argcheck(L, max > 0 && max <= PACKET_BATCH_READ_MAX, 3, "max must be in 1..65536");
    lua_Unsigned count = lua_rawlen(L, 2);
    luaL_argcheck(L, count > 0, 2, "msgs holds no message table");
    for (lua_Unsigned i = 1; i <= count && i <= PACKET_BATCH_MAX; i++) {
        packet_msg(L, (lua_Integer)i);
        lua_pop(L, 1);
    }
    task *t = task_current(L);
    if (!t) return loop_block(L, packet_read_batch, lua_gettop(L));
    if (ctx_ended(L, ctxidx)) return packet_failx(L, p, "read", NULL, ERR_CTX, ctxidx, NULL);
    if (p->h.rd) return packet_fail(L, p, "read", NULL, ERR_BUSY);
    return packet_read_batch_k(L, LUA_OK, ctxidx);
}

static int packet_read_batch_k(lua_State *L, int status, lua_KContext kctx) {
    pconn *p = packet_check(L);
    task *t = task_current(L);
    int ctxidx = (int)kctx;
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (cause) return packet_failx(L, p, "read", NULL, cause, ctxidx, NULL);
    size_t max = ctxidx == 3 ? PACKET_BATCH_READ_DEFAULT
                             : (size_t)luaL_optinteger(L, 3, PACKET_BATCH_READ_DEFAULT);
    lua_Unsigned count = lua_rawlen(L, 2);
    if (count > PACKET_BATCH_MAX) count = PACKET_BATCH_MAX;
    for (;;) {
        if (p->h.fd < 0) return packet_fail(L, p, "read", NULL, ERR_CLOSED);
        if (handle_deadline_passed(p->h.rdl)) return packet_fail(L, p, "read", NULL, ERR_TIMEOUT);
        int n = packet_recv_batch(L, p, (int)count, max);
        if (n >= 0) {
            lua_pushinteger(L, n);
            return 1;
        }
        if (n == -EINTR) continue;
        if (n != -EAGAIN && n != -EWOULDBLOCK) return packet_fail(L, p, "read", "recvmmsg", -n);
        return task_park_ctx(L, t, &p->h.rd, p->h.rdl, PARK_READ, ctxidx, kctx,
                             packet_read_batch_k);
    }
}

/* The message range [*from, *to] of write_batch's i, j (stack 3, 4). */
static void packet_batch_range(lua_State *L, lua_Integer *from, lua_Integer *to) {
    lua_Integer len = (lua_Integer)lua_rawlen(L, 2);
    lua_Integer i = luaL_optinteger(L, 3, 1), j = luaL_optinteger(L, 4, len);
    if (i < 0) i = len + i + 1;
    if (j < 0) j = len + j + 1;
    *from = i < 1 ? 1 : i;
    *to = j > len ? len : j;
}

/* Fill mm[0..k) from msgs[first..] (keys: packet_push_keys's). The data
 * strings need no anchor on the stack: msgs (stack 2) holds them, and no
 * Lua code runs before the sendmmsg that reads them. Returns how many are
 * ready; *cause is set when message first + that count is bad. */
static int packet_fill_batch(lua_State *L, pconn *p, int keys, lua_Integer first, int k,
                             struct mmsghdr *mm, struct iovec *iov,
                             struct sockaddr_storage *ss, int *cause, char *name) {
    for (int i = 0; i < k; i++) {
        int resolve = 0;
        packet_msg(L, first + i);
        if (packet_rawfield(L, -1, keys, PKEY_DATA) != LUA_TSTRING)
            luaL_error(L, "bad message #%d in batch (data must be a string)", (int)(first + i));
        memset(&mm[i], 0, sizeof mm[i]);
        iov[i].iov_base = (void *)lua_tolstring(L, -1, &iov[i].iov_len);
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        lua_pop(L, 1);                             /* data */
        if (packet_rawfield(L, -1, keys, PKEY_ADDR) != LUA_TNIL) {
            int at = lua_type(L, -1);
            *cause = (at == LUA_TSTRING || at == LUA_TTABLE) && !p->connected
                         ? packet_dest(L, p, lua_gettop(L), &ss[i], &mm[i].msg_hdr.msg_namelen,
                                       &resolve, keys)
                         : (p->connected ? EISCONN : ERR_BADADDR);
            if (resolve) *cause = ERR_BADADDR;     /* names: resolve them first */
            if (*cause) {
                const char *d = packet_dest_name(L, lua_gettop(L), NULL, 0, name);
                if (d != name) snprintf(name, ADDR_STRLEN, "%s", d ? d : "");
                lua_pop(L, 2);                     /* addr, message */
                return i;
            }
            mm[i].msg_hdr.msg_name = &ss[i];
        }
        lua_pop(L, 2);                             /* addr, message */
    }
    return k;
}

/* ---- UDP GSO: a run of messages sent as one ------------------------------
 * Consecutive messages to one destination with one size (the last may be
 * shorter) go out as one message with a UDP_SEGMENT control message: the
 * kernel cuts it into the very same datagrams, after one trip through the
 * stack instead of one per datagram. A kernel, device or path that
 * refuses it gets the run again one message at a time, and p->nogso
 * remembers the refusal. */

#define PACKET_GSO_SEGS 64      /* segments per send (the kernel allows 64 or more) */
#define PACKET_GSO_BYTES 65000  /* payload per send: one IP packet, headers included */
#define PACKET_GSO_SMALL 1232   /* fits any IPv6 path (1280 - 48): refused below, no MTU's fault */

typedef union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
} packet_gsoctl;

/* Whether runs of seg-byte segments may be coalesced on p. */
static int packet_gso_usable(const pconn *p, size_t seg) {
    return p->net != NET_UNIXGRAM && seg > 0 && (p->nogso == 0 || seg < p->nogso);
}

/* Whether message j joins the run mm[s..j) of total bytes. */
static int packet_gso_joins(const struct mmsghdr *mm, const struct iovec *iov, int s, int j,
                            size_t total) {
    size_t seg = iov[s].iov_len;
    if (j - s >= PACKET_GSO_SEGS || iov[j - 1].iov_len != seg || iov[j].iov_len == 0 ||
        iov[j].iov_len > seg || total + iov[j].iov_len > PACKET_GSO_BYTES)
        return 0;
    const struct msghdr *a = &mm[s].msg_hdr, *b = &mm[j].msg_hdr;
    if (!a->msg_name || !b->msg_name) return a->msg_name == b->msg_name;
    return a->msg_namelen == b->msg_namelen && memcmp(a->msg_name, b->msg_name, a->msg_namelen) == 0;
}

/* Coalesce mm[0..k) (each with one iov, consecutive in iov) into gm: a
 * run becomes one message over the run's iovs; counts[g] is how many
 * messages gm[g] stands for. Returns the number of messages in gm. */
static int packet_gso_group(const pconn *p, const struct mmsghdr *mm, const struct iovec *iov,
                            int k, struct mmsghdr *gm, packet_gsoctl *ctl, int *counts) {
    int g = 0;
    for (int s = 0, j; s < k; s = j, g++) {
        size_t seg = iov[s].iov_len, total = seg;
        j = s + 1;
        if (packet_gso_usable(p, seg))
            while (j < k && packet_gso_joins(mm, iov, s, j, total)) total += iov[j++].iov_len;
        gm[g] = mm[s];
        counts[g] = j - s;
        if (j - s == 1) continue;
        struct msghdr *h = &gm[g].msg_hdr;
        h->msg_iovlen = (size_t)(j - s);
        memset(ctl[g].buf, 0, sizeof ctl[g].buf);  /* CMSG_SPACE's tail padding too */
        h->msg_control = ctl[g].buf;
        h->msg_controllen = sizeof ctl[g].buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t v = (uint16_t)seg;
        memcpy(CMSG_DATA(c), &v, sizeof v);
    }
    return g;
}

/* The nogso for p after a coalesced send of seg-byte segments failed with
 * e, when e is how a kernel, device or path refuses GSO (EINVAL/EMSGSIZE:
 * segments too large for the path, then no coalescing from seg up; the
 * others: none at all); else -1, for an error of the messages' own. */
static int packet_gso_refusal(const pconn *p, size_t seg, int e) {
    switch (e) {
    case EINVAL:
    case EMSGSIZE:
        return seg > PACKET_GSO_SMALL && (p->nogso == 0 || seg < p->nogso) ? (int)seg : 1;
    case EIO:
    case ENOPROTOOPT:
    case EOPNOTSUPP:
        return 1;
    default:
        return -1;
    }
}

static int packet_write_batch_k(lua_State *L, int status, lua_KContext kctx);

/* Stack: 1 pc, 2 msgs, 3 i, 4 j, 5 ctx or nil; kctx is done * 2 + polling. */
static int packet_write_batch_fail(lua_State *L, pconn *p, const char *sys, int cause,
                                   lua_Integer done, const char *dest) {
    packet_failx(L, p, "write", sys, cause, lua_isnil(L, 5) ? 0 : 5, dest);
    lua_pushinteger(L, done);
    return 3;
}

static int packet_write_batch_k(lua_State *L, int status, lua_KContext kctx) {
    pconn *p = packet_check(L);
    task *t = task_current(L);
    int ctxidx = lua_isnil(L, 5) ? 0 : 5;
    lua_Integer from, to, done = (lua_Integer)(kctx / 2);
    int cause = packet_writer_cause(L, t, status, ctxidx, kctx);
    if (cause) return packet_write_batch_fail(L, p, NULL, cause, done, NULL);
    packet_batch_range(L, &from, &to);
    lua_settop(L, 5);
    int keys = packet_push_keys(L);
    struct mmsghdr mm[PACKET_BATCH_MAX];
    struct iovec iov[PACKET_BATCH_MAX];
    struct sockaddr_storage ss[PACKET_BATCH_MAX];
    struct mmsghdr gm[PACKET_BATCH_MAX];
    packet_gsoctl ctl[PACKET_BATCH_MAX];
    int counts[PACKET_BATCH_MAX], refused = 0;
    uint16_t kept = 0;                             /* p->nogso before a refusal */
    char name[ADDR_STRLEN] = "";
    while (from + done <= to) {
        if (p->h.fd < 0) return packet_write_batch_fail(L, p, NULL, ERR_CLOSED, done, NULL);
        if (handle_deadline_passed(p->h.wrl))
            return packet_write_batch_fail(L, p, NULL, ERR_TIMEOUT, done, NULL);
        lua_Integer left = to - from - done + 1;
        int k = left > PACKET_BATCH_MAX ? PACKET_BATCH_MAX : (int)left, bad = 0;
        k = packet_fill_batch(L, p, keys, from + done, k, mm, iov, ss, &bad, name);
        int g = packet_gso_group(p, mm, iov, k, gm, ctl, counts);
        int r = g ? sendmmsg(p->h.fd, gm, (unsigned)g, MSG_NOSIGNAL) : 0, e = errno;
        if (r > 0) {
            for (int i = 0; i < r; i++) done += counts[i];
            continue;
        }
        if (k == 0) return packet_write_batch_fail(L, p, NULL, bad, done, name[0] ? name : NULL);
        if (e == EINTR) continue;
        int nogso = counts[0] > 1 ? packet_gso_refusal(p, iov[0].iov_len, e) : -1;
        if (nogso >= 0) {                          /* the same run again, one by one */
            refused = e;
            kept = p->nogso;
            p->nogso = (uint16_t)nogso;
            continue;
        }
        if (e == refused) p->nogso = kept;         /* the message failed, not its GSO */
        if (e != EAGAIN && e != EWOULDBLOCK)
            return packet_write_batch_fail(L, p, "sendmmsg", e, done, NULL);
        return packet_park_writer(L, p, t, ctxidx, done, packet_write_batch_k);
    }
    lua_pushinteger(L, done);
    return 1;
}

/* pc:write_batch(msgs [, i [, j]] [, ctx]) -> n | nil, err, sent: send
 * msgs[i..j] (default all; each {data =, addr =}, addr omitted on
 * connected conns) with as few sendmmsg calls as it takes, runs coalesced
 * by UDP GSO (see above). On failure,
 * sent messages went out and message i + sent is the one that failed. */
static int packet_write_batch(lua_State *L) {
    pconn *p = packet_check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    task *t = task_current(L);
    if (!t) return loop_block(L, packet_write_batch, lua_gettop(L));
    int ctxidx = packet_ctx_to(L, 3, 5);
    lua_Integer from, to;
    packet_batch_range(L, &from, &to);
    if (ctx_ended(L, ctxidx)) return packet_write_batch_fail(L, p, NULL, ERR_CTX, 0, NULL);
    return packet_write_batch_k(L, LUA_OK, 0);
}

const luaL_Reg packet_batch_methods[] = {
    {"read_batch", packet_read_batch},
    {"write_batch", packet_write_batch},
    {NULL, NULL}
};
