/* signame.h - signal names and numbers, shared by net.signal (signal.c)
 * and net.process (process.c). */
#ifndef CORONET_SIGNAME_H
#define CORONET_SIGNAME_H

#include "lua.h"

/* signal_number: the number of a signal named without "SIG" ("TERM"),
 * or of a decimal string / Lua integer at idx; 0 when unknown. */
int signal_number_arg(lua_State *L, int idx);

/* signal_name: the name without "SIG" of signo ("TERM"), or NULL. */
const char *signal_name(int signo);

/* signal_child_reset: in a child between fork and exec: every signal to
 * its default disposition, then an empty mask. Async-signal-safe. */
void signal_child_reset(void);

/* signal_pipe_harmless: replace a default SIGPIPE disposition with a no-op
 * handler: writes to a reset peer fail with EPIPE, and since exec resets a
 * caught signal (never an ignored one), children get the default. */
void signal_pipe_harmless(void);

/* signal_open: core.signal_* and the watcher type (csrc/signal.c). */
int signal_open(lua_State *L);

#endif
