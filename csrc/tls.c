/* tls.c - the TLS byte layer of a conn (OpenSSL 3.0): an SSL over the
 * conn's socket through a BIO of our own (send with MSG_NOSIGNAL, so a reset
 * peer never raises SIGPIPE), the handshake, reads and writes that park on
 * whatever readiness OpenSSL asks for, what sticks after a failure, close,
 * and the Lua methods that drive them (handshake, close_write, probe).
 * conn.c keeps deadlines, locks, ctx and close: a TLS conn is a conn whose
 * bytes go through here. Failures are worded in tls_error.c, the state
 * reported in tls_state.c, conns made TLS in tls_wrap.c (tls_int.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include "lauxlib.h"
#include "class.h"
#include "errors.h"
#include "tls_int.h"

/* ---- the BIO: plain syscalls on the conn's non-blocking socket ------- */

static BIO_METHOD *tls_bio_meth;
static int tls_bio_states;       /* Lua states that opened the TLS layer (tls_open) */

static int tls_bio_write(BIO *b, const char *buf, int len) {
    tls_state *s = BIO_get_data(b);
    ssize_t n;
    BIO_clear_retry_flags(b);
    do n = send(s->fd, buf, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0) return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
    else s->sys_errno = errno;
    return -1;
}

static int tls_bio_read(BIO *b, char *buf, int len) {
    tls_state *s = BIO_get_data(b);
    ssize_t n;
    BIO_clear_retry_flags(b);
    do n = recv(s->fd, buf, (size_t)len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) return (int)n;
    if (n == 0) {
        s->eof_seen = 1;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
    else s->sys_errno = errno;
    return -1;
}

/* OpenSSL asks FLUSH after each flight and EOF to tell a peer's FIN from
 * a failure: without them a FIN reads as SYSCALL with errno 0. */
static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)num, (void)ptr;
    tls_state *s = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return s && s->eof_seen;
    default: return 0;
    }
}

BIO_METHOD *tls_bio_method(void) {
    if (!tls_bio_meth) {
        BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "coronet socket");
        if (!m) return NULL;
        BIO_meth_set_write(m, tls_bio_write);
        BIO_meth_set_read(m, tls_bio_read);
        BIO_meth_set_ctrl(m, tls_bio_ctrl);
        tls_bio_meth = m;
    }
    return tls_bio_meth;
}

/* ---- the byte layer conn.c calls ------------------------------------- */

int tls_in_handshake(const conn *c) {
    return c->tls && c->tls->hs_started && !c->tls->hs_done;
}

int tls_reader_busy(const conn *c) {
    return c->tls->reading;
}

void tls_failed(conn *c, int cause) {
    tls_state *s = tls_of(c);
    if (s && !s->hs_done && !s->hs_cause) s->hs_cause = cause;
}

void tls_gave_up(conn *c, int cause) {
    tls_state *s = tls_of(c);
    if (s && s->wpending && !s->sticky_wr && cause != ERR_CLOSED) s->sticky_wr = cause;
}

/* A client's TLS 1.2 session resumed: put it back in the cache, since no
 * new session follows (a 1.3 resumption brings fresh single-use tickets). */
static void tls_keep_session(tls_state *s) {
    if (s->server || !SSL_session_reused(s->ssl) || SSL_version(s->ssl) >= TLS1_3_VERSION) return;
    tls_ctxdata *d = tlscfg_data(SSL_get_SSL_CTX(s->ssl));
    const char *key = SSL_get_ex_data(s->ssl, tlscfg_conn_index());
    SSL_SESSION *sess = d && key ? SSL_get1_session(s->ssl) : NULL;
    if (sess && tlscfg_put_session(d, key, sess) < 0) SSL_SESSION_free(sess);
}

/* One step of the handshake: 0 when it is complete, else -1 and *cause. */
static int tls_handshake_step(tls_state *s, int *cause) {
    s->hs_started = 1;
    s->sys_errno = 0;
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        s->hs_done = 1;
        tls_keep_session(s);
        return 0;
    }
    *cause = tls_cause(s, r);
    return -1;
}

/* Before any step: a failure that repeats, or the handshake to run. */
static int tls_ready(tls_state *s, int sticky, int *cause) {
    s->note = NULL;
    if (!s->ssl) *cause = ERR_CLOSED;
    else if (s->hs_cause) *cause = s->hs_cause;
    else if (sticky) *cause = sticky;
    else if (!s->hs_done && tls_handshake_step(s, cause) < 0) return -1;
    else return 0;
    return -1;
}

ssize_t tls_read(conn *c, char *buf, size_t len, int *cause) {
    tls_state *s = tls_of(c);
    size_t n = 0, got = 0;
    if (tls_ready(s, s->sticky_rd ? s->sticky_rd : tls_fatal_for(s, 0), cause) < 0) return -1;
    if (len > INT_MAX) len = INT_MAX;
    s->sys_errno = 0;
    ERR_clear_error();
    if (SSL_read_ex(s->ssl, buf, len, &n) != 1) {
        *cause = tls_cause(s, 0);
        if (*cause != TLS_WANT_IN && *cause != TLS_WANT_OUT) s->sticky_rd = *cause;
        return -1;
    }
    /* More whole records already read ahead: hand them over in one string. */
    for (got = n; got < len && SSL_has_pending(s->ssl); got += n) {
        s->sys_errno = 0;
        ERR_clear_error();
        if (SSL_read_ex(s->ssl, buf + got, len - got, &n) != 1) {
            int e = tls_cause(s, 0);
            if (e != TLS_WANT_IN && e != TLS_WANT_OUT) s->sticky_rd = e; /* next call reports it */
            break;
        }
    }
    return (ssize_t)got;
}

ssize_t tls_write(conn *c, const char *buf, size_t len, int *cause) {
    tls_state *s = tls_of(c);
    size_t n = 0;
    if (s->ssl && s->shut_sent && !s->sticky_wr) {
        *cause = tls_note_set(s, &TLS_NOTE_SHUTDOWN);
        return -1;
    }
    if (tls_ready(s, s->sticky_wr ? s->sticky_wr : tls_fatal_for(s, 1), cause) < 0) return -1;
    if (len > INT_MAX) len = INT_MAX;
    s->sys_errno = 0;
    ERR_clear_error();
    if (SSL_write_ex(s->ssl, buf, len, &n) == 1) {
        s->wpending = 0;
        return (ssize_t)n;
    }
    *cause = tls_cause(s, 0);
    if (*cause == TLS_WANT_IN || *cause == TLS_WANT_OUT) s->wpending = 1;
    else s->sticky_wr = *cause;
    return -1;
}

int tls_park(lua_State *L, conn *c, task *t, int want, int role, int ctxidx,
             lua_KContext kctx, lua_KFunction k) {
    tls_state *s = tls_of(c);
    task **slot = want == TLS_WANT_IN ? &c->h.rd : &c->h.wr;
    int in = role == TLS_ROLE_READ || (role == TLS_ROLE_HANDSHAKE && want == TLS_WANT_IN);
    if (!lua_isyieldable(L)) return task_park(L, t, NULL, 0, PARK_OTHER, kctx, k); /* raises */
    if (role == TLS_ROLE_READ) s->reading = 1;
    if (*slot && *slot != t) {           /* the other role waits there: run after it */
        waitq_push(&s->xq, t);
        slot = NULL;
    }
    return task_park_ctx(L, t, slot, in ? c->h.rdl : c->h.wrl, in ? PARK_READ : PARK_WRITE,
                         ctxidx, kctx, k);
}

void tls_resumed(conn *c, task *t, int role) {
    tls_state *s = tls_of(c);
    if (!s) return;
    if (role == TLS_ROLE_READ) s->reading = 0;
    if (t->slot) waitq_wake_all(&s->xq, WAKE_READY);  /* the slot's holder runs first */
    else waitq_remove(&s->xq, t);
}

/* A task's park kind says whose deadline bounds it (tls_park): a reader
 * parked in the write slot still answers to the read deadline. */
static void tls_rearm(task *w, int rd, int wr, double t) {
    if (w && ((rd && w->kind == PARK_READ) || (wr && w->kind == PARK_WRITE))) task_set_deadline(w, t);
}

void tls_set_deadline(conn *c, int rd, int wr, double t) {
    if (rd) c->h.rdl = t;
    if (wr) c->h.wrl = t;
    tls_rearm(c->h.rd, rd, wr, t);
    tls_rearm(c->h.wr, rd, wr, t);
    for (task *w = c->tls->xq.head; w; w = w->qnext) tls_rearm(w, rd, wr, t);
}

void tls_close(conn *c) {
    tls_state *s = tls_of(c);
    waitq_wake_all(&s->xq, WAKE_CLOSED);
    if (!s->ssl) return;
    if (s->hs_done && !s->fatal && !s->shut_sent && !s->sticky_wr && !c->wlocked) {
        ERR_clear_error();
        SSL_shutdown(s->ssl);            /* close_notify if the socket takes it now */
    }
    ERR_clear_error();
    if (s->hs_done && !s->kept) s->kept = tls_view_keep(s); /* connection_state() after close */
    SSL_free(s->ssl);                    /* frees the BIO too */
    s->ssl = NULL;
}

void tls_free(conn *c) {
    tls_state *s = tls_of(c);
    if (s->ssl) SSL_free(s->ssl);
    tls_view_free(s->kept);
    free(s->name);
    free(s);
    c->tls = NULL;
}

/* ---- Lua methods ----------------------------------------------------- */

/* The TLS conn at 1 (raises for anything else). */
conn *tls_check(lua_State *L) {
    return luaL_checkudata(L, 1, TLSCONN_MT);
}

static int tls_handshake_k(lua_State *L, int status, lua_KContext kctx);

/* conn:handshake([ctx]) -> true | nil, err: run the handshake now (reads
 * and writes run it themselves otherwise), bounded by the conn's deadlines
 * and ctx. A failure sticks: later calls return it again. */
static int tls_handshake(lua_State *L) {
    conn *c = tls_check(L);
    task *t = task_current(L);
    if (!t) return loop_block(L, tls_handshake, lua_gettop(L));
    int ctxidx = ctx_find(L, 2);
    if (ctx_ended(L, ctxidx)) return conn_failx(L, c, "handshake", NULL, ERR_CTX, ctxidx);
    return tls_handshake_k(L, LUA_OK, ctxidx);
}

static int tls_handshake_k(lua_State *L, int status, lua_KContext kctx) {
    conn *c = tls_check(L);
    task *t = task_current(L);
    int ctxidx = (int)kctx;
    tls_resumed(c, t, TLS_ROLE_HANDSHAKE);
    int cause = task_resume_cause(L, t, status, ctxidx);
    while (!cause) {
        tls_state *s = tls_of(c);
        if (c->h.fd < 0 || !s || !s->ssl) {
            cause = ERR_CLOSED;
            break;
        }
        if (s->hs_done) {
            lua_pushboolean(L, 1);
            return 1;
        }
        if (tls_ready(s, 0, &cause) == 0) continue;  /* complete: loop once more */
        if (cause != TLS_WANT_IN && cause != TLS_WANT_OUT) break;
        if (handle_deadline_passed(cause == TLS_WANT_IN ? c->h.rdl : c->h.wrl)) {
            cause = ERR_TIMEOUT;
            break;
        }
        return tls_park(L, c, t, cause, TLS_ROLE_HANDSHAKE, ctxidx, kctx, tls_handshake_k);
    }
    if (c->tls) tls_failed(c, cause == ERR_CTX ? ctx_cause(L, ctxidx) : cause);
    return conn_failx(L, c, "handshake", cause > 0 ? "read" : NULL, cause, ctxidx);
}

static int tls_close_write_k(lua_State *L, int status, lua_KContext kctx);
static int tls_close_write_wait_k(lua_State *L, int status, lua_KContext kctx);
static int tls_close_write_run(lua_State *L, conn *c, task *t, int held, int ctxidx);

/* conn:close_write([ctx]) on a TLS conn: send close_notify, as Go's
 * CloseWrite. A write in flight goes out whole first: close_write queues
 * behind it with the other writers (FIFO), bounded by the write deadline
 * and ctx, and holds the write lock until the alert is out. */
int tls_close_write(lua_State *L) {
    conn *c = tls_check(L);
    tls_state *s = tls_of(c);
    if (c->h.fd < 0 || !s || !s->ssl) return conn_failx(L, c, "close", NULL, ERR_CLOSED, 0);
    s->note = NULL;
    if (!s->hs_done)
        return conn_failx(L, c, "close", NULL, tls_note_set(s, &TLS_NOTE_EARLY_CLOSE_WRITE), 0);
    task *t = task_current(L);
    if (!t) return loop_block(L, tls_close_write, lua_gettop(L));
    int ctxidx = ctx_find(L, 2);
    if (ctx_ended(L, ctxidx)) return conn_failx(L, c, "close", NULL, ERR_CTX, ctxidx);
    if (c->wlocked) {                    /* a write is in flight: our turn comes after it */
        waitq_push(&c->wq, t);
        return task_park_ctx(L, t, NULL, c->h.wrl, PARK_WRITE, ctxidx, (lua_KContext)ctxidx,
                             tls_close_write_wait_k);
    }
    return tls_close_write_run(L, c, t, 0, ctxidx);
}

/* Woken in the writers' queue: with the write lock (handed over by
 * conn_write_unlock), or by the deadline, the ctx or close, without it. */
static int tls_close_write_wait_k(lua_State *L, int status, lua_KContext kctx) {
    conn *c = tls_check(L);
    task *t = task_current(L);
    int ctxidx = (int)kctx;
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (cause) {
        waitq_remove(&c->wq, t);
        if (c->tls) c->tls->note = NULL;
        return conn_failx(L, c, "close", NULL, cause, ctxidx);
    }
    return tls_close_write_run(L, c, t, 1, ctxidx);
}

/* Parked in SSL_shutdown (the socket was full), with the write lock. */
static int tls_close_write_k(lua_State *L, int status, lua_KContext kctx) {
    conn *c = tls_check(L);
    task *t = task_current(L);
    int ctxidx = (int)kctx;
    tls_resumed(c, t, TLS_ROLE_WRITE);
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (!cause) return tls_close_write_run(L, c, t, 1, ctxidx);
    tls_state *s = tls_of(c);
    /* half an alert may sit in OpenSSL: no other bytes may follow it */
    if (s && !s->sticky_wr && cause != ERR_CLOSED)
        s->sticky_wr = cause == ERR_CTX ? ctx_cause(L, ctxidx) : cause;
    if (s) s->note = NULL;
    conn_write_unlock(c);
    return conn_failx(L, c, "close", NULL, cause, ctxidx);
}

/* Send close_notify unless a write failure forbids it or it was sent;
 * a full socket buffer parks us (write lock held) until OpenSSL has
 * flushed the alert, under the write deadline and ctx. held: we hold the
 * write lock (release it when done). */
static int tls_close_write_run(lua_State *L, conn *c, task *t, int held, int ctxidx) {
    tls_state *s = tls_of(c);
    int cause = 0;
    if (c->h.fd < 0 || !s || !s->ssl) {
        cause = ERR_CLOSED;
    } else {
        s->note = NULL;
        cause = s->sticky_wr ? s->sticky_wr : tls_fatal_for(s, 1); /* no alert after a failure */
        if (!cause && !s->shut_sent && handle_deadline_passed(c->h.wrl)) cause = ERR_TIMEOUT;
        if (!cause && !s->shut_sent) {
            s->sys_errno = 0;
            ERR_clear_error();
            int r = SSL_shutdown(s->ssl);
            if (r >= 0) {
                s->shut_sent = 1;
            } else {
                cause = tls_cause(s, r);
                if (cause == TLS_WANT_OUT || cause == TLS_WANT_IN) {
                    c->wlocked = 1;
                    return tls_park(L, c, t, cause, TLS_ROLE_WRITE, ctxidx, (lua_KContext)ctxidx,
                                    tls_close_write_k);
                }
            }
        }
    }
    if (held) conn_write_unlock(c);
    if (cause) return conn_failx(L, c, "close", cause > 0 ? "write" : NULL, cause, ctxidx);
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:probe() -> "ok" | "dubious" | "dead": for pools, without blocking.
 * Records read ahead are looked at first (no epoll edge would announce
 * them); tickets and other non-data records are consumed, not counted. */
static int tls_probe(lua_State *L) {
    conn *c = tls_check(L);
    tls_state *s = tls_of(c);
    const char *verdict = "dead";
    if (c->h.fd >= 0 && s && s->ssl && s->hs_done && !s->fatal && !s->sticky_rd) {
        char b;
        size_t n = 0;
        s->sys_errno = 0;
        ERR_clear_error();
        if (SSL_peek_ex(s->ssl, &b, 1, &n) == 1) {
            verdict = "dubious";
        } else {
            int cause = tls_cause(s, 0);
            if (cause == TLS_WANT_IN || cause == TLS_WANT_OUT) verdict = "ok";
            else s->sticky_rd = cause;
        }
    }
    lua_pushstring(L, verdict);
    return 1;
}

static const luaL_Reg tls_methods[] = {
    {"connection_state", tls_connection_state},
    {"handshake", tls_handshake},
    {"probe", tls_probe},
    {NULL, NULL}
};

static const luaL_Reg tls_funcs[] = {
    {"tls_wrap", tls_wrap},
    {NULL, NULL}
};

/* Frees the BIO method when the last Lua state using it closes (several
 * states may share this library). Registered before any TLS conn of its
 * state exists, so it is finalised after all of them (Lua finalises in
 * reverse order), when none of its BIOs uses the method any more. */
static int tls_unload(lua_State *L) {
    (void)L;
    if (--tls_bio_states == 0) {
        BIO_meth_free(tls_bio_meth);
        tls_bio_meth = NULL;
    }
    return 0;
}

static const char TLS_UNLOAD_KEY = 0;   /* registry: the userdata whose __gc is tls_unload */

/* tls_open: register TLSCONN_MT (every conn method plus the TLS ones),
 * net.tls's core functions and the config type. */
int tls_open(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &TLS_UNLOAD_KEY);
    if (lua_isnil(L, -1)) {
        class_at_close(L, &TLS_UNLOAD_KEY, tls_unload);
        tls_bio_states++;
    }
    lua_pop(L, 1);
    conn_register_class(L, TLSCONN_MT, tls_methods);
    luaL_setfuncs(L, tls_funcs, 0);
    return tlscfg_open(L);
}
