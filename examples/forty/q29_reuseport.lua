#!/usr/bin/env lua5.4
--- examples/forty/q29_reuseport.lua: Q29, SO_REUSEPORT.
-- Two listeners bind one port with {reuseport = true} (or a control
-- function calling net.setsockopt(fd, "SOL_SOCKET", "SO_REUSEPORT", 1), as
-- Go's ListenConfig.Control); the kernel hashes each new conn to one of
-- them. Without the option the second bind fails with EADDRINUSE.
--   lua5.4 examples/forty/q29_reuseport.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local N = 40
net.run(function()
    local a <close> = assert(net.listen("tcp", "127.0.0.1:0", {reuseport = true}))
    local port = a:addr().port
    local b <close> = assert(net.listen("tcp", "127.0.0.1:" .. port, {control = function(fd)
        return net.setsockopt(fd, "SOL_SOCKET", "SO_REUSEPORT", 1)
    end}))
    F.say("Q29. two listeners on 127.0.0.1:%d (reuseport = true; a control function)", port)
    F.check(b:addr().port == port, "the second bind of the same port succeeded")
    F.check(net.getsockopt(b:fd(), "SOL_SOCKET", "SO_REUSEPORT") == 1, "SO_REUSEPORT reads back on it")
    local without, err = net.listen("tcp", "127.0.0.1:" .. port)
    F.check(without == nil and err.code == "EADDRINUSE", "a third without the option: EADDRINUSE")

    local count = {a = 0, b = 0}
    local function acceptor(ln, name)
        return net.go(function()
            while true do
                local s = ln:accept()
                if not s then return end
                count[name] = count[name] + 1
                s:close()
            end
        end)
    end
    local ta, tb = acceptor(a, "a"), acceptor(b, "b")
    local clients = {}
    for i = 1, N do clients[i] = assert(net.dial("tcp", "127.0.0.1:" .. port)) end
    while count.a + count.b < N do net.yield() end
    F.say("  %d dials: listener a accepted %d, listener b %d", N, count.a, count.b)
    F.check(count.a > 0 and count.b > 0, "the kernel spread the conns over both")
    for _, c in ipairs(clients) do c:close() end
    a:close(); b:close()
    ta:wait(); tb:wait()
end)
F.done()
