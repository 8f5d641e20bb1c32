/* bench/syscount.c - count a server's socket syscalls under load, by
 * LD_PRELOAD wrappers around libc's accept4, recv, send, close,
 * epoll_wait (calls and events returned), epoll_ctl and setsockopt, with
 * the EAGAIN failures of accept4 and recv. The counts are written to
 * $SYSCOUNT_DIR/syscount.PID (default /tmp) after every 4096th accept4,
 * so a server stopped by a signal leaves its last snapshot. Divide by the
 * requests the load generator reports (the snapshot lags by < 4096
 * accepts). Build and use:
 *   cc -O2 -shared -fPIC -o /tmp/syscount.so bench/syscount.c -ldl
 *   LD_PRELOAD=/tmp/syscount.so taskset -c 0 bench/server http PORT &
 *   taskset -c 1 wrk -t1 -c100 -d4s -H 'Connection: close' http://127.0.0.1:PORT/
 * Calls a server makes through other entry points (recvfrom, sendto,
 * syscall(2)) are not counted. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { ACCEPT, ACCEPT_EAGAIN, RECV, RECV_EAGAIN, SEND, CLOSE, EPOLL_WAIT, EVENTS, EPOLL_CTL,
       SETSOCKOPT, NCOUNT };
static const char *names[NCOUNT] = {"accept4", "accept4_eagain", "recv", "recv_eagain", "send",
                                    "close", "epoll_wait", "events", "epoll_ctl", "setsockopt"};
static unsigned long count[NCOUNT];

static int (*real_close)(int);   /* dump closes through it: not counted */

__attribute__((constructor)) static void syscount_init(void) {
    real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
}

/* dump: write the counts (no stdio: it may allocate). */
static void dump(void) {
    const char *dir = getenv("SYSCOUNT_DIR");
    char path[256], buf[1024];
    snprintf(path, sizeof path, "%s/syscount.%d", dir ? dir : "/tmp", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    int n = 0;
    for (int i = 0; i < NCOUNT; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s %lu\n", names[i], count[i]);
    if (write(fd, buf, (size_t)n) < 0) { /* a lost snapshot: the next one comes */ }
    real_close(fd);
}

#define REAL(name) \
    static __typeof__(name) *real; \
    if (!real) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

int close(int fd) {
    count[CLOSE]++;
    return real_close(fd);
}

int accept4(int s, struct sockaddr *a, socklen_t *len, int flags) {
    REAL(accept4);
    int r = real(s, a, len, flags);
    int e = errno;
    count[ACCEPT]++;
    if (r < 0 && e == EAGAIN) count[ACCEPT_EAGAIN]++;
    if ((count[ACCEPT] & 4095) == 0) dump();
    errno = e;
    return r;
}

ssize_t recv(int s, void *buf, size_t n, int flags) {
    REAL(recv);
    ssize_t r = real(s, buf, n, flags);
    count[RECV]++;
    if (r < 0 && errno == EAGAIN) count[RECV_EAGAIN]++;
    return r;
}

ssize_t send(int s, const void *buf, size_t n, int flags) {
    REAL(send);
    count[SEND]++;
    return real(s, buf, n, flags);
}

int epoll_wait(int ep, struct epoll_event *ev, int max, int timeout) {
    REAL(epoll_wait);
    int r = real(ep, ev, max, timeout);
    count[EPOLL_WAIT]++;
    if (r > 0) count[EVENTS] += (unsigned long)r;
    return r;
}

int epoll_ctl(int ep, int op, int fd, struct epoll_event *ev) {
    REAL(epoll_ctl);
    count[EPOLL_CTL]++;
    return real(ep, op, fd, ev);
}

int setsockopt(int s, int level, int opt, const void *v, socklen_t len) {
    REAL(setsockopt);
    count[SETSOCKOPT]++;
    return real(s, level, opt, v, len);
}
