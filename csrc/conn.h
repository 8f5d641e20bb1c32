/* conn.h - stream conns (TCP, unix): the userdata conns and listeners share. */
#ifndef CORONET_CONN_H
#define CORONET_CONN_H

#include <sys/socket.h>
#include "loop.h"

#define CONN_MT "coronet.conn"

/* conn: a stream socket. Addresses are kept from creation so they still
 * render in errors and local_addr()/remote_addr() after close. */
typedef struct conn {
    handle h;
    uint8_t net;          /* NET_* */
    uint8_t wlocked;      /* a write is in progress across parks */
    waitq wq;             /* writers queued behind it, FIFO */
    socklen_t llen, rlen; /* 0 when unknown */
    struct sockaddr_storage la, ra;
} conn;

/* conn_new: push a new closed conn of network net (fd -1). */
conn *conn_new(lua_State *L, int net);

/* conn_attach: make c own fd (registered with the loop); on failure closes
 * fd and returns an errno. The local address is read from fd, the remote
 * one too unless peer (plen bytes, from accept) gives it. */
int conn_attach(lua_State *L, conn *c, int fd, const struct sockaddr_storage *peer,
                socklen_t plen);

/* conn_write_unlock: release c's write lock (c->wlocked), handing it to
 * the first queued writer. For anything that writes to a conn across
 * parks outside conn_write (io.copy), after setting c->wlocked itself. */
void conn_write_unlock(conn *c);

int conn_open(lua_State *L);

#endif
