#!/usr/bin/env lua5.4
--- examples/forty/q33_stuck_client.lua: Q33, a server task blocked in write.
-- A client that stops reading fills its receive buffer and then our send
-- buffer; the server's write parks (the task is "blocked in write", which
-- net.debug.stats().blocked.write counts and net.debug.tasks() locates).
-- Without a write deadline it would wait forever; with one, the write
-- returns nil, err (timeout) and n_written, the bytes the kernel took. What
-- the kernel still holds unsent is Send-Q in `ss -tn` (the view of ss -tip
-- with wmem); examples/forty/q33_tcp_info.lua reads it from c:tcp_info().
--   lua5.4 examples/forty/q33_stuck_client.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local TOTAL = 16 << 20
local PAYLOAD = string.rep("r", TOTAL)          -- made before the deadline is set
net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local client <close> = assert(net.dial("tcp", tostring(ln:addr())))  -- luacheck: ignore 211 (never reads)
    local s <close> = assert(ln:accept())

    F.say("Q33. the server writes a %d MiB response to a client that stopped reading", TOTAL >> 20)
    local w = net.go(function()
        s:set_write_deadline(net.now() + 0.5)
        return s:write(PAYLOAD)
    end)
    while net.debug.stats().blocked.write == 0 do net.yield() end
    local where
    for _, t in ipairs(net.debug.tasks()) do
        if t.state ~= "running" and t.traceback and t.traceback:find("write", 1, true) then where = t.where end
    end
    F.say("  net.debug: %d task blocked in write, at %s", net.debug.stats().blocked.write, tostring(where))
    F.check(where and where:find("q33_stuck_client.lua", 1, true), "net.debug.tasks() points at the write's line")
    local n, err, written = w:wait()
    F.say("  write -> %s, %s, n_written %d", tostring(n), tostring(err), written)
    F.check(n == nil and err.timeout, "the write deadline fired: the task is free")
    F.check(written > 0 and written < TOTAL, "n_written says how much the kernel took", written)

    local out = F.sh("ss -tnH state established '( sport = :" .. ln:addr().port .. " )'")
    local sendq = tonumber(out:match("^%s*%d+%s+(%d+)"))
    local out2 = F.sh("ss -tnH state established '( dport = :" .. ln:addr().port .. " )'")
    local recvq = tonumber(out2:match("^%s*(%d+)"))
    F.say("  ss -tn: server Send-Q %s bytes unsent/unacked; client Recv-Q %s unread", tostring(sendq), tostring(recvq))
    F.check(sendq and sendq > 0, "the unsent bytes are visible in Send-Q")
    F.check(recvq and sendq and recvq + sendq == written,
            "Send-Q + the client's Recv-Q account for every byte written", (recvq or 0) + (sendq or 0))
end)
F.done()
