/* tls_config.h - net.tls.config: one SSL_CTX and what coronet keeps beside
 * it (certificates chosen by SNI, ALPN, the client session cache, the key
 * log). That state lives as long as the SSL_CTX (its ex_data), so a conn
 * that outlives the Lua config object still finds it. */
#ifndef CORONET_TLS_CONFIG_H
#define CORONET_TLS_CONFIG_H

#include <stdio.h>
#include <openssl/ssl.h>
#include "lua.h"

/* client_auth, as Go's tls.ClientAuthType. */
enum { TLS_AUTH_NONE, TLS_AUTH_REQUEST, TLS_AUTH_REQUIRE, TLS_AUTH_VERIFY_IF_GIVEN,
       TLS_AUTH_VERIFY };

/* One certificate and key, with the chain sent after it. */
typedef struct tls_keypair {
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) *chain;
} tls_keypair;

/* A client session saved for resumption, keyed by server name. */
typedef struct tls_saved {
    char *key;
    SSL_SESSION *sess;
} tls_saved;

/* tls_ctxdata: the state coronet keeps with an SSL_CTX. */
typedef struct tls_ctxdata {
    char *server_name;       /* cfg.server_name, or NULL */
    int insecure;            /* insecure_skip_verify */
    int client_auth;         /* TLS_AUTH_*: what a server asks of clients */
    tls_keypair *pairs;      /* certificates; pairs[0] is the default */
    int npairs;
    unsigned char *alpn;     /* wire format (length-prefixed names) */
    unsigned alpnlen;
    tls_saved *sessions;     /* client session cache, oldest first, compact; or NULL */
    int nsessions, capsessions;
    FILE *keylog;            /* NSS key log, or NULL */
} tls_ctxdata;

/* tlscfg_check: the SSL_CTX of the config at idx, or raise. */
SSL_CTX *tlscfg_check(lua_State *L, int idx);

/* tlscfg_data: the coronet state of ctx. */
tls_ctxdata *tlscfg_data(SSL_CTX *ctx);

/* tlscfg_take_session: the saved session for key (removed from the cache:
 * a TLS 1.3 ticket is used once), or NULL. The caller frees it. */
SSL_SESSION *tlscfg_take_session(tls_ctxdata *d, const char *key);

/* tlscfg_put_session: keep sess (the caller's reference passes to the
 * cache) as the newest session for key; 0, or -1 when it was not kept. */
int tlscfg_put_session(tls_ctxdata *d, const char *key, SSL_SESSION *sess);

/* tlscfg_conn_index: the SSL ex_data index where the TLS layer keeps a conn's
 * session key (a malloc'd string) for the new-session callback. */
int tlscfg_conn_index(void);

int tlscfg_open(lua_State *L);

#endif
