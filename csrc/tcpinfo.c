/* tcpinfo.c - the kernel's view of a socket, for net.debug.tcp_info(c)
 * and c:tcp_info(): TCP_INFO (rtt, cwnd, retransmits, unacked, bytes
 * acked/received) and the bytes still queued in the socket buffers
 * (SIOCOUTQ: written but not yet acked by the peer, SIOCINQ: received but
 * not yet read). Works on an fd, so any conn with c:fd() qualifies. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include "lauxlib.h"
#include "errors.h"
#include "tcpinfo.h"

static const char *const tcpinfo_states[] = {
    "?", "established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2", "time_wait",
    "close", "close_wait", "last_ack", "listen", "closing", "new_syn_recv"
};

static void setnum(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void setint(lua_State *L, const char *k, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* Whether the kernel filled the field f (older kernels return less). */
#define HAS(f) (len >= offsetof(struct tcp_info, f) + sizeof ti.f)

/* core.tcp_info(fd) -> {state, rtt, rttvar, rto, cwnd, ssthresh, mss,
 * unacked, sacked, lost, retrans, retransmits, total_retrans, pmtu,
 * bytes_acked, bytes_received, notsent, delivery_rate} | nil, err.
 * Times are in seconds; delivery_rate in bytes per second. */
static int tcpinfo_get(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) {
        operr e = {"tcp_info", "tcp", NULL, NULL, "getsockopt", NULL, 0};
        return errors_fail(L, &e, errno);
    }
    lua_createtable(L, 0, 18);
    lua_pushstring(L, ti.tcpi_state < sizeof tcpinfo_states / sizeof *tcpinfo_states
                      ? tcpinfo_states[ti.tcpi_state] : "?");
    lua_setfield(L, -2, "state");
    setnum(L, "rtt", ti.tcpi_rtt / 1e6);
    setnum(L, "rttvar", ti.tcpi_rttvar / 1e6);
    setnum(L, "rto", ti.tcpi_rto / 1e6);
    setint(L, "cwnd", ti.tcpi_snd_cwnd);
    setint(L, "ssthresh", ti.tcpi_snd_ssthresh);
    setint(L, "mss", ti.tcpi_snd_mss);
    setint(L, "unacked", ti.tcpi_unacked);
    setint(L, "sacked", ti.tcpi_sacked);
    setint(L, "lost", ti.tcpi_lost);
    setint(L, "retrans", ti.tcpi_retrans);
    setint(L, "retransmits", ti.tcpi_retransmits);
    setint(L, "total_retrans", ti.tcpi_total_retrans);
    setint(L, "pmtu", ti.tcpi_pmtu);
    if (HAS(tcpi_bytes_acked)) setint(L, "bytes_acked", (lua_Integer)ti.tcpi_bytes_acked);
    if (HAS(tcpi_bytes_received)) setint(L, "bytes_received", (lua_Integer)ti.tcpi_bytes_received);
    if (HAS(tcpi_notsent_bytes)) setint(L, "notsent", ti.tcpi_notsent_bytes);
    if (HAS(tcpi_delivery_rate)) setint(L, "delivery_rate", (lua_Integer)ti.tcpi_delivery_rate);
    return 1;
}

/* core.sock_queues(fd) -> outq, inq | nil, err: bytes written but not yet
 * acknowledged by the peer (SIOCOUTQ) and bytes received but not yet read
 * (SIOCINQ). For TCP and unix sockets. */
static int tcpinfo_queues(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    int outq = 0, inq = 0;
    if (ioctl(fd, SIOCOUTQ, &outq) < 0 || ioctl(fd, SIOCINQ, &inq) < 0) {
        operr e = {"sock_queues", NULL, NULL, NULL, "ioctl", NULL, 0};
        return errors_fail(L, &e, errno);
    }
    lua_pushinteger(L, outq);
    lua_pushinteger(L, inq);
    return 2;
}

static const luaL_Reg tcpinfo_funcs[] = {
    {"sock_queues", tcpinfo_queues},
    {"tcp_info", tcpinfo_get},
    {NULL, NULL}
};

int tcpinfo_open(lua_State *L) {
    luaL_setfuncs(L, tcpinfo_funcs, 0);
    return 0;
}
