#!/usr/bin/env lua5.4
--- examples/forty/q24_frame_cap.lua: Q24, capping a length-prefixed frame.
-- A hostile peer sends a 4-byte length of 0xFFFFFFFF (4 GiB). net.frame's
-- reader checks the length against `max` (default 1 MiB) before it reads
-- or allocates the body: nil, net.ErrFrameTooLarge, length. Even the raw
-- c:read_full(0xFFFFFFFF) allocates only as bytes arrive (its buffer grows
-- with the data), so the 4 GiB never exist; the Lua heap is measured with
-- collectgarbage("count") before and after.
--   lua5.4 examples/forty/q24_frame_cap.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local function rss_kib()
    for line in io.lines("/proc/self/status") do
        local v = line:match("^VmRSS:%s+(%d+)")
        if v then return tonumber(v) end
    end
end

net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local s <close> = assert(ln:accept())
    local fr = net.frame.reader(c, {header = 4, max = 1 << 20})

    F.say("Q24. the peer sends a frame header of 0xFFFFFFFF and 10 bytes of body")
    assert(s:write(string.pack(">I4", 0xFFFFFFFF) .. "0123456789"))
    collectgarbage(); collectgarbage()
    local heap0, rss0 = collectgarbage("count"), rss_kib()
    local msg, err, len = fr:read()
    collectgarbage(); collectgarbage()
    local heap1, rss1 = collectgarbage("count"), rss_kib()
    F.say("  frame read -> %s, %s, %s; Lua heap %.0f -> %.0f KiB, RSS %d -> %d KiB",
          tostring(msg), tostring(err), tostring(len), heap0, heap1, rss0, rss1)
    F.check(msg == nil and err == net.ErrFrameTooLarge and len == 0xFFFFFFFF,
            "refused with ErrFrameTooLarge, and the announced length")
    F.check(heap1 - heap0 < 64, "the Lua heap did not grow (< 64 KiB)", heap1 - heap0)
    F.check(rss1 - rss0 < 1024, "nor the process (< 1 MiB of RSS)", rss1 - rss0)

    F.say("Q24. without net.frame: c2:read_full(0xFFFFFFFF) from a peer that sends 10 bytes and closes")
    local c2 <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local s2 = assert(ln:accept())
    s2:write("0123456789")
    s2:close()
    collectgarbage(); collectgarbage()
    heap0, rss0 = collectgarbage("count"), rss_kib()
    local d, e2, partial = c2:read_full(0xFFFFFFFF)
    local got = partial and #partial
    partial = nil                             -- luacheck: ignore (drop the reference before measuring)
    collectgarbage(); collectgarbage()
    heap1, rss1 = collectgarbage("count"), rss_kib()
    F.say("  read_full -> %s, %s, %s bytes; Lua heap %.0f -> %.0f KiB, RSS %d -> %d KiB",
          tostring(d), tostring(e2), tostring(got), heap0, heap1, rss0, rss1)
    F.check(d == nil and e2 == net.ErrUnexpectedEOF and got == 10,
            "ErrUnexpectedEOF with the 10 bytes that came")
    F.check(heap1 - heap0 < 64 and rss1 - rss0 < 1024,
            "and no 4 GiB buffer: memory is spent as data arrives")
end)
F.done()
