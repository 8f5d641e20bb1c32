#!/usr/bin/env lua5.4
--- examples/forty/q26_q27_time_wait.lua: Q26 (SetLinger(0)) and Q27 (why
-- TIME_WAIT matters for outbound conns), counted in /proc/net/tcp and tcp6.
-- 20 short conns whose client closes first leave 20 sockets in TIME_WAIT on
-- the client side (each holds its ephemeral port for 60 s on Linux). The same
-- 20 with c:set_linger(0) before close send an RST instead of a FIN: no
-- TIME_WAIT at all, and the server's next read gets ECONNRESET instead of
-- EOF. The port range and tcp_tw_reuse are read from /proc/sys to say how
-- fast a client runs out. With a pool (net.pool) the conns are reused
-- instead: examples/forty/q34_pool_time_wait.lua.
--   lua5.4 examples/forty/q26_q27_time_wait.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local N = 20

-- A server that answers one request per conn, then reads once more and
-- reports what that read said (EOF after a FIN, ECONNRESET after an RST),
-- then closes. Returns the listener and a channel of those outcomes.
local function server()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local outcomes = net.chan(N)
    net.go(function()
        while true do
            local s = ln:accept()
            if not s then return end
            net.go(function()
                if s:read(100) then s:write("resp") end
                local _, err = s:read(100)
                s:close()
                outcomes:send(err == net.EOF and "EOF" or err.code)
            end)
        end
    end)
    return ln, outcomes
end

local function run_clients(ln, outcomes, linger0, mine)
    for _ = 1, N do
        local c = assert(net.dial("tcp", tostring(ln:addr())))
        mine[c:local_addr().port] = true
        c:write("req")
        assert(c:read(100) == "resp")
        if linger0 then assert(c:set_linger(0)) end
        c:close()
    end
    local seen = {}
    for _ = 1, N do
        local o = outcomes:recv()
        seen[o] = (seen[o] or 0) + 1
    end
    return seen
end

local function fmt(t)
    local out = {}
    for k, v in pairs(t) do out[#out + 1] = k .. "=" .. v end
    table.sort(out)
    return #out > 0 and table.concat(out, " ") or "none"
end

-- One round: N conns through a fresh server; then the kernel's view of
-- our clients' sockets (waiting, bounded, for the last FIN/ACKs).
local function round(linger0)
    local ln, outcomes = server()
    local mine = {}
    local seen = run_clients(ln, outcomes, linger0, mine)
    local client_side, server_side
    for _ = 1, 200 do
        client_side, server_side = F.tcp_states(ln:addr().port, mine)
        if linger0 or (client_side.TIME_WAIT or 0) >= N then break end
        net.sleep(0.01)
    end
    ln:close()
    F.say("  server's second read: %s; client side: %s; server side: %s",
          fmt(seen), fmt(client_side), fmt(server_side))
    return seen, client_side, server_side
end

-- all the TIME_WAIT sockets of the machine, and the kernel's bound on them
local function tw_total()
    local out = F.sh("ss -s")
    return tonumber(out:match("timewait (%d+)")), F.sysctl("net.ipv4.tcp_max_tw_buckets")
end

net.run(function()
    F.say("Q27. %d conns, the client closes first (FIN)", N)
    local seen, client_side, server_side = round(false)
    if (client_side.TIME_WAIT or 0) ~= N then
        -- the TIME_WAIT table is the machine's: say what it held, try once more
        local total, max = tw_total()
        F.say("  (the machine holds %s TIME_WAIT sockets, tcp_max_tw_buckets %s; once more)",
              tostring(total), tostring(max))
        seen, client_side, server_side = round(false)
    end
    F.check(seen.EOF == N, "the server read EOF: a graceful close")
    F.check(client_side.TIME_WAIT == N, "every client socket sits in TIME_WAIT", client_side.TIME_WAIT)
    F.check((server_side.TIME_WAIT or 0) == 0, "on the side that closed first only")

    F.say("Q26. the same %d conns with c:set_linger(0) before close (RST)", N)
    seen, client_side = round(true)
    F.check(seen.ECONNRESET == N, "the peer sees ECONNRESET, not EOF")
    F.check((client_side.TIME_WAIT or 0) == 0, "no TIME_WAIT at all", client_side.TIME_WAIT)
end)

local lo, hi = (F.sysctl("net.ipv4.ip_local_port_range") or ""):match("(%d+)%s+(%d+)")
if lo then
    local ports = hi - lo + 1
    F.say("Q27. ip_local_port_range %s-%s: %d ports; each TIME_WAIT holds one for 60 s, so one", lo, hi, ports)
    F.say("     client address can open about %d conns/s to one server address:port", ports // 60)
    F.say("     before connect fails with EADDRNOTAVAIL. tcp_tw_reuse = %s (1 or 2 lets new",
          F.sysctl("net.ipv4.tcp_tw_reuse") or "?")
    F.say("     outbound conns take over TIME_WAIT ports; 2 means loopback only).")
    F.check(ports > 0, "the port range reads back")
end
F.done()
