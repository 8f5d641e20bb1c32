#!/usr/bin/env lua5.4
--- examples/forty/q08_tcp_udp.lua: Q8, TCP and UDP servers side by side.
-- TCP: listen + accept + a task per conn; each conn is its own byte stream.
-- UDP: listen_packet + one task reading datagrams from everyone and
-- answering each sender by its address; no conns, no accept.
--   lua5.4 examples/forty/q08_tcp_udp.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local N = 3
net.run(function()
    -- TCP: one task per conn
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local conn_tasks = 0
    net.go(function()
        while true do
            local c = ln:accept()
            if not c then return end
            conn_tasks = conn_tasks + 1
            net.go(function()
                local line = c:read(100)
                if line then c:write("tcp:" .. line) end
                c:close()
            end)
        end
    end)
    -- UDP: one task for every client
    local pc <close> = assert(net.listen_packet("udp", "127.0.0.1:0"))
    local datagrams = 0
    net.go(function()
        while true do
            local d, from = pc:read_from(100)
            if not d then return end
            datagrams = datagrams + 1
            pc:write_to("udp:" .. d, from)
        end
    end)

    local ok_tcp, ok_udp = 0, 0
    for i = 1, N do
        local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
        c:write("hi" .. i)
        if c:read(100) == "tcp:hi" .. i then ok_tcp = ok_tcp + 1 end
        local u <close> = assert(net.dial("udp", tostring(pc:local_addr())))
        u:set_read_deadline(net.now() + 2)
        u:write("hi" .. i)
        if u:read(100) == "udp:hi" .. i then ok_udp = ok_udp + 1 end
    end
    F.say("Q8. %d TCP clients: %d answered by %d conn tasks", N, ok_tcp, conn_tasks)
    F.say("    %d UDP clients: %d answered by one task reading %d datagrams", N, ok_udp, datagrams)
    F.check(ok_tcp == N and conn_tasks == N, "TCP: one accepted conn (and task) per client")
    F.check(ok_udp == N and datagrams == N, "UDP: one socket and one task served every client")
    ln:close()
    pc:close()
end)
F.done()
