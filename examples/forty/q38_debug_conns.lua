#!/usr/bin/env lua5.4
--- examples/forty/q38_debug_conns.lua: Q38 with net.debug's leak finder.
-- net.debug.mark() records what is alive; net.debug.leaks(mark) returns the
-- tasks started since then that are still alive (with where they are parked
-- and where they were started) and the conns opened since then that are
-- still open (net.debug.conns() entries, with their owning task). Ten
-- handlers that read without a deadline show up as ten tasks at the read's
-- line and twenty open conns; after the fix, nothing.
--   lua5.4 examples/forty/q38_debug_conns.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local N = 10
local READ_LINE
do
    local n = 0
    for line in io.lines(arg[0]) do
        n = n + 1
        if line:find("-- the handler's read$") then READ_LINE = n end
    end
end

net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local deadline = nil
    net.go(function()
        while true do
            local s = ln:accept()
            if not s then return end
            net.go(function()
                if deadline then s:set_read_deadline(net.now() + deadline) end
                while s:read(100) do end                           -- the handler's read
                s:close()
            end)
        end
    end)
    for round = 1, 2 do
        deadline = round == 2 and 0.2 or nil
        local mark = net.debug.mark()
        local clients = {}
        for i = 1, N do clients[i] = assert(net.dial("tcp", tostring(ln:addr()))) end
        while net.debug.stats().blocked.read < N do net.yield() end
        if round == 2 then
            while net.debug.stats().blocked.read > 0 do net.sleep(0.05) end
        end
        local l = net.debug.leaks(mark)
        local at_read = 0
        for _, t in ipairs(l.tasks) do
            if t.where and t.where:find("q38_debug_conns.lua:" .. READ_LINE, 1, true) then at_read = at_read + 1 end
        end
        F.say("Q38 %s: leaks(mark) -> %d tasks (%d at the read), %d conns", round == 1 and "no deadline" or "0.2 s deadline",
              #l.tasks, at_read, #l.conns)
        if round == 1 then
            F.check(#l.tasks == N and at_read == N, "every leaked handler, at the read without a deadline")
            F.check(#l.conns == 2 * N, "and both ends of every forgotten conn", #l.conns)
        else
            F.check(#l.tasks == 0, "with the deadline no task is left", #l.tasks)
            F.check(#l.conns == N, "only our own client ends, still open", #l.conns)
        end
        for _, c in ipairs(clients) do c:close() end
        while net.debug.stats().blocked.read > 0 do net.yield() end
    end
end)
F.done()
