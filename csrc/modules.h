/* modules.h - the _open functions luaopen_coronet_core calls, for the
 * files that have no header of their own. Each adds its functions (and
 * registers its metatables) in the core table on top of the stack. */
#ifndef CORONET_MODULES_H
#define CORONET_MODULES_H

#include "lua.h"

/* listener_open: stream listeners (csrc/listener.c). */
int listener_open(lua_State *L);
/* resolver_open: the c-ares resolver and the system pool (csrc/resolver.c). */
int resolver_open(lua_State *L);
/* fdwatch_open: watching a terminal or pipe fd (csrc/fdwatch.c). */
int fdwatch_open(lua_State *L);
/* probe_open: core.probe, the pool's idle-socket health check (csrc/probe.c). */
int probe_open(lua_State *L);
/* process_open: child processes, pipes, env helpers (csrc/process.c). */
int process_open(lua_State *L);

#endif
