#!/usr/bin/env lua5.4
--- examples/forty/q39_handshake.lua: Q39, the three-way handshake and the
-- listen backlog.
-- The kernel completes the handshake: net.dial returns (ESTABLISHED) before
-- any accept is called, and the conn waits in the listener's accept queue;
-- even bytes the client writes wait there. ss -ltn shows the queue (Recv-Q)
-- and its bound (Send-Q, the backlog). Once the queue is full (on Linux it
-- holds backlog + 1) the kernel drops further SYNs: a dial then hangs until
-- its timeout. accept() just pops the queue. coronet's default backlog is
-- SOMAXCONN (4096), capped by net.core.somaxconn, as Go.
--   lua5.4 examples/forty/q39_handshake.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local function queue(port)
    local out = F.sh("ss -ltnH '( sport = :" .. port .. " )'")
    local recvq, sendq = out:match("^%S+%s+(%d+)%s+(%d+)")
    return tonumber(recvq), tonumber(sendq)
end

local BACKLOG = 2
net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0", {backlog = BACKLOG}))
    local port = ln:addr().port
    F.say("Q39. a listener with backlog %d; nobody calls accept", BACKLOG)
    local conns, failed = {}, nil
    for i = 1, BACKLOG + 3 do
        local c, err = net.dial("tcp", "127.0.0.1:" .. port, {timeout = 0.3})
        if not c then failed = err; break end
        assert(c:write("hello " .. i))
        conns[i] = c
    end
    local recvq, sendq = queue(port)
    F.say("  %d dials connected before any accept; ss -ltn: Recv-Q %s (queued), Send-Q %s (the bound)",
          #conns, tostring(recvq), tostring(sendq))
    F.check(#conns == BACKLOG + 1, "the kernel completed backlog + 1 handshakes with no accept", #conns)
    F.check(recvq == #conns and sendq == BACKLOG, "they wait in the accept queue, bounded by the backlog")
    F.say("  the next dial -> %s", tostring(failed))
    F.check(failed and failed.timeout, "with the queue full the SYN is dropped: the dial times out")

    local first = assert(ln:accept())
    F.check(first:read(100) == "hello 1", "accept pops the oldest; its data was already waiting")
    F.check(queue(port) == #conns - 1, "and the queue shrinks by one")
    for _ = 2, #conns do assert(ln:accept()):close() end
    first:close()
    for _, c in ipairs(conns) do c:close() end

    local dflt <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local _, bound = queue(dflt:addr().port)
    local cap = tonumber(F.sysctl("net.core.somaxconn"))
    F.say("  a default listener's backlog: %s (net.core.somaxconn %s)", tostring(bound), tostring(cap))
    F.check(bound == math.min(4096, cap), "the default is SOMAXCONN, capped by the sysctl")
end)
F.done()
