/* task.c - the task object and the resume step. A task is one userdata:
 * the handle net.go returns (its methods come from sched.lua) and the
 * record the loop parks and wakes (loop.h). It runs its function in its
 * own coroutine, as that coroutine's main function (no frame of the
 * scheduler's lies under it); while it lives, the loop's task table
 * anchors it. core.run_ready resumes the woken tasks in C and hands each
 * task that ends to sched.lua's finish. Fields the scheduler or a user sets
 * that C does not know go to a table made on first use, so an idle task
 * costs its coroutine, this userdata and two slots in C arrays. */
#include <stdlib.h>
#include <string.h>
#include "lauxlib.h"
#include "class.h"
#include "loop.h"

const char task_park_token = 0;       /* yielded by every park */
static const char CO_KEY = 0;         /* in a task's field table: its coroutine */
static const char TASKMT_KEY = 0;     /* registry: TASK_MT, found without hashing its name */

/* ---- the coroutine -> task map ---------------------------------------
 * Linear probing keyed on the lua_State pointer, so finding the running
 * task costs a hash and a probe or two, and no Lua table access. (Lua's
 * per-thread extra space can't be used: the main thread's is never
 * initialised, and threads made before this module loaded copy garbage.) */

struct task_slot { task *t; };   /* keyed by t->co: 8 bytes a task */

static unsigned thread_hash(const lua_State *co, unsigned mask) {
    uintptr_t p = (uintptr_t)co >> 4;
    return (unsigned)((p * 0x9E3779B97F4A7C15ull) >> 40) & mask;
}

static int thread_grow(loop *lp) {
    unsigned cap = lp->capthread ? lp->capthread * 2 : 256;
    struct task_slot *old = lp->bythread, *n = calloc(cap, sizeof *n);
    if (!n) return -1;
    for (unsigned i = 0; i < lp->capthread; i++) {
        if (!old[i].t) continue;
        unsigned j = thread_hash(old[i].t->co, cap - 1);
        while (n[j].t) j = (j + 1) & (cap - 1);
        n[j] = old[i];
    }
    free(old);
    lp->bythread = n;
    lp->capthread = cap;
    return 0;
}

static int thread_put(loop *lp, task *t) {
    if ((lp->nthread + 1) * 4 > lp->capthread * 3 && thread_grow(lp) < 0) return -1;  /* load <= 3/4 */
    unsigned mask = lp->capthread - 1, i = thread_hash(t->co, mask);
    while (lp->bythread[i].t) i = (i + 1) & mask;
    lp->bythread[i].t = t;
    lp->nthread++;
    return 0;
}

static task *thread_get(loop *lp, const lua_State *co) {
    if (!lp->capthread) return NULL;
    unsigned mask = lp->capthread - 1, i = thread_hash(co, mask);
    for (; lp->bythread[i].t; i = (i + 1) & mask)
        if (lp->bythread[i].t->co == co) return lp->bythread[i].t;
    return NULL;
}

static void thread_del(loop *lp, const lua_State *co) {
    if (!lp->capthread) return;
    unsigned mask = lp->capthread - 1, i = thread_hash(co, mask);
    while (lp->bythread[i].t && lp->bythread[i].t->co != co) i = (i + 1) & mask;
    if (!lp->bythread[i].t) return;
    lp->bythread[i].t = NULL;
    lp->nthread--;
    /* backward-shift: re-place the rest of the probe run */
    for (unsigned j = (i + 1) & mask; lp->bythread[j].t; j = (j + 1) & mask) {
        struct task_slot s = lp->bythread[j];
        lp->bythread[j].t = NULL;
        unsigned k = thread_hash(s.t->co, mask);
        while (lp->bythread[k].t) k = (k + 1) & mask;
        lp->bythread[k] = s;
    }
}

/* The coroutine of the task task_step resumes last (or the last one
 * task_current found outside it) and its task: a read, its continuation
 * and the write after it all ask for the same one, and so does loop_get.
 * Cleared when that task ends or its loop is freed, so a thread address
 * here always belongs to a live task. */
const lua_State *current_co;
task *current_task;

task *task_current(lua_State *L) {
    if (L == current_co) return current_task;
    task *t = thread_get(loop_get(L), L);
    if (t) {
        current_co = L;
        current_task = t;
    }
    return t;
}

void task_loop_free(loop *lp) {
    free(lp->bythread);
    free(lp->freeanchor);
    lp->bythread = NULL;
    lp->freeanchor = NULL;
    lp->capthread = lp->nthread = 0;
    lp->nfreeanchor = lp->capfreeanchor = lp->nanchor = 0;
    if (current_task && current_task->lp == lp) current_co = NULL, current_task = NULL;
}

/* ---- the task table: live tasks by slot ------------------------------ */

/* push_tasks: push lp's task table (slot -> task userdata). */
static void push_tasks(lua_State *L, loop *lp) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, lp->ref_tasks);
}

/* task_push: push t's userdata; false (pushing nil) once t has ended. */
static int task_push(lua_State *L, task *t) {
    if (!t->anchor) {
        lua_pushnil(L);
        return 0;
    }
    push_tasks(L, t->lp);
    lua_rawgeti(L, -1, t->anchor);
    lua_remove(L, -2);
    return 1;
}

/* anchor: store the task userdata at idx in a free slot of the task table. */
static int anchor(lua_State *L, loop *lp, task *t, int idx) {
    int slot;
    if (lp->nfreeanchor) {
        slot = lp->freeanchor[--lp->nfreeanchor];
    } else {
        if (lp->nanchor == lp->capfreeanchor) {   /* the free list can hold every slot */
            int cap = lp->capfreeanchor ? 2 * lp->capfreeanchor : 256;
            int *f = realloc(lp->freeanchor, (size_t)cap * sizeof *f);
            if (!f) return -1;
            lp->freeanchor = f;
            lp->capfreeanchor = cap;
        }
        slot = ++lp->nanchor;
    }
    idx = lua_absindex(L, idx);
    push_tasks(L, lp);
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, slot);
    lua_pop(L, 1);
    t->anchor = slot;
    return 0;
}

static void unanchor_in(lua_State *L, loop *lp, task *t, int tasks);

static void unanchor(lua_State *L, loop *lp, task *t) {
    if (!t->anchor) return;
    push_tasks(L, lp);
    unanchor_in(L, lp, t, -1);
    lua_pop(L, 1);                            /* pop the task table */
}

/* unanchor_in: unanchor t (anchored) in the task table at index tasks. */
static void unanchor_in(lua_State *L, loop *lp, task *t, int tasks) {
    tasks = lua_absindex(L, tasks);
    lua_pushnil(L);
    lua_rawseti(L, tasks, t->anchor);
    lp->freeanchor[lp->nfreeanchor++] = t->anchor;
    t->anchor = 0;
}

/* ---- fields ---------------------------------------------------------- */

/* push_fields: push the field table of the task userdata at idx, making it
 * (and moving the coroutine's anchor into it) when create; else nil if none. */
static void push_fields(lua_State *L, int idx, int create) {
    idx = lua_absindex(L, idx);
    if (lua_getiuservalue(L, idx, 1) == LUA_TTABLE || !create) {
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_pushnil(L);
        }
        return;
    }
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -2);                  /* the coroutine, or nil once ended */
    lua_rawsetp(L, -2, &CO_KEY);
    lua_remove(L, -2);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, idx, 1);
}

/* push_co: push the coroutine of the task userdata at idx, or nil. */
static void push_co(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    if (lua_getiuservalue(L, idx, 1) == LUA_TTABLE) {
        lua_rawgetp(L, -1, &CO_KEY);
        lua_remove(L, -2);
    }
}

/* drop_co: the task at idx has ended: let its coroutine go. */
static void drop_co(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    if (lua_getiuservalue(L, idx, 1) == LUA_TTABLE) {
        lua_pushnil(L);
        lua_rawsetp(L, -2, &CO_KEY);
        lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_setiuservalue(L, idx, 1);
    }
}

enum { F_NONE, F_ID, F_CO, F_STARTED, F_DONE, F_OK, F_OBSERVED, F_ABANDONED, F_CANCELED };

/* The fields C keeps, by name (matched by length first: this runs on
 * every field access); the others live in the field table. */
static int field_of(lua_State *L, int idx) {
    size_t n;
    if (lua_type(L, idx) != LUA_TSTRING) return F_NONE;
    const char *k = lua_tolstring(L, idx, &n);
#define IS(name) (memcmp(k, name, sizeof name - 1) == 0)
    switch (n) {
    case 2: return IS("id") ? F_ID : IS("co") ? F_CO : IS("ok") ? F_OK : F_NONE;
    case 4: return IS("done") ? F_DONE : F_NONE;
    case 7: return IS("started") ? F_STARTED : F_NONE;
    case 8: return IS("observed") ? F_OBSERVED : IS("canceled") ? F_CANCELED : F_NONE;
    case 9: return IS("abandoned") ? F_ABANDONED : F_NONE;
    default: return F_NONE;
    }
#undef IS
}

static int flag_get(const task *t, int f) {
    switch (f) {
    case F_STARTED: return t->started;
    case F_DONE: return t->done;
    case F_OK: return t->ok;
    case F_OBSERVED: return t->observed;
    case F_ABANDONED: return t->abandoned;
    default: return t->canceled;
    }
}

static void flag_set(task *t, int f, int on) {
    switch (f) {
    case F_DONE: t->done = on; break;
    case F_OK: t->ok = on; break;
    case F_OBSERVED: t->observed = on; break;
    case F_ABANDONED: t->abandoned = on; break;
    default: t->canceled = (uint8_t)on; break;
    }
}

/* task.__index(t, k): a method (upvalue 1, sched.lua's Task table), a
 * field C keeps, or the field table's. */
static int task_index(lua_State *L) {
    task *t = lua_touserdata(L, 1);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    int f = field_of(L, 2);
    if (f == F_ID) {
        lua_pushinteger(L, t->id);
    } else if (f == F_CO) {
        push_co(L, 1);
    } else if (f != F_NONE) {
        lua_pushboolean(L, flag_get(t, f));
    } else {
        push_fields(L, 1, 0);
        if (lua_istable(L, -1)) {
            lua_pushvalue(L, 2);
            lua_rawget(L, -2);
        }
    }
    return 1;
}

/* task.__newindex(t, k, v): the flags C keeps (id and co are read-only),
 * anything else into the field table. */
static int task_newindex(lua_State *L) {
    task *t = lua_touserdata(L, 1);
    int f = field_of(L, 2);
    if (f == F_ID || f == F_CO || f == F_STARTED)
        return luaL_error(L, "coronet: task field '%s' is read-only", lua_tostring(L, 2));
    if (f != F_NONE) {
        flag_set(t, f, lua_toboolean(L, 3) != 0);
        return 0;
    }
    push_fields(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
    return 0;
}

task *task_check(lua_State *L, int idx) {
    return class_check(L, idx, &TASKMT_KEY, TASK_MT);
}

/* ---- making and resuming tasks -------------------------------------- */

/* trace_creation: net.debug.mark() is on: set the new task on top's
 * `created` to the creation-site function's view of level 3 (the caller
 * of go: level 1 is that function, 2 spawn). */
static void trace_creation(lua_State *L, loop *lp) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, lp->ref_trace);
    lua_pushinteger(L, 3);
    lua_call(L, 1, 1);
    lua_setfield(L, -2, "created");           /* through the task's __newindex */
}

/* core.spawn(fn, ...) -> task: a new task that will run fn(...) in a
 * new coroutine, queued to start on the next loop turn. fn must be a
 * function or callable; the error names where go was called (go is
 * spawn itself). */
static int task_spawn(lua_State *L) {
    int n = lua_gettop(L);
    if (lua_type(L, 1) != LUA_TFUNCTION) {    /* or a callable value */
        if (luaL_getmetafield(L, 1, "__call") == LUA_TNIL) {
            luaL_where(L, 1);                 /* where net.go was called */
            lua_pushfstring(L, "bad argument #1 to 'go' (function expected, got %s)",
                            luaL_typename(L, 1));
            lua_concat(L, 2);
            return lua_error(L);
        }
        lua_pop(L, 1);
    }
    loop *lp = loop_get(L);
    lua_State *co = lua_newthread(L);
    lua_rotate(L, 1, 1);                       /* the thread first, then fn, args */
    if (!lua_checkstack(co, n)) return luaL_error(L, "coronet: too many arguments");
    if (!lp->sched_ready) return luaL_error(L, "coronet: scheduler not loaded");
    lua_xmove(L, co, n);                       /* fn and its arguments */
    task *t = lua_newuserdatauv(L, sizeof *t, 1);
    memset(t, 0, sizeof *t);
    t->lp = lp;
    t->co = co;
    t->heap_idx = -1;
    t->born = loop_now();
    t->id = ++lp->next_id;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lp->ref_taskmt);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);              /* anchor the coroutine */
    if (lp->ref_trace) trace_creation(L, lp); /* before the task is queued: may raise */
    if (anchor(L, lp, t, -1) < 0 || thread_put(lp, t) < 0 || loop_ready_push(lp, t) < 0) {
        unanchor(L, lp, t);
        thread_del(lp, co);
        t->co = NULL;
        return luaL_error(L, "coronet: out of memory");
    }
    return 1;
}

/* core.set_trace_creation(fn | nil): from now on spawn sets each new
 * task's `created` to fn(3) (net.debug.mark's creation site); nil stops. */
static int task_set_trace_creation(lua_State *L) {
    loop *lp = loop_get(L);
    if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
    if (lp->ref_trace) luaL_unref(L, LUA_REGISTRYINDEX, lp->ref_trace);
    lua_settop(L, 1);
    lp->ref_trace = lua_isnil(L, 1) ? 0 : luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* task_release: the C side of detaching t: its slot, its thread map
 * entry, the current-task cache. */
static void task_release(loop *lp, task *t) {
    lua_State *co = t->co;
    if (t->slot) {                            /* a call that ended while it held one */
        if (*t->slot == t) *t->slot = NULL;
        t->slot = NULL;
    }
    thread_del(lp, co);
    if (current_co == co) current_co = NULL, current_task = NULL;
    t->co = NULL;
}

/* task_detach: t has ended: let go of its coroutine and its slots. */
static void task_detach(lua_State *L, loop *lp, task *t) {
    task_push(L, t);
    drop_co(L, -1);
    lua_pop(L, 1);
    unanchor(L, lp, t);
    task_release(lp, t);
}

/* task_end_plain: t returned nothing and has no fields (so no waiters):
 * finish has nothing to do. Detach it with one look at the task table.
 * 0 (and nothing done) when t has fields. */
static int task_end_plain(lua_State *L, loop *lp, task *t) {
    push_tasks(L, lp);
    lua_rawgeti(L, -1, t->anchor);            /* t's userdata */
    int plain = lua_getiuservalue(L, -1, 1) == LUA_TTHREAD;
    lua_pop(L, 1);                            /* pop the uservalue */
    if (plain) {
        lua_pushnil(L);
        lua_setiuservalue(L, -2, 1);          /* let the coroutine go */
        unanchor_in(L, lp, t, -2);            /* the table already at hand */
        task_release(lp, t);
        t->done = t->ok = 1;
    }
    lua_pop(L, 2);                            /* pop the userdata, the task table */
    return plain;
}

/* task_ended: t's coroutine returned (status LUA_OK, nres results on it)
 * or raised (the error on top), or t never ran (abandoned: status -1).
 * Detach the coroutine and call finish(t, true, results...) or
 * finish(t, false, err [, co]). */
static void task_ended(lua_State *L, loop *lp, task *t, int status, int nres) {
    lua_State *co = t->co;
    luaL_checkstack(L, nres + 5, "coronet: too many results");
    if (status == LUA_OK && nres == 0 && t->anchor && task_end_plain(L, lp, t)) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lp->ref_finish);
    task_push(L, t);
    int ti = lua_gettop(L);
    push_co(L, ti);                           /* keeps co alive through finish */
    task_detach(L, lp, t);
    t->done = 1;
    t->ok = status == LUA_OK;
    int nargs;
    if (status == LUA_OK) {
        lua_pop(L, 1);                        /* the coroutine: not needed */
        lua_pushboolean(L, 1);
        lua_xmove(co, L, nres);
        nargs = 2 + nres;
    } else if (status < 0) {
        lua_pop(L, 1);
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "coronet: abandoned before it ran");
        nargs = 3;
    } else {
        lua_pushboolean(L, 0);
        lua_xmove(co, L, 1);                  /* the error */
        lua_rotate(L, -3, -1);                /* ..., false, err, co */
        nargs = 4;
    }
    lua_call(L, nargs, 0);
}

/* task_step: resume t once; a task that ends is finished. */
static void task_step(lua_State *L, loop *lp, task *t) {
    lua_State *co = t->co;
    int nargs = 0, nres = 0;
    if (!co) return;
    if (!t->started) {
        t->started = 1;
        if (t->abandoned) {
            task_ended(L, lp, t, -1, 0);
            return;
        }
        nargs = lua_gettop(co) - 1;             /* fn, then its arguments */
    }
    current_co = co;                          /* its first call will ask: no map probe */
    current_task = t;
    int status = lua_resume(co, L, nargs, &nres);
    if (status == LUA_YIELD) {
        int park = nres == 1 && lua_touserdata(co, -1) == &task_park_token;
        lua_pop(co, nres);
        if (!park && !t->parked && !t->queued && loop_ready_push(lp, t) < 0)
            luaL_error(L, "coronet: out of memory");   /* a coroutine.yield(): next turn */
        return;
    }
    task_ended(L, lp, t, status, nres);
}

/* core.run_ready([t]) -> [done]: resume every task that was ready when it
 * was called, in order; tasks they wake run on the next call. When an
 * error from finish cuts a batch short, the next call resumes the rest
 * first. With t, returns whether t has ended (the driver's loop test). */
static int task_run_ready(lua_State *L) {
    loop *lp = loop_get(L);
    task *watch = NULL;
    if (!lua_isnoneornil(L, 1)) {             /* checked against upvalue 1, TASK_MT: */
        int ok = lua_getmetatable(L, 1) && lua_rawequal(L, -1, lua_upvalueindex(1));
        lua_settop(L, 1);                     /* no registry lookup on every turn */
        watch = ok ? lua_touserdata(L, 1) : task_check(L, 1);
    }
    lua_settop(L, 1);                         /* keeps watch alive */
    if (lp->irun >= lp->nrun) {               /* take the ready list as the batch */
        task **r = lp->run;
        int cap = lp->caprun;
        lp->run = lp->ready;
        lp->caprun = lp->capready;
        lp->nrun = lp->nready;
        lp->irun = 0;
        lp->ready = r;
        lp->capready = cap;
        lp->nready = 0;
    }
    while (lp->irun < lp->nrun) {
        task *t = lp->run[lp->irun++];
        t->queued = 0;
        task_step(L, lp, t);
    }
    if (!watch) return 0;
    lua_pushboolean(L, watch->done);
    return 1;
}

/* core.task_setup(methods, finish): sched.lua registers the task methods
 * (and __tostring) and the function told of each end; spawn refuses to
 * make tasks until then. */
static int task_setup(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    loop *lp = loop_get(L);
    lua_pushvalue(L, 2);
    lua_rawseti(L, LUA_REGISTRYINDEX, lp->ref_finish);
    lp->sched_ready = 1;
    luaL_getmetatable(L, TASK_MT);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, task_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, task_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_getfield(L, 1, "__tostring");
    lua_setfield(L, -2, "__tostring");
    return 0;
}

/* core.current() -> the running task, or nil outside tasks. */
static int task_current_l(lua_State *L) {
    task *t = task_current(L);
    if (!t) lua_pushnil(L);
    else task_push(L, t);
    return 1;
}

/* core.task_of(co) -> the live task running coroutine co, or nil. */
static int task_of(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    task *t = co ? thread_get(loop_get(L), co) : NULL;
    if (!t) lua_pushnil(L);
    else task_push(L, t);
    return 1;
}

/* core.live_tasks() -> {task, ...}: every live task, in no order. */
static int task_live(lua_State *L) {
    loop *lp = loop_get(L);
    lua_createtable(L, lp->nanchor - lp->nfreeanchor, 0);
    push_tasks(L, lp);
    int n = 0;
    for (int i = 1; i <= lp->nanchor; i++) {
        if (lua_rawgeti(L, -1, i) == LUA_TUSERDATA) lua_rawseti(L, -3, ++n);
        else lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 1;
}

/* core.task_fn(task) -> the function a task that has not started will
 * run, or nil. */
static int task_fn(lua_State *L) {
    task *t = task_check(L, 1);
    if (t->started || !t->co || !lua_checkstack(t->co, 1)) return 0;
    lua_pushvalue(t->co, 1);                  /* co's stack: fn, args */
    lua_xmove(t->co, L, 1);
    return 1;
}

/* No __gc: a task is anchored from spawn until task_detach, which leaves
 * nothing of it in the loop (no timer, slot, map entry or ready entry),
 * so collecting one needs no finaliser, and tasks cost the collector
 * nothing at their end (a conn per request made two finalisers run). */
static const luaL_Reg task_meta[] = {
    {NULL, NULL}
};

static const luaL_Reg task_funcs[] = {
    {"current", task_current_l},
    {"live_tasks", task_live},
    {"set_trace_creation", task_set_trace_creation},
    {"spawn", task_spawn},
    {"task_fn", task_fn},
    {"task_of", task_of},
    {"task_setup", task_setup},
    {NULL, NULL}
};

int task_open(lua_State *L) {
    class_register_keyed(L, TASK_MT, &TASKMT_KEY, task_meta, NULL);
    loop *lp = loop_get(L);
    if (!lp->ref_tasks) {
        lua_newtable(L);
        lp->ref_tasks = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pushboolean(L, 0);                 /* a placeholder until task_setup */
        lp->ref_finish = luaL_ref(L, LUA_REGISTRYINDEX);
        luaL_getmetatable(L, TASK_MT);
        lp->ref_taskmt = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    luaL_setfuncs(L, task_funcs, 0);
    luaL_getmetatable(L, TASK_MT);
    lua_pushcclosure(L, task_run_ready, 1);
    lua_setfield(L, -2, "run_ready");
    return 0;
}
