/* tty.h - terminal modes and Ctrl-C for the REPL's line editor
 * (csrc/tty.c; lua/coronet/editor.lua and lua/coronet/repl.lua use it). */
#ifndef CORONET_TTY_H
#define CORONET_TTY_H

#include "lua.h"

/* tty_open: add core.tty_* and core.sigint_* to the table on top of the stack. */
int tty_open(lua_State *L);

#endif
