/* tlsload.c - single-threaded epoll TLS load generator (OpenSSL, non-blocking SSL)
 * for bench/tls. Every mode talks TLS to 127.0.0.1:port and stops by itself.
 *
 *   tlsload MODE -p port -C ca.pem [-N name] [-c n] [-s bytes] [-d secs] [-n MiB]
 *                [-k n] [-H secs] [-a n]
 *
 * Modes:
 *   echo       -c conns (50) handshake, then ping-pong -s bytes (64) for -d secs (5):
 *              round trips/s, p50/p99 us
 *   bulk       one conn streams -n MiB (1024) and reads the echo back: MiB/s (cap -d 60 s)
 *   handshake  -c in flight (32): connect, full handshake, 8-byte echo, close_notify,
 *              close, for -d secs: handshakes/s
 *   resume     the same, offering the newest session ticket the server sent:
 *              handshakes/s and the fraction the server actually resumed
 *   idle       -k conns (10000), each handshaken and 'hello\n' echoed (<=256 in
 *              setup at once), prints HOLDING, holds them -H secs (2), echoes again
 *
 * The client offers TLS 1.3 with TLS_AES_128_GCM_SHA256 and X25519 only, so that
 * every server negotiates the same thing; it verifies the chain against -C and
 * the name -N (localhost) on the first handshake, then requires the same leaf
 * certificate byte for byte. -a N spreads source addresses over 127.0.0.1..N.
 * Every echoed byte is compared with what was sent. Last line of stdout:
 *   RESULT mode=... key=value ...     exit status 0 ok, 2 on any mismatch,
 *   1 when the mode could not start (no handshake, no ticket).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

static int port = 0, nconn = -1, size = -1, kconn = 10000, nsrc = 1;
static double dur = -1, hold = 2;
static long mib = 1024;
static long mismatches = 0, errors = 0;
static int setup_failed;       /* the mode could not even start: exit 1 */
static const char *cafile = NULL, *sname = "localhost";
static int ep;
static SSL_CTX *ctx;
static char first_err[256];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static void die(const char *m) { perror(m); exit(1); }
/* CPU time this process has used (user + system), seconds: the client's own
 * cost per operation, whatever else runs on the machine. */
static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* Count a failure; remember the first one's text for the log. */
static void fail(const char *what) {
    errors++;
    if (first_err[0]) return;
    unsigned long e = ERR_peek_error();
    char buf[160] = "";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    snprintf(first_err, sizeof first_err, "%s%s%s%s%s", what, e ? ": " : "", buf,
             errno && !e ? ": " : "", errno && !e ? strerror(errno) : "");
}

/* Non-blocking TCP socket, connect started; -1 on immediate failure. */
static int tcp_open(void) {
    static unsigned next_src;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (nsrc > 1) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        b.sin_addr.s_addr = htonl(INADDR_LOOPBACK + next_src++ % nsrc);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (void *)&b, sizeof b) < 0) { close(fd); return -1; }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (void *)&a, sizeof a) < 0 && errno != EINPROGRESS) { close(fd); return -1; }
    return fd;
}
static int sock_err(int fd) {
    int e = 0; socklen_t l = sizeof e;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
    return e;
}

/* ---- sessions (resume) ----------------------------------------------------
 * Tickets the servers sent, newest first, each offered once (RFC 8446 4.6.1).
 * If none is left (more conns in flight than fresh tickets), a private copy of
 * the newest is offered again (counted: reused_tickets). Never one SSL_SESSION
 * on two SSLs at once: OpenSSL 3.0's client then marks it non-resumable now and
 * then (seen: 1-5 % full handshakes against OpenSSL servers). */
#define NRING 64
static SSL_SESSION *ring[NRING], *newest;
static int nring, offer_sessions;       /* offer_sessions: resume mode only */
static long reused_tickets;
static int conn_index = -1;             /* SSL ex_data: the session this conn offered */

static int new_session(SSL *ssl, SSL_SESSION *sess) {
    if (sess == SSL_get_ex_data(ssl, conn_index)) return 0;   /* the one it resumed with */
    if (nring == NRING) { SSL_SESSION_free(ring[0]); memmove(ring, ring + 1, (NRING - 1) * sizeof *ring); nring--; }
    ring[nring++] = sess;                                    /* the callback's reference */
    if (newest) SSL_SESSION_free(newest);
    SSL_SESSION_up_ref(sess);
    newest = sess;
    return 1;
}
/* The session for a new conn, or NULL; the caller owns the reference. */
static SSL_SESSION *take_session(void) {
    if (nring) return ring[--nring];
    if (!newest) return NULL;
    reused_tickets++;
    return SSL_SESSION_dup(newest);
}

/* Certificate check: the first chain is verified in full (CA, name, expiry);
 * after that a leaf byte-identical to the verified one passes without
 * building the chain again (one ECDSA verify less per full handshake, so the
 * client costs less than the servers it loads); any other leaf is verified
 * in full. The CertificateVerify signature is checked by TLS every time. */
static unsigned char *pinned;
static int npinned;
static int verify_cert(X509_STORE_CTX *xs, void *arg) {
    (void)arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    unsigned char *der = NULL;
    int n = leaf ? i2d_X509(leaf, &der) : -1, ok;
    if (n > 0 && pinned && n == npinned && !memcmp(der, pinned, (size_t)n)) ok = 1;
    else if ((ok = X509_verify_cert(xs)) == 1 && n > 0 && !pinned) {
        pinned = der; npinned = n; der = NULL;
    }
    OPENSSL_free(der);
    return ok;
}

static void make_ctx(void) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519") != 1) { ERR_print_errors_fp(stderr); exit(1); }
    if (!cafile || SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
        fprintf(stderr, "tlsload: -C ca.pem is required and must load\n");
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, verify_cert, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    if (offer_sessions) {
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, new_session);
    } else SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

/* ---- one TLS conn driven by readiness ----------------------------------- */
enum { P_CONNECT, P_HANDSHAKE, P_RUN, P_DEAD };
struct tc {
    int fd, phase;
    SSL *ssl;
    uint32_t ev;            /* epoll interest now */
    uint32_t rwant, wwant;  /* what the read side / write side waits for (EPOLLIN/OUT), 0 none */
    int len, sent, got;     /* current message: length, bytes written, bytes read back */
    int active;             /* a message is in flight */
    uint32_t round;
    double t0;
    unsigned char *sbuf, *rbuf;
};
static struct tc *cs;
static int nslots;
static char proto_seen[96];

/* The epoll interest that SSL_get_error(ret) asks for; 0 for a failure. */
static uint32_t want_of(SSL *ssl, int ret) {
    switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ: return EPOLLIN;
    case SSL_ERROR_WANT_WRITE: return EPOLLOUT;
    default: return 0;
    }
}
static void set_interest(struct tc *c, int i) {
    uint32_t ev = c->phase == P_CONNECT ? EPOLLOUT : (c->rwant | c->wwant);
    if (!ev) ev = EPOLLIN;
    if (ev == c->ev) return;
    struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)i};
    if (epoll_ctl(ep, c->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) < 0) die("epoll_ctl");
    c->ev = ev;
}
static long ndead;          /* conns freed so far */
static void conn_free(struct tc *c) {
    ndead++;
    if (c->ssl && conn_index >= 0) {
        SSL_SESSION *sess = SSL_get_ex_data(c->ssl, conn_index);
        if (sess) SSL_SESSION_free(sess);
    }
    if (c->ssl) SSL_free(c->ssl);
    if (c->fd >= 0) close(c->fd);      /* close removes it from epoll */
    c->ssl = NULL; c->fd = -1; c->ev = 0; c->phase = P_DEAD; c->active = 0;
    c->rwant = c->wwant = 0;
}
/* Start connecting slot i; returns 0, or -1 if the socket could not be opened. */
static int conn_start(int i) {
    struct tc *c = &cs[i];
    c->fd = tcp_open();
    if (c->fd < 0) { fail("connect"); c->phase = P_DEAD; return -1; }
    c->ssl = NULL; c->phase = P_CONNECT; c->ev = 0; c->rwant = c->wwant = 0;
    c->active = 0; c->sent = c->got = 0;
    set_interest(c, i);
    return 0;
}

/* Mode hooks: the handshake finished; a whole echo came back. */
static void (*on_ready)(int i);
static void (*on_echo)(int i, double t);

/* Queue a message on slot i (the write happens in drive). */
static void msg_begin(struct tc *c, int len) {
    c->len = len; c->sent = c->got = 0; c->active = 1;
}

/* Progress slot i as far as it goes without blocking. */
static void drive(int i, uint32_t events) {
    struct tc *c = &cs[i];
    if (c->phase == P_CONNECT) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int e = sock_err(c->fd);
        if (e) { errno = e; fail("connect"); conn_free(c); return; }
        c->ssl = SSL_new(ctx);
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_connect_state(c->ssl);
        SSL_set_tlsext_host_name(c->ssl, sname);
        SSL_set1_host(c->ssl, sname);
        if (offer_sessions) {
            SSL_SESSION *sess = take_session();
            if (sess) {
                SSL_set_session(c->ssl, sess);
                SSL_set_ex_data(c->ssl, conn_index, sess);   /* our reference, dropped in conn_free */
            }
        }
        c->phase = P_HANDSHAKE;
    }
    if (c->phase == P_HANDSHAKE) {
        ERR_clear_error(); errno = 0;
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            uint32_t w = want_of(c->ssl, r);
            if (!w) { fail("handshake"); conn_free(c); return; }
            c->rwant = w; c->wwant = 0;
            set_interest(c, i);
            return;
        }
        c->phase = P_RUN; c->rwant = c->wwant = 0;
        if (!proto_seen[0]) {
            int g = SSL_get_negotiated_group(c->ssl);
            snprintf(proto_seen, sizeof proto_seen, "proto=%s cipher=%s group=%s", SSL_get_version(c->ssl),
                     SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)),
                     g > 0 ? OBJ_nid2sn(g) : "?");
        }
        on_ready(i);
        if (c->phase != P_RUN) return;
    }
    for (int progress = 1; progress && c->phase == P_RUN;) {
        progress = 0;
        while (c->active && c->sent < c->len) {            /* write what is left */
            size_t n = 0;
            ERR_clear_error(); errno = 0;
            int r = SSL_write_ex(c->ssl, c->sbuf + c->sent, (size_t)(c->len - c->sent), &n);
            if (r == 1) { c->sent += (int)n; c->wwant = 0; progress = 1; continue; }
            c->wwant = want_of(c->ssl, r);
            if (!c->wwant) { fail("write"); conn_free(c); return; }
            break;
        }
        if (c->active && c->sent == c->len) c->wwant = 0;
        for (;;) {                                         /* read until it would block */
            unsigned char junk[64];
            unsigned char *dst = c->active ? c->rbuf + c->got : junk;
            size_t cap = c->active ? (size_t)(c->len - c->got) : sizeof junk, n = 0;
            if (cap == 0) { dst = junk; cap = sizeof junk; }
            ERR_clear_error(); errno = 0;
            int r = SSL_read_ex(c->ssl, dst, cap, &n);
            if (r != 1) {
                c->rwant = want_of(c->ssl, r);
                if (!c->rwant) { fail(SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN ? "read: close_notify"
                                                                                         : "read");
                                 conn_free(c); return; }
                break;
            }
            c->rwant = 0;
            if (dst == junk) { mismatches++; continue; }   /* bytes nobody asked for */
            c->got += (int)n;
            if (c->got < c->len) continue;
            if (c->sent != c->len || memcmp(c->sbuf, c->rbuf, (size_t)c->len)) mismatches++;
            c->active = 0;
            on_echo(i, now());
            if (c->phase != P_RUN) return;
            progress = 1;                                  /* a new message may be queued */
            break;
        }
    }
    if (c->phase == P_RUN) set_interest(c, i);
}

static int loop_once(int timeout_ms) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    for (int k = 0; k < n; k++) {
        int i = (int)evs[k].data.u64;
        if (cs[i].phase != P_DEAD) drive(i, evs[k].events);
    }
    return n;
}

/* Latency histogram: 1 us buckets up to 100 ms, last bucket = overflow. */
#define HMAX 100000
static uint32_t hist[HMAX + 1];
static long hcount;
static void hist_add(double sec) {
    long us = (long)(sec * 1e6);
    hist[us < HMAX ? us : HMAX]++; hcount++;
}
static long hist_pct(double p) {
    long want = (long)(hcount * p), acc = 0;
    for (long i = 0; i <= HMAX; i++) if ((acc += hist[i]) > want) return i;
    return HMAX;
}

static void slots(int n, int msgmax) {
    nslots = n;
    cs = calloc((size_t)n, sizeof *cs);
    for (int i = 0; i < n; i++) {
        cs[i].fd = -1; cs[i].phase = P_DEAD;
        cs[i].sbuf = malloc((size_t)msgmax); cs[i].rbuf = malloc((size_t)msgmax);
        for (int j = 0; j < msgmax; j++) cs[i].sbuf[j] = (unsigned char)rand();
    }
}
static void stamp(struct tc *c, int i) {         /* [slot u32][round u32] in front of the body */
    memcpy(c->sbuf, &i, 4); memcpy(c->sbuf + 4, &c->round, 4);
}

/* ---- echo: ping-pong, one message in flight per conn --------------------- */
static int ready, timing, draining;
static long done;
/* Close slot i as a polite client does: close_notify (no wait), then close. */
static void conn_finish(struct tc *c) {
    ERR_clear_error();
    SSL_shutdown(c->ssl);
    conn_free(c);
}
/* After the timed part: let what is in flight finish (bounded), so that every
 * conn ends with a close_notify and the servers' logs show only real failures. */
static void drain(void) {
    draining = 1;
    double lim = now() + 5;
    for (;;) {
        int live = 0;
        for (int i = 0; i < nslots; i++) live += cs[i].phase != P_DEAD;
        if (!live || now() > lim) break;
        loop_once(100);
    }
}
static void echo_ready(int i) { (void)i; ready++; }
static void echo_next(int i, double t) {
    struct tc *c = &cs[i];
    if (draining) { conn_finish(c); return; }
    if (timing) { hist_add(t - c->t0); done++; }
    c->round++; c->t0 = t; stamp(c, i); msg_begin(c, size);
}
static void run_echo(void) {
    if (nconn < 0) nconn = 50;
    if (size < 0) size = 64;
    if (size < 8) size = 8;
    slots(nconn, size);
    on_ready = echo_ready; on_echo = echo_next;
    for (int i = 0; i < nconn; i++) conn_start(i);
    double lim = now() + 30;
    while (ready < nconn && now() < lim) {
        loop_once(100);
        int dead = 0;
        for (int i = 0; i < nconn; i++) dead += cs[i].phase == P_DEAD;
        if (dead) break;
    }
    if (ready < nconn) {
        fprintf(stderr, "tlsload: only %d of %d conns handshook (%s)\n", ready, nconn, first_err);
        setup_failed = 1;
        printf("RESULT mode=echo conns=%d size=%d rps=0 errors=%ld mismatches=%ld\n", nconn, size,
               errors ? errors : 1, mismatches);
        return;
    }
    double start = now(), end = start + dur, t, cpu0 = cpu_now();
    timing = 1;
    for (int i = 0; i < nconn; i++) {
        struct tc *c = &cs[i];
        c->t0 = start; stamp(c, i); msg_begin(c, size); drive(i, 0);
    }
    while ((t = now()) < end) loop_once((int)((end - t) * 1000) + 1);
    double el = now() - start, cpu = cpu_now() - cpu0;
    drain();
    printf("RESULT mode=echo conns=%d size=%d rps=%.0f p50_us=%ld p99_us=%ld cli_us_op=%.1f %s errors=%ld mismatches=%ld\n",
           nconn, size, done / el, hist_pct(0.50), hist_pct(0.99), done ? cpu * 1e6 / done : 0.0, proto_seen, errors, mismatches);
}

/* ---- bulk: stream N MiB, read the echo back concurrently ------------------ */
#define PERIOD 65521                     /* prime, so the pattern never aligns with records */
static void bulk_ready(int i) { (void)i; ready = 1; }
static void bulk_echo(int i, double t) { (void)i; (void)t; }
static void run_bulk(void) {
    if (dur < 0) dur = 60;
    static unsigned char pat[2 * PERIOD], rbuf[PERIOD];
    uint32_t x = 2463534242u;
    for (int i = 0; i < PERIOD; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; pat[i] = pat[i + PERIOD] = (unsigned char)x; }
    long long total = (long long)mib << 20, sent = 0, got = 0;
    slots(1, 8);
    on_ready = bulk_ready; on_echo = bulk_echo;
    struct tc *c = &cs[0];
    conn_start(0);
    double lim = now() + 10;
    while (!ready && c->phase != P_DEAD && now() < lim) loop_once(100);
    if (!ready) {
        fprintf(stderr, "tlsload: bulk handshake failed (%s)\n", first_err);
        setup_failed = 1;
        printf("RESULT mode=bulk mib=%ld mibps=0 complete=0 errors=%ld mismatches=0\n", mib, errors ? errors : 1);
        return;
    }
    /* From here this mode drives the SSL itself: a write retried after WANT_*
     * repeats the same length, which sent alone determines. */
    struct epoll_event ev;
    double start = now(), end = start + dur, cpu0 = cpu_now();
    int dead = 0;
    c->rwant = EPOLLIN; c->wwant = EPOLLOUT;
    set_interest(c, 0);
    while (got < total && now() < end && !dead) {
        if (epoll_wait(ep, &ev, 1, 100) <= 0) continue;
        int progress = 1;
        while (progress && !dead) {
            progress = 0;
            if (sent < total) {
                long long len = total - sent < PERIOD ? total - sent : PERIOD;
                size_t n = 0;
                ERR_clear_error(); errno = 0;
                int r = SSL_write_ex(c->ssl, pat + sent % PERIOD, (size_t)len, &n);
                if (r == 1) { sent += (long long)n; progress = 1; c->wwant = 0; }
                else if (!(c->wwant = want_of(c->ssl, r))) { fail("write"); dead = 1; }
            } else c->wwant = 0;
            for (int k = 0; k < 64 && !dead; k++) {
                size_t n = 0;
                ERR_clear_error(); errno = 0;
                int r = SSL_read_ex(c->ssl, rbuf, sizeof rbuf, &n);
                if (r != 1) {
                    if (!(c->rwant = want_of(c->ssl, r))) { fail("read"); dead = 1; }
                    break;
                }
                c->rwant = EPOLLIN;
                if ((long long)n > total - got || memcmp(rbuf, pat + got % PERIOD, n)) mismatches++;
                got += (long long)n; progress = 1;
            }
        }
        if (!dead) { if (!c->rwant) c->rwant = EPOLLIN; set_interest(c, 0); }
    }
    double el = now() - start, cpu = cpu_now() - cpu0;
    if (!dead) conn_finish(c);
    printf("RESULT mode=bulk mib=%ld mibps=%.1f echoed_mib=%.1f complete=%d cli_us_op=%.1f %s errors=%ld mismatches=%ld\n",
           mib, got / 1048576.0 / el, got / 1048576.0, got == total, got ? cpu * 1e6 / (got / 1048576.0) : 0.0,
           proto_seen, errors, mismatches);
}

/* ---- handshake / resume: connect, handshake, 8-byte echo, close ---------- */
static long resumed;
static uint64_t next_id = 1;
static void hs_ready(int i) {
    struct tc *c = &cs[i];
    memcpy(c->sbuf, &next_id, 8); next_id++;
    msg_begin(c, 8);
}
static void hs_echo(int i, double t) {
    (void)t;
    struct tc *c = &cs[i];
    if (!draining) { done++; resumed += SSL_session_reused(c->ssl); }
    conn_finish(c);                             /* close_notify, no wait (as Go's Close) */
}
static void run_handshake(int resume) {
    if (nconn < 0) nconn = 32;
    slots(nconn, 8);
    on_ready = hs_ready; on_echo = hs_echo;
    if (resume) {                               /* one full handshake first: the ticket to offer */
        conn_start(0);
        double lim = now() + 10;
        while (!done && now() < lim && cs[0].phase != P_DEAD) loop_once(100);
        if (!done || !newest) {
            fprintf(stderr, "tlsload: no session ticket from the first handshake (%s)\n", first_err);
            setup_failed = 1;
            printf("RESULT mode=resume hps=0 resumed_frac=0 errors=%ld mismatches=%ld\n", errors ? errors : 1, mismatches);
            return;
        }
        done = resumed = 0;
    }
    double start = now(), end = start + dur, t, cpu0 = cpu_now();
    while ((t = now()) < end) {
        for (int i = 0; i < nconn; i++)
            if (cs[i].phase == P_DEAD && conn_start(i) < 0) break;   /* retry after epoll_wait */
        loop_once(100);
    }
    double el = now() - start, cpu = cpu_now() - cpu0, cli = done ? cpu * 1e6 / done : 0.0;
    drain();
    if (!done) setup_failed = 1;
    if (resume)
        printf("RESULT mode=resume inflight=%d hps=%.0f handshakes=%ld resumed=%ld resumed_frac=%.3f reused_tickets=%ld cli_us_op=%.1f %s errors=%ld mismatches=%ld\n",
               nconn, done / el, done, resumed, done ? (double)resumed / done : 0.0, reused_tickets, cli, proto_seen, errors, mismatches);
    else
        printf("RESULT mode=handshake inflight=%d hps=%.0f handshakes=%ld resumed=%ld cli_us_op=%.1f %s errors=%ld mismatches=%ld\n",
               nconn, done / el, done, resumed, cli, proto_seen, errors, mismatches);
}

/* ---- idle: K conns handshaken and echoed once, held, echoed again -------- */
static const char HELLO[] = "hello\n";
static long echoed;
static void idle_ready(int i) { msg_begin(&cs[i], 6); }
static void idle_echo(int i, double t) { (void)i; (void)t; echoed++; }
static void run_idle(void) {
    slots(kconn, 6);
    for (int i = 0; i < kconn; i++) memcpy(cs[i].sbuf, HELLO, 6);
    on_ready = idle_ready; on_echo = idle_echo;
    double t0 = now(), lim = t0 + 60;
    int next = 0;
    long est, started = 0;
    for (;;) {                 /* at most 256 conns in setup at once */
        long inflight = started - echoed - ndead;
        for (; inflight < 256 && next < kconn; next++) if (conn_start(next) == 0) inflight++, started++;
        if ((next == kconn && inflight <= 0) || now() > lim) break;
        loop_once(100);
    }
    est = echoed;
    if (!est) setup_failed = 1;
    double setup = now() - t0;
    printf("HOLDING established=%ld\n", est); fflush(stdout);
    double hend = now() + hold;
    while (now() < hend) loop_once((int)((hend - now()) * 1000) + 1);   /* anything arriving is a mismatch */
    long errs = errors, want = 0, dead0 = ndead;
    echoed = 0;                /* second round: is every held conn still served? */
    for (int i = 0; i < kconn; i++)
        if (cs[i].phase == P_RUN) { want++; msg_begin(&cs[i], 6); drive(i, 0); }
    lim = now() + 30;
    while (echoed + (ndead - dead0) < want && now() < lim) loop_once(100);
    long alive = echoed;
    if (alive < est) fprintf(stderr, "tlsload: %ld of %ld held conns no longer served\n", est - alive, est);
    for (int i = 0; i < kconn; i++) if (cs[i].phase != P_DEAD) conn_finish(&cs[i]);
    printf("RESULT mode=idle conns=%d established=%ld alive=%ld setup_s=%.2f %s errors=%ld mismatches=%ld\n",
           kconn, est, alive, setup, proto_seen, errs, mismatches);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: tlsload echo|bulk|handshake|resume|idle -p port -C ca.pem [opts]\n"); return 1; }
    const char *mode = argv[1];
    int o;
    optind = 2;
    while ((o = getopt(argc, argv, "p:C:N:c:s:d:n:k:H:a:")) != -1) switch (o) {
        case 'p': port = atoi(optarg); break;
        case 'C': cafile = optarg; break;
        case 'N': sname = optarg; break;
        case 'c': nconn = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'd': dur = atof(optarg); break;
        case 'n': mib = atol(optarg); break;
        case 'k': kconn = atoi(optarg); break;
        case 'H': hold = atof(optarg); break;
        case 'a': nsrc = atoi(optarg); break;
        default: return 1;
    }
    if (!port) { fprintf(stderr, "-p port is required\n"); return 1; }
    if (size > 65536) size = 65536;
    if (dur < 0 && strcmp(mode, "bulk")) dur = 5;
    signal(SIGPIPE, SIG_IGN);                      /* OpenSSL's socket BIO uses write() */
    struct rlimit rl;                              /* idle needs > 10k descriptors */
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((ep = epoll_create1(0)) < 0) die("epoll_create1");
    offer_sessions = !strcmp(mode, "resume");
    make_ctx();
    if (!strcmp(mode, "echo")) run_echo();
    else if (!strcmp(mode, "bulk")) run_bulk();
    else if (!strcmp(mode, "handshake")) run_handshake(0);
    else if (!strcmp(mode, "resume")) run_handshake(1);
    else if (!strcmp(mode, "idle")) run_idle();
    else { fprintf(stderr, "unknown mode %s\n", mode); return 1; }
    if (first_err[0]) fprintf(stderr, "tlsload: %ld errors, first: %s\n", errors, first_err);
    if (mismatches) fprintf(stderr, "tlsload: %ld MISMATCHED echoes\n", mismatches);
    return mismatches ? 2 : setup_failed ? 1 : 0;
}
