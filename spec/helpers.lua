--- spec/helpers.lua: shared test helpers. `H.run(fn)` runs a test body as
-- a task and then asserts that it leaked no task and no fd: every task it
-- started has ended and the process holds the fds it held before.
local lu = require "luaunit"
local net = require "coronet"

local H = {}

--- open_fds: the number of fds this process holds (from /proc/PID/fd),
-- not counting either end of the pipe popen uses to ask (glibc closes the
-- parent's copy of the write end only after the child starts, so a plain
-- `ls` would sometimes count it).
function H.open_fds()
    local pid = require("coronet.core").getpid()
    local p = io.popen("me=$(readlink /proc/$$/fd/1); ls -l /proc/" .. pid
        .. "/fd | grep -- '->' | grep -vcF \"$me\"")
    local n = tonumber(p:read("l"))
    p:close()
    return n
end

--- settle: let finishing tasks end (bounded: loop turns, not time).
function H.settle()
    for _ = 1, 200 do
        if net.debug.stats().tasks <= 1 then return end
        net.yield()
    end
end

--- drain: drive the loop until every task has ended (bounded: 5 s).
function H.drain()
    net.run(function()
        local limit = net.now() + 5
        while net.debug.stats().tasks > 1 and net.now() < limit do net.sleep(0.001) end
    end)
end

--- run: run fn as a task; then assert nothing leaked (tasks, loop fds, fds).
function H.run(fn)
    collectgarbage()
    local fds0 = H.open_fds()
    local loopfds0 = net.debug.stats().fds
    local r = table.pack(net.run(function()
        local res = table.pack(fn())
        H.settle()
        return table.unpack(res, 1, res.n)
    end))
    collectgarbage()
    collectgarbage()
    local s = net.debug.stats()
    lu.assertEquals(s.tasks, 0, "leaked tasks:\n" .. H.dump_tasks())
    lu.assertEquals(s.fds, loopfds0, "leaked loop fds")
    lu.assertEquals(H.open_fds(), fds0, "leaked process fds")
    return table.unpack(r, 1, r.n)
end

function H.dump_tasks()
    local out = {}
    for _, t in ipairs(net.debug.tasks()) do out[#out + 1] = t.traceback end
    return table.concat(out, "\n")
end

--- tmpdir: a fresh temporary directory (removed by rmdir(path) later).
function H.tmpdir()
    local p = io.popen("mktemp -d /tmp/coronet-spec.XXXXXX")
    local d = p:read("l")
    p:close()
    return d
end

function H.rm(path) os.execute("rm -rf '" .. path .. "'") end

--- echo_server: a listener on 127.0.0.1:0 and a task echoing every conn;
-- returns the listener (close it to stop the server and its conns).
function H.echo_server(network, address)
    local ln = assert(net.listen(network or "tcp", address or "127.0.0.1:0"))
    local conns = {}
    net.go(function()
        while true do
            local c = ln:accept()
            if not c then break end
            conns[c] = true
            net.go(function()
                while true do
                    local d = c:read(65536)
                    if not d or not c:write(d) then break end
                end
                c:close()
                conns[c] = nil
            end)
        end
        for c in pairs(conns) do c:close() end
    end)
    return ln
end

--- assert_err: assert that v is nil and err is a coronet error with code.
function H.assert_err(v, err, code, msg)
    lu.assertNil(v, msg)
    lu.assertNotNil(err, msg)
    lu.assertEquals(getmetatable(err) and getmetatable(err).__name, "coronet.error", msg)
    if code then lu.assertEquals(err.code, code, (msg or "") .. " (" .. tostring(err) .. ")") end
end

--- run_top: like H.run, but fn runs outside any task (as at a script's top
-- level or in the REPL), so each blocking call in it drives the loop
-- itself; then the same leak checks.
function H.run_top(fn)
    collectgarbage()
    local fds0 = H.open_fds()
    local loopfds0 = net.debug.stats().fds
    local r = table.pack(fn())
    for _ = 1, 200 do
        if net.debug.stats().tasks == 0 then break end
        net.yield()
    end
    collectgarbage()
    collectgarbage()
    local s = net.debug.stats()
    lu.assertEquals(s.tasks, 0, "leaked tasks:\n" .. H.dump_tasks())
    lu.assertEquals(s.fds, loopfds0, "leaked loop fds")
    lu.assertEquals(H.open_fds(), fds0, "leaked process fds")
    return table.unpack(r, 1, r.n)
end

return H
