/* sslmem.c - OpenSSL's own heap per idle TLS server conn: the floor under any
 * server that keeps one SSL per conn (coronet, cqueues/luaossl, nginx...).
 *
 *   sslmem CERT KEY [norelease] [-v]
 *
 * Makes N=1000 server SSLs with coronet's server settings (csrc/tls_config.c:
 * released buffers, read_ahead, tickets on, no session cache), each over a
 * socketpair with a client SSL in the same thread: TLS 1.3 handshake
 * (X25519, TLS_AES_128_GCM_SHA256), one "hello\n" echo, then the empty read a
 * server parks in. Counts the live bytes allocated by calls on the server
 * SSLs (CRYPTO_set_mem_functions; allocator overhead not included) and prints
 *   RESULT mode=sslmem kib_per_conn=... allocs_per_conn=...
 * "norelease" drops SSL_MODE_RELEASE_BUFFERS; -v lists the live allocations
 * of one conn by size.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/* Every OpenSSL allocation carries a header: its size, the side it was made
 * for (0 other, 1 server, 2 client), and its slot in the -v table. */
typedef struct { size_t n; int side, idx; } hdr;
static long live[3], nlive[3];
static int side, track;
#define NTAB 4096
static hdr *tab[NTAB];
static int ntab;

static void *m_alloc(size_t n, const char *f, int l) {
    (void)f, (void)l;
    hdr *h = malloc(sizeof *h + n);
    if (!h) return NULL;
    h->n = n; h->side = side; h->idx = -1;
    if (track && side == 1 && ntab < NTAB) tab[h->idx = ntab++] = h;
    live[side] += (long)n; nlive[side]++;
    return h + 1;
}
static void m_free(void *p, const char *f, int l) {
    (void)f, (void)l;
    if (!p) return;
    hdr *h = (hdr *)p - 1;
    if (h->idx >= 0) tab[h->idx] = NULL;
    live[h->side] -= (long)h->n; nlive[h->side]--;
    free(h);
}
static void *m_realloc(void *p, size_t n, const char *f, int l) {
    if (!p) return m_alloc(n, f, l);
    hdr *h = (hdr *)p - 1;
    size_t old = h->n;
    hdr *q = realloc(h, sizeof *q + n);
    if (!q) return NULL;
    q->n = n;
    if (q->idx >= 0) tab[q->idx] = q;
    live[q->side] += (long)n - (long)old;
    return q + 1;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: sslmem CERT KEY [norelease] [-v]\n"); return 1; }
    int norelease = 0, verbose = 0, N = 1000;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "norelease")) norelease = 1;
        else if (!strcmp(argv[i], "-v")) verbose = 1;
    }
    if (!CRYPTO_set_mem_functions(m_alloc, m_realloc, m_free)) { fprintf(stderr, "sslmem: too late for mem functions\n"); return 1; }
    SSL_CTX *s = SSL_CTX_new(TLS_server_method()), *c = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                        (norelease ? 0 : SSL_MODE_RELEASE_BUFFERS));
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_read_ahead(s, 1);
    SSL_CTX_set_session_id_context(s, (const unsigned char *)"coronet", 7);
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256");
    SSL_CTX_set1_groups_list(c, "X25519");
    if (SSL_CTX_use_certificate_chain_file(s, argv[1]) != 1 ||
        SSL_CTX_use_PrivateKey_file(s, argv[2], SSL_FILETYPE_PEM) != 1) { ERR_print_errors_fp(stderr); return 1; }
    SSL **ss = calloc((size_t)N, sizeof *ss), **cc = calloc((size_t)N, sizeof *cc);
    long base = 0, nbase = 0;
    for (int i = 0; i < N; i++) {
        if (i == 10) base = live[1], nbase = nlive[1];   /* after the CTX's lazy set-up */
        track = verbose && i == 10;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) { perror("socketpair"); return 1; }
        fcntl(sv[0], F_SETFL, O_NONBLOCK); fcntl(sv[1], F_SETFL, O_NONBLOCK);
        side = 1; ss[i] = SSL_new(s); SSL_set_fd(ss[i], sv[0]); SSL_set_accept_state(ss[i]);
        side = 2; cc[i] = SSL_new(c); SSL_set_fd(cc[i], sv[1]); SSL_set_connect_state(cc[i]);
        int sd = 0, cd = 0;
        for (int k = 0; k < 100 && !(sd && cd); k++) {
            side = 2; if (!cd) cd = SSL_do_handshake(cc[i]) == 1;
            side = 1; if (!sd) sd = SSL_do_handshake(ss[i]) == 1;
        }
        if (!sd || !cd) { fprintf(stderr, "sslmem: handshake %d failed\n", i); ERR_print_errors_fp(stderr); return 1; }
        char b[64]; size_t n = 0, w = 0;
        int echoed = 0;
        side = 2; SSL_write_ex(cc[i], "hello\n", 6, &n);
        side = 1;
        for (int k = 0; k < 10 && !echoed; k++)
            if (SSL_read_ex(ss[i], b, sizeof b, &n) == 1) echoed = SSL_write_ex(ss[i], b, n, &w) == 1;
        side = 2;
        for (int k = 0; k < 10 && echoed == 1; k++) if (SSL_read_ex(cc[i], b, sizeof b, &n) == 1) echoed = 2;
        if (echoed != 2 || n != 6 || memcmp(b, "hello\n", 6)) { fprintf(stderr, "sslmem: echo %d failed\n", i); return 2; }
        side = 1; SSL_read_ex(ss[i], b, sizeof b, &n);   /* the idle read: nothing there */
        side = 0;
    }
    int k = N - 10;
    printf("RESULT mode=sslmem conns=%d release_buffers=%d kib_per_conn=%.2f allocs_per_conn=%.1f\n", k, !norelease,
           (live[1] - base) / 1024.0 / k, (double)(nlive[1] - nbase) / k);
    if (verbose) {
        printf("live allocations of one idle server conn (bytes):");
        for (int i = 0; i < ntab; i++) if (tab[i]) printf(" %zu", tab[i]->n);
        printf("\n");
    }
    return 0;
}
