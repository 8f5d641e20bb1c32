/* tls.c - the TLS byte layer of a conn (OpenSSL 3.0): an SSL over the
 * conn's socket through a BIO of our own (send with MSG_NOSIGNAL, so a reset
 * peer never raises SIGPIPE), the handshake, reads and writes that park on
 * whatever readiness OpenSSL asks for, errors Go users recognise, and
 * connection_state(). conn.c keeps deadlines, locks, ctx and close: a TLS
 * conn is a conn whose bytes go through here. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "lauxlib.h"
#include "errors.h"
#include "sock.h"
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

static const tls_note TLS_NOTE_SHUTDOWN = {"shutdown", "tls: protocol is shutdown (close_write was called)"};
static const tls_note TLS_NOTE_EARLY_CLOSE_WRITE = {
    "handshake_incomplete", "tls: close_write called before the handshake completed"};

/* tls_note: the ERR_TLS the current call returns is note (NULL: the conn's
 * failure in code/msg). Every call that can return ERR_TLS sets it before
 * returning, and conn_failx reads it at once (no park in between). */
static int tls_note_set(tls_state *s, const tls_note *note) {
    s->note = note;
    return ERR_TLS;
}

static struct tls_view *tls_view_keep(tls_state *s);
static void tls_view_free(struct tls_view *v);

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

static BIO_METHOD *tls_bio_method(void) {
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

/* ---- errors ---------------------------------------------------------- */

/* Record the conn's TLS failure: the first one only, which later calls
 * repeat (Go: a conn's sticky error is the first it met). */
static int tls_set_error(tls_state *s, const char *code, const char *fmt, ...) {
    va_list ap;
    s->note = NULL;
    if (s->code[0]) return ERR_TLS;
    snprintf(s->code, sizeof s->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    va_end(ap);
    return ERR_TLS;
}

/* RFC 8446 alert names, for error codes ("alert_" .. name). */
static const char *tls_alert_name(int a) {
    static const struct { int n; const char *name; } alerts[] = {
        {0, "close_notify"}, {10, "unexpected_message"}, {20, "bad_record_mac"},
        {22, "record_overflow"}, {40, "handshake_failure"}, {42, "bad_certificate"},
        {43, "unsupported_certificate"}, {44, "certificate_revoked"},
        {45, "certificate_expired"}, {46, "certificate_unknown"}, {47, "illegal_parameter"},
        {48, "unknown_ca"}, {49, "access_denied"}, {50, "decode_error"},
        {51, "decrypt_error"}, {70, "protocol_version"}, {71, "insufficient_security"},
        {80, "internal_error"}, {86, "inappropriate_fallback"}, {90, "user_canceled"},
        {109, "missing_extension"}, {110, "unsupported_extension"},
        {112, "unrecognized_name"}, {113, "bad_certificate_status_response"},
        {115, "unknown_psk_identity"}, {116, "certificate_required"},
        {120, "no_application_protocol"}};
    for (size_t i = 0; i < sizeof alerts / sizeof alerts[0]; i++)
        if (alerts[i].n == a) return alerts[i].name;
    return "unknown";
}

/* A failed verification as Go words it, with OpenSSL's text beside it. The
 * verify callback left the certificate's names in s->msg for a mismatch. */
static int tls_verify_error(tls_state *s) {
    long v = s->verr ? s->verr : SSL_get_verify_result(s->ssl);
    const char *text = X509_verify_cert_error_string(v);
    char names[sizeof s->msg];
    snprintf(names, sizeof names, "%s", s->msg);
    const char *pre = "tls: failed to verify certificate: x509:";
    switch (v) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        if (!names[0])
            return tls_set_error(s, "certificate_hostname_mismatch",
                                 "%s certificate is not valid for any names, but wanted to match %s (%s)",
                                 pre, s->name ? s->name : "?", text);
        return tls_set_error(s, "certificate_hostname_mismatch",
                             "%s certificate is valid for %s, not %s (%s)", pre, names,
                             s->name ? s->name : "?", text);
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return tls_set_error(s, "certificate_expired", "%s certificate has expired (%s)", pre, text);
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return tls_set_error(s, "certificate_not_yet_valid", "%s certificate is not yet valid (%s)",
                             pre, text);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return tls_set_error(s, "certificate_unknown_authority",
                             "%s certificate signed by unknown authority (%s)", pre, text);
    default:
        return tls_set_error(s, "certificate_invalid", "%s %s", pre, text);
    }
}

/* An SSL_ERROR_SSL failure, mapped to a cause (ERR_EOF/ERR_UNEXPECTED_EOF
 * for a FIN without close_notify) by the reason that describes it. OpenSSL
 * queues the lower layers' errors first and the TLS state machine's
 * verdict (SSLfatal) last: a certificate whose signature does not verify
 * queues ASN1 "EVP lib" (a_verify.c) and then SSL "certificate verify
 * failed" (statem_clnt.c); a protocol failure (wrong version number, an
 * alert received, no shared cipher, plain HTTP) queues its SSL reason
 * alone (seen, 3.0.x). So the last error of the SSL library is the one
 * classified, else the last one queued; SSL_R_* reasons are compared only
 * within ERR_LIB_SSL (reason numbers are per library). */
static int tls_queue_error(tls_state *s) {
    unsigned long e, err = 0, last = 0;
    while ((e = ERR_get_error())) {        /* oldest first */
        last = e;
        if (ERR_GET_LIB(e) == ERR_LIB_SSL) err = e;
    }
    if (!err) err = last;
    int reason = ERR_GET_LIB(err) == ERR_LIB_SSL ? ERR_GET_REASON(err) : 0;
    const char *why = ERR_reason_error_string(err);
    int cause;
    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        /* Go: a FIN at a record boundary is EOF, inside a record it is not */
        cause = SSL_has_pending(s->ssl) ? ERR_UNEXPECTED_EOF : ERR_EOF;
    } else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        cause = tls_verify_error(s);
    } else if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
        const char *name = tls_alert_name(reason - SSL_AD_REASON_OFFSET);
        char words[40];
        snprintf(words, sizeof words, "%s", name);
        for (char *p = words; *p; p++) if (*p == '_') *p = ' ';
        char code[40];
        snprintf(code, sizeof code, "alert_%s", name);
        cause = tls_set_error(s, code, "tls: remote error: tls: %s", words);
    } else if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST) {
        cause = tls_set_error(s, "tls_http_request",
                              "tls: first record does not look like a TLS handshake (plain HTTP)");
    } else if (reason == SSL_R_NO_APPLICATION_PROTOCOL) {
        cause = tls_set_error(s, "no_application_protocol",
                              "tls: client requested unsupported application protocols");
    } else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        cause = tls_set_error(s, "certificate_required", "tls: client didn't provide a certificate");
    } else if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_NO_PROTOCOLS_AVAILABLE) {
        cause = tls_set_error(s, "protocol_version", "tls: no mutually supported protocol version (%s)",
                              why ? why : "unsupported protocol");
    } else {
        cause = tls_set_error(s, "tls", "tls: %s", why ? why : "error");
    }
    ERR_clear_error();
    return cause;
}

/* The cause of a failed SSL call (ret its return value): TLS_WANT_* to
 * wait, or a failure (which makes the SSL unusable: s->fatal). */
static int tls_cause(tls_state *s, int ret) {
    int cause;
    switch (SSL_get_error(s->ssl, ret)) {
    case SSL_ERROR_WANT_READ: return TLS_WANT_IN;
    case SSL_ERROR_WANT_WRITE: return TLS_WANT_OUT;
    case SSL_ERROR_ZERO_RETURN: return ERR_EOF;          /* close_notify */
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (s->sys_errno) cause = s->sys_errno;           /* ECONNRESET, EPIPE, ... */
        else cause = s->eof_seen ? ERR_UNEXPECTED_EOF : EIO;
        break;
    default:
        cause = tls_queue_error(s);
    }
    s->fatal = 1;
    if (!s->fatal_cause) s->fatal_cause = cause;
    return cause;
}

/* The failure a call in the other direction reports once the SSL is
 * unusable: the fatal cause itself; for a write after the peer's FIN,
 * EPIPE (there is nobody to write to). 0 while the SSL is fine. */
static int tls_fatal_for(tls_state *s, int writing) {
    int c = s->fatal ? s->fatal_cause : 0;
    if (writing && (c == ERR_EOF || c == ERR_UNEXPECTED_EOF)) return EPIPE;
    return c;
}

/* Record the first verification failure, and for a name mismatch the
 * names the certificate is valid for (read back by tls_verify_error). */
static int tls_verify_cb(int ok, X509_STORE_CTX *xs) {
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    tls_state *s = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!s) return ok;
    int err = X509_STORE_CTX_get_error(xs);
    ERR_set_mark();                      /* what our calls queue must not fail the handshake */
    if (!ok && !s->verr && !s->code[0]) {   /* msg holds the names until the failure is recorded */
        s->verr = err;
        s->msg[0] = 0;
        if (err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH) {
            X509 *x = X509_STORE_CTX_get_current_cert(xs);
            GENERAL_NAMES *gens = x ? X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL) : NULL;
            size_t used = 0;
            for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                char ipbuf[INET6_ADDRSTRLEN];
                const char *n = NULL;
                if (g->type == GEN_DNS) n = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
                else if (g->type == GEN_IPADD && g->d.iPAddress->length == 4)
                    n = inet_ntop(AF_INET, g->d.iPAddress->data, ipbuf, sizeof ipbuf);
                else if (g->type == GEN_IPADD && g->d.iPAddress->length == 16)
                    n = inet_ntop(AF_INET6, g->d.iPAddress->data, ipbuf, sizeof ipbuf);
                if (n && used < sizeof s->msg)
                    used += (size_t)snprintf(s->msg + used, sizeof s->msg - used, "%s%s",
                                             used ? ", " : "", n);
            }
            GENERAL_NAMES_free(gens);
        }
    }
    ERR_pop_to_mark();
    if (s->server) {                 /* client_auth request/require: any cert will do */
        tls_ctxdata *d = tlscfg_data(SSL_get_SSL_CTX(ssl));
        if (d && (d->client_auth == TLS_AUTH_REQUEST || d->client_auth == TLS_AUTH_REQUIRE)) return 1;
    }
    return ok;
}

/* ---- the byte layer conn.c calls ------------------------------------- */

static tls_state *tls_of(const conn *c) {
    return c->tls;
}

int tls_in_handshake(const conn *c) {
    return c->tls && c->tls->hs_started && !c->tls->hs_done;
}

int tls_reader_busy(const conn *c) {
    return c->tls->reading;
}

const char *tls_error_code(const conn *c) {
    if (!c->tls) return "tls";
    return c->tls->note ? c->tls->note->code : c->tls->code[0] ? c->tls->code : "tls";
}

const char *tls_error_msg(const conn *c) {
    if (!c->tls) return "tls: error";
    return c->tls->note ? c->tls->note->msg : c->tls->msg[0] ? c->tls->msg : "tls: error";
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

const char *tls_tostring_state(const conn *c) {
    tls_state *s = tls_of(c);
    if (!s->ssl) return "closed";
    if (s->hs_cause) return "handshake failed";
    if (!s->hs_done) return "handshake pending";
    switch (SSL_version(s->ssl)) {     /* spelt as connection_state().version */
    case TLS1_3_VERSION: return "TLS1.3";
    case TLS1_2_VERSION: return "TLS1.2";
    case TLS1_1_VERSION: return "TLS1.1";
    default: return "TLS1.0";
    }
}

/* ---- Lua methods ----------------------------------------------------- */

/* The TLS conn at 1 (raises for anything else). */
static conn *tls_check(lua_State *L) {
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

/* Push a certificate's names in RFC 2253 form ("CN=a.test,O=x"). */
static void tls_push_name(lua_State *L, X509_NAME *n) {
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    long len = 0;
    if (b && X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) len = BIO_get_mem_data(b, &p);
    lua_pushlstring(L, p ? p : "", p ? (size_t)len : 0);
    BIO_free(b);
}

static void tls_push_time(lua_State *L, const ASN1_TIME *t) {
    struct tm tm;
    if (t && ASN1_TIME_to_tm(t, &tm) == 1) lua_pushinteger(L, (lua_Integer)timegm(&tm));
    else lua_pushnil(L);
}

static void tls_push_hex(lua_State *L, const unsigned char *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) {
        luaL_addchar(&b, digits[p[i] >> 4]);
        luaL_addchar(&b, digits[p[i] & 15]);
    }
    luaL_pushresult(&b);
}

/* {subject, issuer, sans = {names and IPs}, not_before, not_after (Unix
 * seconds), serial (hex), sha256 (hex of the DER)} for one certificate. */
static void tls_push_cert(lua_State *L, X509 *x) {
    lua_createtable(L, 0, 7);
    tls_push_name(L, X509_get_subject_name(x));
    lua_setfield(L, -2, "subject");
    tls_push_name(L, X509_get_issuer_name(x));
    lua_setfield(L, -2, "issuer");
    lua_newtable(L);
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0, k = 1; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char buf[INET6_ADDRSTRLEN];
        if (g->type == GEN_DNS) {
            lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                            (size_t)ASN1_STRING_length(g->d.dNSName));
        } else if (g->type == GEN_IPADD && (g->d.iPAddress->length == 4 || g->d.iPAddress->length == 16)) {
            inet_ntop(g->d.iPAddress->length == 4 ? AF_INET : AF_INET6, g->d.iPAddress->data, buf, sizeof buf);
            lua_pushstring(L, buf);
        } else {
            continue;
        }
        lua_rawseti(L, -2, k++);
    }
    GENERAL_NAMES_free(gens);
    lua_setfield(L, -2, "sans");
    tls_push_time(L, X509_get0_notBefore(x));
    lua_setfield(L, -2, "not_before");
    tls_push_time(L, X509_get0_notAfter(x));
    lua_setfield(L, -2, "not_after");
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    lua_pushstring(L, hex ? hex : "");
    lua_setfield(L, -2, "serial");
    OPENSSL_free(hex);
    BN_free(bn);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1) {
        tls_push_hex(L, md, mdlen);
        lua_setfield(L, -2, "sha256");
    }
}

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

/* Whether the peer's certificate was verified (not merely received). */
static int tls_verified(tls_state *s) {
    if (!SSL_get0_peer_certificate(s->ssl) || SSL_get_verify_result(s->ssl) != X509_V_OK) return 0;
    tls_ctxdata *d = tlscfg_data(SSL_get_SSL_CTX(s->ssl));
    if (!d) return 0;
    if (s->server) return d->client_auth == TLS_AUTH_VERIFY || d->client_auth == TLS_AUTH_VERIFY_IF_GIVEN;
    return !d->insecure;
}

/* The live state of a handshaken conn (s->ssl set), borrowed from it. */
static void tls_view_of(tls_state *s, tls_view *v) {
    v->version = SSL_get_version(s->ssl);
    v->cipher = SSL_CIPHER_standard_name(SSL_get_current_cipher(s->ssl));
    v->server_name = s->server ? SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name) : s->name;
    v->alpn = NULL;
    v->alpnlen = 0;
    SSL_get0_alpn_selected(s->ssl, &v->alpn, &v->alpnlen);
    v->resumed = (uint8_t)SSL_session_reused(s->ssl);
    v->verified = (uint8_t)tls_verified(s);
    v->leaf = SSL_get0_peer_certificate(s->ssl);
    v->chain = SSL_get_peer_cert_chain(s->ssl);
}

/* A copy of s's live state that outlives the SSL (one allocation for the
 * struct and its strings), or NULL when memory is short. */
static tls_view *tls_view_keep(tls_state *s) {
    tls_view v;
    tls_view_of(s, &v);
    const char *strs[3] = {v.version ? v.version : "", v.cipher ? v.cipher : "", v.server_name};
    size_t lens[3], total = sizeof v + v.alpnlen;
    for (int i = 0; i < 3; i++) total += lens[i] = strs[i] ? strlen(strs[i]) + 1 : 0;
    tls_view *k = malloc(total);
    if (!k) return NULL;
    *k = v;
    char *p = (char *)(k + 1);
    const char **dst[3] = {&k->version, &k->cipher, &k->server_name};
    for (int i = 0; i < 3; i++) {
        if (!strs[i]) continue;
        memcpy(p, strs[i], lens[i]);
        *dst[i] = p;
        p += lens[i];
    }
    if (v.alpnlen) memcpy(p, v.alpn, v.alpnlen);
    k->alpn = v.alpnlen ? (const unsigned char *)p : NULL;
    if (k->leaf && !X509_up_ref(k->leaf)) k->leaf = NULL;
    k->chain = v.chain ? X509_chain_up_ref(v.chain) : NULL;
    return k;
}

static void tls_view_free(tls_view *v) {
    if (!v) return;
    X509_free(v->leaf);
    sk_X509_pop_free(v->chain, X509_free);
    free(v);
}

/* The peer's chain, leaf first (a server's OpenSSL chain omits the leaf). */
static void tls_push_peer_chain(lua_State *L, const tls_view *v) {
    STACK_OF(X509) *chain = v->chain;
    X509 *leaf = v->leaf;
    int k = 1;
    lua_newtable(L);
    if (leaf && (!chain || !sk_X509_num(chain) || X509_cmp(sk_X509_value(chain, 0), leaf) != 0)) {
        tls_push_cert(L, leaf);
        lua_rawseti(L, -2, k++);
    }
    for (int i = 0; chain && i < sk_X509_num(chain); i++) {
        tls_push_cert(L, sk_X509_value(chain, i));
        lua_rawseti(L, -2, k++);
    }
}

/* conn:connection_state() -> {handshake_complete, version = "TLS1.3",
 * cipher (IANA name), alpn, server_name, resumed, verified,
 * peer_certificates = {{subject, issuer, sans, not_before, not_after,
 * serial, sha256}, ...}}; before the handshake only handshake_complete.
 * After close: what was negotiated, kept at close. */
static int tls_connection_state(lua_State *L) {
    conn *c = tls_check(L);
    tls_state *s = tls_of(c);
    tls_view live;
    const tls_view *v = NULL;
    if (s && s->hs_done && s->ssl) {
        tls_view_of(s, &live);
        v = &live;
    } else if (s && s->hs_done) {
        v = s->kept;
    }
    lua_createtable(L, 0, 9);
    lua_pushboolean(L, v != NULL);
    lua_setfield(L, -2, "handshake_complete");
    if (!v) return 1;
    const char *ver = v->version;                    /* "TLSv1.3" -> "TLS1.3", as Go */
    lua_pushfstring(L, "TLS%s", strncmp(ver, "TLSv", 4) == 0 ? ver + 4 : ver);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, v->cipher);
    lua_setfield(L, -2, "cipher");
    if (v->alpnlen) {
        lua_pushlstring(L, (const char *)v->alpn, v->alpnlen);
        lua_setfield(L, -2, "alpn");
    }
    if (v->server_name) {
        lua_pushstring(L, v->server_name);
        lua_setfield(L, -2, "server_name");
    }
    lua_pushboolean(L, v->resumed);
    lua_setfield(L, -2, "resumed");
    lua_pushboolean(L, v->verified);
    lua_setfield(L, -2, "verified");
    tls_push_peer_chain(L, v);
    lua_setfield(L, -2, "peer_certificates");
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

/* A host name as verified and sent: no brackets, zone or trailing dot. */
static char *tls_clean_name(const char *name) {
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '[' && name[n - 1] == ']') {
        name++;
        n -= 2;
    }
    char *out = malloc(n + 1);
    if (!out) return NULL;
    memcpy(out, name, n);
    out[n] = 0;
    char *zone = strchr(out, '%');
    if (zone) *zone = 0;
    n = strlen(out);
    if (n > 1 && out[n - 1] == '.') out[n - 1] = 0;
    return out;
}

static int tls_is_ip(const char *name) {
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* Client side: SNI for DNS names only (RFC 6066, as Go), the name or IP
 * to verify, verification itself, and a saved session to resume. */
static int tls_setup_client(conn *c, tls_state *s, tls_ctxdata *d, const char *name) {
    SSL *ssl = s->ssl;
    SSL_set_connect_state(ssl);
    SSL_set_verify(ssl, d->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, tls_verify_cb);
    if (name) {
        if (!(s->name = tls_clean_name(name))) return ENOMEM;
        int ip = tls_is_ip(s->name);
        if (!ip && !SSL_set_tlsext_host_name(ssl, s->name)) return EINVAL;
        if (!d->insecure) {
            int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), s->name)
                        : SSL_set1_host(ssl, s->name);
            if (ok != 1) return EINVAL;
        }
    }
    if (d->sessions) {
        char addr[ADDR_STRLEN];
        sock_format(conn_ra(c), c->rlen, addr);
        char *key = strdup(s->name ? s->name : addr);
        if (!key || !SSL_set_ex_data(ssl, tlscfg_conn_index(), key)) {
            free(key);
            return ENOMEM;
        }
        SSL_SESSION *sess = tlscfg_take_session(d, key);
        if (sess) {
            SSL_set_session(ssl, sess);
            SSL_SESSION_free(sess);
        }
    }
    return 0;
}

static void tls_setup_server(tls_state *s, tls_ctxdata *d) {
    static const int modes[] = {
        [TLS_AUTH_NONE] = SSL_VERIFY_NONE,
        [TLS_AUTH_REQUEST] = SSL_VERIFY_PEER,
        [TLS_AUTH_REQUIRE] = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        [TLS_AUTH_VERIFY_IF_GIVEN] = SSL_VERIFY_PEER,
        [TLS_AUTH_VERIFY] = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT};
    SSL_set_accept_state(s->ssl);
    SSL_set_verify(s->ssl, modes[d->client_auth], tls_verify_cb);
}

/* A failure of tls_wrap before the conn became a TLS conn. */
static int tls_wrap_fail(lua_State *L, conn *c, const char *code, const char *msg) {
    char src[ADDR_STRLEN], dst[ADDR_STRLEN];
    sock_format(conn_la(c), c->llen, src);
    sock_format(conn_ra(c), c->rlen, dst);
    operr e = {"handshake", sock_netnames[c->net], src[0] ? src : NULL, dst[0] ? dst : NULL,
               NULL, NULL, 0};
    return errors_fail_tls(L, &e, code, msg);
}

/* core.tls_wrap(conn, cfg, server [, name]) -> tls conn | nil, err: make
 * conn a TLS conn (the same object: its metatable changes) that will
 * handshake on first use. A client verifies cfg's server_name, else name. */
static int tls_wrap(lua_State *L) {
    conn *c = luaL_checkudata(L, 1, CONN_MT);
    SSL_CTX *ctx = tlscfg_check(L, 2);
    int server = lua_toboolean(L, 3);
    const char *dflt = luaL_optstring(L, 4, NULL);
    tls_ctxdata *d = ctx ? tlscfg_data(ctx) : NULL;
    if (c->h.fd < 0) return conn_failx(L, c, "handshake", NULL, ERR_CLOSED, 0);
    if (c->h.rd || c->h.wr || c->wlocked) return conn_failx(L, c, "handshake", NULL, ERR_BUSY, 0);
    if (!d) return luaL_argerror(L, 2, "closed tls config");
    if (server && !d->npairs)
        return tls_wrap_fail(L, c, "tls_config", "tls: a server config needs cert_file/key_file or certificates");
    const char *name = d->server_name ? d->server_name : dflt;
    if (!server && !name && !d->insecure)
        return tls_wrap_fail(L, c, "tls_config", "tls: either server_name or insecure_skip_verify must be set");
    tls_state *s = calloc(1, sizeof *s);
    BIO *b = tls_bio_method() ? BIO_new(tls_bio_method()) : NULL;
    if (!s || !b || !(s->ssl = SSL_new(ctx))) {
        BIO_free(b);
        free(s);
        return tls_wrap_fail(L, c, "tls", "tls: out of memory");
    }
    s->fd = c->h.fd;
    s->server = (uint8_t)server;
    BIO_set_data(b, s);
    BIO_set_init(b, 1);
    SSL_set_bio(s->ssl, b, b);
    SSL_set_app_data(s->ssl, s);
    c->tls = s;                           /* from here on the conn's close frees s */
    if (server) {
        tls_setup_server(s, d);
    } else if (tls_setup_client(c, s, d, name)) {
        char msg[300];
        snprintf(msg, sizeof msg, "tls: bad server name %s", name ? name : "");
        tls_close(c);
        tls_free(c);
        return tls_wrap_fail(L, c, "tls_config", msg);
    }
    lua_settop(L, 1);
    luaL_getmetatable(L, TLSCONN_MT);
    lua_setmetatable(L, 1);               /* the conn itself is now a TLS conn */
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
        lua_newuserdatauv(L, 1, 0);
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, tls_unload);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &TLS_UNLOAD_KEY);
        tls_bio_states++;
    }
    lua_pop(L, 1);
    conn_register_class(L, TLSCONN_MT, tls_methods);
    luaL_setfuncs(L, tls_funcs, 0);
    return tlscfg_open(L);
}
