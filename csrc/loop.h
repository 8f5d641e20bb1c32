/* loop.h - the event loop's C half: tasks that park and wake, the timer
 * heap, the poller, and handles (an fd with a parked reader and writer).
 * The Lua scheduler (lua/coronet/sched.lua) owns the coroutines: C parks a
 * task by yielding from it and, when it wakes, hands its coroutine back to
 * Lua through the ready list. C never resumes a coroutine. */
#ifndef CORONET_LOOP_H
#define CORONET_LOOP_H

#include <stdint.h>
#include <sys/types.h>
#include "lua.h"
#include "poller.h"

#define LOOP_MT "coronet.loop"
#define TASK_MT "coronet.task"

/* Why a parked task woke; its blocking call turns this into a result. */
enum wake_reason { WAKE_READY = 0, WAKE_TIMEOUT, WAKE_CLOSED, WAKE_CANCELED };

/* What a task is parked on, for net.debug.stats(). */
enum park_kind {
    PARK_NONE = 0, PARK_READ, PARK_WRITE, PARK_ACCEPT, PARK_CONNECT,
    PARK_SLEEP, PARK_CHAN, PARK_SYNC, PARK_TASK, PARK_SELECT, PARK_OTHER,
    PARK_LOOKUP,         /* a DNS lookup (resolver.c, sysresolve.c) */
    PARK_NKINDS
};

struct loop;
struct task_slot;

/* task: a coronet task (userdata TASK_MT, csrc/task.c): the object net.go
 * returns and the record the loop parks and wakes. Uservalue 1 anchors its
 * coroutine (the thread itself, or the task's field table, which holds it)
 * until the task ends; the loop's task table anchors the task meanwhile. */
typedef struct task {
    struct loop *lp;
    lua_State *co;       /* the coroutine it runs; NULL once it has ended */
    struct task **slot;  /* the handle slot it is parked in, or NULL */
    struct task *qnext;  /* next in a wait queue (a conn's queued writers) */
    double deadline;     /* absolute; 0 when none */
    double ctxdl;        /* deadline of the net.context it waits under; 0 none */
    double born;         /* loop_now() at creation, for net.debug (a task's age) */
    lua_Integer id;      /* the task's id (t.id), for net.debug */
    int heap_idx;        /* index in the timer heap, -1 when not armed */
    int anchor;          /* its slot in the loop's task table; 0 once ended */
    uint8_t parked;      /* waiting for a wake */
    uint8_t queued;      /* in the ready list */
    uint8_t kind;        /* enum park_kind while parked */
    uint8_t reason;      /* enum wake_reason of the last wake */
    uint8_t canceled;    /* task:cancel(): every park ends at once, canceled */
    /* Kept for sched.lua (t.started, ...): bits, so a task stays 80 bytes. */
    unsigned started : 1;   /* it has run (until then co holds fn, args) */
    unsigned done : 1;      /* it has ended */
    unsigned ok : 1;        /* it returned rather than raised */
    unsigned observed : 1;  /* someone takes its result (t:wait, net.run) */
    unsigned abandoned : 1; /* its driver unwound (sched.lua's abandon) */
} task;

/* waitq: a FIFO of parked tasks (threaded through task.qnext): writers
 * queued behind a conn's write lock, acceptors behind the one parked on a
 * listener, ... */
typedef struct waitq {
    task *head, *tail;
} waitq;

/* waitq_push / waitq_pop / waitq_remove: append t; take the first (NULL
 * when empty); take t out wherever it is (no-op when absent). */
void waitq_push(waitq *q, task *t);
task *waitq_pop(waitq *q);
void waitq_remove(waitq *q, task *t);

/* waitq_wake_all: wake (task_wake) and remove every queued task. */
void waitq_wake_all(waitq *q, int reason);

/* waitq_set_deadline: move every queued task's deadline (task_set_deadline). */
void waitq_set_deadline(waitq *q, double t);

#define HANDLE_TRACK_BITS 26  /* handle.track's width: at most 2^26 - 1 slots */

/* handle: an fd the poller watches (edge-triggered; a conn only for the
 * sides it has waited on, see handle_init_lazy) and the tasks parked on
 * it. Embedded first in conns, listeners, packet conns. */
typedef struct handle {
    int fd;              /* -1 once closed */
    /* Readiness hints (handle_recv, handle_send): 0 once a syscall showed
     * that side drained (a short transfer or EAGAIN), 1 again when the
     * poller reports it, so the next call parks without a syscall that
     * would fail. rexact: a short read does not prove the receive queue
     * empty (only EAGAIN does): the peer hung up or the socket failed
     * (no edge follows), TCP urgent data arrived (a read stops short at
     * its mark with data queued behind), or the socket is a unix stream
     * (a read stops short after a message that carried fds). */
    unsigned rready : 1, wready : 1, rexact : 1;
    /* the sides the poller watches (POLLER_IN, POLLER_OUT); a conn adds a
     * side when a task first parks on it (handle_register), so one that
     * never waits costs no epoll_ctl and one that only waits to read is
     * never woken because it can write */
    unsigned registered : 2;
    /* an accepted conn whose first recv is still to come and trains the
     * loop's guess: every one while the guess is off, every
     * FIRST_SAMPLE-th while it is on (handle_accepted) */
    unsigned first : 1;
    /* its slot in the registry of tracked objects (track.c), 0: none */
    unsigned track : HANDLE_TRACK_BITS;
    struct loop *lp;
    task *rd, *wr;       /* parked reader / writer */
    double rdl, wrl;     /* read / write deadlines, absolute; 0 when none */
    /* When set, readiness calls this instead of waking rd/wr: for fds the
     * loop serves itself (c-ares sockets, a worker pool's eventfd). what is
     * POLLER_IN | POLLER_OUT. It must not resume Lua; it may wake tasks. */
    void (*on_event)(struct handle *h, int what);
} handle;

/* loop_hook: a C client of the loop that has timers or pending work of
 * its own (the c-ares channel): consulted on every loop turn. */
typedef struct loop_hook {
    /* the absolute time it next needs a tick (0: none) */
    double (*next_deadline)(struct loop_hook *hk);
    /* called after each turn's events were dispatched; may wake tasks */
    void (*tick)(struct loop_hook *hk, double now);
    /* whether it has work in flight that will wake a task later */
    int (*busy)(struct loop_hook *hk);
    struct loop_hook *next;
} loop_hook;

#define LOOP_BUFSZ 4096      /* the buffers loop_buf_get hands out (bufio's default) */
#define LOOP_BUFCACHE 32     /* how many free ones the loop keeps */

typedef struct loop {
    poller pl;
    task **heap;         /* timer min-heap on task->deadline */
    int nheap, capheap;
    task **ready;        /* woken tasks, resumed by the next task_run_ready */
    int nready, capready;
    task **run;          /* the batch task_run_ready is resuming: run[irun..nrun) left */
    int nrun, irun, caprun;
    struct task_slot *bythread; /* open-addressing map: coroutine -> task */
    unsigned nthread, capthread;
    int *freeanchor;     /* free slots of the task table (task.c) */
    int nfreeanchor, capfreeanchor, nanchor;
    lua_Integer next_id; /* the last task id given out */
    int ref_tasks, ref_finish, ref_taskmt; /* registry refs (task.c): an array
                          * slot each, found faster than a hashed key */
    int sched_ready;     /* sched.lua called task_setup: tasks may be made */
    int ref_trace;       /* registry ref: net.debug's creation-site function, 0: none */
    int ref_track;       /* registry ref: the tracked objects, weak (track.c) */
    int ref_connmt;      /* registry ref: the plain conn metatable (conn.c), 0 until used */
    unsigned track_cap, track_used; /* its slots 1..cap, of which 1..used were given out */
    lua_Integer *track_ids; /* the creator task's id per slot, 0: none */
    unsigned *track_free; /* slots given back by __gc, to give out again */
    unsigned ntrackfree, captrackfree;
    int nfds;            /* open handles */
    /* handle_accepted's guess: how often accepted conns' first recv found
     * nothing (a score, 0..FIRST_EMPTY_MAX), and the conns accepted while
     * the guess was on (to pick every FIRST_SAMPLE-th) */
    unsigned first_empty, naccepted;
    int nfdwait;         /* tasks parked on a handle */
    int nblocked[PARK_NKINDS];
    char *rbuf;          /* shared read buffer: idle conns own none */
    size_t rbufsz;
    char *bufcache[LOOP_BUFCACHE]; /* free LOOP_BUFSZ buffers (loop_buf_get) */
    int nbufcache;
    int closed;          /* loop_gc ran: nothing is cached any more */
    int running;         /* the Lua scheduler is driving the loop */
    loop_hook *hooks;
} loop;

/* loop_add_hook / loop_remove_hook: (un)register a hook; the caller owns it. */
void loop_add_hook(loop *lp, loop_hook *hk);
void loop_remove_hook(loop *lp, loop_hook *hk);

/* handle_watch: register fd with the poller for a handle the loop serves
 * itself (on_event set); 0 or errno. handle_close still closes it. */
int handle_watch(handle *h, loop *lp, int fd, void (*on_event)(handle *, int));

/* handle_unwatch: unregister without closing the fd (its owner closes it). */
void handle_unwatch(handle *h);

/* loop_buf_get / loop_buf_put: a LOOP_BUFSZ buffer from malloc, kept for
 * reuse when put back (up to LOOP_BUFCACHE of them; the rest are freed). A
 * bufio reader frees its buffer whenever it parks with nothing buffered,
 * so an idle conn holds none, and takes one again for the next request:
 * this saves that malloc and free. get returns NULL when out of memory. */
char *loop_buf_get(loop *lp);
void loop_buf_put(loop *lp, char *buf);

/* loop_now: monotonic seconds. */
double loop_now(void);

/* loop_get: the Lua state's loop (created by loop_open). */
loop *loop_get(lua_State *L);

/* task_check: the task at idx, or raise. */
task *task_check(lua_State *L, int idx);

/* task_current: the task whose coroutine is L, or NULL outside a task. */
task *task_current(lua_State *L);

/* task.c's cache of task_current: the coroutine of the task resumed last
 * (or found last) and that task. A coroutine address here always belongs
 * to a live task: cleared when it ends or its loop is freed. */
extern const lua_State *current_co;
extern task *current_task;

/* loop_ready_push: append t to the ready list; -1 when out of memory. */
int loop_ready_push(loop *lp, task *t);

/* task_park_token: the value every park yields, so the resume step tells
 * a park from the user's own coroutine.yield(). */
extern const char task_park_token;

/* task_open: add the task functions to the core table on top of L
 * (csrc/task.c); task_loop_free: forget lp's tasks when it is collected. */
int task_open(lua_State *L);
void task_loop_free(loop *lp);

/* task_park: park t (the task running L) in *slot (may be NULL) until a
 * wake or, when deadline > 0, until then; then yield from L. On resume k
 * runs with kctx; the wake's reason is in t->reason. Never returns. */
int task_park(lua_State *L, task *t, task **slot, double deadline, int kind,
              lua_KContext kctx, lua_KFunction k);

/* ctx_find: the stack index of the first net.context among the arguments
 * from index first on, or 0 when there is none. */
int ctx_find(lua_State *L, int first);

/* ctx_ended: whether the net.context at idx has ended (then the call must
 * fail at once, without touching the socket). */
int ctx_ended(lua_State *L, int idx);

/* task_park_ctx: task_park that is also woken, with WAKE_CANCELED, when
 * the net.context at ctxidx (0: none) ends; the earlier of deadline and
 * the ctx's deadline bounds the wait. Call task_unpark_ctx on resume. */
int task_park_ctx(lua_State *L, task *t, task **slot, double deadline, int kind,
                  int ctxidx, lua_KContext kctx, lua_KFunction k);

/* task_unpark_ctx: after a wake, leave the ctx at ctxidx (0: none) and
 * return 1 when the wait ended because of the ctx (cancel or its deadline):
 * the call then fails with the ctx's error. */
int task_unpark_ctx(lua_State *L, task *t, int ctxidx);

/* task_resume_cause: in a continuation, the outcome of the park: 0 to
 * retry the syscall, or the ERR_* cause to fail with (ERR_CTX when the
 * ctx at ctxidx ended). Leaves the ctx. status is the continuation's. */
int task_resume_cause(lua_State *L, task *t, int status, int ctxidx);

/* ctx_cause: for a call ended by the net.context at idx, the cause to
 * remember (a sticky failure): ERR_TIMEOUT for a ctx deadline, else
 * ERR_CANCELED. */
int ctx_cause(lua_State *L, int idx);

/* ctx_push_err: push ctx:err() for the net.context at idx. */
void ctx_push_err(lua_State *L, int idx);

/* task_wake: wake t with reason if it is parked; returns 1 if it was. A
 * task woken from a handle slot keeps owning the slot until it resumes
 * (task_resume_cause releases it), so "busy" checks see it in between. */
int task_wake(task *t, int reason);

/* task_cancel: mark t canceled (task:cancel()): wake it with WAKE_CANCELED
 * if parked; every later park returns at once with WAKE_CANCELED. */
void task_cancel(task *t);

/* task_set_deadline: move a parked task's deadline (0 clears); a deadline
 * at or before now wakes it at once with WAKE_TIMEOUT. */
void task_set_deadline(task *t, double deadline);

/* loop_block: call the C function fn with the n values on top of L's stack
 * as a task driven to completion by the scheduler (a blocking call made
 * outside a task); leaves its results on the stack and returns their count. */
int loop_block(lua_State *L, lua_CFunction fn, int n);

/* handle_init: open h around fd and register it with the poller; on
 * failure returns an errno and leaves h closed (fd -1), fd still open. */
int handle_init(handle *h, loop *lp, int fd);

/* handle_init_lazy: open h around fd without registering it: a conn
 * that reads what has arrived, writes and closes never waits, and so
 * never needs the poller. Whoever parks a task on h.rd or h.wr calls
 * handle_register for that side first (a side no poller watches never
 * wakes). */
void handle_init_lazy(handle *h, loop *lp, int fd);

/* handle_accepted: h (opened lazily) is a conn just accepted. When most
 * recent accepted conns' first recv found nothing (their clients write a
 * moment after the connect completes, as wrk and browsers do), h starts
 * marked drained: its first read registers h and parks at once instead of
 * making a recv that fails with EAGAIN. A wrong guess costs a loop turn,
 * never data: the registration reports what has arrived. Every 8th conn
 * still tries, so the guess follows the clients. */
void handle_accepted(handle *h);

/* handle_first_reads_park: whether handle_accepted now starts conns
 * drained (net.debug.stats().first_read is "park", else "recv"). */
int handle_first_reads_park(const loop *lp);

/* handle_register: have the poller watch h for the sides in what
 * (POLLER_IN, POLLER_OUT) as well as those it watches (adding h, or
 * modifying it); a no-op when it does, or when h is closed. 0 or an errno
 * (h is left as it was, open). Edge-triggered: each change reports the
 * fd's state at that moment, so readiness that came before it is not
 * lost. */
int handle_register(handle *h, int what);

/* handle_recv / handle_send: recv / send(MSG_NOSIGNAL) on h's fd, as the
 * syscalls return (n, or -1 with errno), except that when the hints say
 * that side is drained they fail with EAGAIN without a syscall; a short
 * transfer or EAGAIN marks it drained until the poller reports it again.
 * EAGAIN means "park": h is registered for that side (handle_register)
 * before it is returned, and when that fails the errno is the poller's.
 * For stream sockets only: a short read means the receive queue was
 * empty (unless h->rexact), a short write that the send buffer was full. */
ssize_t handle_recv(handle *h, void *buf, size_t len);
ssize_t handle_send(handle *h, const void *buf, size_t len);

/* handle_close: wake parked tasks with WAKE_CLOSED, unregister, close the
 * fd. Returns 0, or -1 if h was already closed. */
int handle_close(handle *h);

/* handle_set_deadline: set the read and/or write deadline (0 clears) and
 * re-arm any task parked on that side. */
void handle_set_deadline(handle *h, int rd, int wr, double t);

/* handle_deadline_arg: the deadline argument at idx for a setter: 0 for
 * nil (none), a time already past for t <= 0; raises for NaN. */
double handle_deadline_arg(lua_State *L, int idx);

/* handle_deadline_passed: whether the deadline d is set and already passed
 * (inline: every read and write asks, and most have no deadline). */
static inline int handle_deadline_passed(double d) {
    return d > 0 && d <= loop_now();
}

int loop_open(lua_State *L);

#endif
