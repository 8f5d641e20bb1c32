/* bench/epoll_ctl_cost.c - what registering a conn with epoll costs: the
 * EPOLL_CTL_ADD (with coronet's events) and EPOLL_CTL_DEL pair a conn
 * used to make whether or not it ever waited, timed over one connected
 * loopback TCP socket, beside a cheap syscall (getsockopt SO_ERROR) for
 * scale. Build and run: cc -O2 -o /tmp/ectl bench/epoll_ctl_cost.c &&
 * taskset -c 0 /tmp/ectl. A hot loop: in a server the caches are colder. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int ls = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0 || c < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) < 0 || listen(ls, 1) < 0 ||
        connect(c, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("loopback pair");
        return 1;
    }
    int s = accept(ls, NULL, NULL), ep = epoll_create1(0);
    if (s < 0 || ep < 0) {
        perror("accept/epoll_create1");
        return 1;
    }
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET};
    enum { N = 200000 };
    double t0 = now();
    for (int i = 0; i < N; i++) {
        if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &e) < 0 || epoll_ctl(ep, EPOLL_CTL_DEL, s, &e) < 0) {
            perror("epoll_ctl");
            return 1;
        }
    }
    double t1 = now();
    for (int i = 0; i < N; i++) {
        int v;
        socklen_t n = sizeof v;
        getsockopt(s, SOL_SOCKET, SO_ERROR, &v, &n);
    }
    double t2 = now();
    printf("epoll_ctl ADD+DEL: %.2f us; getsockopt: %.2f us\n", (t1 - t0) / N * 1e6,
           (t2 - t1) / N * 1e6);
    close(s), close(c), close(ls), close(ep);
    return 0;
}
