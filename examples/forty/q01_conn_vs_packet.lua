#!/usr/bin/env lua5.4
--- examples/forty/q01_conn_vs_packet.lua: Q1, a stream conn vs a packet conn.
-- Two writes on a TCP conn arrive as one stream (a read may return both at
-- once: no boundaries); two datagrams on a UDP socket arrive as two
-- read_from results, each exactly one datagram with its sender's address.
--   lua5.4 examples/forty/q01_conn_vs_packet.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

net.run(function()
    F.say("Q1. stream: two writes of 3 bytes, then one read(100) on the other end")
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local s <close> = assert(ln:accept())
    assert(c:write("abc"))
    assert(c:write("def"))
    -- loopback delivers at once, but under load the kernel may defer it:
    -- wait (bounded) until both writes sit in s's receive queue
    for _ = 1, 100 do
        if F.recv_q(s:local_addr().port, c:local_addr().port) == 6 then break end
        net.sleep(0.01)
    end
    local got = assert(s:read(100))
    F.say("  read(100) -> %q", got)
    F.check(got == "abcdef", "one stream read returned both writes: the boundary is gone", got)

    F.say("Q1. packets: two datagrams of 3 bytes, then read_from(100) twice")
    local srv <close> = assert(net.listen_packet("udp", "127.0.0.1:0"))
    local cli <close> = assert(net.listen_packet("udp", "127.0.0.1:0"))
    assert(cli:write_to("abc", srv:local_addr()))
    assert(cli:write_to("def", srv:local_addr()))
    local d1, from1 = srv:read_from(100)
    local d2, from2 = srv:read_from(100)
    F.say("  read_from -> %q from %s; %q from %s", d1, tostring(from1), d2, tostring(from2))
    F.check(d1 == "abc" and d2 == "def", "each read_from returned exactly one datagram")
    F.check(tostring(from1) == tostring(cli:local_addr()), "read_from names the sender",
            tostring(from1))
end)
F.done()
