#!/usr/bin/env lua5.4
--- examples/forty/q18_unix_addr.lua: Q18, ln:addr() of a unix listener.
-- An address object {network = "unix", name = PATH} that renders as the
-- path; it stays valid after close (Go's *net.UnixAddr). An abstract socket
-- renders as @name.
--   lua5.4 examples/forty/q18_unix_addr.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local dir = F.sh("mktemp -d"):gsub("%s+$", "")
local path = dir .. "/q18.sock"
net.run(function()
    local ln = assert(net.listen("unix", path))
    local a = ln:addr()
    F.say("Q18. ln:addr() -> network %s, name %s, tostring %s", a.network, a.name, tostring(a))
    F.check(a.network == "unix" and a.name == path and tostring(a) == path,
            "network \"unix\", name the filesystem path")
    local c <close> = assert(net.dial("unix", path))
    F.check(tostring(c:remote_addr()) == path, "a dialed conn's remote_addr is the same path")
    ln:close()
    local after = ln:addr()
    F.check(after ~= nil and after.name == path, "addr() is still valid after close")
    local ab <close> = assert(net.listen("unix", "@coronet-q18-" .. require("coronet.core").getpid()))
    F.say("  an abstract listener's addr: %s", tostring(ab:addr()))
    F.check(tostring(ab:addr()):sub(1, 1) == "@", "an abstract address renders as @name")
end)
os.execute("rm -rf '" .. dir .. "'")
F.done()
