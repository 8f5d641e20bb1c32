#!/usr/bin/env lua5.4
--- examples/forty/q35_restart.lua: Q35, zero-downtime restart by handing
-- over the listening fd.
-- The old process serves; it starts the new one with
-- net.process.spawn{..., files = {ln}} (Go: tl.File() + cmd.ExtraFiles),
-- which places the listener at fd 3 and sets LISTEN_FDS/LISTEN_PID; the new
-- process gets it back with net.listeners_from_env() (Go:
-- net.FileListener). Both accept on the one socket (one queue) until the
-- old one sees the new one answering, closes its copy and drains. A client
-- dialing all along never fails: the socket never closed. (Q36 shows what
-- SO_REUSEPORT alone loses: examples/forty/q36_reuseport_not_enough.lua.)
--   lua5.4 examples/forty/q35_restart.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local context = net.context

-- one request per conn: read a line, answer with who we are
local function serve(ln, who)
    return net.go(function()
        while true do
            local s = ln:accept()
            if not s then return end
            net.go(function()
                if s:read(100) then s:write(who) end
                s:close()
            end)
        end
    end)
end

if arg[1] == "--child" then                           -- the new process
    net.run(function()
        local lns = net.listeners_from_env()
        assert(#lns == 1, "no listener inherited")
        serve(lns[1], "new")
        net.sleep(10)                                  -- the parent TERMs it long before
    end)
    os.exit(0)
end

net.run(function()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local addr = tostring(ln:addr())
    local old = serve(ln, "old")
    local seen, failures, stop = {old = 0, new = 0}, 0, false
    local after_close = {old = 0, new = 0}
    local closed = false
    local client = net.go(function()                   -- dials all along
        while not stop do
            local c, err = net.dial("tcp", addr, {timeout = 2})
            local answer = c and (c:write("hi\n") and c:read(100, context.with_timeout(context.background(), 2)))
            if answer == "old" or answer == "new" then
                seen[answer] = seen[answer] + 1
                if closed then after_close[answer] = after_close[answer] + 1 end
            else
                failures = failures + 1
                F.say("  a client failed: %s", tostring(err))
            end
            if c then c:close() end
            net.sleep(0.005)
        end
    end)
    while seen.old < 20 do net.yield() end
    F.say("Q35. the old process served %d requests; spawning the new one with the listener", seen.old)
    local proc = assert(net.process.spawn{"lua5.4", args = {arg[0], "--child"}, files = {ln}})
    local limit = net.now() + 10
    while seen.new == 0 and net.now() < limit do net.sleep(0.01) end
    F.check(seen.new > 0, "the new process answers on the same port (fd 3, LISTEN_FDS)")
    ln:close()                                        -- the old one stops accepting, and drains
    old:wait()
    closed = true
    local mark = seen.new
    while seen.new < mark + 20 and net.now() < limit do net.sleep(0.01) end
    stop = true
    client:wait()
    F.say("  answers: old %d, new %d; after the old one closed: old %d, new %d; failed dials %d",
          seen.old, seen.new, after_close.old, after_close.new, failures)
    F.check(after_close.new >= 20 and after_close.old == 0, "after the hand-over only the new process answers")
    F.check(failures == 0, "no client ever failed: the listening socket never closed")
    proc:kill("TERM")
    local st = proc:wait(context.with_timeout(context.background(), 5))
    F.check(st and st.signal == "TERM", "the new process is stopped and reaped", st and st.signal)
end)
F.done()
