/* bufio.h - net.bufio's C reader (bufio.c) and net.io's descriptor-level
 * copy (iocopy.c), which bufio_open registers too. */
#ifndef CORONET_BUFIO_H
#define CORONET_BUFIO_H

#include "lua.h"
#include "conn.h"

#define BUFIO_READER_MT "coronet.bufio.reader"

/* bufio_conn_fail: push nil and an error object for op on the conn c,
 * with the conn's addresses as conn.c renders them ("read tcp a->b:
 * ..."); sys names the failing syscall for an errno cause. ctxidx locates
 * the net.context an ERR_CTX cause wraps. Returns 2. */
int bufio_conn_fail(lua_State *L, conn *c, const char *op, const char *sys, int cause,
                    int ctxidx);

/* iocopy_open: add net.io's C helpers to the core table on top of the stack. */
int iocopy_open(lua_State *L);

int bufio_open(lua_State *L);

#endif
