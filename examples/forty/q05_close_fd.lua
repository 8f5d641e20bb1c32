#!/usr/bin/env lua5.4
--- examples/forty/q05_close_fd.lua: Q5, what closing an accepted conn does.
-- close() releases the fd (the process's fd count goes back where it was)
-- and sends a FIN (the peer reads EOF). Conns kept and never closed keep
-- their fds: the count grows by one per conn, which is how ulimit -n
-- runs out. (coronet also closes a conn the garbage collector finds
-- unreferenced, and `local c <close>` closes at scope exit; a conn that is
-- still referenced, like one parked in a task, is never collected.)
--   lua5.4 examples/forty/q05_close_fd.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local N = 20
net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local clients = {}
    for i = 1, N do clients[i] = assert(net.dial("tcp", tostring(ln:addr()))) end
    collectgarbage()
    local before = F.open_fds()

    local kept = {}
    for i = 1, N do kept[i] = assert(ln:accept()) end   -- "forgotten": never closed
    local leaking = F.open_fds()
    F.say("Q5. fds: %d before accepting, %d with %d accepted conns never closed", before, leaking, N)
    F.check(leaking - before == N, "each conn kept open holds one fd", leaking - before)

    for i = 1, N do assert(kept[i]:close()) end
    local after = F.open_fds()
    F.say("  after close() on each: %d", after)
    F.check(after == before, "close() gives every fd back", after - before)

    local data, err = clients[1]:read(10)
    F.check(data == nil and err == net.EOF, "close() sent a FIN: the peer reads EOF", tostring(err))
    for i = 1, N do clients[i]:close() end
end)
F.done()
