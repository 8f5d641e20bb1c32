#!/usr/bin/env lua5.4
--- examples/forty/q03_scanner.lua: Q3, why a scanner over a raw conn.
-- The peer sends two lines in three writes that cut the lines anywhere.
-- A raw read returns what has arrived (here "hel", not a record); a
-- net.bufio scanner returns the lines.
--   lua5.4 examples/forty/q03_scanner.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local s <close> = assert(ln:accept())
    local go = net.chan()
    local peer = net.go(function()
        for _, piece in ipairs{"hel", "lo\nwor", "ld\n"} do
            go:recv()                               -- one piece per request
            assert(s:write(piece))
        end
        s:close_write()
    end)
    go:send(true)
    local raw = assert(c:read(100))
    F.say("Q3. raw c:read(100) -> %q", raw)
    F.check(raw == "hel", "a raw read returns whatever arrived, not a record", raw)

    local sc = net.bufio.scanner(c)
    local lines = {}
    go:send(true)
    go:send(true)
    while sc:scan() do lines[#lines + 1] = sc:text() end
    F.say("  scanner tokens after it: %s", table.concat(lines, " | "))
    F.check(#lines == 2 and lines[1] == "lo" and lines[2] == "world",
            "the scanner splits on newlines, whatever the write boundaries",
            table.concat(lines, "|"))
    F.check(sc:err() == nil, "it ends cleanly at EOF (err() is nil)")
    peer:wait()
end)
F.done()
