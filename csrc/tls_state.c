/* tls_state.c - what a TLS conn reports about itself: connection_state()
 * (version, cipher, ALPN, server name, resumption, verification, the
 * peer's certificates), read from the live SSL or from the copy tls_close
 * keeps (tls_view_keep), and the state word of tostring. Reads only:
 * nothing here changes the conn. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/x509v3.h>
#include "lauxlib.h"
#include "tls_int.h"

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
tls_view *tls_view_keep(tls_state *s) {
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

void tls_view_free(tls_view *v) {
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
int tls_connection_state(lua_State *L) {
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
