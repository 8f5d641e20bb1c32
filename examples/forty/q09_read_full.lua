#!/usr/bin/env lua5.4
--- examples/forty/q09_read_full.lua: Q9, reading exactly N bytes.
-- The peer sends 10 bytes in two writes. c:read(10) returns what has
-- arrived (the first 4); c:read_full(10) waits for all ten (Go's
-- io.ReadFull). EOF part-way gives nil, net.ErrUnexpectedEOF and the partial
-- data; EOF before any byte gives nil, net.EOF.
--   lua5.4 examples/forty/q09_read_full.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local s <close> = assert(ln:accept())
    local step = net.chan()
    local peer = net.go(function()
        assert(s:write("0123")); step:recv()
        assert(s:write("456789")); step:recv()
        assert(s:write("0123")); step:recv()
        assert(s:write("45")); s:close()
    end)
    local one = assert(c:read(10))
    F.say("Q9. read(10) -> %q", one)
    F.check(#one < 10, "one read may return fewer than asked", #one)
    step:send(true)
    local rest = assert(c:read_full(10 - #one))
    F.check(one .. rest == "0123456789", "read_full(n) returns exactly n bytes")

    local t = net.go(function() return c:read_full(10) end)
    step:send(true)
    step:send(true)
    local data, err, partial = t:wait()
    F.say("  read_full(10) with EOF after 6 bytes -> %s, %s, %q", tostring(data), tostring(err), partial)
    F.check(data == nil and err == net.ErrUnexpectedEOF and partial == "012345",
            "EOF part-way: nil, ErrUnexpectedEOF, the partial bytes")
    local d2, e2 = c:read_full(10)
    F.check(d2 == nil and e2 == net.EOF, "EOF before any byte: nil, net.EOF", tostring(e2))
    peer:wait()
end)
F.done()
