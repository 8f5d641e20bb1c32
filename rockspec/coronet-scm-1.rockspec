rockspec_format = "3.0"
package = "coronet"
version = "scm-1"
source = {
   -- `make dist` writes this tarball (and a packed build/dist/coronet-scm-1.src.rock);
   -- `luarocks --lua-version=5.4 make rockspec/coronet-scm-1.rockspec` in a
   -- checkout builds from the working tree and does not fetch it.
   url = "coronet-scm.tar.gz",
   dir = "coronet-scm",
}
description = {
   summary = "Go's net package for Lua 5.4: conns, listeners, deadlines, contexts on one epoll loop",
   detailed = [[
coronet brings Go's net model to Lua 5.4: stream conns (TCP, unix),
listeners, packet conns, c-ares DNS, TLS, absolute deadlines and
context-style cancellation, as userdata driven by a coroutine scheduler
over one C poller (epoll). The `coronet` command is a REPL where tasks
keep running while you type.
]],
   license = "MIT",
   homepage = "https://example.invalid/coronet",
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   CARES = { header = "ares.h", library = "cares" },
   OPENSSL = { header = "openssl/ssl.h", library = "ssl" },
   CRYPTO = { header = "openssl/crypto.h", library = "crypto" },
}
build = {
   type = "make",
   build_target = "all",
   build_variables = {
      CFLAGS = "$(CFLAGS)",
      LUA_INC = "$(LUA_INCDIR)",
      LUA = "$(LUA)",
      CARES_INCDIR = "$(CARES_INCDIR)",
      CARES_LIBDIR = "$(CARES_LIBDIR)",
      OPENSSL_INCDIR = "$(OPENSSL_INCDIR)",
      OPENSSL_LIBDIR = "$(OPENSSL_LIBDIR)",
      CRYPTO_LIBDIR = "$(CRYPTO_LIBDIR)",
   },
   install_target = "install",
   install_variables = {
      INST_LIBDIR = "$(LIBDIR)",
      INST_LUADIR = "$(LUADIR)",
      INST_BINDIR = "",   -- the command is installed (and wrapped) by build.install.bin
   },
   install = {
      bin = { coronet = "bin/coronet" },
   },
}
