/* tty.c - what the REPL needs from the terminal and from SIGINT, in C:
 * raw mode on and off (termios), the window width, and Ctrl-C while a line
 * runs. A SIGINT writes a byte to a self-pipe the loop watches (so it is
 * seen between loop turns and wakes one watcher task, which cancels the
 * line); a second SIGINT within a second, as lua.c does, sets a hook on the
 * registered coroutine (the running line) that raises "interrupted!" at its
 * next instruction, for a line stuck in a loop that never blocks. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "lauxlib.h"
#include "class.h"
#include "errors.h"
#include "loop.h"
#include "tty.h"

#define SIGWATCH_MT "coronet.sigwatch"

static struct termios tty_orig;
static int tty_saved_fd = -1;        /* tty_orig holds this fd's mode */

static int tty_fail(lua_State *L, const char *sys) {
    operr e = {"tty", NULL, NULL, NULL, sys, NULL, 0};
    return errors_fail(L, &e, errno);
}

/* core.tty_isatty(fd) -> boolean. */
static int tty_isatty(lua_State *L) {
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* core.tty_raw(fd) -> true | nil, err: character-at-a-time input without
 * echo or signals (Ctrl-C arrives as byte 3); output processing stays on,
 * so "\n" still moves to the start of the next line. The mode before the
 * first call is kept for tty_restore. */
static int tty_raw(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    struct termios t;
    if (tcgetattr(fd, &t) < 0) return tty_fail(L, "tcgetattr");
    if (tty_saved_fd != fd) {
        tty_orig = t;
        tty_saved_fd = fd;
    }
    t = tty_orig;
    t.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
    t.c_cflag |= CS8;
    t.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSADRAIN, &t) < 0) return tty_fail(L, "tcsetattr");
    lua_pushboolean(L, 1);
    return 1;
}

/* core.tty_restore(fd) -> true: back to the mode tty_raw found (a no-op
 * when tty_raw was never called on fd). */
static int tty_restore(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    if (tty_saved_fd == fd) tcsetattr(fd, TCSADRAIN, &tty_orig);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.tty_size(fd) -> cols, rows (80, 24 when unknown). */
static int tty_size(lua_State *L) {
    struct winsize ws;
    int fd = (int)luaL_checkinteger(L, 1);
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0) {
        ws.ws_col = 80;
        ws.ws_row = 24;
    }
    lua_pushinteger(L, ws.ws_col);
    lua_pushinteger(L, ws.ws_row);
    return 2;
}

/* ---- SIGINT ------------------------------------------------------------ */

typedef struct sigwatch {
    handle h;
    task *watcher;       /* woken on each SIGINT (anchored in uservalue 1) */
} sigwatch;

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_pending;     /* seen by the handler, not yet by Lua */
static lua_State *volatile sig_target;        /* the coroutine a 2nd ^C interrupts */
static struct timespec sig_last;              /* the previous SIGINT */
static sigwatch *sig_w;

static void tty_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

static void tty_on_sigint(int sig) {
    (void)sig;
    int saved = errno;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double dt = (double)(now.tv_sec - sig_last.tv_sec) + (now.tv_nsec - sig_last.tv_nsec) / 1e9;
    lua_State *target = sig_target;
    if (target && sig_last.tv_sec && dt < 1.0)  /* lua_sethook is signal-safe (lua.c) */
        lua_sethook(target, tty_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    sig_last = now;
    sig_pending = 1;
    if (sig_pipe[1] >= 0) {
        ssize_t r = write(sig_pipe[1], "i", 1);
        (void)r;
    }
    errno = saved;
}

static void sigwatch_event(handle *h, int what) {
    (void)what;
    sigwatch *w = (sigwatch *)h;
    char buf[64];
    while (read(h->fd, buf, sizeof buf) > 0) {}
    if (w->watcher) task_wake(w->watcher, WAKE_READY);
}

/* core.sigint_watch(task) -> true | nil, err: from now on SIGINT does not
 * end the process: each one wakes task (parked with core.park) and counts
 * for core.sigint_take(). Call once. */
static int tty_sigint_watch(lua_State *L) {
    task *t = task_check(L, 1);
    if (sig_w) return luaL_error(L, "coronet: sigint_watch called twice");
    if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0) return tty_fail(L, "pipe2");
    sigwatch *w = lua_newuserdatauv(L, sizeof *w, 1);
    memset(w, 0, sizeof *w);
    w->h.fd = -1;
    luaL_setmetatable(L, SIGWATCH_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    int e = handle_watch(&w->h, loop_get(L), sig_pipe[0], sigwatch_event);
    if (e) {
        errno = e;
        return tty_fail(L, "epoll_ctl");
    }
    w->watcher = t;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sig_w);    /* anchors w (and the task) */
    sig_w = w;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tty_on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) < 0) return tty_fail(L, "sigaction");
    lua_pushboolean(L, 1);
    return 1;
}

/* core.sigint_take() -> boolean: whether a SIGINT came since the last call. */
static int tty_sigint_take(lua_State *L) {
    lua_pushboolean(L, sig_pending);
    sig_pending = 0;
    return 1;
}

/* core.sigint_target(co | nil): the coroutine a second SIGINT within a
 * second interrupts with the error "interrupted!" (nil: none); only SIGINTs
 * after this call count. The caller keeps co alive while it is the target. */
static int tty_sigint_target(lua_State *L) {
    lua_State *co = lua_isnoneornil(L, 1) ? NULL : lua_tothread(L, 1);
    luaL_argcheck(L, co || lua_isnoneornil(L, 1), 1, "coroutine expected");
    if (!co && sig_target) lua_sethook(sig_target, NULL, 0, 0);
    sig_target = co;
    sig_last.tv_sec = sig_last.tv_nsec = 0;      /* a new line: count its own ^C only */
    return 0;
}

static int sigwatch_gc(lua_State *L) {
    sigwatch *w = luaL_checkudata(L, 1, SIGWATCH_MT);
    handle_unwatch(&w->h);
    return 0;
}

static const luaL_Reg sigwatch_meta[] = {
    {"__gc", sigwatch_gc},
    {NULL, NULL}
};

static const luaL_Reg tty_funcs[] = {
    {"sigint_take", tty_sigint_take},
    {"sigint_target", tty_sigint_target},
    {"sigint_watch", tty_sigint_watch},
    {"tty_isatty", tty_isatty},
    {"tty_raw", tty_raw},
    {"tty_restore", tty_restore},
    {"tty_size", tty_size},
    {NULL, NULL}
};

int tty_open(lua_State *L) {
    class_register(L, SIGWATCH_MT, sigwatch_meta, NULL);
    luaL_setfuncs(L, tty_funcs, 0);
    return 0;
}
