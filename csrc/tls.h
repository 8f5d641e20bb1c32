/* tls.h - the TLS byte layer under a conn (OpenSSL 3.0). A TLS conn is a
 * conn (conn.h) whose tls field is set: conn.c's read, write and close
 * paths call these instead of recv/send, and park where they say. */
#ifndef CORONET_TLS_H
#define CORONET_TLS_H

#include <sys/types.h>
#include "conn.h"

#define TLSCONN_MT "coronet.tls_conn"
#define TLSCFG_MT "coronet.tls_config"

/* What a TLS step needs before it can go on: readiness of the socket for
 * reading or writing (never an errno, never an ERR_* cause). */
enum { TLS_WANT_IN = -100, TLS_WANT_OUT = -101 };

/* The roles a task parks in (tls_park): its operation's lock and deadline. */
enum { TLS_ROLE_READ, TLS_ROLE_WRITE, TLS_ROLE_HANDSHAKE };

/* tls_read: decrypt up to len bytes into buf, running the handshake first
 * if it has not finished. Returns n > 0, or -1 with *cause: TLS_WANT_IN /
 * TLS_WANT_OUT (park, then call again), ERR_EOF (close_notify, or a FIN at
 * a record boundary), ERR_UNEXPECTED_EOF, an errno, or ERR_TLS (details in
 * the conn's TLS state, see tls_error_code/tls_error_msg). */
ssize_t tls_read(conn *c, char *buf, size_t len, int *cause);

/* tls_write: encrypt and send up to one record of buf (len > 0); after a
 * TLS_WANT_* the next call must pass the same bytes. Returns n > 0 or -1
 * with *cause as tls_read (never ERR_EOF). */
ssize_t tls_write(conn *c, const char *buf, size_t len, int *cause);

/* tls_park: park t (the running task) for its role until the socket is
 * ready for want (TLS_WANT_IN/OUT), under that role's deadline and the ctx
 * at ctxidx. When the other role holds that slot, t waits until that task
 * has run instead. Never returns (yields). */
int tls_park(lua_State *L, conn *c, task *t, int want, int role, int ctxidx,
             lua_KContext kctx, lua_KFunction k);

/* tls_resumed: first thing in a continuation of a TLS conn's operation
 * that may have parked with tls_park: leaves the wait, and when t held a
 * slot, lets the tasks waiting behind it try again. No-op on plain conns. */
void tls_resumed(conn *c, task *t, int role);

/* tls_gave_up: a write ended with cause (deadline, ctx: never ERR_CTX,
 * resolve it with ctx_cause) while OpenSSL held
 * a half-sent record: later writes fail with it, as Go's (no other bytes
 * may follow a half-sent record). No-op otherwise. */
void tls_gave_up(conn *c, int cause);

/* tls_failed: an operation failed with cause (never ERR_CTX: resolve it
 * with ctx_cause) while the handshake was under way: it sticks, and every
 * later operation fails the same way (Go). */
void tls_failed(conn *c, int cause);

/* tls_reader_busy: whether a read is in progress on c (parked anywhere). */
int tls_reader_busy(const conn *c);

/* tls_in_handshake: whether a handshake step has run and the handshake has
 * not completed (errors are then reported with op "handshake"). */
int tls_in_handshake(const conn *c);

/* tls_error_code / tls_error_msg: the stable code and the message of the
 * last ERR_TLS failure on c. */
const char *tls_error_code(const conn *c);
const char *tls_error_msg(const conn *c);

/* tls_set_deadline: handle_set_deadline for a TLS conn: sets the read
 * and/or write deadline and re-arms every parked task (slots and the
 * queue behind them) by its role, since a role may park in the other
 * role's slot (tls_park). */
void tls_set_deadline(conn *c, int rd, int wr, double t);

/* tls_close: send close_notify when that is safe (one try, no wait), wake
 * every waiter with ErrClosed and free the SSL. Call before handle_close. */
void tls_close(conn *c);

/* tls_free: release what tls_close left (the state itself), for __gc. */
void tls_free(conn *c);

/* tls_close_write: conn:close_write() on a TLS conn (sends close_notify). */
int tls_close_write(lua_State *L);

/* tls_tostring_state: a short state word for __tostring ("handshake
 * pending", "TLS1.3", ...). */
const char *tls_tostring_state(const conn *c);

int tls_open(lua_State *L);

#endif
