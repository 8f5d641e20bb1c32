/* loop.c - the loop's C half: tasks park (yield) and wake (join the ready
 * list), and the poll step that turns readiness and expired timers into
 * wakes; csrc/task.c resumes the woken tasks. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include "lauxlib.h"
#include "alloc.h"
#include "class.h"
#include "track.h"
#include "loop.h"
#include "timer.h"
#include "errors.h"

static const char LOOP_KEY = 0;   /* registry: the loop userdata */
static const char BLOCK_KEY = 0;  /* registry: sched.block (Lua) */
static const char CTXMT_KEY = 0;  /* registry: net.context's metatable */
static const char CTXFN_KEY = 0;  /* registry: {enter, leave, err} from context.lua */

#define LOOP_RBUFSZ 65536    /* the shared read buffer: the most one conn:read returns */

static const char *const loop_kind_names[PARK_NKINDS] = {
    "none", "read", "write", "accept", "connect", "sleep", "chan",
    "sync", "task", "select", "other", "lookup"};

double loop_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The loop of the Lua state whose main thread is loop_main: loop_get is
 * called by nearly every C function. Called from the running task's
 * coroutine (the usual case) it is that task's loop; from the main thread,
 * this one; otherwise the main thread (an array slot of the registry) is
 * found faster than the loop (a hashed key). Cleared
 * by loop_gc, so a state closed and another made at the same address
 * cannot inherit it. */
static const lua_State *loop_main;
static loop *loop_main_lp;

loop *loop_get(lua_State *L) {
    if (L == current_co) return current_task->lp;   /* the running task's (task.c) */
    if (L == loop_main && loop_main_lp) return loop_main_lp;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    const lua_State *main = lua_tothread(L, -1);
    lua_pop(L, 1);
    if (main == loop_main && loop_main_lp) return loop_main_lp;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &LOOP_KEY);
    loop *lp = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (lp) loop_main = main, loop_main_lp = lp;
    return lp;
}

/* ---- tasks ---------------------------------------------------------- */

int loop_ready_push(loop *lp, task *t) {
    if (lp->nready == lp->capready) {
        int cap = lp->capready ? 2 * lp->capready : 64;
        task **r = realloc(lp->ready, (size_t)cap * sizeof *r);
        if (!r) return -1;
        lp->ready = r;
        lp->capready = cap;
    }
    lp->ready[lp->nready++] = t;
    t->queued = 1;
    return 0;
}

int task_wake(task *t, int reason) {
    if (!t->parked) return 0;
    loop *lp = t->lp;
    t->parked = 0;
    if (t->slot) lp->nfdwait--;   /* the slot stays owned until t resumes */
    timer_remove(lp, t);
    lp->nblocked[t->kind]--;
    t->kind = PARK_NONE;
    t->reason = (uint8_t)reason;
    if (loop_ready_push(lp, t) < 0) abort(); /* cannot lose a wake; OOM here is fatal */
    return 1;
}

/* task_release_slot: give up the handle slot a woken task still owns. A
 * woken reader keeps its slot until it runs, so a second reader arriving in
 * between is told "busy" instead of taking the data meant for the first. */
static void task_release_slot(task *t) {
    if (!t->slot) return;
    if (*t->slot == t) *t->slot = NULL;
    t->slot = NULL;
}

static double loop_min_deadline(double a, double b) {
    if (a <= 0) return b;
    if (b <= 0) return a;
    return a < b ? a : b;
}

void task_set_deadline(task *t, double deadline) {
    loop *lp = t->lp;
    if (!t->parked) return;
    deadline = loop_min_deadline(deadline, t->ctxdl);
    t->deadline = deadline;
    if (deadline <= 0) {
        timer_remove(lp, t);
    } else if (deadline <= loop_now()) {
        task_wake(t, WAKE_TIMEOUT);
    } else if (t->heap_idx >= 0) {
        timer_update(lp, t);
    } else if (timer_add(lp, t) < 0) {
        task_wake(t, WAKE_TIMEOUT); /* no memory for the timer: fail, don't hang */
    }
}

int task_park(lua_State *L, task *t, task **slot, double deadline, int kind,
              lua_KContext kctx, lua_KFunction k) {
    if (!lua_isyieldable(L))             /* before touching any state */
        return luaL_error(L, "coronet: attempt to block where the task cannot yield "
                             "(inside a C call such as string.gsub or a metamethod)");
    loop *lp = t->lp;
    if (t->canceled) {                   /* task:cancel(): fail at once */
        t->reason = WAKE_CANCELED;
        if (t->slot != slot) task_release_slot(t);
        if (loop_ready_push(lp, t) < 0) return luaL_error(L, "coronet: out of memory");
        lua_pushlightuserdata(L, (void *)&task_park_token);
        return lua_yieldk(L, 1, kctx, k);
    }
    t->parked = 1;
    t->kind = (uint8_t)kind;
    t->reason = WAKE_READY;
    t->deadline = deadline;
    lp->nblocked[kind]++;
    if (t->slot != slot) task_release_slot(t);
    if (slot) {
        *slot = t;
        t->slot = slot;
        lp->nfdwait++;
    }
    if (deadline > 0 && timer_add(lp, t) < 0) task_wake(t, WAKE_TIMEOUT);
    lua_pushlightuserdata(L, (void *)&task_park_token);
    return lua_yieldk(L, 1, kctx, k);
}

/* ---- contexts (lua/coronet/context.lua owns them) ------------------- */

int ctx_find(lua_State *L, int first) {
    int top = lua_gettop(L), i = first;
    while (i <= top && lua_type(L, i) != LUA_TTABLE) i++;
    if (i > top) return 0;                       /* the common case: no table at all */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &CTXMT_KEY);
    int found = 0;
    for (; i <= top && !found; i++) {
        if (lua_type(L, i) == LUA_TTABLE && lua_getmetatable(L, i)) {
            if (lua_rawequal(L, -1, -2)) found = i;
            lua_pop(L, 1);                       /* pop its metatable */
        }
    }
    lua_pop(L, 1);                               /* pop CTXMT */
    return found;
}

/* Call context.lua's helper `which` with the ctx at idx; leaves 1 result. */
static void ctx_call(lua_State *L, int which, int idx) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &CTXFN_KEY);
    lua_rawgeti(L, -1, which);
    lua_remove(L, -2);
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
}

enum { CTX_ENTER = 1, CTX_LEAVE, CTX_ERR };

int ctx_ended(lua_State *L, int idx) {
    if (!idx) return 0;
    ctx_call(L, CTX_ERR, idx);
    int ended = !lua_isnil(L, -1);
    lua_pop(L, 1);
    return ended;
}

void ctx_push_err(lua_State *L, int idx) {
    ctx_call(L, CTX_ERR, idx);
}

int ctx_cause(lua_State *L, int idx) {
    int timeout = 0;
    if (idx) {
        ctx_call(L, CTX_ERR, idx);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "timeout");
            timeout = lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return timeout ? ERR_TIMEOUT : ERR_CANCELED;
}

int task_park_ctx(lua_State *L, task *t, task **slot, double deadline, int kind,
                  int ctxidx, lua_KContext kctx, lua_KFunction k) {
    if (!lua_isyieldable(L)) return task_park(L, t, slot, deadline, kind, kctx, k); /* raises */
    t->ctxdl = 0;
    if (ctxidx) {
        ctx_call(L, CTX_ENTER, ctxidx);          /* registers t; its deadline or 0 */
        t->ctxdl = lua_tonumber(L, -1);
        lua_pop(L, 1);
        deadline = loop_min_deadline(deadline, t->ctxdl);
        if (ctx_ended(L, ctxidx)) {              /* ended while we were waking: */
            t->reason = WAKE_CANCELED;           /* resume at once, canceled */
            if (loop_ready_push(t->lp, t) < 0) return luaL_error(L, "coronet: out of memory");
            lua_pushlightuserdata(L, (void *)&task_park_token);
            return lua_yieldk(L, 1, kctx, k);
        }
    }
    return task_park(L, t, slot, deadline, kind, kctx, k);
}

int task_unpark_ctx(lua_State *L, task *t, int ctxidx) {
    if (!ctxidx) return 0;
    double ctxdl = t->ctxdl;
    t->ctxdl = 0;
    ctx_call(L, CTX_LEAVE, ctxidx);
    lua_pop(L, 1);
    if (t->reason == WAKE_CANCELED) return !t->canceled || ctx_ended(L, ctxidx);
    return t->reason == WAKE_TIMEOUT && ctxdl > 0 && ctxdl <= loop_now();
}

int task_resume_cause(lua_State *L, task *t, int status, int ctxidx) {
    task_release_slot(t);
    if (status != LUA_YIELD) return 0;
    if (task_unpark_ctx(L, t, ctxidx)) return ERR_CTX;
    switch (t->reason) {
    case WAKE_READY: return 0;
    case WAKE_TIMEOUT: return ERR_TIMEOUT;
    case WAKE_CLOSED: return ERR_CLOSED;
    default: return ERR_CANCELED;
    }
}

/* core.ctx_init(mt, {enter, leave, err}): context.lua registers itself. */
static int loop_ctx_init(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushvalue(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &CTXMT_KEY);
    lua_pushvalue(L, 2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &CTXFN_KEY);
    return 0;
}

static int park_done(lua_State *L, int status, lua_KContext ctx) {
    task *t = (task *)ctx;
    (void)status;
    lua_pushinteger(L, t->reason);
    return 1;
}

/* core.park([deadline [, kind]]) -> reason: park the calling task until a
 * wake or its deadline (absolute; nil or 0: none). */
static int loop_park(lua_State *L) {
    task *t = task_current(L);
    double deadline = luaL_optnumber(L, 1, 0);
    int kind = (int)luaL_optinteger(L, 2, PARK_OTHER);
    luaL_argcheck(L, deadline == deadline, 1, "deadline is NaN");
    luaL_argcheck(L, kind > 0 && kind < PARK_NKINDS, 2, "bad park kind");
    if (!t) return luaL_error(L, "coronet: park outside a task");
    if (deadline > 0 && deadline <= loop_now()) {
        lua_pushinteger(L, WAKE_TIMEOUT);
        return 1;
    }
    return task_park(L, t, NULL, deadline, kind, (lua_KContext)t, park_done);
}

/* core.wake(task, reason) -> woken: wake a parked task. */
static int loop_wake(lua_State *L) {
    task *t = task_check(L, 1);
    int reason = (int)luaL_checkinteger(L, 2);
    lua_pushboolean(L, task_wake(t, reason));
    return 1;
}

void task_cancel(task *t) {
    t->canceled = 1;
    task_wake(t, WAKE_CANCELED);
}

/* core.cancel(task): task_cancel (sched.lua's task:cancel()). */
static int loop_cancel(lua_State *L) {
    task_cancel(task_check(L, 1));
    return 0;
}

/* core.yield(): requeue the calling task behind the ready ones. */
static int loop_yield(lua_State *L) {
    task *t = task_current(L);
    if (!t) return 0;
    if (loop_ready_push(t->lp, t) < 0) return luaL_error(L, "coronet: out of memory");
    lua_pushlightuserdata(L, (void *)&task_park_token);
    return lua_yield(L, 1);
}

/* ---- wait queues ----------------------------------------------------- */

void waitq_push(waitq *q, task *t) {
    t->qnext = NULL;
    if (q->tail) q->tail->qnext = t;
    else q->head = t;
    q->tail = t;
}

task *waitq_pop(waitq *q) {
    task *t = q->head;
    if (!t) return NULL;
    q->head = t->qnext;
    if (!q->head) q->tail = NULL;
    t->qnext = NULL;
    return t;
}

void waitq_remove(waitq *q, task *t) {
    task *prev = NULL;
    for (task **p = &q->head; *p; prev = *p, p = &(*p)->qnext) {
        if (*p == t) {
            *p = t->qnext;
            if (q->tail == t) q->tail = prev;
            t->qnext = NULL;
            return;
        }
    }
}

void waitq_wake_all(waitq *q, int reason) {
    task *t;
    while ((t = waitq_pop(q))) task_wake(t, reason);
}

void waitq_set_deadline(waitq *q, double d) {
    for (task *t = q->head; t; t = t->qnext) task_set_deadline(t, d);
}

/* ---- the poll step -------------------------------------------------- */

void loop_add_hook(loop *lp, loop_hook *hk) {
    hk->next = lp->hooks;
    lp->hooks = hk;
}

void loop_remove_hook(loop *lp, loop_hook *hk) {
    for (loop_hook **p = &lp->hooks; *p; p = &(*p)->next) {
        if (*p == hk) {
            *p = hk->next;
            return;
        }
    }
}

/* The earliest deadline among the timers and the hooks; 0 when none. */
static double loop_next_deadline(loop *lp) {
    task *first = timer_first(lp);
    double d = first ? first->deadline : 0;
    for (loop_hook *hk = lp->hooks; hk; hk = hk->next) {
        double h = hk->next_deadline(hk);
        if (h > 0 && (d <= 0 || h < d)) d = h;
    }
    return d;
}

static int loop_hooks_busy(loop *lp) {
    for (loop_hook *hk = lp->hooks; hk; hk = hk->next)
        if (hk->busy(hk)) return 1;
    return 0;
}

static int loop_timeout_ms(loop *lp, int block) {
    if (!block) return 0;
    double next = loop_next_deadline(lp);
    if (next <= 0) return -1;
    double ms = ceil((next - loop_now()) * 1000.0);
    if (!(ms >= 0)) return 0;            /* also NaN: never an undefined cast */
    if (ms < 0) return 0;
    return ms > 86400000 ? 86400000 : (int)ms;
}

static void loop_dispatch(loop *lp, int n) {
    for (int i = 0; i < n; i++) {
        handle *h = lp->pl.ev[i].data;
        int what = lp->pl.ev[i].what;
        if (h->on_event) {
            h->on_event(h, what);
            continue;
        }
        if (what & POLLER_IN) {
            h->rready = 1;
            if (h->rd) task_wake(h->rd, WAKE_READY);
        }
        if (what & POLLER_OUT) {
            h->wready = 1;
            if (h->wr) task_wake(h->wr, WAKE_READY);
        }
        if (what & (POLLER_HUP | POLLER_URGENT)) h->rexact = 1;
    }
}

static void loop_expire(loop *lp) {
    task *t;
    double now = 0;
    while ((t = timer_first(lp))) {
        if (now == 0 || t->deadline > now) now = loop_now();
        if (t->deadline > now) break;
        task_wake(t, WAKE_TIMEOUT);
    }
}

/* core.poll(block) -> idle: wait for readiness (not at all unless block,
 * and only until the next timer) and wake the tasks it concerns; they join
 * the ready list, which core.run_ready resumes. With block and nothing that
 * could ever wake a task, returns true at once (a deadlock). */
static int loop_poll(lua_State *L) {
    loop *lp = loop_get(L);
    int block = lua_toboolean(L, 1) && !lp->nready && lp->irun >= lp->nrun;
    if (block && !lp->nheap && !lp->nfdwait && !loop_hooks_busy(lp)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    int n = poller_wait(&lp->pl, loop_timeout_ms(lp, block));
    if (n < 0) return luaL_error(L, "coronet: poller: %s", strerror(errno));
    loop_dispatch(lp, n);
    if (lp->hooks) {
        double now = loop_now();
        for (loop_hook *hk = lp->hooks; hk; hk = hk->next) hk->tick(hk, now);
    }
    if (lp->nheap) loop_expire(lp);
    lua_pushboolean(L, 0);
    return 1;
}

/* ---- blocking outside a task --------------------------------------- */

int loop_block(lua_State *L, lua_CFunction fn, int n) {
    loop *lp = loop_get(L);
    if (lp->running)
        return luaL_error(L, "coronet: blocking call in a coroutine that is not a "
                             "coronet task while the loop runs (start it with net.go)");
    int base = lua_gettop(L) - n;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &BLOCK_KEY);
    if (lua_isnil(L, -1)) return luaL_error(L, "coronet: scheduler not loaded");
    lua_insert(L, base + 1);
    lua_pushcfunction(L, fn);
    lua_insert(L, base + 2);
    lua_call(L, n + 1, LUA_MULTRET);
    return lua_gettop(L) - base;
}

/* core.set_block(fn): sched.block, called by blocking C calls outside tasks. */
static int loop_set_block(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &BLOCK_KEY);
    return 0;
}

/* core.set_running(on): the scheduler marks when it drives the loop. */
static int loop_set_running(lua_State *L) {
    loop_get(L)->running = lua_toboolean(L, 1);
    return 0;
}

/* core.park_token(): the value a park yields, to tell it from a user yield. */
static int loop_park_token(lua_State *L) {
    lua_pushlightuserdata(L, (void *)&task_park_token);
    return 1;
}

static int loop_now_l(lua_State *L) {
    lua_pushnumber(L, loop_now());
    return 1;
}

/* core.stats() -> {timers, fds, fdwait, ready, blocked = {kind = n},
 * first_read, heap}. */
static int loop_stats(lua_State *L) {
    const char *const *kinds = loop_kind_names;
    loop *lp = loop_get(L);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, lp->nheap);
    lua_setfield(L, -2, "timers");
    lua_pushinteger(L, lp->nfds);
    lua_setfield(L, -2, "fds");
    lua_pushinteger(L, lp->nready + lp->nrun - lp->irun);
    lua_setfield(L, -2, "ready");
    lua_pushinteger(L, lp->nanchor - lp->nfreeanchor);
    lua_setfield(L, -2, "tasks");
    lua_createtable(L, 0, PARK_NKINDS);
    for (int k = 1; k < PARK_NKINDS; k++) {
        lua_pushinteger(L, lp->nblocked[k]);
        lua_setfield(L, -2, kinds[k]);
    }
    lua_setfield(L, -2, "blocked");
    lua_pushstring(L, handle_first_reads_park(lp) ? "park" : "recv");
    lua_setfield(L, -2, "first_read");      /* handle_accepted's guess */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();      /* bytes malloc'ed and not freed, */
    size_t cached = alloc_cached_bytes(L);  /* less alloc.c's cache of freed */
    lua_pushinteger(L, (lua_Integer)(mi.uordblks - cached));   /* Lua blocks: leaks */
    lua_setfield(L, -2, "heap");            /* show here, not the allocator's pools */
#endif
    lua_pushinteger(L, (lua_Integer)alloc_cached_bytes(L));
    lua_setfield(L, -2, "cached");          /* alloc.c's cache */
    return 1;
}

/* ---- handles -------------------------------------------------------- */

int handle_watch(handle *h, loop *lp, int fd, void (*on_event)(handle *, int)) {
    int e = handle_init(h, lp, fd);
    h->on_event = on_event;
    return e;
}

/* handle_unregister: stop the poller watching h's fd, if it does (before
 * the fd is closed or handed back to its owner). */
static void handle_unregister(handle *h) {
    if (h->registered) poller_del(&h->lp->pl, h->fd);
    h->registered = 0;
}

void handle_unwatch(handle *h) {
    if (h->fd < 0) return;
    handle_unregister(h);
    h->fd = -1;
    h->lp->nfds--;
}

void handle_init_lazy(handle *h, loop *lp, int fd) {
    h->lp = lp;
    h->on_event = NULL;
    h->rd = h->wr = NULL;
    h->rdl = h->wrl = 0;
    h->rready = h->wready = 1;           /* unknown: try */
    h->rexact = 0;
    h->registered = 0;
    h->first = 0;
    h->fd = fd;
    lp->nfds++;
}

int handle_register(handle *h, int what) {
    int want = h->registered | what;
    if (want == h->registered || h->fd < 0) return 0;   /* closed: the call reports that */
    int e = poller_watch(&h->lp->pl, h->fd, h, want, h->registered);
    if (!e) h->registered = (unsigned)want;
    return e;
}

int handle_init(handle *h, loop *lp, int fd) {
    handle_init_lazy(h, lp, fd);
    int e = handle_register(h, POLLER_BOTH);
    if (e) {
        h->fd = -1;
        lp->nfds--;
    }
    return e;
}

/* handle_would_block: the caller is about to park on side of h, so have
 * the poller watch that side first (a lazily opened conn); -1 with errno
 * EAGAIN, or with the poller's errno when that failed. */
static inline ssize_t handle_would_block(handle *h, int side) {
    int e = (h->registered & side) ? 0 : handle_register(h, side);
    errno = e ? e : EAGAIN;
    return -1;
}

/* handle_accepted's guess: the score rises by 1 for each first recv that
 * found nothing and falls by FIRST_FOUND for one that found data, so a few
 * clients that write at once turn it off; at FIRST_EMPTY_GUESS and up,
 * all but every FIRST_SAMPLE-th conn start drained. */
enum { FIRST_EMPTY_MAX = 16, FIRST_EMPTY_GUESS = 8, FIRST_FOUND = 4, FIRST_SAMPLE = 8 };

int handle_first_reads_park(const loop *lp) {
    return lp->first_empty >= FIRST_EMPTY_GUESS;
}

void handle_accepted(handle *h) {
    loop *lp = h->lp;
    if (handle_first_reads_park(lp) && ++lp->naccepted % FIRST_SAMPLE)
        h->rready = 0;
    else
        h->first = 1;
}

/* handle_learn: h's first recv found nothing (empty: EAGAIN) or
 * something: data, EOF or an error, each proof the client did not wait. */
static void handle_learn(handle *h, int empty) {
    loop *lp = h->lp;
    h->first = 0;
    if (empty)
        lp->first_empty += lp->first_empty < FIRST_EMPTY_MAX;
    else
        lp->first_empty = lp->first_empty > FIRST_FOUND ? lp->first_empty - FIRST_FOUND : 0;
}

ssize_t handle_recv(handle *h, void *buf, size_t len) {
    if (!h->rready) return handle_would_block(h, POLLER_IN);
    ssize_t n = recv(h->fd, buf, len, 0);
    int e = n < 0 ? errno : 0;
    if (h->first && e != EINTR) handle_learn(h, e == EAGAIN);
    if (n > 0 && (size_t)n < len && !h->rexact) h->rready = 0;
    if (e == EAGAIN) {
        h->rready = 0;
        return handle_would_block(h, POLLER_IN);
    }
    return n;
}

ssize_t handle_send(handle *h, const void *buf, size_t len) {
    if (!h->wready) return handle_would_block(h, POLLER_OUT);
    ssize_t n = send(h->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0 && (size_t)n < len) h->wready = 0;
    if (n < 0 && errno == EAGAIN) {
        h->wready = 0;
        return handle_would_block(h, POLLER_OUT);
    }
    return n;
}

int handle_close(handle *h) {
    track_release(h);                    /* closed: net.debug.conns() lists it no more */
    if (h->fd < 0) return -1;
    handle_unregister(h);
    int fd = h->fd;
    h->fd = -1;
    if (h->rd) task_wake(h->rd, WAKE_CLOSED);
    if (h->wr) task_wake(h->wr, WAKE_CLOSED);
    close(fd);
    h->lp->nfds--;
    return 0;
}

void handle_set_deadline(handle *h, int rd, int wr, double t) {
    if (rd) {
        h->rdl = t;
        if (h->rd) task_set_deadline(h->rd, t);
    }
    if (wr) {
        h->wrl = t;
        if (h->wr) task_set_deadline(h->wr, t);
    }
}

double handle_deadline_arg(lua_State *L, int idx) {
    if (lua_isnoneornil(L, idx)) return 0;
    double t = luaL_checknumber(L, idx);
    luaL_argcheck(L, t == t, idx, "deadline is NaN");
    return t > 0 ? t : 1e-9;             /* a time in the past, not "none" */
}

/* ---- reusable buffers ------------------------------------------------ */

char *loop_buf_get(loop *lp) {
    if (lp->nbufcache) return lp->bufcache[--lp->nbufcache];
    return malloc(LOOP_BUFSZ);
}

void loop_buf_put(loop *lp, char *buf) {
    if (!buf) return;
    if (!lp->closed && lp->nbufcache < LOOP_BUFCACHE) lp->bufcache[lp->nbufcache++] = buf;
    else free(buf);
}

/* ---- the loop object ------------------------------------------------ */

static int loop_gc(lua_State *L) {
    loop *lp = luaL_checkudata(L, 1, LOOP_MT);
    poller_free(&lp->pl);
    free(lp->heap);
    free(lp->ready);
    free(lp->run);
    free(lp->rbuf);
    task_loop_free(lp);
    track_loop_free(lp);
    while (lp->nbufcache) free(lp->bufcache[--lp->nbufcache]);
    lp->closed = 1;
    if (loop_main_lp == lp) loop_main = NULL, loop_main_lp = NULL;
    lp->heap = NULL;
    lp->ready = lp->run = NULL;
    lp->rbuf = NULL;
    return 0;
}

static const luaL_Reg loop_meta[] = {
    {"__gc", loop_gc},
    {NULL, NULL}
};

static const luaL_Reg loop_funcs[] = {
    {"cancel", loop_cancel},
    {"ctx_init", loop_ctx_init},
    {"now", loop_now_l},
    {"park", loop_park},
    {"park_token", loop_park_token},
    {"poll", loop_poll},
    {"set_block", loop_set_block},
    {"set_running", loop_set_running},
    {"stats", loop_stats},
    {"wake", loop_wake},
    {"yield", loop_yield},
    {NULL, NULL}
};

/* loop_open: create this Lua state's loop and add the loop functions to
 * the table on top of the stack. */
int loop_open(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &LOOP_KEY);
    int have = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!have) {
        loop *lp = lua_newuserdatauv(L, sizeof *lp, 0);
        memset(lp, 0, sizeof *lp);
        lp->pl.fd = -1;
        class_register(L, LOOP_MT, loop_meta, NULL);
        luaL_setmetatable(L, LOOP_MT);
        int e = poller_init(&lp->pl);
        lp->rbuf = malloc(LOOP_RBUFSZ);
        lp->rbufsz = LOOP_RBUFSZ;
        if (e || !lp->rbuf) return luaL_error(L, "coronet: cannot create the loop: %s", strerror(e ? e : ENOMEM));
        lua_rawsetp(L, LUA_REGISTRYINDEX, &LOOP_KEY);
    }
    luaL_setfuncs(L, loop_funcs, 0);
    lua_createtable(L, 0, PARK_NKINDS);
    for (int k = 1; k < PARK_NKINDS; k++) {
        lua_pushinteger(L, k);
        lua_setfield(L, -2, loop_kind_names[k]);
    }
    lua_setfield(L, -2, "park_kinds");
    lua_createtable(L, 0, 4);
    static const char *const reasons[] = {"ready", "timeout", "closed", "canceled"};
    for (int r = 0; r < 4; r++) {
        lua_pushinteger(L, r);
        lua_setfield(L, -2, reasons[r]);
    }
    lua_setfield(L, -2, "wake_reasons");
    return 0;
}
