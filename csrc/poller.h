/* poller.h - the readiness backend, chosen at build time (poller_epoll.c on
 * Linux). Fds are watched edge-triggered, for the directions asked: most
 * for both from the start, an accepted conn for each side when a task
 * first waits on it (handle_register in loop.h). */
#ifndef CORONET_POLLER_H
#define CORONET_POLLER_H

#define POLLER_MAXEVENTS 256

enum { POLLER_IN = 1, POLLER_OUT = 2, POLLER_HUP = 4, POLLER_URGENT = 8 };
enum { POLLER_BOTH = POLLER_IN | POLLER_OUT };

typedef struct poller_event {
    void *data;
    int what;            /* POLLER_IN | POLLER_OUT (errors wake both), POLLER_HUP
                          * with them once the peer hung up or the socket failed,
                          * POLLER_URGENT with IN when TCP urgent data arrived */
} poller_event;

typedef struct poller {
    int fd;
    poller_event ev[POLLER_MAXEVENTS];
} poller;

/* poller_init: returns 0 or an errno. */
int poller_init(poller *p);
/* poller_free: release the backend; safe twice. */
void poller_free(poller *p);
/* poller_watch: watch fd for what (POLLER_IN, POLLER_OUT or POLLER_BOTH:
 * the whole set, replacing what it watched) with data as its tag, where
 * was is what it watched until now (0: fd is added); 0 or errno. Errors
 * and hang-ups are reported either way. Watching IN includes the peer's
 * half-close and priority data: TCP urgent data (POLLER_URGENT); on other
 * fds (a pty's, a kernfs file's) it is only one more wake as readable. */
int poller_watch(poller *p, int fd, void *data, int what, int was);
/* poller_del: stop watching fd (before it is closed: a dup'ed fd would
 * otherwise keep reporting a stale tag); 0 or errno. */
int poller_del(poller *p, int fd);
/* poller_wait: wait up to timeout_ms (-1 forever) and fill p->ev; returns
 * the number of events, or -1 with errno set (EINTR yields 0). */
int poller_wait(poller *p, int timeout_ms);

#endif
