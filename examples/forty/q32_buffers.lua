#!/usr/bin/env lua5.4
--- examples/forty/q32_buffers.lua: Q32, SO_RCVBUF and SO_SNDBUF.
-- The defaults come from net.ipv4.tcp_rmem/tcp_wmem (and autotuning grows
-- them unless you set one). c:set_read_buffer(n) / c:set_write_buffer(n)
-- set SO_RCVBUF / SO_SNDBUF; Linux doubles the value you ask for (the extra
-- half is its bookkeeping) and caps the request at net.core.rmem_max /
-- wmem_max, as getsockopt shows. What the size buys: a write to a peer that
-- doesn't read queues up to about the peer's receive buffer plus our
-- unsent bytes before it blocks, so a bigger buffer absorbs a bigger burst
-- (measured with a write deadline). Our unsent bytes stop at the conn's
-- TCP_NOTSENT_LOWAT (64 KiB unless set; set_notsent_lowat(0) lifts it to
-- the kernel's default, the whole send buffer).
--   lua5.4 examples/forty/q32_buffers.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local function get(c, name) return net.getsockopt(c:fd(), "SOL_SOCKET", name) end

local PAYLOAD = string.rep("x", 16 << 20)      -- made once, before any deadline is set

-- how many bytes one write pushes into a peer that never reads, before it blocks
local function burst(ln, size, lowat)
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local s <close> = assert(ln:accept())
    if size then
        assert(c:set_write_buffer(size))
        assert(s:set_read_buffer(size))
    end
    if lowat then assert(c:set_notsent_lowat(lowat)) end
    c:set_write_deadline(net.now() + 0.3)
    local n, err, written = c:write(PAYLOAD)
    assert(n == nil and err.timeout, "the write should have blocked")
    return written
end

net.run(function()
    local rmem_max, wmem_max = tonumber(F.sysctl("net.core.rmem_max")), tonumber(F.sysctl("net.core.wmem_max"))
    F.say("Q32. tcp_rmem %s, tcp_wmem %s, rmem_max %d, wmem_max %d", F.sysctl("net.ipv4.tcp_rmem"),
          F.sysctl("net.ipv4.tcp_wmem"), rmem_max, wmem_max)
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local s <close> = assert(ln:accept())  -- luacheck: ignore 211 (open for the scope)
    F.say("  defaults on a new conn: SO_RCVBUF %d, SO_SNDBUF %d", get(c, "SO_RCVBUF"), get(c, "SO_SNDBUF"))
    local default_rcv = tonumber(F.sysctl("net.ipv4.tcp_rmem"):match("^%d+%s+(%d+)"))
    F.check(get(c, "SO_RCVBUF") == default_rcv, "SO_RCVBUF starts at tcp_rmem's middle value", get(c, "SO_RCVBUF"))

    assert(c:set_read_buffer(65536))
    assert(c:set_write_buffer(32768))
    F.say("  after set_read_buffer(65536), set_write_buffer(32768): SO_RCVBUF %d, SO_SNDBUF %d",
          get(c, "SO_RCVBUF"), get(c, "SO_SNDBUF"))
    F.check(get(c, "SO_RCVBUF") == 131072 and get(c, "SO_SNDBUF") == 65536, "the kernel doubled both")

    local huge = rmem_max * 4
    assert(c:set_read_buffer(huge))
    F.say("  set_read_buffer(%d) -> SO_RCVBUF %d", huge, get(c, "SO_RCVBUF"))
    F.check(get(c, "SO_RCVBUF") == 2 * rmem_max, "a request over rmem_max is capped (then doubled)")

    local small, big = burst(ln, 16384), burst(ln, 1 << 20)
    F.say("  a write to a peer that never reads blocks after %d bytes with 16 KiB buffers,", small)
    F.say("  after %d bytes with 1 MiB buffers", big)
    F.check(big > 8 * small, "bigger buffers absorb a bigger burst before the writer blocks",
            string.format("%d vs %d", big, small))
    local unbounded = burst(ln, 1 << 20, 0)
    F.say("  with set_notsent_lowat(0) the 1 MiB buffers take %d bytes: the send buffer fills too", unbounded)
    F.check(unbounded > big + (512 << 10), "the 64 KiB unsent limit, not the send buffer, stopped the write",
            string.format("%d vs %d", unbounded, big))
end)
F.done()
