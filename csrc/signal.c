/* signal.c - signals as loop events (net.signal): a sigaction handler
 * writes the signal's number to a self-pipe (Go's and libuv's design) and
 * a watcher parks on the pipe's read end like a conn read. No signalfd:
 * it needs the signal blocked in every thread, and a blocked mask leaks
 * through fork and exec into every child (os.execute, io.popen), which
 * would then ignore TERM. A caught signal resets to SIG_DFL on exec, so
 * children see default dispositions. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "lauxlib.h"
#include "class.h"
#include "errors.h"
#include "loop.h"
#include "signame.h"

#define SIGWATCH_MT "coronet.sigwatch"
#define SIGNAL_READ_MAX 256   /* signal numbers taken per wait */

static const struct { const char *name; int no; } signal_table[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS}, {"CHLD", SIGCHLD},
    {"CONT", SIGCONT}, {"FPE", SIGFPE}, {"HUP", SIGHUP}, {"ILL", SIGILL},
    {"INT", SIGINT}, {"IO", SIGIO}, {"KILL", SIGKILL}, {"PIPE", SIGPIPE},
    {"PROF", SIGPROF}, {"PWR", SIGPWR}, {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},
    {"STOP", SIGSTOP}, {"SYS", SIGSYS}, {"TERM", SIGTERM}, {"TRAP", SIGTRAP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}, {"URG", SIGURG},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM},
    {"WINCH", SIGWINCH}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {NULL, 0}
};

static int signal_pipe[2] = {-1, -1};     /* process-wide: handlers are */
static struct sigaction signal_saved[NSIG]; /* dispositions before catch */
static unsigned char signal_caught[NSIG];

int signal_number_arg(lua_State *L, int idx) {
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer n = lua_tointeger(L, idx);
        return n > 0 && n < NSIG ? (int)n : 0;
    }
    const char *s = luaL_checkstring(L, idx);
    if (strncmp(s, "SIG", 3) == 0) s += 3;
    for (int i = 0; signal_table[i].name; i++)
        if (strcmp(signal_table[i].name, s) == 0) return signal_table[i].no;
    return 0;
}

const char *signal_name(int signo) {
    for (int i = 0; signal_table[i].name; i++)
        if (signal_table[i].no == signo) return signal_table[i].name;
    return NULL;
}

/* The kernel's struct sigaction, for the signals glibc keeps to itself. */
struct signal_ksa {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

void signal_child_reset(void) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int i = 1; i < NSIG; i++)
        if (i != SIGKILL && i != SIGSTOP && sigaction(i, &dfl, NULL) < 0 && errno == EINVAL) {
            /* glibc refuses its internal signals (32, 33), and its
             * posix_spawn (system, popen) leaves them ignored in a child,
             * which exec keeps: reset them through the kernel directly */
            struct signal_ksa k = {SIG_DFL, 0, NULL, 0};
            syscall(SYS_rt_sigaction, i, &k, NULL, sizeof k.mask);
        }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void signal_noop(int signo) {
    (void)signo;
}

void signal_pipe_harmless(void) {
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = signal_noop;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

/* The handler: one byte per signal; a full pipe (64 Ki pending) drops it,
 * as Go drops a signal for a full channel. */
static void signal_handler(int signo) {
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    ssize_t n = write(signal_pipe[1], &b, 1);
    (void)n;
    errno = saved;
}

static int signal_pipe_init(void) {
    if (signal_pipe[0] >= 0) return 0;
    if (pipe2(signal_pipe, O_NONBLOCK | O_CLOEXEC) < 0) return errno;
    return 0;
}

static int signal_fail(lua_State *L, const char *op, const char *sys, int cause) {
    operr e = {op, "signal", NULL, NULL, sys, NULL, 0};
    return errors_fail(L, &e, cause);
}

static int signal_catchable_arg(lua_State *L, int idx) {
    int no = signal_number_arg(L, idx);
    luaL_argcheck(L, no != 0, idx, "unknown signal");
    luaL_argcheck(L, no != SIGKILL && no != SIGSTOP, idx, "signal cannot be caught");
    luaL_argcheck(L, no != SIGSEGV && no != SIGBUS && no != SIGFPE && no != SIGILL &&
                     no != SIGTRAP, idx, "a fault signal cannot be delivered through the loop");
    return no;
}

/* core.signal_catch(name) -> true | nil, err: route the signal to the
 * self-pipe, remembering its disposition (idempotent). */
static int signal_catch(lua_State *L) {
    int no = signal_catchable_arg(L, 1);
    int e = signal_pipe_init();
    if (e) return signal_fail(L, "notify", "pipe2", e);
    if (!signal_caught[no]) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = signal_handler;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(no, &sa, &signal_saved[no]) < 0)
            return signal_fail(L, "notify", "sigaction", errno);
        signal_caught[no] = 1;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.signal_check(name) -> name: raises unless net.signal can catch it. */
static int signal_check(lua_State *L) {
    signal_catchable_arg(L, 1);
    lua_pushstring(L, signal_name(signal_number_arg(L, 1)));
    return 1;
}

/* core.signal_release(name): put back the disposition signal_catch found. */
static int signal_release(lua_State *L) {
    int no = signal_catchable_arg(L, 1);
    if (signal_caught[no]) {
        sigaction(no, &signal_saved[no], NULL);
        signal_caught[no] = 0;
    }
    return 0;
}

/* core.signal_disposition(name) -> "default" | "ignore" | "caught". */
static int signal_disposition(lua_State *L) {
    int no = signal_number_arg(L, 1);
    luaL_argcheck(L, no != 0, 1, "unknown signal");
    struct sigaction sa;
    if (sigaction(no, NULL, &sa) < 0) return signal_fail(L, "disposition", "sigaction", errno);
    lua_pushstring(L, sa.sa_handler == SIG_DFL ? "default"
                      : sa.sa_handler == SIG_IGN ? "ignore" : "caught");
    return 1;
}

/* core.signal_raise(name): kill(getpid(), sig), for specs and examples. */
static int signal_raise(lua_State *L) {
    int no = signal_number_arg(L, 1);
    luaL_argcheck(L, no != 0, 1, "unknown signal");
    if (kill(getpid(), no) < 0) return signal_fail(L, "kill", "kill", errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- the watcher: the pipe's read end on the loop -------------------- */

typedef struct sigwatch {
    handle h;             /* over the pipe's read end (which it does not close) */
} sigwatch;

static sigwatch *sigwatch_check(lua_State *L) {
    return luaL_checkudata(L, 1, SIGWATCH_MT);
}

static int signal_any_caught(void) {
    for (int i = 1; i < NSIG; i++)
        if (signal_caught[i]) return 1;
    return 0;
}

/* With no signal caught no handler can write: the pipe goes, so an idle
 * net.signal holds no fd. Otherwise what was not taken is dropped. */
static void signal_pipe_done(void) {
    if (signal_pipe[0] < 0) return;
    if (!signal_any_caught()) {
        int rfd = signal_pipe[0], wfd = signal_pipe[1];
        signal_pipe[0] = signal_pipe[1] = -1;
        close(wfd);
        close(rfd);
        return;
    }
    unsigned char buf[SIGNAL_READ_MAX];
    while (read(signal_pipe[0], buf, sizeof buf) > 0) {}
}

static int sigwatch_wait_k(lua_State *L, int status, lua_KContext kctx);

/* watcher:wait() -> {name, ...} | nil, err: the signals caught since the
 * last wait, oldest first, blocking until there is one; ErrClosed once
 * the watcher is closed. */
static int sigwatch_wait(lua_State *L) {
    sigwatch_check(L);
    if (!task_current(L)) return loop_block(L, sigwatch_wait, lua_gettop(L));
    return sigwatch_wait_k(L, LUA_OK, 0);
}

static int sigwatch_wait_k(lua_State *L, int status, lua_KContext kctx) {
    sigwatch *w = sigwatch_check(L);
    task *t = task_current(L);
    int cause = task_resume_cause(L, t, status, 0);
    if (cause) return signal_fail(L, "wait", NULL, cause);
    if (w->h.fd < 0) return signal_fail(L, "wait", NULL, ERR_CLOSED);
    unsigned char buf[SIGNAL_READ_MAX];
    ssize_t n;
    do n = read(w->h.fd, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (w->h.rd) return signal_fail(L, "wait", NULL, ERR_BUSY);
        return task_park(L, t, &w->h.rd, 0, PARK_OTHER, kctx, sigwatch_wait_k);
    }
    if (n <= 0) return signal_fail(L, "wait", "read", n < 0 ? errno : EPIPE);
    lua_createtable(L, (int)n, 0);
    int k = 0;
    for (ssize_t i = 0; i < n; i++) {
        const char *name = signal_name(buf[i]);
        if (!name) continue;
        lua_pushstring(L, name);
        lua_rawseti(L, -2, ++k);
    }
    return 1;
}

/* watcher:close(): stop watching; a parked wait gets ErrClosed, and the
 * signals not yet taken are dropped (a later watcher starts clean). With
 * no signal caught any more the self-pipe is closed too. */
static int sigwatch_close(lua_State *L) {
    sigwatch *w = sigwatch_check(L);
    if (w->h.fd < 0) return 0;
    if (w->h.rd) task_wake(w->h.rd, WAKE_CLOSED);
    handle_unwatch(&w->h);
    signal_pipe_done();
    return 0;
}

/* core.signal_watcher() -> watcher | nil, err: one per process (the
 * pipe is); net.signal keeps it while any notify is active. */
static int sigwatch_new(lua_State *L) {
    sigwatch *w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    w->h.fd = -1;
    luaL_setmetatable(L, SIGWATCH_MT);
    int e = signal_pipe_init();
    if (e) return signal_fail(L, "notify", "pipe2", e);
    e = handle_init(&w->h, loop_get(L), signal_pipe[0]);
    if (e) {
        signal_pipe_done();
        return signal_fail(L, "notify", "epoll_ctl", e);
    }
    return 1;
}

static const luaL_Reg sigwatch_methods[] = {
    {"close", sigwatch_close},
    {"wait", sigwatch_wait},
    {NULL, NULL}
};

static const luaL_Reg sigwatch_meta[] = {
    {"__close", sigwatch_close},
    {"__gc", sigwatch_close},
    {NULL, NULL}
};

static const luaL_Reg signal_funcs[] = {
    {"signal_catch", signal_catch},
    {"signal_check", signal_check},
    {"signal_disposition", signal_disposition},
    {"signal_raise", signal_raise},
    {"signal_release", signal_release},
    {"signal_watcher", sigwatch_new},
    {NULL, NULL}
};

int signal_open(lua_State *L) {
    class_register(L, SIGWATCH_MT, sigwatch_meta, sigwatch_methods);
    luaL_setfuncs(L, signal_funcs, 0);
    return 0;
}
