/* tls_wrap.c - turning a conn into a TLS conn in place (core.tls_wrap,
 * behind tls.client, tls.server, tls.dial and TLS listeners): the SSL
 * over our BIO, and each side's setup: a client's name to verify and
 * send (SNI for DNS names only), its verification and a saved session to
 * resume; a server's client_auth. No bytes move here: the first read,
 * write or handshake() does that (tls.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "lauxlib.h"
#include "errors.h"
#include "sock.h"
#include "tls_int.h"

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
int tls_wrap(lua_State *L) {
    conn *c = luaL_checkudata(L, 1, CONN_MT);
    SSL_CTX *ctx = tlscfg_check(L, 2);
    int server = lua_toboolean(L, 3);
    const char *dflt = luaL_optstring(L, 4, NULL);
    tls_ctxdata *d = ctx ? tlscfg_data(ctx) : NULL;
    if (c->h.fd < 0) return conn_failx(L, c, "handshake", NULL, ERR_CLOSED, 0);
    if (c->h.rd || c->h.wr || c->wlocked) return conn_failx(L, c, "handshake", NULL, ERR_BUSY, 0);
    if (!d) return luaL_argerror(L, 2, "closed tls config");
    int e = handle_register(&c->h, POLLER_BOTH);  /* the BIO's EAGAIN parks without handle_recv */
    if (e) return conn_failx(L, c, "handshake", "epoll_ctl", e, 0);
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
