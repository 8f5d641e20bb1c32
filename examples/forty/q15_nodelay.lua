#!/usr/bin/env lua5.4
--- examples/forty/q15_nodelay.lua: Q15, Nagle's algorithm.
-- Like Go, coronet turns Nagle off (TCP_NODELAY on) for every TCP conn it
-- dials or accepts; c:set_nodelay(false) turns batching back on. Read back
-- from the kernel with getsockopt on c:fd().
--   lua5.4 examples/forty/q15_nodelay.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local function nodelay(c) return net.getsockopt(c:fd(), "IPPROTO_TCP", "TCP_NODELAY") end

net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local s <close> = assert(ln:accept())
    F.say("Q15. getsockopt TCP_NODELAY: dialed %s, accepted %s", tostring(nodelay(c)), tostring(nodelay(s)))
    F.check(nodelay(c) == 1, "a dialed conn has TCP_NODELAY on")
    F.check(nodelay(s) == 1, "an accepted conn has TCP_NODELAY on")
    assert(c:set_nodelay(false))
    F.say("  after c:set_nodelay(false): %s", tostring(nodelay(c)))
    F.check(nodelay(c) == 0, "set_nodelay(false) gives Nagle back")
    assert(c:set_nodelay(true))
    F.check(nodelay(c) == 1, "set_nodelay(true) turns it off again")
    local plain = assert(net.getsockopt(ln:fd(), "IPPROTO_TCP", "TCP_NODELAY"))
    F.say("  (the listening socket itself: %d; the option is set per conn)", plain)
end)
F.done()
