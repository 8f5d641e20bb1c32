#!/usr/bin/env lua5.4
--- examples/forty/q36_reuseport_not_enough.lua: Q36, why SO_REUSEPORT alone
-- is not a zero-downtime restart.
-- Two SO_REUSEPORT listeners (an "old" and a "new" process, here in one
-- process) each have their own accept queue, and the kernel hashes each new
-- conn to one of them. When the old one closes, the conns already queued on
-- it (handshake done, not yet accepted) are reset: the clients read
-- ECONNRESET. Unless net.ipv4.tcp_migrate_req = 1 (Linux >= 5.14), which
-- moves them to the sibling; the script reads the sysctl and expects
-- whichever it says. Handing over the one listening fd instead loses none:
-- examples/forty/q35_restart.lua.
--   lua5.4 examples/forty/q36_reuseport_not_enough.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local N = 40
net.run(function()
    local old = assert(net.listen("tcp", "127.0.0.1:0", {reuseport = true}))
    local port = old:addr().port
    local new <close> = assert(net.listen("tcp", "127.0.0.1:" .. port, {reuseport = true}))
    local clients = {}
    for i = 1, N do
        clients[i] = assert(net.dial("tcp", "127.0.0.1:" .. port))
        clients[i]:write("req " .. i)
    end
    F.say("Q36. %d conns queued (handshakes done) over two reuseport listeners; the old one closes", N)
    old:close()
    local reset, ok = 0, 0
    net.go(function()                               -- the new process accepts and answers
        while true do
            local s = new:accept()
            if not s then return end
            local r = s:read(100)
            s:write("ok " .. tostring(r))
            s:close()
        end
    end)
    for _, c in ipairs(clients) do
        c:set_read_deadline(net.now() + 2)
        local d, err = c:read(100)
        if d and d:find("^ok req") then ok = ok + 1
        elseif err and err.code == "ECONNRESET" then reset = reset + 1 end
        c:close()
    end
    local migrate = F.sysctl("net.ipv4.tcp_migrate_req") or "0"
    F.say("  answered by the new listener: %d; reset: %d (tcp_migrate_req = %s)", ok, reset, migrate)
    F.check(ok + reset == N, "every client was either answered or reset", ok + reset)
    if migrate == "1" then
        F.check(reset == 0, "tcp_migrate_req = 1: the kernel moved the queued conns to the sibling")
    else
        F.check(reset > 0, "the conns queued on the closed listener were reset: they are lost")
        F.check(ok > 0, "only the ones hashed to the new listener survived")
    end
    new:close()
end)
F.done()
