/* tls_config.c - net.tls.config{...}: builds one SSL_CTX from a Lua table,
 * with coronet's defaults (TLS 1.2 minimum, forward-secret AEAD suites only,
 * no renegotiation, released idle buffers) and the state that lives beside
 * it (tls_config.h). Build a config once and share it: loading the system
 * CA store alone takes tens of milliseconds. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "lauxlib.h"
#include "class.h"
#include "errors.h"
#include "tls.h"
#include "tls_config.h"

/* TLS 1.2 suites with forward secrecy and AEAD only (no CBC, no RSA key
 * exchange); TLS 1.3's suites all qualify. */
#define TLSCFG_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"
#define TLSCFG_SESSIONS 64      /* client session cache entries by default */

typedef struct tlscfg {
    SSL_CTX *ctx;                /* NULL until built; freed by __gc */
} tlscfg;

static int tlscfg_ctx_index = -1;   /* SSL_CTX ex_data: tls_ctxdata */
static int tlscfg_ssl_index = -1;   /* SSL ex_data: the session key */

SSL_CTX *tlscfg_check(lua_State *L, int idx) {
    tlscfg *cfg = luaL_checkudata(L, idx, TLSCFG_MT);
    return cfg->ctx;
}

tls_ctxdata *tlscfg_data(SSL_CTX *ctx) {
    return SSL_CTX_get_ex_data(ctx, tlscfg_ctx_index);
}

int tlscfg_conn_index(void) {
    return tlscfg_ssl_index;
}

/* ---- the state beside the SSL_CTX ------------------------------------ */

static void tlscfg_free_pair(tls_keypair *p) {
    X509_free(p->cert);
    EVP_PKEY_free(p->key);
    sk_X509_pop_free(p->chain, X509_free);
}

/* Runs when the SSL_CTX's last reference goes (the config and every SSL). */
static void tlscfg_free_data(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp) {
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    tls_ctxdata *d = ptr;
    if (!d) return;
    free(d->server_name);
    for (int i = 0; i < d->npairs; i++) tlscfg_free_pair(&d->pairs[i]);
    free(d->pairs);
    free(d->alpn);
    for (int i = 0; i < d->nsessions; i++) {
        free(d->sessions[i].key);
        SSL_SESSION_free(d->sessions[i].sess);
    }
    free(d->sessions);
    if (d->keylog) fclose(d->keylog);
    free(d);
}

static void tlscfg_free_key(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                            void *argp) {
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

/* ---- client sessions ------------------------------------------------- */

/* The cache is an array kept compact, oldest first: sessions[0 ..
 * nsessions). Taking an entry closes its gap (the later ones move down),
 * and a full cache drops sessions[0], so it holds up to capsessions
 * sessions and evicts in the order they were saved. */
static void tlscfg_drop_at(tls_ctxdata *d, int i) {
    memmove(&d->sessions[i], &d->sessions[i + 1], (size_t)(d->nsessions - i - 1) * sizeof *d->sessions);
    d->nsessions--;
    d->sessions[d->nsessions] = (tls_saved){NULL, NULL};
}

SSL_SESSION *tlscfg_take_session(tls_ctxdata *d, const char *key) {
    for (int i = 0; key && i < d->nsessions; i++) {
        tls_saved *e = &d->sessions[i];
        if (strcmp(e->key, key) == 0) {
            SSL_SESSION *s = e->sess;
            free(e->key);
            tlscfg_drop_at(d, i);
            return s;
        }
    }
    return NULL;
}

int tlscfg_put_session(tls_ctxdata *d, const char *key, SSL_SESSION *sess) {
    if (!d->sessions || !key) return -1;
    char *k = strdup(key);
    if (!k) return -1;
    SSL_SESSION_free(tlscfg_take_session(d, key));
    if (d->nsessions == d->capsessions) {        /* full: the oldest goes */
        free(d->sessions[0].key);
        SSL_SESSION_free(d->sessions[0].sess);
        tlscfg_drop_at(d, 0);
    }
    d->sessions[d->nsessions++] = (tls_saved){k, sess};
    return 0;
}

/* New-session callback (client): keep the newest session per server name;
 * a full cache drops the oldest entry. Returns 1: we own it. */
static int tlscfg_new_session(SSL *ssl, SSL_SESSION *sess) {
    tls_ctxdata *d = tlscfg_data(SSL_get_SSL_CTX(ssl));
    const char *key = SSL_get_ex_data(ssl, tlscfg_ssl_index);
    return d && tlscfg_put_session(d, key, sess) == 0;
}

/* ---- callbacks ------------------------------------------------------- */

static void tlscfg_keylog(const SSL *ssl, const char *line) {
    tls_ctxdata *d = tlscfg_data(SSL_get_SSL_CTX(ssl));
    if (!d || !d->keylog) return;
    fputs(line, d->keylog);
    fputc('\n', d->keylog);
    fflush(d->keylog);                    /* Wireshark reads it while we run */
}

/* SNI: serve the first certificate valid for the requested name; the
 * default (the first one) otherwise, as Go's getCertificate. */
static int tlscfg_servername(SSL *ssl, int *alert, void *arg) {
    (void)alert, (void)arg;
    tls_ctxdata *d = tlscfg_data(SSL_get_SSL_CTX(ssl));
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!d || !name) return SSL_TLSEXT_ERR_OK;
    ERR_set_mark();                      /* what our calls queue must not fail the handshake */
    for (int i = 0; i < d->npairs; i++) {
        if (X509_check_host(d->pairs[i].cert, name, strlen(name), 0, NULL) == 1) {
            if (i > 0) SSL_use_cert_and_key(ssl, d->pairs[i].cert, d->pairs[i].key,
                                            d->pairs[i].chain, 1);
            break;
        }
    }
    ERR_pop_to_mark();
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN (server): the first of our protocols the client offers; none in
 * common is a fatal no_application_protocol alert, as Go's, except that an
 * h2-only server lets an http/1.1 client through without ALPN (Go too). */
static int tlscfg_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                              const unsigned char *in, unsigned inlen, void *arg) {
    (void)arg;
    tls_ctxdata *d = tlscfg_data(SSL_get_SSL_CTX(ssl));
    unsigned char *sel;
    if (!d || !d->alpn) return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&sel, outlen, d->alpn, d->alpnlen, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        static const unsigned char h2[] = "\2h2", h11[] = "\10http/1.1";
        int h2_only = d->alpnlen == 3 && memcmp(d->alpn, h2, 3) == 0;
        for (unsigned i = 0; h2_only && i < inlen; i += 1u + in[i])
            if (i + 9 <= inlen && memcmp(in + i, h11, 9) == 0) return SSL_TLSEXT_ERR_NOACK;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- building -------------------------------------------------------- */

/* The failure of building a config: nil and an error (op "tls_config",
 * code "tls_config") whose message names the option and OpenSSL's reason. */
static int tlscfg_fail(lua_State *L, const char *what, const char *arg) {
    char msg[400];
    unsigned long e = ERR_get_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    int sys = errno;
    snprintf(msg, sizeof msg, "tls: %s%s%s: %s", what, arg ? " " : "", arg ? arg : "",
             why ? why : sys ? strerror(sys) : "invalid");
    ERR_clear_error();
    operr oe = {"tls_config", NULL, NULL, NULL, NULL, NULL, 0};
    return errors_fail_tls(L, &oe, "tls_config", msg);
}

static const char *tlscfg_optstring(lua_State *L, const char *k) {
    lua_getfield(L, 1, k);
    const char *v = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "tls.config: '%s' must be a string", k);
        v = lua_tostring(L, -1);
    }
    lua_pop(L, 1);                      /* the config table keeps the string alive */
    return v;
}

static int tlscfg_optbool(lua_State *L, const char *k, int dflt) {
    lua_getfield(L, 1, k);
    int v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int tlscfg_version(lua_State *L, const char *k, int dflt) {
    static const char *const names[] = {"1.0", "1.1", "1.2", "1.3",
                                        "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3", NULL};
    static const int versions[] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION,
                                   TLS1_3_VERSION};
    const char *v = tlscfg_optstring(L, k);
    if (!v) return dflt;
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0) return versions[i % 4];
    return luaL_error(L, "tls.config: %s must be \"1.0\", \"1.1\", \"1.2\" or \"1.3\"", k);
}

/* An encrypted key must not make OpenSSL prompt on the terminal (that
 * would stop the loop): no password, so loading fails with an error. */
static int tlscfg_no_password(char *buf, int size, int rwflag, void *u) {
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

/* Read a PEM certificate chain (leaf first) and its key into p; 0 or -1
 * (the OpenSSL queue or errno says why). */
static int tlscfg_load_pair(tls_keypair *p, const char *certf, const char *keyf) {
    memset(p, 0, sizeof *p);
    BIO *b = BIO_new_file(certf, "r");
    if (!b) return -1;
    p->cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
    p->chain = sk_X509_new_null();
    X509 *x;
    while (p->cert && p->chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        sk_X509_push(p->chain, x);
    ERR_clear_error();                   /* the end of the file reads as an error */
    BIO_free(b);
    if (!p->cert || !p->chain) goto fail;
    b = BIO_new_file(keyf, "r");
    if (!b) goto fail;
    p->key = PEM_read_bio_PrivateKey(b, NULL, tlscfg_no_password, NULL);
    BIO_free(b);
    if (!p->key || X509_check_private_key(p->cert, p->key) != 1) goto fail;
    return 0;
fail:
    tlscfg_free_pair(p);
    memset(p, 0, sizeof *p);
    return -1;
}

/* Load cfg.cert_file/key_file and cfg.certificates into d->pairs. */
static int tlscfg_load_certs(lua_State *L, tls_ctxdata *d) {
    const char *cf = tlscfg_optstring(L, "cert_file"), *kf = tlscfg_optstring(L, "key_file");
    if (!cf != !kf) return luaL_error(L, "tls.config: cert_file and key_file go together");
    lua_getfield(L, 1, "certificates");
    int n = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
    d->pairs = calloc((size_t)n + 1, sizeof *d->pairs);
    if (!d->pairs) return luaL_error(L, "coronet: out of memory");
    if (cf && tlscfg_load_pair(&d->pairs[d->npairs++], cf, kf) < 0) {
        d->npairs--;
        return tlscfg_fail(L, "cert_file", cf);
    }
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        if (!lua_istable(L, -1)) return luaL_error(L, "tls.config: certificates[%d] must be a table", i);
        lua_getfield(L, -1, "cert_file");
        lua_getfield(L, -2, "key_file");
        const char *c2 = lua_tostring(L, -2), *k2 = lua_tostring(L, -1);
        if (!c2 || !k2) return luaL_error(L, "tls.config: certificates[%d] needs cert_file and key_file", i);
        if (tlscfg_load_pair(&d->pairs[d->npairs], c2, k2) < 0) return tlscfg_fail(L, "cert_file", c2);
        d->npairs++;
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
    return 0;
}

/* cfg.alpn = {"h2", "http/1.1"} in the wire format (length-prefixed). */
static int tlscfg_load_alpn(lua_State *L, tls_ctxdata *d) {
    lua_getfield(L, 1, "alpn");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    luaL_argcheck(L, lua_istable(L, -1), 1, "alpn must be a list of strings");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= (int)lua_rawlen(L, -2); i++) {
        size_t len;
        lua_rawgeti(L, -2, i);
        const char *p = lua_tolstring(L, -1, &len);
        if (!p || len == 0 || len > 255) return luaL_error(L, "tls.config: alpn[%d] must be a name of 1..255 bytes", i);
        lua_pop(L, 1);
        luaL_addchar(&b, (char)len);
        luaL_addlstring(&b, p, len);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *wire = lua_tolstring(L, -1, &len);
    d->alpn = malloc(len ? len : 1);
    if (!d->alpn) return luaL_error(L, "coronet: out of memory");
    memcpy(d->alpn, wire, len);
    d->alpnlen = (unsigned)len;
    lua_pop(L, 2);
    return 0;
}

static const char *const tlscfg_known[] = {
    "alpn", "ca_file", "ca_path", "cert_file", "certificates", "ciphers", "ciphersuites",
    "client_auth", "client_ca_file", "insecure_skip_verify", "key_file", "keylog_file",
    "max_version", "min_version", "server_name", "session_cache", "session_tickets", NULL};

static void tlscfg_check_keys(lua_State *L) {
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        int ok = 0;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (int i = 0; tlscfg_known[i] && !ok; i++) ok = strcmp(lua_tostring(L, -2), tlscfg_known[i]) == 0;
        if (!ok) luaL_error(L, "tls.config: unknown option '%s'", luaL_tolstring(L, -2, NULL));
        lua_pop(L, 1);
    }
}

/* The trust store: ca_file/ca_path, else the system's; client_ca_file for
 * verifying client certificates. */
static int tlscfg_load_trust(lua_State *L, SSL_CTX *ctx) {
    const char *caf = tlscfg_optstring(L, "ca_file"), *cap = tlscfg_optstring(L, "ca_path");
    const char *ccf = tlscfg_optstring(L, "client_ca_file");
    if (caf || cap) {
        if (SSL_CTX_load_verify_locations(ctx, caf, cap) != 1)
            return tlscfg_fail(L, caf ? "ca_file" : "ca_path", caf ? caf : cap);
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return tlscfg_fail(L, "system CA store", NULL);
    }
    if (ccf) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ccf);
        if (!names || SSL_CTX_load_verify_locations(ctx, ccf, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            return tlscfg_fail(L, "client_ca_file", ccf);
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    return 0;
}

static int tlscfg_client_auth(lua_State *L) {
    static const char *const modes[] = {"none", "request", "require", "verify_if_given",
                                        "verify", NULL};
    lua_getfield(L, 1, "client_auth");
    int m = luaL_checkoption(L, -1, "none", modes);
    lua_pop(L, 1);
    return m;
}

/* Everything after SSL_CTX_new; returns 0, or the count of values pushed
 * for a failure (nil, err). */
static int tlscfg_build(lua_State *L, SSL_CTX *ctx, tls_ctxdata *d) {
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_read_ahead(ctx, 1);      /* whole records per read(): far fewer syscalls */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"coronet", 7);
    int minv = tlscfg_version(L, "min_version", TLS1_2_VERSION);
    int maxv = tlscfg_version(L, "max_version", 0);
    if (!SSL_CTX_set_min_proto_version(ctx, minv) || !SSL_CTX_set_max_proto_version(ctx, maxv))
        return tlscfg_fail(L, "min_version/max_version", NULL);
    const char *ciphers = tlscfg_optstring(L, "ciphers");
    if (SSL_CTX_set_cipher_list(ctx, ciphers ? ciphers : TLSCFG_CIPHERS) != 1)
        return tlscfg_fail(L, "ciphers", ciphers);
    const char *suites = tlscfg_optstring(L, "ciphersuites");
    if (suites && SSL_CTX_set_ciphersuites(ctx, suites) != 1) return tlscfg_fail(L, "ciphersuites", suites);
    const char *sn = tlscfg_optstring(L, "server_name");
    if (sn && !(d->server_name = strdup(sn))) return luaL_error(L, "coronet: out of memory");
    d->insecure = tlscfg_optbool(L, "insecure_skip_verify", 0);
    d->client_auth = tlscfg_client_auth(L);
    int r;
    if ((r = tlscfg_load_trust(L, ctx)) || (r = tlscfg_load_certs(L, d)) || (r = tlscfg_load_alpn(L, d)))
        return r;
    if (d->npairs && SSL_CTX_use_cert_and_key(ctx, d->pairs[0].cert, d->pairs[0].key,
                                              d->pairs[0].chain, 1) != 1)
        return tlscfg_fail(L, "cert_file", NULL);
    if (d->npairs > 1) SSL_CTX_set_tlsext_servername_callback(ctx, tlscfg_servername);
    if (d->alpn) {
        if (SSL_CTX_set_alpn_protos(ctx, d->alpn, d->alpnlen) != 0) return tlscfg_fail(L, "alpn", NULL);
        SSL_CTX_set_alpn_select_cb(ctx, tlscfg_alpn_select, NULL);
    }
    if (!tlscfg_optbool(L, "session_tickets", 1)) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    lua_getfield(L, 1, "session_cache");
    int cap = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : lua_toboolean(L, -1) ? TLSCFG_SESSIONS : 0;
    lua_pop(L, 1);
    /* Servers resume through tickets only (no per-session memory, as Go);
     * clients keep sessions in our cache, not OpenSSL's internal one. */
    SSL_CTX_set_session_cache_mode(ctx, cap > 0 ? SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE
                                                : SSL_SESS_CACHE_OFF);
    if (cap > 0) {
        if (!(d->sessions = calloc((size_t)cap, sizeof *d->sessions)))
            return luaL_error(L, "coronet: out of memory");
        d->capsessions = cap;
        SSL_CTX_sess_set_new_cb(ctx, tlscfg_new_session);
    }
    const char *kl = tlscfg_optstring(L, "keylog_file");
    if (kl) {
        /* the log holds session secrets: owner-only, and no child inherits it */
        int fd = open(kl, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || !(d->keylog = fdopen(fd, "a"))) {
            if (fd >= 0) close(fd);
            return tlscfg_fail(L, "keylog_file", kl);
        }
        SSL_CTX_set_keylog_callback(ctx, tlscfg_keylog);
    }
    return 0;
}

/* core.tls_config(opts) -> config | nil, err: see docs/tls.md for opts.
 * Unknown options and wrong types raise; files that can't be loaded are
 * run-time failures (nil, err). */
static int tlscfg_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    tlscfg_check_keys(L);
    tlscfg *cfg = lua_newuserdatauv(L, sizeof *cfg, 0);   /* 2 */
    cfg->ctx = NULL;
    luaL_setmetatable(L, TLSCFG_MT);
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    tls_ctxdata *d = calloc(1, sizeof *d);
    if (!ctx || !d || !SSL_CTX_set_ex_data(ctx, tlscfg_ctx_index, d)) {
        SSL_CTX_free(ctx);
        free(d);
        return tlscfg_fail(L, "SSL_CTX_new", NULL);
    }
    cfg->ctx = ctx;                      /* from here on __gc frees ctx, and ctx frees d */
    if (tlscfg_build(L, ctx, d)) return 2;       /* nil, err on top */
    lua_settop(L, 2);
    return 1;
}

static int tlscfg_gc(lua_State *L) {
    tlscfg *cfg = luaL_checkudata(L, 1, TLSCFG_MT);
    SSL_CTX_free(cfg->ctx);              /* SSLs still using it keep their reference */
    cfg->ctx = NULL;
    return 0;
}

static int tlscfg_tostring(lua_State *L) {
    SSL_CTX *ctx = tlscfg_check(L, 1);
    tls_ctxdata *d = ctx ? tlscfg_data(ctx) : NULL;
    lua_pushfstring(L, "tls config (%d certificate(s)%s%s)", d ? d->npairs : 0,
                    d && d->server_name ? ", server_name " : "",
                    d && d->server_name ? d->server_name : "");
    return 1;
}

static const luaL_Reg tlscfg_meta[] = {
    {"__gc", tlscfg_gc},
    {"__tostring", tlscfg_tostring},
    {NULL, NULL}
};

/* core.tls_config_certs(cfg) -> n: how many certificates cfg serves (0:
 * it can only be a client's). */
static int tlscfg_certs(lua_State *L) {
    SSL_CTX *ctx = tlscfg_check(L, 1);
    tls_ctxdata *d = ctx ? tlscfg_data(ctx) : NULL;
    lua_pushinteger(L, d ? d->npairs : 0);
    return 1;
}

static const luaL_Reg tlscfg_funcs[] = {
    {"tls_config", tlscfg_new},
    {"tls_config_certs", tlscfg_certs},
    {NULL, NULL}
};

/* tlscfg_open: register TLSCFG_MT and add core.tls_config. */
int tlscfg_open(lua_State *L) {
    if (tlscfg_ctx_index < 0) {
        tlscfg_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tlscfg_free_data);
        tlscfg_ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tlscfg_free_key);
    }
    class_register(L, TLSCFG_MT, tlscfg_meta, NULL);
    luaL_setfuncs(L, tlscfg_funcs, 0);
    return 0;
}
