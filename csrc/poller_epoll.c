/* poller_epoll.c - the Linux poller backend: one epoll instance, fds
 * registered edge-triggered for IN (with RDHUP and PRI), OUT or both, so a
 * wait needs an epoll_ctl only the first time a side is waited on. PRI
 * (TCP urgent data) is reported as readable and POLLER_URGENT. */
#include <errno.h>
#include <unistd.h>
#include <sys/epoll.h>
#include "poller.h"

int poller_init(poller *p) {
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    return p->fd < 0 ? errno : 0;
}

void poller_free(poller *p) {
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
}

int poller_watch(poller *p, int fd, void *data, int what, int was) {
    struct epoll_event e;
    e.events = EPOLLET;
    if (what & POLLER_IN) e.events |= EPOLLIN | EPOLLRDHUP | EPOLLPRI;
    if (what & POLLER_OUT) e.events |= EPOLLOUT;
    e.data.ptr = data;
    return epoll_ctl(p->fd, was ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e) < 0 ? errno : 0;
}

int poller_del(poller *p, int fd) {
    struct epoll_event e = {0};
    return epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, &e) < 0 ? errno : 0;
}

int poller_wait(poller *p, int timeout_ms) {
    struct epoll_event ev[POLLER_MAXEVENTS];
    int n = epoll_wait(p->fd, ev, POLLER_MAXEVENTS, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        uint32_t e = ev[i].events;
        int what = 0;
        if (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) what |= POLLER_IN;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) what |= POLLER_OUT;
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) what |= POLLER_HUP;
        if (e & EPOLLPRI) what |= POLLER_URGENT;
        p->ev[i].data = ev[i].data.ptr;
        p->ev[i].what = what;
    }
    return n;
}
