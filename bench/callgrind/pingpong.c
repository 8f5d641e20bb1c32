/* pingpong.c - exactly N echo round trips of SIZE bytes over one TCP conn
 * to 127.0.0.1:PORT, each reply checked byte for byte, then close. With a
 * fixed count, the difference of two callgrind totals (N1 and N2 round
 * trips) divided by N2 - N1 is the server's cost per round trip, with
 * start-up and shutdown cancelled out. Before each request it waits
 * THINK_US microseconds (default 1000), so the server has always parked
 * in its read by then and every round trip takes the same path (park,
 * poll, wake, read, write): without it, whether the next request is
 * already there when the server reads again depends on timing, and the
 * count moves by tens of percent from run to run.
 * With RECONNECT 1, each round trip is on a conn of its own (connect, one
 * round trip, close: the harness's accept workload, one conn at a time),
 * and the count is per accepted conn. RECONNECT 2 is the same but waits
 * THINK_US after the connect instead of before it, so the server has
 * parked in its first read before the request comes, as under wrk (whose
 * clients write a moment after the connect completes). SIZE 0 sends an HTTP request
 * instead and reads its answer: over the one keep-alive conn (the http
 * workload), or with RECONNECT one request with "Connection: close" per
 * conn, its answer read to EOF (http-close); against the http server.
 *   pingpong PORT N SIZE [THINK_US [RECONNECT]]   exit 0 ok, 1 on a
 *                                     connect/IO error, 2 on a mismatch */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int io_all(int fd, char *buf, size_t n, int writing) {
    for (size_t off = 0; off < n;) {
        ssize_t r = writing ? write(fd, buf + off, n - off) : read(fd, buf + off, n - off);
        if (r <= 0) return -1;
        off += (size_t)r;
    }
    return 0;
}

/* dial: a TCP_NODELAY conn to 127.0.0.1:port, or -1. */
static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("pingpong: connect");
        if (fd >= 0) close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: pingpong PORT N SIZE [THINK_US [RECONNECT]]\n");
        return 1;
    }
    int port = atoi(argv[1]);
    long n = atol(argv[2]);
    size_t size = (size_t)atol(argv[3]);
    long think = argc >= 5 ? atol(argv[4]) : 1000;
    int reconnect = argc == 6 ? atoi(argv[5]) : 0, late = reconnect == 2;
    struct timespec pause = {think / 1000000, (think % 1000000) * 1000};
    char *out = malloc(size), *in = malloc(size);
    int fd = reconnect ? -2 : dial(port);
    if (!out || !in || fd == -1) return 1;
    for (long i = 0; i < n; i++) {
        if (think > 0 && !late) nanosleep(&pause, NULL);
        if (reconnect && (fd = dial(port)) < 0) return 1;
        if (think > 0 && late) nanosleep(&pause, NULL);
        if (size == 0) {                 /* one HTTP request; with reconnect, the answer to EOF */
            static const char req_close[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            static const char req_keep[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
            const char *req = reconnect ? req_close : req_keep;
            char ans[512];
            size_t got = 0;
            ssize_t r;
            if (io_all(fd, (char *)req, strlen(req), 1) < 0) return 1;
            for (;;) {                   /* keep-alive: until the body ends the answer */
                ans[got] = 0;
                if (!reconnect && strstr(ans, "Hello, World!")) break;
                if ((r = read(fd, ans + got, sizeof ans - 1 - got)) <= 0) break;
                got += (size_t)r;
            }
            ans[got] = 0;
            if (reconnect) close(fd);
            if (strncmp(ans, "HTTP/1.1 200 OK", 15) != 0 || !strstr(ans, "Hello, World!")) {
                fprintf(stderr, "pingpong: bad answer at request %ld\n", i);
                return 2;
            }
            continue;
        }
        for (size_t j = 0; j < size; j++) out[j] = (char)('a' + (i + j) % 26);
        if (io_all(fd, out, size, 1) < 0 || io_all(fd, in, size, 0) < 0) {
            perror("pingpong: round trip");
            return 1;
        }
        if (memcmp(in, out, size) != 0) {
            fprintf(stderr, "pingpong: mismatch at round trip %ld\n", i);
            return 2;
        }
        if (reconnect && size) close(fd);
    }
    if (!reconnect) close(fd);
    printf("RESULT mode=pingpong n=%ld size=%zu reconnect=%d\n", n, size, reconnect != 0);
    return 0;
}
