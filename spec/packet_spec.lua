-- packet_spec.lua - packet conns (csrc/packet.c, lua/coronet/packet.lua):
-- listen_packet and dial for udp, udp4, udp6 and unixgram (paths and
-- abstract names); read_from/write_to, read/write, read_batch/write_batch;
-- truncation, zero-length datagrams, ICMP port-unreachable, malformed and
-- unreachable addresses, deadlines, contexts, close waking a blocked read,
-- concurrency, options, multicast, floods, inherited fds, blocking calls
-- outside tasks.
-- Run from the repo root:
--   make && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 spec/packet_spec.lua
-- Loopback only, ports from ":0", temp dirs for unix paths; sleeps never
-- synchronise (a read deadline only proves that nothing more arrives).
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local errors = net.errors

-- H.open_fds races with popen: `ls` may see the pipe's write end before
-- the parent closes it, counting one fd too many. The lower of two counts
-- is right (this H is this spec's own copy, from dofile).
do
    local count = H.open_fds
    H.open_fds = function() return math.min(count(), count()) end
end

-- ===== helpers =====

-- T(fn): fn(defer) as a test body under H.test, after two collections:
-- garbage from earlier specs may hold an fd that only a second cycle
-- closes (kept alive one cycle by a finalizable task).
local function T(fn)
    local test = H.test(fn)
    return function()
        collectgarbage()
        collectgarbage()
        test()
    end
end

local spawn, join, exists = H.spawn, H.join, H.exists

local function listen(defer, network, address, opts)
    return defer(assert(net.listen_packet(network or "udp4", address or "127.0.0.1:0", opts)))
end

local function dial(defer, network, address, opts)
    return defer(assert(net.dial(network, address, opts)))
end

-- A read that must come back within a bound (a lost datagram fails the
-- test instead of hanging it).
local function read_from(pc, max)
    pc:set_read_deadline(net.now() + 5)
    return pc:read_from(max)
end

local function tmpdir(defer)
    local d = H.tmpdir()
    defer(function() H.rm(d) end)
    return d
end

local function has_ipv6()
    local pc = net.listen_packet("udp6", "[::1]:0")
    if pc then pc:close() end
    return pc ~= nil
end

-- A port nobody listens on (bound, noted, closed).
local function dead_port()
    local pc = assert(net.listen_packet("udp4", "127.0.0.1:0"))
    local port = pc:local_addr().port
    pc:close()
    return port
end

-- ===== UDP: listen_packet, read_from, write_to =====

TestPacketUDP = {}

TestPacketUDP.test_read_from_write_to_roundtrip = T(function(defer)
    local a = listen(defer)
    local b = listen(defer)
    lu.assertEquals(a:write_to("ping", b:local_addr()), 4)
    local data, from, truncated = read_from(b)
    lu.assertEquals(data, "ping")
    lu.assertEquals(tostring(from), tostring(a:local_addr()))
    lu.assertEquals(from.network, "udp4")
    lu.assertEquals(tostring(from.ip), "127.0.0.1")
    lu.assertEquals(from.port, a:local_addr().port)
    lu.assertFalse(truncated)
    lu.assertEquals(b:write_to("pong", from), 4)
    lu.assertEquals(read_from(a), "pong")
end)

TestPacketUDP.test_local_addr_and_tostring = T(function(defer)
    local pc = listen(defer)
    local la = pc:local_addr()
    lu.assertEquals(tostring(la.ip), "127.0.0.1")
    lu.assertTrue(la.port > 0)
    lu.assertNil(pc:remote_addr())
    lu.assertStrContains(tostring(pc), "udp4 127.0.0.1:" .. la.port)
    pc:close()
    lu.assertEquals(tostring(pc:local_addr()), tostring(la))   -- still valid after close
    lu.assertStrContains(tostring(pc), "(closed)")
end)

TestPacketUDP.test_exactly_one_datagram_per_call = T(function(defer)
    local a, b = listen(defer), listen(defer)
    for _, m in ipairs{"one", "two", "three"} do assert(a:write_to(m, b:local_addr())) end
    lu.assertEquals(read_from(b), "one")
    lu.assertEquals(read_from(b), "two")
    lu.assertEquals(read_from(b), "three")
end)

TestPacketUDP.test_truncated_head_and_flag = T(function(defer)
    local a, b = listen(defer), listen(defer)
    assert(a:write_to("0123456789", b:local_addr()))
    assert(a:write_to("next", b:local_addr()))
    local data, from, truncated = read_from(b, 4)
    lu.assertEquals(data, "0123")
    lu.assertNotNil(from)
    lu.assertTrue(truncated)
    -- the rest of the long datagram is gone; the next read is the next datagram
    local d2, _, t2 = read_from(b, 4)
    lu.assertEquals(d2, "next")
    lu.assertFalse(t2)
end)

TestPacketUDP.test_zero_length_datagram_is_not_eof = T(function(defer)
    local a, b = listen(defer), listen(defer)
    lu.assertEquals(a:write_to("", b:local_addr()), 0)
    assert(a:write_to("after", b:local_addr()))
    local data, from, truncated = read_from(b)
    lu.assertEquals(data, "")
    lu.assertNotNil(from)
    lu.assertFalse(truncated)
    lu.assertEquals(read_from(b), "after")
end)

TestPacketUDP.test_large_datagram_and_max_above_shared_buffer = T(function(defer)
    local a, b = listen(defer), listen(defer)
    local big = string.rep("x", 65000)
    lu.assertEquals(a:write_to(big, b:local_addr()), 65000)
    local data, _, truncated = read_from(b, 200000)
    lu.assertEquals(#data, 65000)
    lu.assertFalse(truncated)
    lu.assertEquals(data, big)
end)

TestPacketUDP.test_write_to_string_addresses = T(function(defer)
    local a, b = listen(defer), listen(defer)
    local s = tostring(b:local_addr())
    for i = 1, 3 do assert(a:write_to("lit" .. i, s)) end      -- parsed once, then cached
    for i = 1, 3 do lu.assertEquals(read_from(b), "lit" .. i) end
    lu.assertEquals(a:write_to("named", "localhost:" .. b:local_addr().port), 5)
    lu.assertEquals(read_from(b), "named")
    -- a plain table with the fields of an address object works too
    assert(a:write_to("plain", {ip = "127.0.0.1", port = b:local_addr().port}))
    lu.assertEquals(read_from(b), "plain")
    assert(a:write_to("made", net.addr{network = "udp", ip = "127.0.0.1", port = b:local_addr().port}))
    lu.assertEquals(read_from(b), "made")
end)

TestPacketUDP.test_sender_addr_object_is_reused = T(function(defer)
    local a, b, c = listen(defer), listen(defer), listen(defer)
    local dst = c:local_addr()
    assert(a:write_to("1", dst))
    assert(b:write_to("2", dst))
    assert(a:write_to("3", dst))
    local _, f1 = read_from(c)
    local _, f2 = read_from(c)
    local _, f3 = read_from(c)
    lu.assertTrue(rawequal(f1, f3), "same sender, same object")
    lu.assertFalse(rawequal(f1, f2))
    lu.assertEquals(tostring(f2), tostring(b:local_addr()))
end)

TestPacketUDP.test_many_senders_rotate_the_cache = T(function(defer)
    local dst = listen(defer)
    local senders = {}
    for i = 1, 12 do senders[i] = listen(defer) end
    for round = 1, 2 do
        for i = 1, 12 do assert(senders[i]:write_to(round .. ":" .. i, dst:local_addr())) end
        for i = 1, 12 do
            local data, from = read_from(dst)
            lu.assertEquals(data, round .. ":" .. i)
            lu.assertEquals(tostring(from), tostring(senders[i]:local_addr()))
        end
    end
end)

TestPacketUDP.test_ipv6 = T(function(defer)
    if not has_ipv6() then lu.skip("no IPv6 loopback") end
    local a = listen(defer, "udp6", "[::1]:0")
    local b = listen(defer, "udp", "[::1]:0")
    lu.assertEquals(tostring(a:local_addr().ip), "::1")
    assert(a:write_to("six", b:local_addr()))
    local data, from = read_from(b)
    lu.assertEquals(data, "six")
    lu.assertEquals(tostring(from), "[::1]:" .. a:local_addr().port)
    assert(b:write_to("back", tostring(from)))
    lu.assertEquals(read_from(a), "back")
end)

TestPacketUDP.test_dual_stack_unmaps_v4_senders = T(function(defer)
    if not has_ipv6() then lu.skip("no IPv6 loopback") end
    local srv = listen(defer, "udp", ":0")                   -- [::], both families
    local port = srv:local_addr().port
    local c4 = listen(defer, "udp4", "127.0.0.1:0")
    assert(c4:write_to("v4", "127.0.0.1:" .. port))
    local data, from = read_from(srv)
    lu.assertEquals(data, "v4")
    lu.assertEquals(tostring(from), tostring(c4:local_addr()))  -- 127.0.0.1:p, not ::ffff:
    assert(srv:write_to("ok", from))                          -- a v4 addr from a v6 socket
    lu.assertEquals(read_from(c4), "ok")
end)

TestPacketUDP.test_reuseport_reuseaddr_and_control = T(function(defer)
    local seen
    local a = listen(defer, "udp4", "127.0.0.1:0", {reuseport = true, reuseaddr = true,
        control = function(fd, network, address)
            seen = {fd = fd, network = network, address = address}
        end})
    lu.assertEquals(seen.network, "udp4")
    lu.assertEquals(seen.address, "127.0.0.1:0")
    lu.assertTrue(seen.fd >= 0)
    lu.assertEquals(net.getsockopt(a:fd(), "SOL_SOCKET", "SO_REUSEPORT"), 1)
    lu.assertEquals(net.getsockopt(a:fd(), "SOL_SOCKET", "SO_REUSEADDR"), 1)
    local b = listen(defer, "udp4", tostring(a:local_addr()), {reuseport = true})
    lu.assertEquals(b:local_addr().port, a:local_addr().port)
    -- without reuseport the port is taken
    local c, err = net.listen_packet("udp4", tostring(a:local_addr()))
    H.assert_err(c, err, "EADDRINUSE")
    lu.assertEquals(err.op, "listen")
    lu.assertStrContains(tostring(err), "listen udp4 " .. tostring(a:local_addr()))
end)

TestPacketUDP.test_control_error_aborts_listen = T(function()
    local fds = H.open_fds()
    local pc, err = net.listen_packet("udp4", "127.0.0.1:0", {control = function()
        return nil, "refused by control"
    end})
    lu.assertNil(pc)
    lu.assertEquals(err, "refused by control")
    lu.assertEquals(H.open_fds(), fds)
end)

TestPacketUDP.test_bad_network_and_address_are_values = T(function()
    local pc, err = net.listen_packet("udp9", "127.0.0.1:0")
    H.assert_err(pc, err, "unknown_network")
    pc, err = net.listen_packet("tcp", "127.0.0.1:0")
    H.assert_err(pc, err, "unknown_network")
    pc, err = net.listen_packet("udp", "127.0.0.1")
    H.assert_err(pc, err)
    pc, err = net.listen_packet("udp", "127.0.0.1:99999")
    H.assert_err(pc, err)
    pc, err = net.dial("udp", "no-such-host.invalid:53")
    H.assert_err(pc, err)
    pc, err = net.dial("udp4", "[::1]:53")
    H.assert_err(pc, err)
end)

-- ===== malformed and unreachable destinations =====

TestPacketBadAddr = {}

TestPacketBadAddr.test_malformed_addresses_are_nil_err = T(function(defer)
    local pc = listen(defer)
    local bad = {
        "nope", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "[::1", "1.2.3.4.5:6",
        "no-such-host.invalid:53", "::1:53", "",
        {}, {ip = "not an ip", port = 1}, {ip = "127.0.0.1"}, {ip = "127.0.0.1", port = -1},
        {ip = "127.0.0.1", port = "x"}, {name = 5},
    }
    for i, addr in ipairs(bad) do
        local n, err = pc:write_to("x", addr)
        H.assert_err(n, err, nil, "case " .. i)
        lu.assertEquals(err.op, "write", "case " .. i)
    end
    local n, err = pc:write_to("x", "127.0.0.1:0")              -- port 0: EINVAL
    H.assert_err(n, err, "EINVAL")
    lu.assertStrContains(tostring(err), "127.0.0.1:0")
    -- the conn still works afterwards
    local b = listen(defer)
    assert(pc:write_to("fine", b:local_addr()))
    lu.assertEquals(read_from(b), "fine")
end)

TestPacketBadAddr.test_unreachable_family_is_nil_err = T(function(defer)
    local pc = listen(defer)                                    -- a v4-only socket
    local n, err = pc:write_to("x", "[::1]:9")
    H.assert_err(n, err, "EAFNOSUPPORT")
    n, err = pc:write_to("x", net.addr{network = "udp", ip = "::1", port = 9})
    H.assert_err(n, err, "EAFNOSUPPORT")
    n, err = pc:write_to("x", "/tmp/not-for-udp")
    H.assert_err(n, err)
end)

TestPacketBadAddr.test_broadcast_needs_so_broadcast = T(function(defer)
    -- lo's own broadcast address: refused locally without SO_BROADCAST, and
    -- nothing could leave the machine anyway
    local pc = listen(defer, "udp4", "127.0.0.1:0")
    lu.assertEquals(net.getsockopt(pc:fd(), "SOL_SOCKET", "SO_BROADCAST"), 1)  -- Go's default
    assert(pc:set_broadcast(false))
    lu.assertEquals(net.getsockopt(pc:fd(), "SOL_SOCKET", "SO_BROADCAST"), 0)
    local n, err = pc:write_to("x", "127.255.255.255:" .. pc:local_addr().port)
    H.assert_err(n, err, "EACCES")
    assert(pc:set_broadcast(true))
    lu.assertEquals(net.getsockopt(pc:fd(), "SOL_SOCKET", "SO_BROADCAST"), 1)
end)

TestPacketBadAddr.test_wrong_argument_types_raise = T(function(defer)
    local pc = listen(defer)
    lu.assertErrorMsgContains("address object or string", pc.write_to, pc, "x", 42)
    lu.assertErrorMsgContains("string expected", pc.write_to, pc, nil, "127.0.0.1:1")
    lu.assertErrorMsgContains("max must be positive", pc.read_from, pc, 0)
    lu.assertErrorMsgContains("no message table", pc.read_batch, pc, {})
    lu.assertErrorMsgContains("table expected", pc.read_batch, pc, {1})
end)

-- ===== connected UDP: dial, read, write =====

TestPacketDial = {}

TestPacketDial.test_dial_read_write = T(function(defer)
    local srv = listen(defer)
    local c = dial(defer, "udp", tostring(srv:local_addr()))
    lu.assertEquals(tostring(c:remote_addr()), tostring(srv:local_addr()))
    lu.assertEquals(tostring(c:local_addr().ip), "127.0.0.1")
    lu.assertStrContains(tostring(c), "->" .. tostring(srv:local_addr()))
    lu.assertEquals(c:write("hello"), 5)
    local data, from = read_from(srv)
    lu.assertEquals(data, "hello")
    lu.assertEquals(tostring(from), tostring(c:local_addr()))
    assert(srv:write_to("world!", from))
    c:set_read_deadline(net.now() + 5)
    local d, e, truncated = c:read()
    lu.assertEquals(d, "world!")
    lu.assertNil(e)
    lu.assertFalse(truncated)
    -- read truncates like read_from
    assert(srv:write_to("abcdef", from))
    d, e, truncated = c:read(3)
    lu.assertEquals(d, "abc")
    lu.assertTrue(truncated)
    -- read_from works on a connected conn and names the peer
    assert(srv:write_to("x", from))
    local _, peer = read_from(c)
    lu.assertEquals(tostring(peer), tostring(srv:local_addr()))
end)

TestPacketDial.test_write_to_on_connected_is_an_error = T(function(defer)
    local srv = listen(defer)
    local c = dial(defer, "udp4", tostring(srv:local_addr()))
    local n, err = c:write_to("x", srv:local_addr())
    H.assert_err(n, err, "EISCONN")
    local u = listen(defer)                                    -- unconnected: write has no peer
    n, err = u:write("x")
    H.assert_err(n, err, "EDESTADDRREQ")
end)

TestPacketDial.test_icmp_port_unreachable_is_econnrefused = T(function(defer)
    local c = dial(defer, "udp4", "127.0.0.1:" .. dead_port())
    assert(c:write("anyone?"))
    c:set_read_deadline(net.now() + 5)
    local d, err = c:read()
    H.assert_err(d, err, "ECONNREFUSED")
    lu.assertEquals(err.op, "read")
    lu.assertStrContains(tostring(err), "connection refused")
    -- the next write reports a fresh refusal the same way
    assert(c:write("again"))
    c:set_read_deadline(net.now() + 5)
    d, err = c:read_from()
    H.assert_err(d, err, "ECONNREFUSED")
    -- and when no read consumed it, the next write fails with it (on
    -- loopback the ICMP answer is in before the first write returns)
    local n, werr
    for _ = 1, 100 do
        n, werr = c:write("write side")
        if not n then break end
        net.yield()
    end
    H.assert_err(n, werr, "ECONNREFUSED")
    lu.assertEquals(werr.op, "write")
    lu.assertEquals(c:write("usable"), 6)                     -- the error was reported once
end)

TestPacketDial.test_dial_options = T(function(defer)
    local srv = listen(defer)
    local probe = listen(defer)
    local port = probe:local_addr().port
    probe:close()
    local seen
    local c = dial(defer, "udp4", tostring(srv:local_addr()), {
        local_addr = "127.0.0.1:" .. port,
        control = function(fd, network, address) seen = {fd, network, address} end})
    lu.assertEquals(c:local_addr().port, port)
    lu.assertEquals(seen[2], "udp4")
    lu.assertEquals(seen[3], tostring(srv:local_addr()))
    local c2 = dial(defer, "udp4", tostring(srv:local_addr()),
                    {local_addr = net.addr{network = "udp4", ip = "127.0.0.1", port = 0}})
    lu.assertEquals(tostring(c2:local_addr().ip), "127.0.0.1")
    local dl = net.dialer{timeout = 1}
    local c3 = defer(assert(dl:dial("udp", tostring(srv:local_addr()))))
    assert(c3:write("via dialer"))
    lu.assertEquals(read_from(srv), "via dialer")
end)

TestPacketDial.test_dial_localhost = T(function(defer)
    local srv = listen(defer, "udp4", "127.0.0.1:0")
    local c = dial(defer, "udp4", "localhost:" .. srv:local_addr().port)
    assert(c:write("lo"))
    lu.assertEquals(read_from(srv), "lo")
end)

-- ===== deadlines, contexts, close =====

TestPacketDeadlines = {}

TestPacketDeadlines.test_read_deadline = T(function(defer)
    local pc = listen(defer)
    pc:set_read_deadline(net.now() + 0.02)
    local t0 = net.now()
    local d, err = pc:read_from()
    H.assert_err(d, err, "timeout")
    lu.assertTrue(err.timeout)
    lu.assertTrue(errors.is(err, net.ErrDeadlineExceeded))
    lu.assertTrue(net.now() - t0 >= 0.015)
    -- persists until changed; nil clears it
    d, err = pc:read()
    H.assert_err(d, err, "timeout")
    assert(pc:set_read_deadline(nil))
    local b = listen(defer)
    assert(b:write_to("late", pc:local_addr()))
    lu.assertEquals(pc:read_from(), "late")
end)

TestPacketDeadlines.test_past_deadline_fails_at_once_and_wakes_blocked = T(function(defer)
    local pc = listen(defer)
    local reader = spawn(function() return pc:read_from() end)
    net.yield()
    assert(pc:set_deadline(net.now() - 1))
    local d, err = join(reader)
    H.assert_err(d, err, "timeout")
    local n, werr = pc:write_to("x", pc:local_addr())
    H.assert_err(n, werr, "timeout")
    assert(pc:set_deadline(nil))
    assert(pc:set_write_deadline(0))
    n, werr = pc:write_to("x", pc:local_addr())
    H.assert_err(n, werr, "timeout")
    assert(pc:set_write_deadline(nil))
    lu.assertEquals(pc:write_to("x", pc:local_addr()), 1)
end)

TestPacketDeadlines.test_ctx_cancel_wakes_read_and_conn_stays_usable = T(function(defer)
    local pc = listen(defer)
    local ctx, cancel = net.context.with_cancel(net.context.background())
    local reader = spawn(function() return pc:read_from(100, ctx) end)
    net.yield()
    cancel()
    local d, err = join(reader)
    H.assert_err(d, err, "canceled")
    lu.assertTrue(errors.is(err, net.ErrCanceled))
    -- an ended ctx fails every blocking call at once
    local calls = {
        {"read_from", ctx}, {"read_from", 10, ctx}, {"read", ctx}, {"write_to", "x", pc:local_addr(), ctx},
        {"write", "x", ctx}, {"read_batch", {{}}, ctx}, {"read_batch", {{}}, 10, ctx},
        {"write_batch", {{data = "x", addr = pc:local_addr()}}, ctx},
        {"write_batch", {{data = "x", addr = pc:local_addr()}}, 1, ctx},
    }
    for i, call in ipairs(calls) do
        local v, e = pc[call[1]](pc, table.unpack(call, 2))
        H.assert_err(v, e, "canceled", call[1] .. " #" .. i)
    end
    -- the conn is fine
    local b = listen(defer)
    assert(b:write_to("still", pc:local_addr()))
    lu.assertEquals(read_from(pc), "still")
end)

TestPacketDeadlines.test_ctx_deadline_and_conn_deadline_whichever_first = T(function(defer)
    local pc = listen(defer)
    local ctx = net.context.with_timeout(net.context.background(), 0.02)
    pc:set_read_deadline(net.now() + 10)
    local d, err = pc:read_from(ctx)
    H.assert_err(d, err, "timeout")
    lu.assertTrue(err.timeout)
    pc:set_read_deadline(net.now() + 0.02)
    local long = net.context.with_timeout(net.context.background(), 10)
    d, err = pc:read(64, long)
    H.assert_err(d, err, "timeout")
end)

TestPacketDeadlines.test_close_wakes_blocked_reader = T(function(defer)
    local pc = listen(defer)
    local reader = spawn(function() return pc:read_from() end)
    local batch = listen(defer)
    local breader = spawn(function() return batch:read_batch({{}, {}}) end)
    net.yield()
    lu.assertEquals(net.debug.stats().blocked.read, 2)
    assert(pc:close())
    assert(batch:close())
    local d, err = join(reader)
    H.assert_err(d, err, "closed")
    lu.assertTrue(errors.is(err, net.ErrClosed))
    d, err = join(breader)
    H.assert_err(d, err, "closed")
    -- second close, and every call on a closed conn: ErrClosed
    local calls = {
        {"close"}, {"read_from"}, {"read"}, {"write_to", "x", "127.0.0.1:1"}, {"write", "x"},
        {"read_batch", {{}}}, {"write_batch", {{data = "x", addr = "127.0.0.1:1"}}},
        {"set_deadline", 1}, {"set_read_deadline", 1}, {"set_write_deadline", 1},
        {"set_read_buffer", 4096}, {"set_write_buffer", 4096}, {"set_broadcast", true},
        {"set_multicast_ttl", 1}, {"set_multicast_loopback", true},
        {"set_multicast_interface", "lo"}, {"join_group", "239.1.1.1"},
        {"leave_group", "239.1.1.1"}, {"file"},
    }
    for _, call in ipairs(calls) do
        local v, e = pc[call[1]](pc, table.unpack(call, 2))
        H.assert_err(v, e, "closed", call[1])
        lu.assertTrue(errors.is(e, net.ErrClosed), call[1])
    end
    lu.assertEquals(pc:fd(), -1)
end)

TestPacketDeadlines.test_close_and_gc_via_to_be_closed = T(function()
    local fds = H.open_fds()
    do
        local pc <close> = assert(net.listen_packet("udp4", "127.0.0.1:0"))  -- luacheck: ignore 211
        lu.assertEquals(H.open_fds(), fds + 1)
    end
    lu.assertEquals(H.open_fds(), fds)
    do assert(net.listen_packet("udp4", "127.0.0.1:0")) end      -- dropped: __gc closes it
    collectgarbage()
    collectgarbage()
    lu.assertEquals(H.open_fds(), fds)
end)

-- ===== concurrency =====

TestPacketConcurrency = {}

TestPacketConcurrency.test_reader_and_writer_tasks_on_one_conn = T(function(defer)
    local a, b = listen(defer), listen(defer)
    local N = 200
    local reader = spawn(function()
        local got = {}
        for _ = 1, N do
            local d = assert(read_from(a))
            got[#got + 1] = d
        end
        return got
    end)
    local echo = spawn(function()
        for _ = 1, N do
            local d, from = assert(read_from(b))
            assert(b:write_to(d, from))
        end
    end)
    local writer = spawn(function()
        for i = 1, N do
            assert(a:write_to("m" .. i, b:local_addr()))
            if i % 16 == 0 then net.yield() end             -- let the echo keep up (no drops)
        end
    end)
    join(writer)
    join(echo)
    local got = join(reader)
    lu.assertEquals(#got, N)
    lu.assertEquals(got[1], "m1")
    lu.assertEquals(got[N], "m" .. N)
end)

TestPacketConcurrency.test_second_reader_gets_busy = T(function(defer)
    local pc = listen(defer)
    local first = spawn(function() return pc:read_from() end)
    net.yield()
    local d, err = pc:read_from()
    H.assert_err(d, err, "busy")
    d, err = pc:read_batch({{}})
    H.assert_err(d, err, "busy")
    pc:close()
    H.assert_err(join(first))
end)

-- ===== options and descriptors =====

TestPacketOptions = {}

TestPacketOptions.test_buffers = T(function(defer)
    local pc = listen(defer)
    assert(pc:set_read_buffer(65536))
    assert(pc:set_write_buffer(65536))
    -- Linux doubles the value for bookkeeping
    lu.assertEquals(net.getsockopt(pc:fd(), "SOL_SOCKET", "SO_RCVBUF"), 131072)
    lu.assertEquals(net.getsockopt(pc:fd(), "SOL_SOCKET", "SO_SNDBUF"), 131072)
end)

TestPacketOptions.test_multicast_ttl_and_loopback = T(function(defer)
    local pc = listen(defer)
    assert(pc:set_multicast_ttl(5))
    lu.assertEquals(net.getsockopt(pc:fd(), "IPPROTO_IP", "IP_MULTICAST_TTL"), 5)
    assert(pc:set_multicast_loopback(false))
    lu.assertEquals(net.getsockopt(pc:fd(), "IPPROTO_IP", "IP_MULTICAST_LOOP"), 0)
    assert(pc:set_multicast_loopback(true))
    lu.assertEquals(net.getsockopt(pc:fd(), "IPPROTO_IP", "IP_MULTICAST_LOOP"), 1)
    lu.assertErrorMsgContains("ttl must be in 0..255", pc.set_multicast_ttl, pc, 300)
    if has_ipv6() then
        local p6 = listen(defer, "udp6", "[::1]:0")
        assert(p6:set_multicast_ttl(7))
        lu.assertEquals(net.getsockopt(p6:fd(), "IPPROTO_IPV6", "IPV6_MULTICAST_HOPS"), 7)
        assert(p6:set_multicast_loopback(false))
        lu.assertEquals(net.getsockopt(p6:fd(), "IPPROTO_IPV6", "IPV6_MULTICAST_LOOP"), 0)
    end
end)

TestPacketOptions.test_fd_and_file_packet_conn = T(function(defer)
    local pc = listen(defer)
    lu.assertTrue(pc:fd() >= 0)
    -- file_packet_conn wraps a dup: the caller keeps its fd
    local pc2 = defer(assert(net.packet.file_packet_conn(pc:fd())))
    lu.assertNotEquals(pc2:fd(), pc:fd())
    lu.assertEquals(tostring(pc2:local_addr()), tostring(pc:local_addr()))
    local b = listen(defer)
    assert(pc2:write_to("from dup", b:local_addr()))
    local d, from = read_from(b)
    lu.assertEquals(d, "from dup")
    lu.assertEquals(tostring(from), tostring(pc:local_addr()))
    local c = dial(defer, "udp4", tostring(b:local_addr()))
    local c2 = defer(assert(net.packet.file_packet_conn(c:fd())))
    lu.assertEquals(tostring(c2:remote_addr()), tostring(b:local_addr()))
    assert(c2:write("connected dup"))
    lu.assertEquals(read_from(b), "connected dup")
    -- a stream socket is refused
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local x, err = net.packet.file_packet_conn(ln:fd())
    H.assert_err(x, err, "EPROTOTYPE")
end)

TestPacketOptions.test_file_returns_an_inheritable_dup = T(function()
    -- file() hands out an fd the caller owns (there is no Lua call to close
    -- a raw fd), so this runs in a child process that exits afterwards.
    local p = io.popen([[lua5.4 -e '
        local net = require "coronet"
        local pc = assert(net.listen_packet("udp4", "127.0.0.1:0"))
        local fd = assert(pc:file())
        local f = io.open("/proc/self/fdinfo/" .. fd)
        local flags = tonumber(f:read("a"):match("flags:%s*(%d+)"), 8)
        f:close()
        local dup = assert(net.packet.file_packet_conn(fd))
        io.write(fd ~= pc:fd() and "dup " or "same ", flags & 0x80000 == 0 and "inheritable " or "cloexec ",
                 tostring(dup:local_addr()) == tostring(pc:local_addr()) and "same-addr" or "other-addr")
        pc:close()
        print(pc:file())']] .. " 2>&1")
    local out = p:read("a")
    p:close()
    lu.assertStrContains(out, "dup inheritable same-addr")
    lu.assertStrContains(out, "use of closed network connection")
end)

-- ===== multicast =====

TestPacketMulticast = {}

TestPacketMulticast.test_join_send_receive_leave_on_lo = T(function(defer)
    local group = "239.255.77.77"
    local rx = listen(defer, "udp4", "0.0.0.0:0")
    local ok, err = rx:join_group(group, "lo")
    if not ok then lu.skip("multicast join on lo failed here: " .. tostring(err)) end
    local tx = listen(defer, "udp4", "127.0.0.1:0")
    assert(tx:set_multicast_interface("lo"))
    assert(tx:set_multicast_loopback(true))
    assert(tx:set_multicast_ttl(1))
    assert(tx:write_to("to the group", group .. ":" .. rx:local_addr().port))
    rx:set_read_deadline(net.now() + 2)
    local d, from = rx:read_from()
    if not d then lu.skip("multicast is not delivered on lo here: " .. tostring(from)) end
    lu.assertEquals(d, "to the group")
    lu.assertEquals(tostring(from), tostring(tx:local_addr()))
    assert(rx:leave_group(net.ip.parse(group), "lo"))
    local again, lerr = rx:leave_group(group, "lo")           -- not a member any more
    H.assert_err(again, lerr, "EADDRNOTAVAIL")
end)

TestPacketMulticast.test_unknown_interface_is_a_clear_error = T(function(defer)
    local rx = listen(defer, "udp4", "0.0.0.0:0")
    local ok, err = rx:join_group("239.255.77.78", "nosuchif0")
    H.assert_err(ok, err, "ENODEV")
    lu.assertEquals(err.op, "join_group")
    lu.assertStrContains(tostring(err), "nosuchif0")
    lu.assertStrContains(tostring(err), "239.255.77.78")
    ok, err = rx:set_multicast_interface("nosuchif0")
    H.assert_err(ok, err, "ENODEV")
    lu.assertStrContains(tostring(err), "nosuchif0")
    ok, err = rx:join_group("not-a-group")
    H.assert_err(ok, err, "badaddr")
    ok, err = rx:join_group("127.0.0.1", "lo")                -- not a multicast address
    H.assert_err(ok, err, "EINVAL")
end)

TestPacketMulticast.test_ipv6_group_on_lo = T(function(defer)
    if not has_ipv6() then lu.skip("no IPv6 loopback") end
    local rx = listen(defer, "udp6", "[::]:0")
    local ok, err = rx:join_group("ff02::1:3", "lo")
    if not ok then lu.skip("IPv6 multicast join on lo failed here: " .. tostring(err)) end
    assert(rx:leave_group("ff02::1:3", "lo"))
end)

-- ===== floods =====

TestPacketFlood = {}

TestPacketFlood.test_flood_beyond_buffer_drops_without_blocking = T(function(defer)
    local rx = listen(defer)
    assert(rx:set_read_buffer(4096))
    local tx = listen(defer)
    local N = 5000
    local ticks, stop = 0, false
    local ticker = spawn(function()
        while not stop do ticks = ticks + 1; net.sleep(0.001) end
    end)
    collectgarbage()
    local mem0 = collectgarbage("count")
    local payload = string.rep("f", 512)
    for i = 1, N do
        local n, err = tx:write_to(payload, rx:local_addr())   -- never blocks: UDP drops
        lu.assertEquals(n, 512, tostring(err))
        if i % 1000 == 0 then net.yield() end
    end
    local got = 0
    while true do
        rx:set_read_deadline(net.now() + 0.1)
        local d = rx:read_from()
        if not d then break end
        got = got + 1
    end
    stop = true
    join(ticker)
    lu.assertTrue(ticks > 0, "other tasks ran meanwhile")
    collectgarbage()
    lu.assertTrue(got > 0, "some arrived")
    lu.assertTrue(got < N, "the buffer overflowed and dropped: got " .. got)
    lu.assertTrue(collectgarbage("count") - mem0 < 512, "memory stayed flat")
end)

-- ===== batches =====

TestPacketBatch = {}

TestPacketBatch.test_read_batch_write_batch_echo = T(function(defer)
    local srv, cli = listen(defer), listen(defer)
    local N = 40
    for i = 1, N do assert(cli:write_to("b" .. i, srv:local_addr())) end
    local msgs = {}
    for i = 1, 64 do msgs[i] = {} end
    local got = 0
    while got < N do
        srv:set_read_deadline(net.now() + 5)
        local n = assert(srv:read_batch(msgs))
        for i = 1, n do
            lu.assertEquals(msgs[i].data, "b" .. (got + i))
            lu.assertEquals(tostring(msgs[i].addr), tostring(cli:local_addr()))
            lu.assertFalse(msgs[i].truncated)
        end
        lu.assertEquals(srv:write_batch(msgs, 1, n), n)
        got = got + n
    end
    for i = 1, N do lu.assertEquals(read_from(cli), "b" .. i) end
end)

TestPacketBatch.test_read_batch_truncation_and_untouched_tail = T(function(defer)
    local srv, cli = listen(defer), listen(defer)
    assert(cli:write_to("0123456789", srv:local_addr()))
    assert(cli:write_to("", srv:local_addr()))
    local msgs = {{}, {}, {}, {data = "keep"}}
    srv:set_read_deadline(net.now() + 5)
    local n = assert(srv:read_batch(msgs, 4))
    if n == 1 then n = n + assert(srv:read_batch({msgs[2]}, 4)) end
    lu.assertEquals(n, 2)
    lu.assertEquals(msgs[1].data, "0123")
    lu.assertTrue(msgs[1].truncated)
    lu.assertEquals(msgs[2].data, "")
    lu.assertFalse(msgs[2].truncated)
    lu.assertEquals(msgs[4].data, "keep")
    lu.assertErrorMsgContains("max must be in", srv.read_batch, srv, msgs, 100000)
end)

TestPacketBatch.test_write_batch_many_and_ranges = T(function(defer)
    local srv, cli = listen(defer), listen(defer)
    assert(srv:set_read_buffer(1 << 20))
    local msgs = {}
    for i = 1, 150 do msgs[i] = {data = "w" .. i, addr = srv:local_addr()} end
    lu.assertEquals(cli:write_batch(msgs), 150)                -- three sendmmsg calls
    for i = 1, 150 do lu.assertEquals(read_from(srv), "w" .. i) end
    lu.assertEquals(cli:write_batch(msgs, 149), 2)             -- i..#msgs
    lu.assertEquals(read_from(srv), "w149")
    lu.assertEquals(read_from(srv), "w150")
    lu.assertEquals(cli:write_batch(msgs, -1, -1), 1)          -- negative from the end
    lu.assertEquals(read_from(srv), "w150")
    lu.assertEquals(cli:write_batch(msgs, 5, 4), 0)            -- empty range
    msgs[3].addr = tostring(srv:local_addr())                  -- strings work too
    lu.assertEquals(cli:write_batch(msgs, 3, 3), 1)
    lu.assertEquals(read_from(srv), "w3")
end)

-- write_batch coalesces runs (one destination, one size, the last may be
-- shorter) into UDP GSO sends; whatever it coalesced, each receiver must
-- get exactly the datagrams it was sent, in order, boundaries intact:
-- runs cut by a shorter datagram, by another destination, by an empty
-- datagram and by the 64-segment cap, and on a connected conn.
TestPacketBatch.test_write_batch_runs_keep_every_datagram = T(function(defer)
    local a, b, cli = listen(defer), listen(defer), listen(defer)
    assert(a:set_read_buffer(1 << 20))
    local plan = {}                                 -- {receiver, size} per message
    local function add(to, size, count) for _ = 1, count do plan[#plan + 1] = {to, size} end end
    add(a, 50, 5); add(a, 20, 1); add(a, 50, 3); add(b, 30, 4); add(a, 0, 1); add(a, 50, 2)
    add(a, 10, 70); add(b, 30, 1); add(a, 1400, 3)
    local msgs, want = {}, {[a] = {}, [b] = {}}
    for i, m in ipairs(plan) do
        local data = m[2] == 0 and "" or (string.format("%03d", i) .. ("x"):rep(m[2])):sub(1, m[2])
        msgs[i] = {data = data, addr = m[1]:local_addr()}
        table.insert(want[m[1]], data)
    end
    lu.assertEquals(cli:write_batch(msgs), #plan)
    for _, pc in ipairs({a, b}) do
        for i, data in ipairs(want[pc]) do
            local got, from = read_from(pc, 2048)
            lu.assertEquals(got, data, "datagram " .. i)
            lu.assertEquals(tostring(from), tostring(cli:local_addr()))
        end
    end
    local c = dial(defer, "udp4", tostring(b:local_addr()))
    local out = {}
    for i = 1, 20 do out[i] = {data = string.format("c%02d", i)} end
    lu.assertEquals(c:write_batch(out), 20)
    for i = 1, 20 do lu.assertEquals(read_from(b), string.format("c%02d", i)) end
end)

TestPacketBatch.test_write_batch_stops_at_a_bad_message = T(function(defer)
    local srv, cli = listen(defer), listen(defer)
    local to = srv:local_addr()
    local msgs = {{data = "1", addr = to}, {data = "2", addr = to}, {data = "3", addr = "nope"},
                  {data = "4", addr = to}}
    local n, err, sent = cli:write_batch(msgs)
    H.assert_err(n, err, "badaddr")
    lu.assertEquals(sent, 2)                                   -- message 3 failed
    lu.assertEquals(read_from(srv), "1")
    lu.assertEquals(read_from(srv), "2")
    lu.assertEquals(cli:write_batch(msgs, 4), 1)               -- resume after it
    lu.assertEquals(read_from(srv), "4")
    msgs[1].addr = "127.0.0.1:0"
    n, err, sent = cli:write_batch(msgs, 1, 1)
    H.assert_err(n, err, "EINVAL")
    lu.assertEquals(sent, 0)
    lu.assertErrorMsgContains("data must be a string", cli.write_batch, cli, {{addr = to}})
end)

TestPacketBatch.test_batches_on_connected_conns = T(function(defer)
    local srv = listen(defer)
    local c = dial(defer, "udp4", tostring(srv:local_addr()))
    lu.assertEquals(c:write_batch({{data = "c1"}, {data = "c2"}}), 2)
    local n, err, sent = c:write_batch({{data = "x", addr = srv:local_addr()}})
    H.assert_err(n, err, "EISCONN")
    lu.assertEquals(sent, 0)
    lu.assertEquals(read_from(srv), "c1")
    local _, from = read_from(srv)
    assert(srv:write_to("r1", from))
    assert(srv:write_to("r2", from))
    local msgs = {{}, {}}
    c:set_read_deadline(net.now() + 5)
    n = assert(c:read_batch(msgs))
    if n == 1 then n = n + assert(c:read_batch({msgs[2]})) end
    lu.assertEquals(msgs[1].data, "r1")
    lu.assertEquals(msgs[2].data, "r2")
    lu.assertNil(msgs[1].addr)                                 -- connected: no sender needed
end)

-- ===== unixgram =====

TestPacketUnixgram = {}

TestPacketUnixgram.test_paths_read_from_write_to = T(function(defer)
    local dir = tmpdir(defer)
    local spath, cpath = dir .. "/srv.sock", dir .. "/cli.sock"
    local srv = listen(defer, "unixgram", spath)
    local cli = listen(defer, "unixgram", cpath)
    lu.assertEquals(srv:local_addr().name, spath)
    lu.assertEquals(srv:local_addr().network, "unixgram")
    lu.assertEquals(tostring(srv:local_addr()), spath)
    lu.assertStrContains(tostring(srv), "unixgram " .. spath)
    lu.assertEquals(cli:write_to("hi", spath), 2)
    local d, from, truncated = read_from(srv)
    lu.assertEquals(d, "hi")
    lu.assertEquals(from.name, cpath)
    lu.assertFalse(truncated)
    assert(srv:write_to("there", from))
    lu.assertEquals(read_from(cli), "there")
    -- zero-length and truncated datagrams, as for UDP
    assert(cli:write_to("", srv:local_addr()))
    assert(cli:write_to("abcdef", srv:local_addr()))
    lu.assertEquals(read_from(srv), "")
    local t, _, tr = read_from(srv, 2)
    lu.assertEquals(t, "ab")
    lu.assertTrue(tr)
end)

TestPacketUnixgram.test_abstract_names = T(function(defer)
    local name = "@coronet-spec-" .. require("coronet.core").getpid() .. "-" .. math.random(1e9)
    local srv = listen(defer, "unixgram", name)
    lu.assertEquals(tostring(srv:local_addr()), name)
    local cli = listen(defer, "unixgram", name .. "-c")
    assert(cli:write_to("abs", name))
    local d, from = read_from(srv)
    lu.assertEquals(d, "abs")
    lu.assertEquals(from.name, name .. "-c")
end)

TestPacketUnixgram.test_dial_autobinds_so_the_peer_can_answer = T(function(defer)
    local dir = tmpdir(defer)
    local spath = dir .. "/srv.sock"
    local srv = listen(defer, "unixgram", spath)
    local c = dial(defer, "unixgram", spath)
    lu.assertEquals(c:remote_addr().name, spath)
    lu.assertStrContains(c:local_addr().name, "@")             -- an abstract name
    assert(c:write("req"))
    local d, from = read_from(srv)
    lu.assertEquals(d, "req")
    lu.assertEquals(from.name, c:local_addr().name)
    assert(srv:write_to("resp", from))
    c:set_read_deadline(net.now() + 5)
    lu.assertEquals(c:read(), "resp")
    -- a dial with local_addr binds to that path
    local c2 = dial(defer, "unixgram", spath, {local_addr = dir .. "/c2.sock"})
    lu.assertEquals(c2:local_addr().name, dir .. "/c2.sock")
    assert(c2:write("two"))
    local _, f2 = read_from(srv)
    lu.assertEquals(f2.name, dir .. "/c2.sock")
end)

TestPacketUnixgram.test_unlink_on_close_and_addr_in_use = T(function(defer)
    local dir = tmpdir(defer)
    local p1, p2 = dir .. "/a.sock", dir .. "/b.sock"
    local a = assert(net.listen_packet("unixgram", p1))
    lu.assertTrue(exists(p1))
    local dup, err = net.listen_packet("unixgram", p1)
    H.assert_err(dup, err, "EADDRINUSE")
    lu.assertStrContains(tostring(err), p1)
    a:close()
    lu.assertFalse(exists(p1), "removed on close")
    local b = assert(net.listen_packet("unixgram", p2, {unlink_on_close = false}))
    b:close()
    lu.assertTrue(exists(p2), "kept with unlink_on_close = false")
    -- a path whose socket is gone refuses; a path that never existed is ENOENT
    local c = listen(defer, "unixgram", dir .. "/c.sock")
    local n, werr = c:write_to("x", p2)
    H.assert_err(n, werr, "ECONNREFUSED")
    n, werr = c:write_to("x", dir .. "/none.sock")
    H.assert_err(n, werr, "ENOENT")
    local d, derr = net.dial("unixgram", dir .. "/none.sock")
    H.assert_err(d, derr, "ENOENT")
    lu.assertEquals(derr.op, "dial")
    n, werr = c:write_to("x", string.rep("p", 200))
    H.assert_err(n, werr, "ENAMETOOLONG")
end)

TestPacketUnixgram.test_writer_parks_when_the_receiver_is_full = T(function(defer)
    local dir = tmpdir(defer)
    local srv = listen(defer, "unixgram", dir .. "/s.sock")
    local cli = listen(defer, "unixgram", dir .. "/c.sock")
    local N = 300                                              -- far beyond max_dgram_qlen
    local writers = {}
    for w = 1, 2 do                                            -- two writers: one parks, one queues
        writers[w] = spawn(function()
            for i = 1, N do assert(cli:write_to(w .. ":" .. i, srv:local_addr())) end
            return true
        end)
    end
    net.yield()
    local seen = {0, 0}
    for _ = 1, 2 * N do
        local d = assert(read_from(srv))
        local w, i = d:match("^(%d):(%d+)$")
        w, i = tonumber(w), tonumber(i)
        lu.assertEquals(i, seen[w] + 1, "in order, none lost")
        seen[w] = i
    end
    lu.assertTrue(join(writers[1]))
    lu.assertTrue(join(writers[2]))
end)

TestPacketUnixgram.test_queued_writers_wake_on_close_and_deadline = T(function(defer)
    local dir = tmpdir(defer)
    local srv = listen(defer, "unixgram", dir .. "/s.sock")
    local cli = listen(defer, "unixgram", dir .. "/c.sock")
    local function filler()                                    -- writes until it must wait
        return spawn(function()
            while true do
                local n, err = cli:write_to("x", srv:local_addr())
                if not n then return err end
            end
        end)
    end
    local a, b, c = filler(), filler(), filler()               -- one on the handle, two queued
    while net.debug.stats().blocked.write < 3 do net.yield() end
    cli:set_write_deadline(net.now() + 0.05)                   -- reaches the queued ones too
    for _, t in ipairs{a, b, c} do
        local err = join(t)
        lu.assertEquals(err.code, "timeout", tostring(err))
    end
    cli:set_write_deadline(nil)
    local d, e = filler(), filler()
    while net.debug.stats().blocked.write < 2 do net.yield() end
    cli:close()
    for _, t in ipairs{d, e} do
        lu.assertTrue(net.errors.is(join(t), net.ErrClosed))
    end
end)

TestPacketUnixgram.test_write_deadline_on_a_full_receiver = T(function(defer)
    local dir = tmpdir(defer)
    local srv = listen(defer, "unixgram", dir .. "/s.sock")
    local c = dial(defer, "unixgram", dir .. "/s.sock")
    c:set_write_deadline(net.now() + 0.05)
    local n, err
    for _ = 1, 10000 do
        n, err = c:write("fill")
        if not n then break end
    end
    H.assert_err(n, err, "timeout")
    -- a ctx wakes a parked writer too, and the conn stays usable
    c:set_write_deadline(nil)
    local ctx, cancel = net.context.with_cancel(net.context.background())
    local w = spawn(function() return c:write("more", ctx) end)
    net.yield()
    lu.assertEquals(net.debug.stats().blocked.write, 1)
    cancel()
    H.assert_err(join(w))
    lu.assertEquals(read_from(srv), "fill")
end)

TestPacketUnixgram.test_batches = T(function(defer)
    local dir = tmpdir(defer)
    local srv = listen(defer, "unixgram", dir .. "/s.sock")
    local cli = listen(defer, "unixgram", dir .. "/c.sock")
    local out = {}
    for i = 1, 8 do out[i] = {data = "u" .. i, addr = dir .. "/s.sock"} end
    lu.assertEquals(cli:write_batch(out), 8)
    local msgs = {}
    for i = 1, 8 do msgs[i] = {} end
    srv:set_read_deadline(net.now() + 5)
    local n = assert(srv:read_batch(msgs, 16))
    lu.assertEquals(n, 8)
    for i = 1, 8 do
        lu.assertEquals(msgs[i].data, "u" .. i)
        lu.assertEquals(msgs[i].addr.name, dir .. "/c.sock")
    end
    lu.assertEquals(srv:write_batch(msgs, 1, n), 8)
    for i = 1, 8 do lu.assertEquals(read_from(cli), "u" .. i) end
end)

TestPacketUnixgram.test_close_wakes_reader_and_options = T(function(defer)
    local dir = tmpdir(defer)
    local pc = listen(defer, "unixgram", dir .. "/s.sock")
    assert(pc:set_read_buffer(32768))
    assert(pc:set_write_buffer(32768))
    H.assert_err(pc:set_broadcast(true))                        -- not an IP socket
    H.assert_err(pc:set_multicast_ttl(1))
    local r = spawn(function() return pc:read_from() end)
    net.yield()
    pc:close()
    local d, err = join(r)
    H.assert_err(d, err, "closed")
end)

-- ===== outside tasks =====

TestPacketTopLevel = {}

-- Blocking calls at the top level drive the loop themselves (the REPL
-- contract); this test body is deliberately not a task.
function TestPacketTopLevel:test_blocking_calls_outside_any_task()
    local fds = H.open_fds()
    local srv = assert(net.listen_packet("udp4", "127.0.0.1:0"))
    local echo = net.go(function()
        local d, from = srv:read_from()
        srv:write_to(d, from)
        local msgs = {{}}
        local n = srv:read_batch(msgs)
        srv:write_batch(msgs, 1, n)
    end)
    local c = assert(net.dial("udp4", tostring(srv:local_addr())))
    lu.assertEquals(c:write("top"), 3)
    c:set_read_deadline(net.now() + 5)
    lu.assertEquals(c:read(), "top")
    lu.assertEquals(c:write_batch({{data = "batch"}}), 1)
    local msgs = {{}}
    lu.assertEquals(c:read_batch(msgs), 1)
    lu.assertEquals(msgs[1].data, "batch")
    echo:wait()
    local other = assert(net.listen_packet("udp4", "127.0.0.1:0"))
    lu.assertEquals(other:write_to("w", srv:local_addr()), 1)
    local d = srv:read_from()
    lu.assertEquals(d, "w")
    c:close()
    srv:close()
    other:close()
    lu.assertEquals(H.open_fds(), fds)
    lu.assertEquals(net.debug.stats().tasks, 0)
end

if not SPEC_RUNNER then os.exit(require("luaunit").LuaUnit.run()) end
