#!/usr/bin/env lua5.4
--- examples/forty/q04_port_zero.lua: Q4, listening on a kernel-chosen port.
-- net.listen("tcp", "127.0.0.1:0"): the kernel picks a free port, and
-- ln:addr().port says which (Go: ln.Addr().(*net.TCPAddr).Port).
--   lua5.4 examples/forty/q04_port_zero.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

net.run(function()
    local a <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local b <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    F.say("Q4. two listeners on :0 -> %s and %s", tostring(a:addr()), tostring(b:addr()))
    local pa, pb = a:addr().port, b:addr().port
    F.check(math.type(pa) == "integer" and pa > 0 and pb > 0, "addr().port is the port the kernel chose")
    F.check(pa ~= pb, "each gets its own free port")
    local c <close> = assert(net.dial("tcp", "127.0.0.1:" .. pa))  -- luacheck: ignore 211 (open for the scope)
    local s <close> = assert(a:accept())
    F.check(s:local_addr().port == pa, "a dial to that port reaches the listener")
end)
F.done()
