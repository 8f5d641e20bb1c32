/* coronet.c - luaopen_coronet_core: builds the C core's table by calling
 * each file's _open function. The public API is lua/coronet/init.lua. */
#include "lauxlib.h"
#include "addr.h"
#include "alloc.h"
#include "bufio.h"
#include "buffer.h"
#include "tcpinfo.h"
#include "track.h"
#include "tty.h"
#include "conn.h"
#include "errors.h"
#include "loop.h"
#include "modules.h"
#include "packet.h"
#include "signame.h"
#include "sock.h"
#include "tls.h"

/* luaopen_coronet_core: require "coronet.core" -> the C core's table. */
int luaopen_coronet_core(lua_State *L) {
    /* A write to a reset peer must be an error, never a SIGPIPE death; a
     * no-op handler (not SIG_IGN) keeps children at the default. */
    signal_pipe_harmless();
    alloc_open(L);
    lua_newtable(L);
    loop_open(L);
    task_open(L);
    track_open(L);
    tcpinfo_open(L);
    tty_open(L);
    errors_open(L);
    sock_open_lib(L);
    conn_open(L);
    tls_open(L);
    listener_open(L);
    packet_open(L);
    bufio_open(L);
    buffer_open(L);
    resolver_open(L);
    fdwatch_open(L);
    probe_open(L);
    signal_open(L);
    process_open(L);
    addr_open(L);
    lua_setfield(L, -2, "ip");
    return 1;
}
