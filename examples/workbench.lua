#!/usr/bin/env lua5.4
--- examples/workbench.lua: the net.debug helpers from a script.
--
-- A line protocol server ("PING" -> "PONG", anything else -> "ERR") with a
-- client whose conn is tapped, so every byte each way is shown; then the
-- goroutine-style task dump, every open conn with the kernel's view
-- (TCP_INFO, queued bytes), a leak hunt (a handler the client forgot to
-- close, found by a mark taken before), and task:cancel() stopping the
-- server. The same calls work at the `coronet` prompt (:tasks, :conns).
--
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/workbench.lua
--   ... examples/workbench.lua --selftest   (the same, quietly, with assertions)
local net = require "coronet"

local selftest = arg and arg[1] == "--selftest"
local function say(...) if not selftest then print(...) end end

net.run(function()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local server = net.go(function()
        while true do
            local c = ln:accept()
            if not c then return end
            net.go(function()
                local r = net.bufio.reader(c)
                while true do
                    local line = r:read_line()
                    if not line then break end
                    c:write(line == "PING" and "PONG\n" or "ERR\n")
                end
                c:close()
            end)
        end
    end)

    -- 1. a tap shows exactly what goes over the wire
    local records = {}
    local raw = assert(net.dial("tcp", tostring(ln:addr())))
    local c = net.debug.tap(raw, function(r) records[#records + 1] = r say(r) end)
    c:write("PING\n")
    local reply = c:read()
    c:write("\1\2binary\n")
    local err = c:read()
    assert(reply == "PONG\n" and err == "ERR\n")
    assert(#records == 4 and records[3]:find("00000000  01 02 62 69", 1, true))

    -- 2. what is running and what is open
    local dump = net.debug.dump()
    say(dump)
    assert(dump:find("parked on accept", 1, true))
    local conns = net.debug.conns()
    say(net.debug.dump_conns())
    assert(#conns >= 3)
    local info = assert(raw:tcp_info())
    say(string.format("client conn: %s, rtt %.3f ms, %d bytes received", info.state,
                      info.rtt * 1e3, info.bytes_received))
    assert(info.state == "established" and info.bytes_received == 9)

    -- 3. a leak: a client that never closes leaves a handler task and two fds
    local mark = net.debug.mark()
    local forgotten = assert(net.dial("tcp", tostring(ln:addr())))
    forgotten:write("PING\n")
    assert(forgotten:read() == "PONG\n")
    local leaks = net.debug.leaks(mark)
    for _, t in ipairs(leaks.tasks) do
        say(string.format("leaked task %d, parked on %s at %s, started at %s",
                          t.id, t.state, t.where, t.created))
    end
    say(string.format("%d conns and %d fds more than at the mark", #leaks.conns, leaks.fds))
    assert(#leaks.tasks == 1 and leaks.tasks[1].state == "read" and leaks.fds == 2)
    forgotten:close()
    net.sleep(0.01)
    assert(#net.debug.leaks(mark).tasks == 0)

    -- 4. stop the server: its accept returns ErrCanceled and the loop ends
    server:cancel()
    server:wait()
    say("server stopped: " .. tostring(server:is_done()))
    c:close()
    ln:close()
    require("coronet.sched").trace_creation = nil
end)
if selftest then print("workbench selftest ok") end
