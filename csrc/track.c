/* track.c - which conns, listeners and packet conns exist, and what their
 * C side knows (fd, deadlines, the tasks parked on them), for
 * net.debug.conns() (lua/coronet/debug.lua). Tracked objects sit in the
 * array part of a weak-valued table, one slot each, with the id of the
 * task that made each (0: made outside a task) in a C array beside it, so
 * tracking keeps neither a conn nor a task alive. Closing the object (or
 * its __gc, which closes it) gives its slot back (track_release, from
 * handle_close) for the next one: tracking a new conn costs an array
 * store, where a weak-keyed table rehashed its dead keys every so often.
 * A slot given back may still show its closed object until it is taken
 * again; net.debug.conns() skips closed ones. */
#include <stdlib.h>
#include "lauxlib.h"
#include "conn.h"
#include "loop.h"
#include "track.h"

static void track_push_table(lua_State *L, loop *lp) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, lp->ref_track);
}

/* track_new_table: push an empty weak-valued table with an array part of
 * cap slots. Every slot is in the array part, so no store ever rehashes
 * it, and the collector clears it with one pass over the array. */
static void track_new_table(lua_State *L, unsigned cap) {
    lua_createtable(L, (int)cap, 0);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
}

/* track_grow: double the slots (the first time: 64) into a new table that
 * replaces the old one, on top of the stack. 0 when out of memory. */
static int track_grow(lua_State *L, loop *lp) {
    unsigned old = lp->track_cap, cap = old ? old * 2 : 64;
    if (cap > (1u << HANDLE_TRACK_BITS) - 1) return 0;   /* handle.track's width */
    lua_Integer *ids = realloc(lp->track_ids, cap * sizeof *ids);
    if (!ids) return 0;
    lp->track_ids = ids;
    track_new_table(L, cap);
    for (unsigned i = 1; i <= old; i++) {
        lua_rawgeti(L, -2, (lua_Integer)i);
        lua_rawseti(L, -2, (lua_Integer)i);
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, LUA_REGISTRYINDEX, lp->ref_track);
    lua_remove(L, -2);
    lp->track_cap = cap;
    return 1;
}

void track_handle(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    handle *h = lua_touserdata(L, idx);
    loop *lp = loop_get(L);
    if (!lp->ref_track || h->track) return;
    track_push_table(L, lp);
    unsigned slot;
    if (lp->ntrackfree) {
        slot = lp->track_free[--lp->ntrackfree];
    } else if (lp->track_used < lp->track_cap || track_grow(L, lp)) {
        slot = ++lp->track_used;
    } else {                                  /* out of memory: left untracked */
        lua_pop(L, 1);
        return;
    }
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, (lua_Integer)slot);
    lua_pop(L, 1);
    task *t = task_current(L);
    lp->track_ids[slot - 1] = t ? t->id : 0;   /* an id: keeps no coroutine alive */
    h->track = slot;
}

void track_release(handle *h) {
    loop *lp = h->lp;
    unsigned slot = h->track;
    h->track = 0;
    if (!slot || !lp || lp->closed || slot > lp->track_used) return;
    if (lp->ntrackfree == lp->captrackfree) {
        unsigned cap = lp->captrackfree ? lp->captrackfree * 2 : 64;
        unsigned *n = realloc(lp->track_free, cap * sizeof *n);
        if (!n) return;                       /* the slot stays empty, unused */
        lp->track_free = n;
        lp->captrackfree = cap;
    }
    lp->track_free[lp->ntrackfree++] = slot;
}

/* core.track(conn) -> conn: track a conn made on the Lua side. */
static int track_l(lua_State *L) {
    conn_check_at(L, 1);
    track_handle(L, 1);
    lua_settop(L, 1);
    return 1;
}

/* core.tracked() -> a new table: each tracked object not yet collected ->
 * the id of the task that made it (true when made outside a task). */
static int track_tracked(lua_State *L) {
    loop *lp = loop_get(L);
    lua_newtable(L);
    if (!lp->ref_track) return 1;
    track_push_table(L, lp);
    for (unsigned i = 1; i <= lp->track_cap; i++) {
        if (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        lua_Integer id = lp->track_ids[i - 1];
        if (id) lua_pushinteger(L, id);
        else lua_pushboolean(L, 1);
        lua_rawset(L, -4);
    }
    lua_pop(L, 1);
    return 1;
}

/* core.track_slots() -> how many slots the registry has (spec: slots
 * given back at close are reused, so this follows the open count). */
static int track_slots(lua_State *L) {
    lua_pushinteger(L, loop_get(L)->track_cap);
    return 1;
}

/* track_loop_free: loop_gc lets go of the ids. */
void track_loop_free(loop *lp) {
    free(lp->track_ids);
    free(lp->track_free);
    lp->track_ids = NULL;
    lp->track_free = NULL;
    lp->track_cap = lp->track_used = lp->ntrackfree = lp->captrackfree = 0;
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
    {"track_slots", track_slots},
    {NULL, NULL}
};

int track_open(lua_State *L) {
    loop *lp = loop_get(L);
    if (!lp->ref_track) {
        track_new_table(L, 0);
        lp->ref_track = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    luaL_setfuncs(L, track_funcs, 0);
    return 0;
}
