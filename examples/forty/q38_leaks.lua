#!/usr/bin/env lua5.4
--- examples/forty/q38_leaks.lua: Q38, finding the task leak of forgotten conns.
-- A handler that reads without a deadline parks forever when its client
-- goes quiet without closing. The two signals rise together:
-- net.debug.stats().tasks (Go's runtime.NumGoroutine) and the process's fd
-- count; net.debug.tasks() is the goroutine dump, and its `where` names
-- the user's line where each task is stuck (the read without a deadline).
-- The fix is at that line: a read deadline, after which the same load
-- leaves nothing behind. (net.debug.conns(), landing later, lists each
-- open conn with its owner: examples/forty/q38_debug_conns.lua.)
--   lua5.4 examples/forty/q38_leaks.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local N = 10
local READ_LINE                    -- the line of the handler's read, found in this file
do
    local n = 0
    for line in io.lines(arg[0]) do
        n = n + 1
        if line:find("-- the handler's read$") then READ_LINE = n end
    end
end

local function serve(ln, deadline)
    return net.go(function()
        while true do
            local s = ln:accept()
            if not s then return end
            net.go(function()
                if deadline then s:set_read_deadline(net.now() + deadline) end
                while s:read(100) do end                       -- the handler's read
                s:close()
            end)
        end
    end)
end

local function load(ln)
    local clients = {}
    for i = 1, N do
        clients[i] = assert(net.dial("tcp", tostring(ln:addr())))  -- then says nothing, keeps it open
    end
    while net.debug.stats().blocked.read < N do net.yield() end
    return clients
end

net.run(function()
    collectgarbage()
    local tasks0, fds0 = net.debug.stats().tasks, F.open_fds()
    F.say("Q38. before: %d tasks, %d fds", tasks0, fds0)

    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local acceptor = serve(ln, nil)
    local clients = load(ln)
    local st = net.debug.stats()
    local fds1 = F.open_fds()
    F.say("  %d quiet clients later: %d tasks (%d blocked in read), %d fds", N, st.tasks, st.blocked.read, fds1)
    F.check(st.tasks - tasks0 == N + 1, "one task per forgotten conn (plus the acceptor)", st.tasks - tasks0)
    F.check(fds1 - fds0 == 2 * N + 1, "and an fd for each end of each conn (plus the listener)", fds1 - fds0)
    local at = {}
    for _, t in ipairs(net.debug.tasks()) do
        if t.where then at[t.where] = (at[t.where] or 0) + 1 end
    end
    local top, topn = nil, 0
    for w, n in pairs(at) do if n > topn then top, topn = w, n end end
    F.say("  net.debug.tasks(): %d tasks parked at %s", topn, tostring(top))
    F.check(topn == N and top:find("q38_leaks.lua:" .. READ_LINE, 1, true), "the dump names the read without a deadline", top)
    for _, c in ipairs(clients) do c:close() end
    ln:close()
    acceptor:wait()
    while net.debug.stats().tasks > tasks0 do net.yield() end

    F.say("Q38. the fix: a 0.2 s read deadline in the handler, same load")
    ln = assert(net.listen("tcp", "127.0.0.1:0"))
    acceptor = serve(ln, 0.2)
    clients = load(ln)
    F.check(net.debug.stats().tasks - tasks0 == N + 1, "the handlers park as before")
    local limit = net.now() + 5
    while net.debug.stats().tasks > tasks0 + 1 and net.now() < limit do net.sleep(0.05) end
    st = net.debug.stats()
    F.say("  after the deadline: %d tasks", st.tasks)
    F.check(st.tasks == tasks0 + 1, "every handler ended on its own (only the acceptor is left)", st.tasks)
    for _, c in ipairs(clients) do c:close() end
    ln:close()
    acceptor:wait()
    collectgarbage()
    F.check(F.open_fds() == fds0, "and every fd is back", F.open_fds() - fds0)
end)
F.done()
