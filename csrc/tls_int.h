/* tls_int.h - what the files of a conn's TLS layer share: tls.c (the
 * byte layer: BIO, handshake, reads, writes, parks, close, and the Lua
 * methods that drive them), tls_error.c (OpenSSL failures as Go-worded
 * error codes and messages), tls_state.c (connection_state() and
 * tostring) and tls_wrap.c (turning a conn into a TLS conn). Internal to
 * net.tls: other files use tls.h. */
#ifndef CORONET_TLS_INT_H
#define CORONET_TLS_INT_H

#include <stdint.h>
#include <openssl/ssl.h>
#include "lua.h"
#include "tls.h"
#include "tls_config.h"

/* tls_state: a conn's TLS layer; freed by tls_free (the conn's __gc). */
typedef struct tls_state {
    SSL *ssl;            /* NULL once closed */
    int fd;              /* the conn's socket (the BIO's) */
    int sys_errno;       /* errno of the BIO's last failed syscall, 0 when none */
    int sticky_rd;       /* a read outcome that repeats (EOF, reset, ...); 0 none */
    int sticky_wr;       /* a write failure that repeats; 0 none */
    int hs_cause;        /* the handshake's failure, which every call repeats; 0 none */
    int fatal_cause;     /* the failure that made the SSL unusable (fatal); 0 none */
    long verr;           /* the first certificate verification error seen */
    waitq xq;            /* tasks waiting until the holder of a slot they need has run */
    uint8_t server, hs_done, eof_seen, reading, shut_sent, fatal;
    uint8_t wpending;    /* SSL_write wanted I/O: a record is half sent, retry the same bytes */
    uint8_t hs_started;  /* a handshake step ran (before it nothing can stick) */
    char *name;          /* client: the server name verified and sent (SNI) */
    const struct tls_note *note; /* the ERR_TLS of this call only, or NULL (tls_note) */
    struct tls_view *kept; /* connection_state() as it was at close, or NULL */
    char code[40];       /* the conn's first ERR_TLS failure: stable code ... */
    char msg[384];       /* ... and message (kept: Go's sticky error is the first) */
} tls_state;

/* A refusal that belongs to one call and breaks nothing (close_write before
 * the handshake, a write after close_write): reported for that call
 * without replacing the conn's own failure in code/msg. */
typedef struct tls_note {
    const char *code, *msg;
} tls_note;

extern const tls_note TLS_NOTE_SHUTDOWN;          /* a write after close_write */
extern const tls_note TLS_NOTE_EARLY_CLOSE_WRITE; /* close_write before the handshake */

/* What connection_state() reports after the handshake: borrowed from the
 * live SSL (tls_view_of), or a copy kept at close (tls_view_keep) that
 * owns its strings and certificate references. */
typedef struct tls_view {
    const char *version;          /* SSL_get_version's spelling: "TLSv1.3" */
    const char *cipher;           /* IANA name */
    const char *server_name;      /* or NULL */
    const unsigned char *alpn;    /* the protocol agreed (alpnlen bytes), or NULL */
    unsigned alpnlen;
    uint8_t resumed, verified;
    X509 *leaf;                   /* the peer's certificate, or NULL */
    STACK_OF(X509) *chain;        /* the chain it sent (a server's omits the leaf), or NULL */
} tls_view;

/* tls_of: c's TLS layer (NULL for a plain conn). */
static inline tls_state *tls_of(const conn *c) {
    return c->tls;
}

/* ---- tls.c ---------------------------------------------------------- */

/* tls_check: the TLS conn at stack index 1 (raises for anything else). */
conn *tls_check(lua_State *L);

/* tls_bio_method: our socket BIO's method (send with MSG_NOSIGNAL), made
 * on first use and freed when the last Lua state closes; NULL when memory
 * is short. */
BIO_METHOD *tls_bio_method(void);

/* ---- tls_error.c ---------------------------------------------------- */

/* tls_note_set: the ERR_TLS the current call returns is note, not the
 * conn's own failure; returns ERR_TLS. */
int tls_note_set(tls_state *s, const tls_note *note);

/* tls_cause: the cause of a failed SSL call (ret its return value):
 * TLS_WANT_* to wait, or a failure, which makes the SSL unusable
 * (s->fatal, s->fatal_cause) and, for ERR_TLS, records the conn's first
 * failure text. */
int tls_cause(tls_state *s, int ret);

/* tls_fatal_for: the failure a call in the other direction reports once
 * the SSL is unusable (EPIPE for a write after the peer's FIN); 0 while
 * the SSL is fine. */
int tls_fatal_for(tls_state *s, int writing);

/* tls_verify_cb: OpenSSL's verify callback for every TLS conn: records
 * the first verification error (and a mismatch's names) for the error
 * message; lets any certificate through for client_auth request/require. */
int tls_verify_cb(int ok, X509_STORE_CTX *xs);

/* ---- tls_state.c ---------------------------------------------------- */

/* tls_view_keep: a copy of a handshaken conn's live state (s->ssl set)
 * that outlives the SSL (one allocation, owning its strings and
 * certificate references), or NULL when memory is short. Free it with
 * tls_view_free. */
tls_view *tls_view_keep(tls_state *s);

/* tls_view_free: release a view from tls_view_keep (NULL: no-op). */
void tls_view_free(tls_view *v);

/* tls_connection_state: conn:connection_state() (see tls_state.c). */
int tls_connection_state(lua_State *L);

/* ---- tls_wrap.c ----------------------------------------------------- */

/* tls_wrap: core.tls_wrap(conn, cfg, server [, name]) (see tls_wrap.c). */
int tls_wrap(lua_State *L);

#endif
