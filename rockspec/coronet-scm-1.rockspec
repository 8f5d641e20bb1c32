rockspec_format = "3.0"
package = "coronet"
version = "scm-1"
source = {
   url = "git+file:///dev/null",   -- built from a checkout: luarocks make rockspec/coronet-scm-1.rockspec
}
description = {
   summary = "Go's net package for Lua 5.4: conns, listeners, deadlines, contexts on one epoll loop",
   detailed = [[
coronet brings Go's net model to Lua 5.4: stream conns (TCP, unix),
listeners, absolute deadlines and context-style cancellation, as userdata
driven by a coroutine scheduler over one C poller (epoll).
]],
   license = "MIT",
   homepage = "https://example.invalid/coronet",
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
build = {
   type = "make",
   build_target = "all",
   build_variables = {
      CFLAGS = "$(CFLAGS)",
      LUA_INC = "$(LUA_INCDIR)",
      LUA = "$(LUA)",
   },
   install_target = "install",
   install_variables = {
      INST_LIBDIR = "$(LIBDIR)",
      INST_LUADIR = "$(LUADIR)",
   },
}
