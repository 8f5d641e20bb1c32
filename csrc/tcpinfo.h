/* tcpinfo.h - TCP_INFO and socket queue sizes on an fd (csrc/tcpinfo.c). */
#ifndef CORONET_TCPINFO_H
#define CORONET_TCPINFO_H

#include "lua.h"

/* tcpinfo_open: add core.tcp_info and core.sock_queues to the table on top
 * of the stack. */
int tcpinfo_open(lua_State *L);

#endif
