/* sysresolve.c - the "system" resolver: getaddrinfo/getnameinfo on a small
 * pool of worker threads, for users whose nsswitch (mDNS, LDAP, ...)
 * c-ares can't read. Workers take jobs from a mutex-protected queue, put
 * results on a done list and write an eventfd the loop serves itself; the
 * loop wakes the waiting tasks. No worker ever touches a lua_State.
 *
 * A running getaddrinfo can't be cancelled (glibc's gai_cancel has the
 * same limit; Go's cgo resolver too): a ctx or deadline wakes the task at
 * once and marks the job abandoned, and the loop frees the late result.
 * A job still queued is simply removed. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "lauxlib.h"
#include "addr.h"
#include "class.h"
#include "errors.h"
#include "loop.h"
#include "resolver.h"

#define SYSPOOL_MT "coronet.dns.syspool"
#define SYSPOOL_THREADS 4
#define SYSPOOL_LINGER_NS 250000000L   /* an idle worker exits after 0.25 s */

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_DELIVERED };
enum { SYS_HOST, SYS_IP, SYS_CNAME, SYS_PTR };
static const char *const sys_kinds[] = {"host", "ip", "cname", "ptr", NULL};

struct syspool;

typedef struct sysjob {
    struct sysjob *next, *prev;  /* queue, done list or delivered list */
    task *waiter;                /* loop thread only */
    int kind, family;
    int state;                   /* under pool->mu until delivered */
    int abandoned;               /* loop thread only */
    int rc, err;                 /* getaddrinfo's result and errno */
    double delay;                /* seconds a worker waits first (tests) */
    struct addrinfo *res;
    struct sockaddr_storage sa;  /* ptr: the address */
    socklen_t salen;
    char host[NI_MAXHOST];       /* the name to look up, or ptr's answer */
} sysjob;

typedef struct syspool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sysjob *qhead, *qtail;       /* queued jobs (mu) */
    sysjob *done;                /* finished, not yet delivered (mu) */
    int nthreads, nbusy, nidle, nqueued, stop, orphan; /* (mu) */
    int efd;                     /* eventfd: workers -> loop; -1 while idle (mu) */
    /* loop thread only */
    handle h;
    loop_hook hook;
    loop *lp;
    sysjob *delivered;           /* done and handed to a task */
    int nwaiting, nabandoned;
    int njobs;                   /* handed to the workers, not yet delivered */
    double test_delay;           /* see dns_sys_test_delay */
} syspool;

static const char SYSPOOL_KEY = 0;   /* registry: the pool's userdata */

/* ---- worker threads ------------------------------------------------- */

static void sysjob_free(sysjob *j) {
    if (j->res) freeaddrinfo(j->res);
    free(j);
}

/* Free the pool and every job it still holds (the last one out does it). */
static void syspool_free(syspool *p) {
    for (sysjob *j = p->qhead, *n; j; j = n) { n = j->next; sysjob_free(j); }
    for (sysjob *j = p->done, *n; j; j = n) { n = j->next; sysjob_free(j); }
    if (p->efd >= 0) close(p->efd);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

static void sysjob_run(sysjob *j) {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    if (j->delay > 0) {
        struct timespec ts = {(time_t)j->delay, (long)((j->delay - (double)(time_t)j->delay) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
    }
    if (j->kind == SYS_PTR) {
        char name[NI_MAXHOST];
        j->rc = getnameinfo((struct sockaddr *)&j->sa, j->salen, name, sizeof name, NULL, 0,
                            NI_NAMEREQD);
        if (j->rc == 0) memcpy(j->host, name, sizeof name);
    } else {
        hints.ai_family = j->family == 4 ? AF_INET : j->family == 6 ? AF_INET6 : AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;     /* one entry per address */
        hints.ai_flags = j->kind == SYS_CNAME ? AI_CANONNAME : 0;
        j->rc = getaddrinfo(j->host, NULL, &hints, &j->res);
    }
    j->err = errno;
}

/* Wait for a job until stop or the linger time passed; 0 to exit. */
static int syspool_wait(syspool *p) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += SYSPOOL_LINGER_NS;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!p->stop && !p->qhead) {
        p->nidle++;
        int rc = pthread_cond_timedwait(&p->cv, &p->mu, &until);
        p->nidle--;
        if (rc == ETIMEDOUT && !p->qhead) return 0;
    }
    return !p->stop;
}

/* A worker: runs jobs while there are some, exits once idle for a while
 * (an idle pool holds no thread, and no fd: see syspool_disarm). */
static void *syspool_worker(void *arg) {
    syspool *p = arg;
    uint64_t one = 1;
    pthread_mutex_lock(&p->mu);
    while (syspool_wait(p)) {
        sysjob *j = p->qhead;
        p->qhead = j->next;
        if (!p->qhead) p->qtail = NULL;
        p->nqueued--;
        j->state = JOB_RUNNING;
        p->nbusy++;
        pthread_mutex_unlock(&p->mu);
        sysjob_run(j);
        pthread_mutex_lock(&p->mu);
        p->nbusy--;
        j->state = JOB_DONE;
        j->next = p->done;
        p->done = j;
        if (write(p->efd, &one, sizeof one) < 0) { /* the counter is already non-zero */ }
    }
    int last = --p->nthreads == 0 && p->orphan;
    pthread_mutex_unlock(&p->mu);
    if (last) syspool_free(p);
    return NULL;
}

/* Start one more worker when the queue outgrows the idle ones; called
 * with mu held. */
static void syspool_grow(syspool *p) {
    if (p->nthreads >= SYSPOOL_THREADS || p->nidle >= p->nqueued) return;
    sigset_t all, old;
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);  /* signals stay with the loop's thread */
    if (pthread_create(&th, &attr, syspool_worker, p) == 0) p->nthreads++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

/* ---- the loop side -------------------------------------------------- */

static void syspool_deliver(syspool *p, sysjob *j) {
    p->njobs--;
    if (j->abandoned) {
        p->nabandoned--;
        sysjob_free(j);
        return;
    }
    j->state = JOB_DELIVERED;
    j->prev = NULL;
    j->next = p->delivered;
    if (p->delivered) p->delivered->prev = j;
    p->delivered = j;
    if (j->waiter) {
        task *t = j->waiter;
        j->waiter = NULL;
        p->nwaiting--;
        task_wake(t, WAKE_READY);
    }
}

/* on_event for the eventfd: take the done list, wake its tasks. */
static void syspool_event(handle *h, int what) {
    syspool *p = (syspool *)((char *)h - offsetof(syspool, h));
    uint64_t n;
    (void)what;
    if (p->efd >= 0 && read(p->efd, &n, sizeof n) < 0) { /* EAGAIN: nothing new */ }
    pthread_mutex_lock(&p->mu);
    sysjob *list = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->mu);
    while (list) {
        sysjob *j = list;
        list = j->next;
        syspool_deliver(p, j);
    }
}

static void syspool_undeliver(syspool *p, sysjob *j) {
    if (j->prev) j->prev->next = j->next;
    else p->delivered = j->next;
    if (j->next) j->next->prev = j->prev;
    sysjob_free(j);
}

/* The task stops waiting for j: remove it if still queued, free it if
 * delivered, else leave it to be freed when the worker hands it back. */
static void syspool_abandon(syspool *p, sysjob *j) {
    if (j->waiter) {
        j->waiter = NULL;
        p->nwaiting--;
    }
    if (j->state == JOB_DELIVERED) {
        syspool_undeliver(p, j);
        return;
    }
    pthread_mutex_lock(&p->mu);
    int queued = j->state == JOB_QUEUED;
    if (queued) {
        sysjob **q = &p->qhead, *prev = NULL;
        while (*q != j) { prev = *q; q = &(*q)->next; }
        *q = j->next;
        if (p->qtail == j) p->qtail = prev;
        p->nqueued--;
    }
    pthread_mutex_unlock(&p->mu);
    if (queued) {
        p->njobs--;
        sysjob_free(j);
    } else {
        j->abandoned = 1;
        p->nabandoned++;
    }
}

/* Watch a new eventfd (the pool holds none while idle); 0 or errno. */
static int syspool_arm(syspool *p) {
    if (p->efd >= 0) return 0;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return errno;
    int e = handle_watch(&p->h, p->lp, fd, syspool_event);
    if (e) {
        close(fd);
        return e;
    }
    pthread_mutex_lock(&p->mu);
    p->efd = fd;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* Close the eventfd once no job is out: no worker can write it then. */
static void syspool_disarm(syspool *p) {
    if (p->efd < 0 || p->njobs > 0) return;
    handle_unwatch(&p->h);
    pthread_mutex_lock(&p->mu);
    close(p->efd);
    p->efd = -1;
    pthread_mutex_unlock(&p->mu);
}

static double syspool_next_deadline(loop_hook *hk) { (void)hk; return 0; }

static void syspool_tick(loop_hook *hk, double now) {
    (void)now;
    syspool_disarm((syspool *)((char *)hk - offsetof(syspool, hook)));
}

static int syspool_busy(loop_hook *hk) {
    return ((syspool *)((char *)hk - offsetof(syspool, hook)))->nwaiting > 0;
}

/* pool:__gc (the Lua state closes): stop the workers; the last one out
 * frees the pool (a getaddrinfo can't be interrupted), or this does when
 * none is left. */
static int syspool_gc(lua_State *L) {
    syspool **pp = luaL_checkudata(L, 1, SYSPOOL_MT);
    syspool *p = *pp;
    if (!p) return 0;
    *pp = NULL;
    loop_remove_hook(p->lp, &p->hook);
    handle_unwatch(&p->h);
    while (p->delivered) syspool_undeliver(p, p->delivered);
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    int none = p->nthreads == 0;
    p->orphan = !none;
    pthread_mutex_unlock(&p->mu);
    if (none) syspool_free(p);
    return 0;
}

static syspool *syspool_create(lua_State *L) {
    syspool **pp = lua_newuserdatauv(L, sizeof *pp, 0);
    *pp = NULL;
    luaL_setmetatable(L, SYSPOOL_MT);
    syspool *p = calloc(1, sizeof *p);
    if (!p) luaL_error(L, "coronet: out of memory");
    p->efd = -1;
    p->h.fd = -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->lp = loop_get(L);
    p->hook.next_deadline = syspool_next_deadline;
    p->hook.tick = syspool_tick;
    p->hook.busy = syspool_busy;
    loop_add_hook(p->lp, &p->hook);
    *pp = p;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &SYSPOOL_KEY);
    return p;
}

static syspool *syspool_get(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SYSPOOL_KEY);
    syspool **pp = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return pp && *pp ? *pp : syspool_create(L);
}

/* ---- results -------------------------------------------------------- */

/* The short code coronet.dns knows for a getaddrinfo error. */
static const char *sys_code(int rc) {
    switch (rc) {
    case EAI_NONAME: return "nxdomain";
#ifdef EAI_NODATA
    case EAI_NODATA: return "nodata";
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY: return "nodata";
#endif
    case EAI_AGAIN: return "servfail";
    case EAI_FAIL: return "servfail";
    case EAI_MEMORY: return "nomem";
    default: return "other";
    }
}

static int sys_push_addrs(lua_State *L, const struct addrinfo *res, int as_addrs) {
    ipaddr a[DNS_MAXADDRS];
    int n = 0, port;
    for (; res && n < DNS_MAXADDRS; res = res->ai_next)
        if (ipaddr_from_sockaddr(res->ai_addr, &a[n], &port) == 0) n++;
    if (n == 0) return dns_fail(L, "nodata", NULL);
    dns_push_ipaddrs(L, a, n, as_addrs);
    return 1;
}

static int sys_push_result(lua_State *L, const sysjob *j) {
    if (j->rc == EAI_SYSTEM) return dns_fail(L, "other", strerror(j->err));
    if (j->rc) {
        char msg[128];
        strncpy(msg, gai_strerror(j->rc), sizeof msg - 1);
        msg[sizeof msg - 1] = 0;
        msg[0] = (char)(msg[0] >= 'A' && msg[0] <= 'Z' ? msg[0] + 32 : msg[0]);
        return dns_fail(L, sys_code(j->rc), msg);
    }
    switch (j->kind) {
    case SYS_HOST: return sys_push_addrs(L, j->res, 0);
    case SYS_IP: return sys_push_addrs(L, j->res, 1);
    case SYS_CNAME:
        dns_push_fqdn(L, j->res && j->res->ai_canonname ? j->res->ai_canonname : j->host);
        return 1;
    default:
        lua_createtable(L, 1, 0);
        dns_push_fqdn(L, j->host);
        lua_rawseti(L, -2, 1);
        return 1;
    }
}

/* ---- the entry point ------------------------------------------------ */

static int sys_lookup_k(lua_State *L, int status, lua_KContext kctx) {
    sysjob *j = (sysjob *)kctx;
    syspool *p = syspool_get(L);
    int ctxidx = lua_isnil(L, 5) ? 0 : 5;
    int cause = task_resume_cause(L, task_current(L), status, ctxidx);
    if (cause) {
        syspool_abandon(p, j);
        return dns_fail(L, cause == ERR_CTX ? "ctx" : "timeout", NULL);
    }
    int n = sys_push_result(L, j);
    syspool_undeliver(p, j);
    return n;
}

/* Fill a new job from the arguments (kind at 1, name or Addr at 2). */
static sysjob *sys_job(lua_State *L, int kind) {
    sysjob *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = kind;
    j->family = (int)luaL_optinteger(L, 3, 0);
    if (kind == SYS_PTR) {
        ipaddr_to_sockaddr(ipaddr_test(L, 2), 0, 0, &j->sa, &j->salen);
    } else {
        size_t len;
        const char *name = lua_tolstring(L, 2, &len);
        memcpy(j->host, name, len < sizeof j->host ? len : sizeof j->host - 1);
    }
    return j;
}

/* core.dns_sys(kind, name, family, deadline, ctx) -> result | nil, code
 * [, detail]: kind "host", "ip" (family 0, 4 or 6), "cname" (name a
 * string) or "ptr" (name a net.ip Addr), answered by getaddrinfo or
 * getnameinfo on a worker thread. The task wakes at the answer, the
 * deadline (absolute, 0: none) or the ctx; the lookup itself can't be
 * stopped once a worker runs it. */
static int sys_lookup(lua_State *L) {
    int kind = luaL_checkoption(L, 1, NULL, sys_kinds);
    size_t len = 0;
    if (kind == SYS_PTR) luaL_argcheck(L, ipaddr_test(L, 2) != NULL, 2, "net.ip Addr expected");
    else luaL_checklstring(L, 2, &len);
    task *t = task_current(L);
    if (!t) return loop_block(L, sys_lookup, lua_gettop(L));
    lua_settop(L, 5);
    double deadline = luaL_optnumber(L, 4, 0);
    int ctxidx = ctx_find(L, 5);
    if (!ctxidx) {
        lua_pushnil(L);
        lua_replace(L, 5);
    }
    if (ctx_ended(L, ctxidx)) return dns_fail(L, "ctx", NULL);
    if (kind != SYS_PTR && (len >= NI_MAXHOST || strlen(lua_tostring(L, 2)) != len))
        return dns_fail(L, "badname", NULL);
    if (handle_deadline_passed(deadline)) return dns_fail(L, "timeout", NULL);
    syspool *p = syspool_get(L);
    int e = syspool_arm(p);
    if (e) return dns_fail(L, "other", strerror(e));
    sysjob *j = sys_job(L, kind);
    if (!j) return dns_fail(L, "nomem", NULL);
    p->njobs++;
    j->waiter = t;
    j->delay = p->test_delay;
    p->nwaiting++;
    pthread_mutex_lock(&p->mu);
    if (p->qtail) p->qtail->next = j;
    else p->qhead = j;
    p->qtail = j;
    p->nqueued++;
    syspool_grow(p);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return task_park_ctx(L, t, NULL, deadline, PARK_LOOKUP, ctxidx, (lua_KContext)j, sys_lookup_k);
}

/* core.dns_sys_stats() -> {threads, busy, queued, waiting, abandoned}. */
static int sys_stats(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SYSPOOL_KEY);
    syspool **pp = lua_touserdata(L, -1);
    syspool *p = pp ? *pp : NULL;
    int threads = 0, busy = 0, queued = 0;
    if (p) {
        pthread_mutex_lock(&p->mu);
        threads = p->nthreads;
        busy = p->nbusy;
        queued = p->nqueued;
        pthread_mutex_unlock(&p->mu);
    }
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, threads);
    lua_setfield(L, -2, "threads");
    lua_pushinteger(L, busy);
    lua_setfield(L, -2, "busy");
    lua_pushinteger(L, queued);
    lua_setfield(L, -2, "queued");
    lua_pushinteger(L, p ? p->nwaiting : 0);
    lua_setfield(L, -2, "waiting");
    lua_pushinteger(L, p ? p->nabandoned : 0);
    lua_setfield(L, -2, "abandoned");
    return 1;
}

/* core.dns_sys_test_delay(s): make workers wait s seconds before each
 * lookup, so specs can cancel a lookup that is running; not public API. */
static int sys_test_delay(lua_State *L) {
    syspool_get(L)->test_delay = luaL_checknumber(L, 1);
    return 0;
}

static const luaL_Reg syspool_meta[] = {
    {"__gc", syspool_gc},
    {NULL, NULL}
};

static const luaL_Reg sys_funcs[] = {
    {"dns_sys", sys_lookup},
    {"dns_sys_stats", sys_stats},
    {"dns_sys_test_delay", sys_test_delay},
    {NULL, NULL}
};

int sysresolve_open(lua_State *L) {
    class_register(L, SYSPOOL_MT, syspool_meta, NULL);
    luaL_setfuncs(L, sys_funcs, 0);
    return 0;
}
