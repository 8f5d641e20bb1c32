/* track.c - which conns, listeners and packet conns exist, and what their
 * C side knows (fd, deadlines, the tasks parked on them), for
 * net.debug.conns() (lua/coronet/debug.lua). The registry is a weak-keyed
 * table: object -> the id of the task that created it (true when made
 * outside a task), so tracking keeps neither a conn nor a task alive. */
#include "lauxlib.h"
#include "loop.h"
#include "track.h"

static const char TRACK_KEY = 0;

void track_handle(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &TRACK_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_pushvalue(L, idx);
    task *t = task_current(L);
    if (t && t->id) lua_pushinteger(L, t->id);  /* an id: keeps no coroutine alive */
    else lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* core.track(obj) -> obj: track a conn made on the Lua side. */
static int track_l(lua_State *L) {
    luaL_checktype(L, 1, LUA_TUSERDATA);
    track_handle(L, 1);
    lua_settop(L, 1);
    return 1;
}

/* core.tracked() -> the registry table (weak keys: object -> creator task id). */
static int track_tracked(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &TRACK_KEY);
    return 1;
}

/* The metatables of objects whose userdata begins with a handle, and the
 * class each is reported as (a TLS conn is a conn converted in place). */
static const char *const track_classes[][2] = {
    {"coronet.conn", "conn"}, {"coronet.tls_conn", "conn"},
    {"coronet.listener", "listener"}, {"coronet.packet", "packet"}, {NULL, NULL}
};

static void track_push_task(lua_State *L, task *t) {
    if (t) lua_pushthread(t->co), lua_xmove(t->co, L, 1);
    else lua_pushnil(L);
}

/* core.handle_info(obj) -> {class, fd, rdl, wrl, rd, wr} | nil: the handle
 * of a conn or TLS conn ("conn"), listener or packet conn: fd (-1 once closed),
 * absolute read/write deadlines (0: none), the coroutines parked reading
 * and writing. nil for any other value. */
static int track_handle_info(lua_State *L) {
    handle *h = NULL;
    const char *cls = NULL;
    for (int i = 0; track_classes[i][0] && !h; i++) {
        h = luaL_testudata(L, 1, track_classes[i][0]);
        cls = track_classes[i][1];
    }
    if (!h) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 6);
    lua_pushstring(L, cls);
    lua_setfield(L, -2, "class");
    lua_pushinteger(L, h->fd);
    lua_setfield(L, -2, "fd");
    lua_pushnumber(L, h->rdl);
    lua_setfield(L, -2, "rdl");
    lua_pushnumber(L, h->wrl);
    lua_setfield(L, -2, "wrl");
    track_push_task(L, h->rd && h->rd->parked ? h->rd : NULL);
    lua_setfield(L, -2, "rd");
    track_push_task(L, h->wr && h->wr->parked ? h->wr : NULL);
    lua_setfield(L, -2, "wr");
    return 1;
}

/* core.task_kind(task) -> the park kind code (core.park_kinds) of a
 * parked task, or nil when it is not parked. */
static int track_task_kind(lua_State *L) {
    task *t = task_check(L, 1);
    if (!t->parked) lua_pushnil(L);
    else lua_pushinteger(L, t->kind);
    return 1;
}

/* core.task_born(task) -> the loop_now() time the task was created. */
static int track_task_born(lua_State *L) {
    task *t = task_check(L, 1);
    lua_pushnumber(L, t->born);
    return 1;
}

static const luaL_Reg track_funcs[] = {
    {"handle_info", track_handle_info},
    {"task_born", track_task_born},
    {"task_kind", track_task_kind},
    {"track", track_l},
    {"tracked", track_tracked},
    {NULL, NULL}
};

int track_open(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &TRACK_KEY) != LUA_TTABLE) {
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        /* Weak keys and values: the values (ids, true) are never collected,
         * so "v" changes nothing but makes the table all-weak, which the
         * collector only clears, where a weak-keyed one (an ephemeron
         * table) is traversed again every cycle: a cost per open conn. */
        lua_pushliteral(L, "kv");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &TRACK_KEY);
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, track_funcs, 0);
    return 0;
}
