/* tls_error.c - a TLS conn's failures as Go users know them: OpenSSL's
 * queue and verify result turned into a stable code and a Go-worded
 * message (kept per conn: its first failure is the one every later call
 * repeats), the per-call refusals that do not replace it (tls_note), and
 * the verify callback that records what a certificate failure message
 * needs. The byte layer (tls.c) calls tls_cause after every failed SSL
 * call; conn_failx reads the text through tls_error_code/tls_error_msg. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "errors.h"
#include "tls_int.h"

const tls_note TLS_NOTE_SHUTDOWN = {"shutdown", "tls: protocol is shutdown (close_write was called)"};
const tls_note TLS_NOTE_EARLY_CLOSE_WRITE = {
    "handshake_incomplete", "tls: close_write called before the handshake completed"};

/* tls_note_set: the ERR_TLS the current call returns is note (NULL: the conn's
 * failure in code/msg). Every call that can return ERR_TLS sets it before
 * returning, and conn_failx reads it at once (no park in between). */
int tls_note_set(tls_state *s, const tls_note *note) {
    s->note = note;
    return ERR_TLS;
}

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
int tls_cause(tls_state *s, int ret) {
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
int tls_fatal_for(tls_state *s, int writing) {
    int c = s->fatal ? s->fatal_cause : 0;
    if (writing && (c == ERR_EOF || c == ERR_UNEXPECTED_EOF)) return EPIPE;
    return c;
}

/* Record the first verification failure, and for a name mismatch the
 * names the certificate is valid for (read back by tls_verify_error). */
int tls_verify_cb(int ok, X509_STORE_CTX *xs) {
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

const char *tls_error_code(const conn *c) {
    if (!c->tls) return "tls";
    return c->tls->note ? c->tls->note->code : c->tls->code[0] ? c->tls->code : "tls";
}

const char *tls_error_msg(const conn *c) {
    if (!c->tls) return "tls: error";
    return c->tls->note ? c->tls->note->msg : c->tls->msg[0] ? c->tls->msg : "tls: error";
}
