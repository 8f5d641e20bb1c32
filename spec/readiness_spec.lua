--- spec/readiness_spec.lua: the readiness hints (csrc/loop.c handle_recv,
-- handle_send, read_batch). After a short read or EAGAIN a conn parks without a recv
-- until the poller reports it readable again, and likewise for writes. A
-- hint that was wrong would park a reader forever on data or a FIN that
-- already arrived: each test here ends in a watchdog failure instead.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")

local T, spawn = H.watched(10)

-- turns(n): let the loop poll n times, so pending events are dispatched.
local function turns(n)
    for _ = 1, n do net.sleep(0) end
end

-- blocked(kind): how many tasks are parked in a wait of that kind.
local function blocked(kind)
    return (net.debug.stats().blocked or {})[kind] or 0
end

-- parked(kind, base): wait until more than base (default 0) tasks are
-- parked in a wait of that kind.
local function parked(kind, base)
    base = base or 0
    for _ = 1, 1000 do
        if blocked(kind) > base then return end
        net.sleep(0)
    end
    error("no task parked in " .. kind)
end

-- echo_once_server(defer) -> addr: a server whose conns each read once,
-- echo what they read and close. (Not H.echo_server: its conns read again
-- after the echo, and a reader left parked by one client would count in
-- the next client's baseline for parked("read").)
local function echo_once_server(defer)
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    defer(ln)
    spawn(function()
        while true do
            local c = ln:accept()
            if not c then return end
            net.go(function()
                local data = c:read(64)
                if data then c:write(data) end
                c:close()
            end)
        end
    end)
    return tostring(ln:addr())
end

-- client(addr, i, late): dial, write (after the server's read parked, if
-- late) and check the echo.
local function client(addr, i, late)
    local base = blocked("read")
    local c = assert(net.dial("tcp", addr))
    if late then parked("read", base) end
    local msg = "m" .. i
    assert(c:write(msg))
    lu.assertEquals(c:read_full(#msg), msg)
    c:close()
end

-- guess_off(defer): clients that write at once until the guess is off and
-- its score is back at 0 (each first read that finds data takes 4 off a
-- score below 8: two more clients), so a test of the first read's recv
-- does not depend on what earlier tests, in this file or others, did.
local function guess_off(defer)
    local addr = echo_once_server(defer)
    for i = 1, 100 do
        if net.debug.stats().first_read == "recv" then
            client(addr, i, false)
            client(addr, i + 1, false)
            return
        end
        client(addr, i, false)
    end
    error("clients that write at once left the guess on")
end

TestReadiness = {}

for _, network in ipairs({"tcp", "unix"}) do
    -- data and FIN arrive together: the short read must not leave the conn
    -- waiting for an edge that already came, whether the loop dispatched
    -- their event before the first read (3 turns) or it is still pending (0)
    for _, n in ipairs({3, 0}) do
        TestReadiness[("test_fin_with_data_%s_after_%d_turns"):format(network, n)] = T(function(defer)
            local a, b = H.pair(defer, network)
            assert(a:write("hello"))
            assert(a:close())
            turns(n)
            lu.assertEquals(b:read(64), "hello")
            local v, err = b:read(64)
            lu.assertNil(v)
            lu.assertIs(err, net.EOF)
        end)
    end

    -- after a short read the next read parks; data sent later wakes it
    TestReadiness["test_short_read_then_later_data_" .. network] = T(function(defer)
        local a, b = H.pair(defer, network)
        assert(a:write("ab"))
        lu.assertEquals(b:read(64), "ab")
        local t = spawn(function() return b:read(64) end)
        parked("read")
        assert(a:write("cd"))
        lu.assertEquals(H.join(t), "cd")
    end)
end

TestReadiness.test_reset_after_data_is_reported = T(function(defer)
    local a, b = H.pair(defer)
    assert(a:write("x"))
    assert(a:set_linger(0))
    assert(a:close())                            -- RST after the byte
    turns(3)
    lu.assertEquals(b:read(64), "x")
    local v, err = b:read(64)
    lu.assertNil(v)
    lu.assertEquals(err.code, "ECONNRESET")
end)

TestReadiness.test_bufio_reader_sees_fin_after_a_short_fill = T(function(defer)
    local a, b = H.pair(defer)
    local rd = net.bufio.reader(b)
    assert(a:write("line\npartial"))
    assert(a:close())
    turns(3)
    lu.assertEquals(rd:read_line(), "line")
    local v, err, partial = rd:read_line()       -- a last line with no LF
    lu.assertNil(v)
    lu.assertIs(err, net.ErrUnexpectedEOF)
    lu.assertEquals(partial, "partial")
end)

-- TCP urgent data: a read stops short at the urgent mark although data is
-- queued behind it, so a short read must not mark the conn drained once
-- epoll reported the urgent data (EPOLLPRI). The peer is perl (perl-base
-- is Essential on Debian), which coronet's API cannot be (it sends no
-- MSG_OOB). It sends "abc", the urgent byte "d" and "efg", then opens a
-- second conn to say so: loopback has queued all of it by then. The
-- urgent byte is not in the stream (no SO_OOBINLINE), as in Go.
TestReadiness.test_urgent_data_does_not_hide_the_bytes_behind_it = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local script = [[
        use Socket;
        my $addr = pack_sockaddr_in($ARGV[0], inet_aton("127.0.0.1"));
        socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
        connect($s, $addr) or die "connect: $!";
        send($s, "abc", 0); send($s, "d", MSG_OOB); send($s, "efg", 0);
        socket(my $t, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
        connect($t, $addr) or die "connect: $!";
        close($t);
        1 while sysread($s, my $buf, 64);   # until coronet closes
    ]]
    local proc = assert(net.process.spawn{"/usr/bin/perl", args = {"-e", script, ln:addr().port},
        stdout = "null"})
    defer({close = function() proc:kill() proc:wait() end})
    local c = defer(assert(ln:accept()))
    defer(assert(ln:accept()))                   -- all of c's bytes are queued now
    turns(3)                                     -- and their event dispatched
    lu.assertEquals(c:read(64), "abc")           -- stops at the mark
    lu.assertEquals(c:read(64), "efg")           -- hung here before EPOLLPRI
    c:close()
    local st = assert(proc:wait())
    lu.assertEquals(st.code, 0)
end)

-- Unix streams: a read stops short after a message that carried fds (the
-- fds are dropped: read takes no control data) although data is queued
-- behind it, so a short read on a unix conn never marks it drained. The
-- peer is spec/fixtures/send_fd.c, built here with cc.
TestReadiness.test_unix_fd_message_does_not_hide_the_bytes_behind_it = T(function(defer)
    local dir = H.tmpdir()
    defer({close = function() H.rm(dir) end})
    assert(os.execute(("cc -o %s/send_fd spec/fixtures/send_fd.c"):format(dir)), "cc failed")
    local path = dir .. "/sock"
    local ln = defer(assert(net.listen("unix", path)))
    local proc = assert(net.process.spawn{dir .. "/send_fd", args = {path}})
    defer({close = function() proc:kill() proc:wait() end})
    local c = defer(assert(ln:accept()))
    defer(assert(ln:accept()))                   -- all of c's bytes are queued now
    turns(3)
    lu.assertEquals(c:read(64), "abc")           -- stops after the fd message
    lu.assertEquals(c:read(64), "efg")           -- hung here when unix reads trusted the hint
    c:close()
    lu.assertEquals(assert(proc:wait()).code, 0)
end)

-- A write bigger than the socket buffers goes out in pieces: each short
-- send parks until the peer drains, and every byte arrives in order.
for _, network in ipairs({"tcp", "unix"}) do
    TestReadiness["test_short_writes_park_and_finish_" .. network] = T(function(defer)
        local a, b = H.pair(defer, network)
        local chunk = string.rep("0123456789abcdef", 4096)   -- 64 KiB
        local data = chunk:rep(64)                            -- 4 MiB
        local w = spawn(function() return a:write(data) end)
        local got, n = {}, 0
        while n < #data do
            local s = assert(b:read(65536))
            got[#got + 1] = s
            n = n + #s
        end
        lu.assertEquals(H.join(w), #data)
        lu.assertEquals(n, #data)
        lu.assertTrue(table.concat(got) == data)
    end)
end

-- read_batch: a batch shorter than asked marks the socket drained; a
-- datagram sent after that must still wake the next read_batch.
TestReadiness.test_udp_short_batch_then_later_datagram = T(function(defer)
    local srv = defer(assert(net.listen_packet("udp4", "127.0.0.1:0")))
    local cli = defer(assert(net.listen_packet("udp4", "127.0.0.1:0")))
    local msgs = {}
    for i = 1, 64 do msgs[i] = {} end
    assert(cli:write_to("one", srv:local_addr()))
    assert(cli:write_to("two", srv:local_addr()))
    turns(3)
    local n = assert(srv:read_batch(msgs))
    while n < 2 do n = n + assert(srv:read_batch({msgs[n + 1]})) end
    lu.assertEquals({msgs[1].data, msgs[2].data}, {"one", "two"})
    local t = spawn(function() return srv:read_batch(msgs) end)
    parked("read")
    assert(cli:write_to("three", srv:local_addr()))
    lu.assertEquals(H.join(t), 1)
    lu.assertEquals(msgs[1].data, "three")
end)

-- polled_fds(): the fds every epoll instance of this process watches,
-- from /proc/self/fdinfo (an epoll fd lists each as "tfd: N").
local function polled_fds()
    local set = {}
    for fd = 0, 1023 do
        local f = io.open("/proc/self/fdinfo/" .. fd)
        if f then
            for n in f:read("a"):gmatch("tfd:%s*(%d+)") do set[tonumber(n)] = true end
            f:close()
        end
    end
    return set
end

-- An accepted conn is registered with the poller when it first waits
-- (handle_register), not when it is accepted: one that reads what came,
-- writes and closes never costs an epoll_ctl. Whatever readiness came
-- before the registration is reported by it.
for _, network in ipairs({"tcp", "unix"}) do
    TestReadiness["test_an_accepted_conn_is_polled_once_it_waits_" .. network] = T(function(defer)
        guess_off(defer)
        local a, b = H.pair(defer, network)         -- b is the accepted one
        lu.assertTrue(polled_fds()[a:fd()], "a dialed conn is polled from the start")
        assert(b:write("hello"))
        lu.assertEquals(a:read(64), "hello")
        lu.assertNil(polled_fds()[b:fd()], "writes that did not wait registered nothing")
        local t = spawn(function() return b:read(64) end)
        parked("read")
        lu.assertTrue(polled_fds()[b:fd()], "a read that waits registers the conn")
        assert(a:write("ping"))
        lu.assertEquals(H.join(t), "ping")
    end)

    -- a short read leaves the conn unregistered and marked drained; data
    -- that comes before the next read is reported by the registration
    -- that read makes, so it does not wait for a later edge
    TestReadiness["test_data_before_the_first_wait_is_not_lost_" .. network] = T(function(defer)
        guess_off(defer)
        local a, b = H.pair(defer, network)
        assert(a:write("ab"))
        lu.assertEquals(b:read(64), "ab")
        assert(a:write("cd"))
        turns(3)
        lu.assertEquals(b:read(64), "cd")
        assert(a:close())
        local v, err = b:read(64)
        lu.assertNil(v)
        lu.assertIs(err, net.EOF)
    end)
end

-- polled_events(fd) -> the epoll event mask every epoll instance of this
-- process watches fd for (0: none), from /proc/self/fdinfo.
local function polled_events(fd)
    local mask = 0
    for efd = 0, 1023 do
        local f = io.open("/proc/self/fdinfo/" .. efd)
        if f then
            for n, ev in f:read("a"):gmatch("tfd:%s*(%d+)%s+events:%s*(%x+)") do
                if tonumber(n) == fd then mask = mask | tonumber(ev, 16) end
            end
            f:close()
        end
    end
    return mask
end
local EPOLLIN, EPOLLOUT = 0x1, 0x4

-- An accepted conn is watched for each side when a task first waits on
-- it: a server that waits to read is not woken because it can write (a
-- fresh socket is writable, so watching both would report that at once).
for _, network in ipairs({"tcp", "unix"}) do
    TestReadiness["test_an_accepted_conn_is_watched_for_the_side_it_waits_on_" .. network] =
        T(function(defer)
            local a, b = H.pair(defer, network)
            local base = blocked("read")
            local r = spawn(function() return b:read(64) end)
            parked("read", base)
            local ev = polled_events(b:fd())
            lu.assertNotEquals(ev & EPOLLIN, 0, "a reader waits: watched for input")
            lu.assertEquals(ev & EPOLLOUT, 0, "no writer waited: not watched for output")
            local big = H.pattern(16 << 20)          -- more than the socket buffers hold
            local base_w = blocked("write")
            local w = spawn(function() return b:write(big) end)
            parked("write", base_w)
            ev = polled_events(b:fd())
            lu.assertNotEquals(ev & EPOLLOUT, 0, "a writer waits: watched for output too")
            lu.assertNotEquals(ev & EPOLLIN, 0, "and still for input")
            local got = assert(a:read_full(#big))
            lu.assertTrue(got == big, "the blocked write's bytes arrive whole")
            lu.assertEquals(H.join(w), #big)
            assert(a:write("ping"))
            lu.assertEquals(H.join(r), "ping")
        end)
end

-- The loop guesses whether an accepted conn's first bytes have come
-- (handle_accepted): when clients write only after the server reads, a
-- conn's first read parks at once instead of making a recv that fails;
-- clients that write at once turn the guess off again. Whichever way it
-- guesses, every read gets its bytes (a wrong guess costs a loop turn).
TestReadiness.test_first_reads_follow_the_clients = T(function(defer)
    guess_off(defer)
    local addr = echo_once_server(defer)
    for i = 1, 24 do client(addr, i, true) end
    lu.assertEquals(net.debug.stats().first_read, "park", "late writers: first reads park")
    for i = 25, 40 do client(addr, i, true) end       -- parked first reads still wake
    local flipped
    for i = 41, 100 do
        client(addr, i, false)                        -- the guess is wrong for these
        if net.debug.stats().first_read == "recv" then
            flipped = i - 40
            break
        end
    end
    lu.assertNotNil(flipped, "clients that write at once turn the guess off")
    lu.assertTrue(flipped <= 40, "within 40 conns: " .. tostring(flipped))
    for i = 101, 110 do client(addr, i, false) end
    lu.assertEquals(net.debug.stats().first_read, "recv")
end)

-- a server that speaks first (a banner) under the guess: its read after
-- the banner gets the client's answer
TestReadiness.test_a_banner_server_under_the_guess = T(function(defer)
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    defer(ln)
    local addr = tostring(ln:addr())
    spawn(function()
        while true do
            local c = ln:accept()
            if not c then return end
            net.go(function()
                c:write("220 hello\n")
                local data = c:read(64)
                if data then c:write("got " .. data) end
                c:close()
            end)
        end
    end)
    local echo_addr = echo_once_server(defer)
    for i = 1, 24 do client(echo_addr, i, true) end
    lu.assertEquals(net.debug.stats().first_read, "park")
    for i = 1, 10 do
        local c = assert(net.dial("tcp", addr))
        lu.assertEquals(c:read_full(10), "220 hello\n")
        assert(c:write("x" .. i))
        local want = "got x" .. i
        lu.assertEquals(c:read_full(#want), want)
        c:close()
    end
    guess_off(defer)
end)

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end
