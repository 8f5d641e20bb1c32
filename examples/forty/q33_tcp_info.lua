#!/usr/bin/env lua5.4
--- examples/forty/q33_tcp_info.lua: Q33 from inside the process: the
-- kernel's view of a conn stuck on a client that stopped reading.
-- c:tcp_info() (net.debug.tcp_info) reads TCP_INFO and SIOCOUTQ: `outq` is
-- what we wrote and the peer has not acknowledged (all of it waiting here,
-- against a zero window), `notsent` the part not even sent. net.debug.conns()
-- lists every open conn with the task parked writing on it and its write
-- deadline: the `ss -tip` of this process. The write deadline then frees the
-- task (examples/forty/q33_stuck_client.lua shows that half with ss).
--   lua5.4 examples/forty/q33_tcp_info.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local TOTAL = 16 << 20
local PAYLOAD = string.rep("r", TOTAL)          -- made before the deadline is set
net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local client <close> = assert(net.dial("tcp", tostring(ln:addr())))   -- never reads
    local s <close> = assert(ln:accept())
    local w = net.go(function()
        s:set_write_deadline(net.now() + 1)
        return s:write(PAYLOAD)
    end)
    while net.debug.stats().blocked.write == 0 do net.yield() end

    local entry
    for _, e in ipairs(net.debug.conns()) do
        if e.obj == s then entry = e end
    end
    F.say("Q33. net.debug.conns(): %s, writer task %s, write deadline in %.2f s, outq %s",
          entry and entry.desc, entry and entry.writer and tostring(entry.writer.id or entry.writer),
          entry and entry.write_deadline or -1, entry and tostring(entry.outq))
    F.check(entry and entry.writer ~= nil, "it lists the conn with the task parked writing on it")
    F.check(entry and entry.write_deadline and entry.write_deadline > 0, "and the write deadline armed")
    local ti = assert(s:tcp_info())
    F.say("  s:tcp_info(): outq %d (unacknowledged), notsent %s, rtt %.6f s, cwnd %d",
          ti.outq, tostring(ti.notsent), ti.rtt, ti.cwnd)
    F.check(ti.outq > 0, "outq: the bytes the stuck client has not taken")
    local n, err, written = w:wait()
    F.check(n == nil and err.timeout and written > 0, "the write deadline frees the task")
    local ti2 = assert(s:tcp_info())
    local inq = assert(client:tcp_info()).inq
    F.say("  after: outq %d + the client's inq %d = %d = n_written %d", ti2.outq, inq, ti2.outq + inq, written)
    F.check(ti2.outq + inq == written, "every byte written is either queued here or unread there")
end)
F.done()
