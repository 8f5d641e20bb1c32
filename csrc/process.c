/* process.c - child processes (net.process): fork + execve with files
 * placed at fd 3.. and systemd's LISTEN_* variables, and a pidfd on the
 * loop to wait for the exit. Not posix_spawn: LISTEN_PID is the child's own
 * pid, known only after fork, so the child writes it into an envp the
 * parent prepared (the child only makes async-signal-safe calls). The
 * child starts with default dispositions and an empty signal mask. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "lauxlib.h"
#include "class.h"
#include "errors.h"
#include "loop.h"
#include "modules.h"
#include "signame.h"

#define PROCESS_MT "coronet.process"
#define PROCESS_PIDBUF 32       /* "LISTEN_PID=" and the digits */

extern char **environ;

typedef struct process {
    handle h;             /* the pidfd; -1 once reaped or closed */
    pid_t pid;
    int done;             /* reaped: code / sig hold the outcome */
    int polled;           /* no pidfd (ENOSYS: kernel < 5.3, valgrind): poll waitpid */
    int closed;
    int code, sig;
} process;

/* What the child needs, all prepared before fork. */
typedef struct spawn_plan {
    const char *path;
    char **argv, **envp;
    char *pidvar;         /* "LISTEN_PID=" to complete, or NULL */
    int *files;           /* placed at 3.. (the child reuses it as scratch) */
    int nfiles;
    int stdio[3];         /* source fd, or -1: inherit */
    const char *dir;      /* chdir first, or NULL */
} spawn_plan;

static process *process_check(lua_State *L) {
    return luaL_checkudata(L, 1, PROCESS_MT);
}

static int process_fail(lua_State *L, const char *op, const char *sys, int cause) {
    operr e = {op, "process", NULL, NULL, sys, NULL, 0};
    return errors_fail(L, &e, cause);
}

/* ---- the child side (between fork and exec) -------------------------- */

static void child_put_pid(char *var) {
    char digits[16];
    int n = 0;
    for (unsigned v = (unsigned)getpid(); v; v /= 10) digits[n++] = (char)('0' + v % 10);
    char *p = var + strlen(var);
    while (n) *p++ = digits[--n];
    *p = 0;
}

/* Each source goes to a high close-on-exec copy first, so that placing
 * one file never overwrites another's source; dup2 then clears CLOEXEC. */
static int child_place_fds(const spawn_plan *sp, int *errw) {
    int low = 3 + sp->nfiles, hi[3] = {-1, -1, -1};
    int *tmp = sp->files;            /* scratch: the plan is this process's copy */
    int w = fcntl(*errw, F_DUPFD_CLOEXEC, low);
    if (w < 0) return errno;
    *errw = w;
    for (int i = 0; i < sp->nfiles; i++)
        if ((tmp[i] = fcntl(sp->files[i], F_DUPFD_CLOEXEC, low)) < 0) return errno;
    for (int i = 0; i < 3; i++)
        if (sp->stdio[i] >= 0 && (hi[i] = fcntl(sp->stdio[i], F_DUPFD_CLOEXEC, low)) < 0)
            return errno;
    for (int i = 0; i < 3; i++)
        if (sp->stdio[i] >= 0 && dup2(hi[i], i) < 0) return errno;
    for (int i = 0; i < sp->nfiles; i++)
        if (dup2(tmp[i], 3 + i) < 0) return errno;
    /* nothing beyond what was asked for leaks into the new program */
    close_range((unsigned)low, ~0U, CLOSE_RANGE_CLOEXEC);
    return 0;
}

static void child_exec(const spawn_plan *sp, int errw) {
    signal_child_reset();
    int e = child_place_fds(sp, &errw);
    if (!e && sp->dir && chdir(sp->dir) < 0) e = errno;
    if (!e) {
        if (sp->pidvar) child_put_pid(sp->pidvar);
        execve(sp->path, sp->argv, sp->envp);
        e = errno;
    }
    ssize_t n = write(errw, &e, sizeof e);
    (void)n;
    _exit(127);
}

/* ---- preparing the plan in the parent -------------------------------- */

/* Push the program to run: path itself when it has a slash, else the
 * first executable match in PATH (as execvp), else path (execve will
 * report ENOENT). */
static void spawn_resolve(lua_State *L, const char *path) {
    const char *dirs = getenv("PATH");
    if (!dirs) dirs = "/usr/local/bin:/usr/bin:/bin";
    while (!strchr(path, '/') && *dirs) {
        size_t n = strcspn(dirs, ":");
        char full[PATH_MAX];
        int m = n ? snprintf(full, sizeof full, "%.*s/%s", (int)n, dirs, path)
                  : snprintf(full, sizeof full, "./%s", path);
        if (m > 0 && (size_t)m < sizeof full && access(full, X_OK) == 0) {
            lua_pushstring(L, full);
            return;
        }
        dirs += n + (dirs[n] == ':');
    }
    lua_pushstring(L, path);
}

static char **spawn_argv(lua_State *L, int idx) {
    int n = (int)luaL_len(L, idx);
    char **argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        argv[i - 1] = (char *)luaL_checkstring(L, -1);  /* anchored by the table */
        lua_pop(L, 1);
    }
    argv[n] = NULL;
    return argv;
}

static int env_overridden(lua_State *L, int over, const char *entry) {
    size_t n = strcspn(entry, "=");
    lua_pushlstring(L, entry, n);
    int t = lua_rawget(L, over);
    lua_pop(L, 1);
    return t != LUA_TNIL;
}

/* envp: environ minus what over (name -> value | false) names, then
 * over's strings; anchored in the table at anchor. */
static char **spawn_envp(lua_State *L, int over, int anchor, int extra) {
    int n = 0, k = 0;
    for (char **e = environ; e && *e; e++) n++;
    lua_pushnil(L);
    while (lua_next(L, over)) { n++; lua_pop(L, 1); }
    char **envp = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + extra + 1), 0);
    for (char **e = environ; e && *e; e++)
        if (!env_overridden(L, over, *e)) envp[k++] = *e;
    lua_pushnil(L);
    while (lua_next(L, over)) {
        if (lua_type(L, -1) == LUA_TSTRING && lua_type(L, -2) == LUA_TSTRING) {
            const char *s = lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
            envp[k++] = (char *)s;
            lua_rawseti(L, anchor, (lua_Integer)luaL_len(L, anchor) + 1);
        }
        lua_pop(L, 1);
    }
    envp[k] = NULL;
    return envp;
}

/* ---- spawn ------------------------------------------------------------ */

static int spawn_fork(spawn_plan *sp, pid_t *pid) {
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0) return errno;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* no handler may run in the child */
    *pid = fork();
    if (*pid == 0) {
        close(ep[0]);
        child_exec(sp, ep[1]);
    }
    int e = *pid < 0 ? errno : 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(ep[1]);
    if (!e) {
        int ce = 0;
        ssize_t n;
        do n = read(ep[0], &ce, sizeof ce);       /* EOF: the exec happened */
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof ce) {
            e = ce;
            while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR) {}
        }
    }
    close(ep[0]);
    return e;
}

/* core.process_spawn(path, argv, env, files, listen_pid, stdin, stdout,
 * stderr, dir) -> process | nil, err. argv = {argv0, ...}; env = {NAME =
 * value | false} over this environment; files = {fd, ...} placed at 3..;
 * listen_pid: add LISTEN_PID = the child's pid; stdio fds (-1: inherit,
 * -2: /dev/null); dir (nil: inherit). */
static int process_spawn(lua_State *L) {
    spawn_plan sp;
    memset(&sp, 0, sizeof sp);
    sp.path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_checktype(L, 4, LUA_TTABLE);
    int listen_pid = lua_toboolean(L, 5);
    for (int i = 0; i < 3; i++) sp.stdio[i] = (int)luaL_optinteger(L, 6 + i, -1);
    sp.dir = luaL_optstring(L, 9, NULL);
    lua_settop(L, 9);
    lua_newtable(L);                                     /* 10: anchor */
    spawn_resolve(L, sp.path);
    sp.path = lua_tostring(L, -1);
    lua_rawseti(L, 10, 1);                               /* anchored: stays valid */
    sp.argv = spawn_argv(L, 2);
    lua_rawseti(L, 10, 2);
    sp.nfiles = (int)luaL_len(L, 4);
    luaL_argcheck(L, sp.nfiles <= 1024, 4, "too many files");
    int *files = lua_newuserdatauv(L, sizeof(int) * (size_t)(sp.nfiles + 1), 0);
    for (int i = 0; i < sp.nfiles; i++) {
        lua_rawgeti(L, 4, i + 1);
        files[i] = (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    sp.files = files;
    lua_rawseti(L, 10, 3);
    sp.envp = spawn_envp(L, 3, 10, 1);
    lua_rawseti(L, 10, 4);
    if (listen_pid) {
        int k = 0;
        while (sp.envp[k]) k++;
        sp.pidvar = lua_newuserdatauv(L, PROCESS_PIDBUF, 0);
        strcpy(sp.pidvar, "LISTEN_PID=");
        sp.envp[k++] = sp.pidvar;
        sp.envp[k] = NULL;
        lua_rawseti(L, 10, 7);
    }
    process *p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    p->h.fd = -1;
    p->pid = -1;
    luaL_setmetatable(L, PROCESS_MT);
    pid_t pid = -1;
    int null = -1, e = 0;
    for (int i = 0; i < 3 && !e; i++) {
        if (sp.stdio[i] != -2) continue;
        if (null < 0 && (null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) e = errno;
        sp.stdio[i] = null;
    }
    if (e) return process_fail(L, "spawn", "open", e);
    e = spawn_fork(&sp, &pid);
    if (null >= 0) close(null);
    if (e) return process_fail(L, "spawn", "execve", e);
    p->pid = pid;
    int pfd = pidfd_open(pid, 0);
    if (pfd < 0 && errno == ENOSYS) {
        p->polled = 1;
        return 1;
    }
    if (pfd < 0 || (e = handle_init(&p->h, loop_get(L), pfd)) != 0) {
        e = pfd < 0 ? errno : e;
        if (pfd >= 0) close(pfd);
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return process_fail(L, "spawn", "pidfd_open", e);
    }
    return 1;
}

/* core.process_adopt(pid) -> process | nil, err: a process object for an
 * existing pid (pidfd_open); wait works only if it is our child. */
static int process_adopt(lua_State *L) {
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0, 1, "pid expected");
    process *p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    p->h.fd = -1;
    p->pid = pid;
    luaL_setmetatable(L, PROCESS_MT);
    int pfd = pidfd_open(pid, 0), e;
    if (pfd < 0 && errno == ENOSYS && kill(pid, 0) == 0) {
        p->polled = 1;
        return 1;
    }
    if (pfd < 0) return process_fail(L, "adopt", "pidfd_open", errno);
    if ((e = handle_init(&p->h, loop_get(L), pfd)) != 0) {
        close(pfd);
        return process_fail(L, "adopt", "epoll_ctl", e);
    }
    return 1;
}

/* core.set_subreaper(on) -> true | nil, err: PR_SET_CHILD_SUBREAPER, so
 * orphaned descendants (a restarted server's new copy) become children. */
static int process_set_subreaper(lua_State *L) {
    if (prctl(PR_SET_CHILD_SUBREAPER, (unsigned long)lua_toboolean(L, 1), 0, 0, 0) < 0)
        return process_fail(L, "subreaper", "prctl", errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- wait, kill, close ------------------------------------------------ */

static int process_push_status(lua_State *L, process *p) {
    lua_createtable(L, 0, 2);
    if (p->sig) {
        const char *name = signal_name(p->sig);
        if (name) lua_pushstring(L, name);
        else lua_pushinteger(L, p->sig);
        lua_setfield(L, -2, "signal");
    } else {
        lua_pushinteger(L, p->code);
        lua_setfield(L, -2, "code");
    }
    return 1;
}

/* Reap without blocking: 1 when the child has ended (p->done set). */
static int process_reap_polled(process *p) {
    int status, r;
    do r = waitpid(p->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (r == 0) return 0;
    p->done = 1;
    if (WIFEXITED(status)) p->code = WEXITSTATUS(status);
    else p->sig = WTERMSIG(status);
    return 1;
}

static int process_reap(process *p) {
    if (p->polled) return process_reap_polled(p);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    do r = waitid(P_PIDFD, (id_t)p->h.fd, &si, WEXITED | WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (si.si_pid == 0) return 0;
    p->done = 1;
    if (si.si_code == CLD_EXITED) p->code = si.si_status;
    else p->sig = si.si_status;
    return 1;
}

static int process_wait_k(lua_State *L, int status, lua_KContext kctx);

/* proc:_wait([ctx]) -> {code = n} | {signal = "TERM"} | nil, err: block
 * until the child ends and reap it; later calls return the same. */
static int process_wait(lua_State *L) {
    process_check(L);
    if (!task_current(L)) return loop_block(L, process_wait, lua_gettop(L));
    int ctxidx = ctx_find(L, 2);
    if (ctx_ended(L, ctxidx)) {
        operr e = {"wait", "process", NULL, NULL, NULL, NULL, ctxidx};
        return errors_fail(L, &e, ERR_CTX);
    }
    return process_wait_k(L, LUA_OK, ctxidx);
}

static int process_wait_k(lua_State *L, int status, lua_KContext kctx) {
    process *p = process_check(L);
    task *t = task_current(L);
    int ctxidx = (int)kctx;
    int cause = task_resume_cause(L, t, status, ctxidx);
    if (cause == ERR_TIMEOUT && p->polled) cause = 0;   /* the poll interval */
    if (cause) {
        operr e = {"wait", "process", NULL, NULL, NULL, NULL, ctxidx};
        return errors_fail(L, &e, cause);
    }
    if (p->done) return process_push_status(L, p);
    if (p->closed || (!p->polled && p->h.fd < 0)) return process_fail(L, "wait", NULL, ERR_CLOSED);
    int r = process_reap(p);
    if (r < 0) return process_fail(L, "wait", "waitid", -r);
    if (r == 0) {
        if (p->polled)                    /* no pidfd: look again in 10 ms */
            return task_park_ctx(L, t, NULL, loop_now() + 0.01, PARK_OTHER, ctxidx, kctx,
                                 process_wait_k);
        if (p->h.rd) return process_fail(L, "wait", NULL, ERR_BUSY);
        return task_park_ctx(L, t, &p->h.rd, 0, PARK_OTHER, ctxidx, kctx, process_wait_k);
    }
    handle_close(&p->h);           /* reaped: the pidfd has served */
    return process_push_status(L, p);
}

/* proc:_kill(sig) -> true | nil, err: pidfd_send_signal, so a recycled
 * pid is never hit; after the exit was reaped: nil, ESRCH. */
static int process_kill(lua_State *L) {
    process *p = process_check(L);
    int sig = signal_number_arg(L, 2);
    luaL_argcheck(L, sig != 0, 2, "unknown signal");
    if (p->done || p->closed || (!p->polled && p->h.fd < 0))
        return process_fail(L, "kill", "pidfd_send_signal", ESRCH);
    if (p->polled) {
        if (kill(p->pid, sig) < 0) return process_fail(L, "kill", "kill", errno);
    } else if (pidfd_send_signal(p->h.fd, sig, NULL, 0) < 0)
        return process_fail(L, "kill", "pidfd_send_signal", errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* proc:_pid() -> the child's pid. */
static int process_pid(lua_State *L) {
    lua_pushinteger(L, process_check(L)->pid);
    return 1;
}

/* proc:_close(): release the pidfd. A child not yet waited for stays a
 * zombie until this process exits, as in Go. */
static int process_close(lua_State *L) {
    process *p = process_check(L);
    p->closed = 1;
    handle_close(&p->h);
    return 0;
}

/* ---- helpers for the Lua side ---------------------------------------- */

/* core.pipe() -> rfd, wfd | nil, err: both ends close-on-exec, the read end
 * non-blocking (a readiness pipe: the child gets the write end). */
static int process_pipe(lua_State *L) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return process_fail(L, "pipe", "pipe2", errno);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    lua_pushinteger(L, p[0]);
    lua_pushinteger(L, p[1]);
    return 2;
}

/* core.write_fd(fd, s) -> true | nil, err: one write(2) of a short string. */
static int process_write_fd(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    ssize_t w;
    do w = write(fd, s, n);
    while (w < 0 && errno == EINTR);
    if (w < 0) return process_fail(L, "write", "write", errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.unsetenv(name): remove a variable from this process's environment. */
static int process_unsetenv(lua_State *L) {
    unsetenv(luaL_checkstring(L, 1));
    return 0;
}

/* core.exe_path() -> the running program's path (/proc/self/exe). */
static int process_exe_path(lua_State *L) {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0) return process_fail(L, "exe", "readlink", errno);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* core.cpu_count() -> the CPUs this process may run on. */
static int process_cpu_count(lua_State *L) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

static const luaL_Reg process_methods[] = {
    {"_close", process_close},
    {"_kill", process_kill},
    {"_pid", process_pid},
    {"_wait", process_wait},
    {NULL, NULL}
};

static const luaL_Reg process_meta[] = {
    {"__gc", process_close},
    {NULL, NULL}
};

static const luaL_Reg process_funcs[] = {
    {"cpu_count", process_cpu_count},
    {"exe_path", process_exe_path},
    {"pipe", process_pipe},
    {"process_adopt", process_adopt},
    {"process_spawn", process_spawn},
    {"set_subreaper", process_set_subreaper},
    {"unsetenv", process_unsetenv},
    {"write_fd", process_write_fd},
    {NULL, NULL}
};

int process_open(lua_State *L) {
    class_register(L, PROCESS_MT, process_meta, process_methods);
    luaL_setfuncs(L, process_funcs, 0);
    return 0;
}
