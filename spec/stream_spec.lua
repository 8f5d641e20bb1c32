-- stream_spec.lua - stream conns and listeners (csrc/conn.c,
-- csrc/listener.c, lua/coronet/stream.lua): dial/listen for tcp, tcp4,
-- tcp6, unix paths and abstract names; addresses; read/read_full/write;
-- half-close; deadlines; close racing blocked calls; concurrency rules;
-- resets; malformed addresses; socket options; inherited fds; GC and
-- <close>; blocking calls outside tasks; error objects.
-- Run from the repo root:
--   make && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 spec/stream_spec.lua
-- Only loopback addresses are used, ports come from ":0", and sleeps only
-- ever prove that something did NOT happen.
local lu = require "luaunit"
local net = require "coronet"
local H
do
    local ok, h = pcall(require, "spec.helpers")
    H = ok and h or dofile("spec/helpers.lua")
end
local core = require "coronet.core"
local errors = net.errors

local fmt = string.format

-- ===== helpers =====

-- T(fn): fn(defer) as a test body under H.test, with a watchdog: a body
-- that hangs has its deferred objects closed and any task spawn() started
-- that is still parked woken (as cancelled), so a library bug fails its
-- test instead of stalling the suite or leaking parked tasks into later
-- tests.
local WATCHDOG = 5
local T, spawn = H.watched(WATCHDOG)

local join = H.join

-- wait_blocked(kind, n): yield until at least n tasks are parked in kind
-- ("read", "write", "accept", "connect"): the event itself, not a sleep.
local function wait_blocked(kind, n)
    n = n or 1
    for _ = 1, 100000 do
        if net.debug.stats().blocked[kind] >= n then return end
        net.yield()
    end
    lu.fail(fmt("never saw %d task(s) blocked in %s", n, kind))
end

local timed = H.timed      -- timed(fn, ...) -> seconds, results...

-- pair(defer [, network, address, listen_opts, dial_opts]) -> client conn,
-- server conn, listener (all deferred for closing).
local function pair(defer, network, address, lopts, dopts)
    network = network or "tcp"
    local ln = defer(assert(net.listen(network, address or "127.0.0.1:0", lopts)))
    local t = spawn(function() return ln:accept() end)
    local c = defer(assert(net.dial(network, tostring(ln:addr()), dopts)))
    local s, err = join(t)
    lu.assertNotNil(s, tostring(err))
    defer(s)
    return c, s, ln
end

-- read_all(c) -> everything up to EOF, and the error that ended it.
local function read_all(c)
    local parts = {}
    while true do
        local d, err = c:read(65536)
        if not d then return table.concat(parts), err end
        parts[#parts + 1] = d
    end
end

-- pattern(n, seed): n bytes that are not periodic at any power of two.
local function pattern(n, seed)
    local blk = {}
    for i = 1, 4099 do blk[i] = string.char((i * 7 + seed * 13) % 251) end
    local b = table.concat(blk)
    return b:rep(n // #b + 1):sub(1, n)
end

local function sockopt(x, level, name)
    local fd = type(x) == "number" and x or x:fd()
    return (assert(net.getsockopt(fd, level, name)))
end

-- "At once": a call that must not wait for anything (the alternative is
-- blocking until some other event, or forever); generous for loaded hosts.
local AT_ONCE = 0.25

local function fd_count() return H.open_fds() end

local exists = H.exists

local function free_port()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local port = ln:addr().port
    ln:close()
    return port
end

local abstract_n = 0
local function abstract_name()
    abstract_n = abstract_n + 1
    return fmt("@coronet-spec-%d-%d-%d", core.getpid(), abstract_n, math.random(1 << 30))
end

-- park_writer(c, s [, data]): a task writing data (8 MiB) on c while s never reads,
-- returned once it is parked (both buffers full). -> task, total bytes.
local function park_writer(c, s, data)
    assert(c:set_write_buffer(16384))
    assert(s:set_read_buffer(16384))
    data = data or string.rep("w", 8 << 20)
    local w = spawn(function() return c:write(data) end)
    wait_blocked("write", 1)
    return w, #data
end

local function is_err(x) return getmetatable(x) ~= nil and getmetatable(x).__name == "coronet.error" end

-- fd flags from /proc (octal), to check O_CLOEXEC.
local function fd_flags(fd)
    local f = io.open("/proc/self/fdinfo/" .. fd)
    if not f then return nil end
    local txt = f:read("a")
    f:close()
    return tonumber(txt:match("flags:%s*(%d+)"), 8)
end
local O_CLOEXEC = 0x80000

local function lua_exe()
    local i, exe = -1, nil
    while arg and arg[i] do exe = arg[i]; i = i - 1 end
    return exe or "lua5.4"
end

-- run_lua(code [, shell_prefix]) -> stdout, stderr, ok: run code in a child
-- Lua with our package paths.
local function run_lua(code, prefix)
    local src = os.tmpname()
    local out, errf = os.tmpname(), os.tmpname()
    local f = assert(io.open(src, "w"))
    f:write(fmt("package.path = %q\npackage.cpath = %q\n", package.path, package.cpath), code)
    f:close()
    local ok = os.execute(fmt("%s%s %s >%s 2>%s", prefix or "", lua_exe(), src, out, errf))
    local function slurp(p)
        local h = io.open(p)
        local s = h and h:read("a") or ""
        if h then h:close() end
        os.remove(p)
        return s
    end
    os.remove(src)
    return slurp(out), slurp(errf), ok
end

-- ===== listen and dial: tcp, tcp4, tcp6 =====

TestStreamListenDial = {}

TestStreamListenDial.test_port0_addr_fields_and_tostring = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local a = ln:addr()
    lu.assertEquals(a.network, "tcp")
    lu.assertEquals(tostring(a.ip), "127.0.0.1")
    lu.assertEquals(math.type(a.port), "integer")
    lu.assertTrue(a.port > 0 and a.port < 65536)
    lu.assertEquals(tostring(a), "127.0.0.1:" .. a.port)
    lu.assertEquals(getmetatable(a).__name, "coronet.addr")
    lu.assertEquals(tostring(ln), "listener tcp 127.0.0.1:" .. a.port)
    lu.assertTrue(ln:close())
    -- still valid after close, and equal to what it was
    local b = ln:addr()
    lu.assertEquals(tostring(b), "127.0.0.1:" .. a.port)
    lu.assertEquals(b.port, a.port)
    lu.assertTrue(a == b)
    lu.assertStrContains(tostring(ln), "(closed)")
end)

TestStreamListenDial.test_tcp_roundtrip_and_addresses_on_both_ends = T(function(defer)
    local c, s, ln = pair(defer)
    local la = ln:addr()
    -- the dialer's remote address is the listener's; the acceptor's local too
    lu.assertTrue(c:remote_addr() == la)
    lu.assertEquals(tostring(s:local_addr()), tostring(la))
    -- each end's local is the other's remote
    lu.assertEquals(tostring(s:remote_addr()), tostring(c:local_addr()))
    lu.assertEquals(tostring(c:local_addr().ip), "127.0.0.1")
    lu.assertTrue(c:local_addr().port > 0 and c:local_addr().port ~= la.port)
    lu.assertEquals(c:local_addr().network, "tcp")
    lu.assertEquals(s:remote_addr().network, "tcp")
    lu.assertEquals(tostring(c), fmt("conn tcp %s->%s", tostring(c:local_addr()), tostring(la)))
    lu.assertEquals(c:write("ping"), 4)
    lu.assertEquals(s:read_full(4), "ping")
    lu.assertEquals(s:write("pong"), 4)
    lu.assertEquals(c:read_full(4), "pong")
    -- addresses survive close
    local l0, r0 = tostring(c:local_addr()), tostring(c:remote_addr())
    lu.assertTrue(c:close())
    lu.assertEquals(tostring(c:local_addr()), l0)
    lu.assertEquals(tostring(c:remote_addr()), r0)
    lu.assertEquals(tostring(c), fmt("conn tcp %s->%s (closed)", l0, r0))
end)

TestStreamListenDial.test_tcp4 = T(function(defer)
    local ln = defer(assert(net.listen("tcp4", ":0")))
    lu.assertEquals(tostring(ln:addr().ip), "0.0.0.0")
    lu.assertEquals(tostring(ln:addr()), "0.0.0.0:" .. ln:addr().port)
    local t = spawn(function() return ln:accept() end)
    local c = defer(assert(net.dial("tcp4", "127.0.0.1:" .. ln:addr().port)))
    local s = defer(assert(join(t)))
    lu.assertTrue(c:remote_addr().ip:is_v4())
    lu.assertEquals(tostring(s:local_addr()), "127.0.0.1:" .. ln:addr().port)
    c:write("4")
    lu.assertEquals(s:read(), "4")
end)

TestStreamListenDial.test_tcp6_loopback = T(function(defer)
    local c, s, ln = pair(defer, "tcp6", "[::1]:0")
    local a = ln:addr()
    lu.assertEquals(tostring(a.ip), "::1")
    lu.assertTrue(a.ip:is_v6())
    lu.assertEquals(tostring(a), "[::1]:" .. a.port)
    lu.assertEquals(tostring(c:remote_addr()), "[::1]:" .. a.port)
    lu.assertEquals(tostring(c:local_addr().ip), "::1")
    lu.assertStrContains(tostring(c:local_addr()), "[::1]:")
    lu.assertEquals(tostring(s:remote_addr()), tostring(c:local_addr()))
    lu.assertStrContains(tostring(c), "conn tcp6 [::1]:")
    c:write("six")
    lu.assertEquals(s:read_full(3), "six")
end)

TestStreamListenDial.test_tcp_wildcard_is_dual_stack = T(function(defer)
    local ln = defer(assert(net.listen("tcp", ":0")))
    local port = ln:addr().port
    lu.assertEquals(tostring(ln:addr()), "[::]:" .. port)
    for _, addr in ipairs{"127.0.0.1:" .. port, "[::1]:" .. port} do
        local t = spawn(function() return ln:accept() end)
        local c = defer(assert(net.dial("tcp", addr)))
        local s = defer(assert(join(t)))
        c:write(addr)
        lu.assertEquals(s:read_full(#addr), addr)
        lu.assertEquals(tostring(s:local_addr()), tostring(c:remote_addr()))  -- not [::]
    end
end)

-- Accepted TCP conns have TCP_NODELAY and keepalive (Go's 15 s unless the
-- listen option says otherwise). The listener sets them on its own socket
-- and Linux copies them into each accepted one, checked on the first.
TestStreamListenDial.test_accepted_conns_get_nodelay_and_keepalive = T(function(defer)
    for _, case in ipairs{{nil, 1, 15}, {7, 1, 7}, {-1, 0}} do
        local ln = defer(assert(net.listen("tcp", "127.0.0.1:0", {keepalive = case[1]})))
        for i = 1, 3 do                          -- the first (checked) and later ones
            local t = spawn(function() return ln:accept() end)
            defer(assert(net.dial("tcp", tostring(ln:addr()))))
            local s = defer(assert(join(t)))
            local what = ("keepalive=%s conn %d"):format(tostring(case[1]), i)
            lu.assertEquals(net.getsockopt(s:fd(), "IPPROTO_TCP", "TCP_NODELAY"), 1, what)
            lu.assertEquals(net.getsockopt(s:fd(), "SOL_SOCKET", "SO_KEEPALIVE"), case[2], what)
            if case[3] then
                lu.assertEquals(net.getsockopt(s:fd(), "IPPROTO_TCP", "TCP_KEEPIDLE"), case[3], what)
                lu.assertEquals(net.getsockopt(s:fd(), "IPPROTO_TCP", "TCP_KEEPINTVL"), case[3], what)
            end
        end
    end
end)

-- An accepted conn's local address comes from the listener's when that
-- names one IP (or a path) and from getsockname under a wildcard; both
-- must be what the dialer sees as its remote address.
TestStreamListenDial.test_accepted_local_addr_matches_the_dialers_remote = T(function(defer)
    for _, spec in ipairs{{"tcp", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}, {"tcp4", "0.0.0.0:0"},
                          {"unix", "@coronet-spec-local-" .. math.random(1 << 30)}} do
        local ln = defer(assert(net.listen(spec[1], spec[2])))
        local t = spawn(function() return ln:accept() end)
        local target = spec[1] == "tcp4" and "127.0.0.1:" .. ln:addr().port or tostring(ln:addr())
        local c = defer(assert(net.dial(spec[1], target)))
        local s = defer(assert(join(t)))
        lu.assertEquals(tostring(s:local_addr()), tostring(c:remote_addr()), spec[2])
        lu.assertEquals(tostring(s:remote_addr()), tostring(c:local_addr()), spec[2])
        assert(s:close())
        lu.assertEquals(tostring(s:local_addr()), tostring(c:remote_addr()), spec[2])
    end
end)

TestStreamListenDial.test_dial_localhost_falls_back_to_ipv4 = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local t = spawn(function() return ln:accept() end)
    local c = defer(assert(net.dial("tcp", "localhost:" .. ln:addr().port)))
    defer(assert(join(t)))
    lu.assertEquals(tostring(c:remote_addr()), tostring(ln:addr()))
end)

TestStreamListenDial.test_listen_localhost_uses_ipv4_as_go = T(function(defer)
    -- Go's Listen("tcp", "localhost:0") binds the first IPv4 address, so
    -- a client dialing 127.0.0.1 reaches it.
    local ln = defer(assert(net.listen("tcp", "localhost:0")))
    lu.assertEquals(tostring(ln:addr().ip), "127.0.0.1")
    local t = spawn(function() return ln:accept() end)
    local c, err = net.dial("tcp", "127.0.0.1:" .. ln:addr().port)
    if not c then
        ln:close()
        join(t)
    end
    lu.assertNotNil(c, tostring(err))
    defer(c)
    defer(assert(join(t)))
end)

TestStreamListenDial.test_dialer_and_listen_config_objects = T(function(defer)
    local lc = net.listen_config{backlog = 16}
    local ln = defer(assert(lc:listen("tcp", "127.0.0.1:0")))
    local d = net.dialer{timeout = 5}
    local t = spawn(function() return ln:accept() end)
    local c = defer(assert(d:dial("tcp", tostring(ln:addr()))))
    local s = defer(assert(join(t)))
    c:write("cfg")
    lu.assertEquals(s:read_full(3), "cfg")
    -- both are reusable
    local ln2 = defer(assert(lc:listen("tcp", "127.0.0.1:0")))
    lu.assertNotEquals(ln2:addr().port, ln:addr().port)
end)

TestStreamListenDial.test_net_addr_objects = T(function()
    local a = net.addr{network = "tcp", ip = "127.0.0.1", port = 80}
    lu.assertEquals(tostring(a), "127.0.0.1:80")
    lu.assertEquals(tostring(net.addr{network = "tcp", ip = "::1", port = 8080}), "[::1]:8080")
    lu.assertEquals(tostring(net.addr{network = "unix", name = "/run/x.sock"}), "/run/x.sock")
    lu.assertEquals(tostring(net.addr{network = "unix", name = "@abs"}), "@abs")
    lu.assertTrue(a == net.addr{network = "tcp", ip = "127.0.0.1", port = 80})
    lu.assertFalse(a == net.addr{network = "tcp", ip = "127.0.0.1", port = 81})
end)

-- ===== unix sockets: paths and the abstract namespace =====

-- An accepted conn keeps room for addresses of its listener's family only
-- (16 bytes each for IPv4): both ends must still read back whole, for
-- IPv4, IPv6 and a dual-stack listener taking an IPv4 client.
TestStreamListenDial.test_accepted_conn_addresses_by_family = T(function(defer)
    for _, case in ipairs({{"127.0.0.1:0", "127.0.0.1"}, {"[::1]:0", "[::1]"},
                           {"[::]:0", "127.0.0.1"}, {"0.0.0.0:0", "127.0.0.1"}}) do
        local ln = defer(assert(net.listen("tcp", case[1])))
        local t = spawn(function() return ln:accept() end)
        local c = defer(assert(net.dial("tcp", case[2] .. ":" .. ln:addr().port)))
        local s = defer(assert(join(t)))
        lu.assertEquals(tostring(s:local_addr()), tostring(c:remote_addr()), case[1])
        lu.assertEquals(tostring(s:remote_addr()), tostring(c:local_addr()), case[1])
        lu.assertEquals(s:remote_addr().port, c:local_addr().port)
        lu.assertEquals(s:local_addr().port, ln:addr().port)
    end
end)

TestStreamUnix = {}

TestStreamUnix.test_unix_path_roundtrip_addrs_and_unlink = T(function(defer)
    local dir = H.tmpdir()
    defer(function() H.rm(dir) end)
    local path = dir .. "/s.sock"
    local c, s, ln = pair(defer, "unix", path)
    local a = ln:addr()
    lu.assertEquals(a.network, "unix")
    lu.assertEquals(a.name, path)
    lu.assertEquals(tostring(a), path)
    lu.assertTrue(exists(path))
    lu.assertEquals(tostring(c:remote_addr()), path)
    lu.assertEquals(c:remote_addr().network, "unix")
    lu.assertEquals(tostring(s:local_addr()), path)
    lu.assertNotNil(c:local_addr())
    lu.assertEquals(c:local_addr().network, "unix")
    lu.assertStrContains(tostring(c), "conn unix ")
    c:write("over unix")
    lu.assertEquals(s:read_full(9), "over unix")
    s:write("back")
    lu.assertEquals(c:read_full(4), "back")
    -- half-close works on unix too
    lu.assertTrue(c:close_write())
    local rest, err = read_all(s)
    lu.assertEquals(rest, "")
    lu.assertTrue(errors.is(err, net.EOF))
    -- unlink_on_close defaults to true: the path is gone after close
    lu.assertTrue(ln:close())
    lu.assertFalse(exists(path), "unix listener path must be removed on close by default")
    lu.assertEquals(tostring(ln:addr()), path)           -- addr still valid after close
end)

TestStreamUnix.test_unlink_on_close_false_keeps_path = T(function(defer)
    local dir = H.tmpdir()
    defer(function() H.rm(dir) end)
    local path = dir .. "/keep.sock"
    local ln = defer(assert(net.listen("unix", path, {unlink_on_close = false})))
    lu.assertTrue(exists(path))
    ln:close()
    lu.assertTrue(exists(path), "unlink_on_close=false must keep the path")
    -- nobody listens there now: a dial is refused, not hung
    local c, err = net.dial("unix", path)
    H.assert_err(c, err, "ECONNREFUSED")
    lu.assertEquals(tostring(err), "dial unix " .. path .. ": connect: connection refused")
    -- and listening again on the stale path fails (the caller owns it)
    local ln2, err2 = net.listen("unix", path)
    H.assert_err(ln2, err2, "EADDRINUSE")
end)

TestStreamUnix.test_listen_on_used_path_fails_and_keeps_the_other = T(function(defer)
    local dir = H.tmpdir()
    defer(function() H.rm(dir) end)
    local path = dir .. "/busy.sock"
    local ln = defer(assert(net.listen("unix", path)))
    local ln2, err = net.listen("unix", path)
    H.assert_err(ln2, err, "EADDRINUSE")
    lu.assertStrContains(tostring(err), "address already in use")
    lu.assertEquals(err.op, "listen")
    lu.assertEquals(err.net, "unix")
    lu.assertTrue(exists(path), "a failed listen must not remove another listener's path")
    local t = spawn(function() return ln:accept() end)
    defer(assert(net.dial("unix", path)))
    defer(assert(join(t)))
end)

TestStreamUnix.test_dial_missing_path = T(function()
    local c, err = net.dial("unix", "/nonexistent-coronet-dir/x.sock")
    H.assert_err(c, err, "ENOENT")
    lu.assertEquals(tostring(err), "dial unix /nonexistent-coronet-dir/x.sock: connect: no such file or directory")
end)

TestStreamUnix.test_abstract_namespace = T(function(defer)
    local name = abstract_name()
    local c, s, ln = pair(defer, "unix", name)
    lu.assertEquals(ln:addr().name, name)
    lu.assertEquals(tostring(ln:addr()), name)
    lu.assertEquals(tostring(c:remote_addr()), name)
    lu.assertEquals(tostring(s:local_addr()), name)
    lu.assertFalse(exists(name), "an abstract name is not a file")
    c:write("abstract")
    lu.assertEquals(s:read_full(8), "abstract")
    -- the name is taken while listening, and free again after close
    local ln2, err = net.listen("unix", name)
    H.assert_err(ln2, err, "EADDRINUSE")
    ln:close()
    local ln3 = defer(assert(net.listen("unix", name)))
    lu.assertEquals(tostring(ln3:addr()), name)
end)

TestStreamUnix.test_abstract_name_of_maximum_length = T(function(defer)
    -- Linux allows 107 bytes after the leading NUL (sun_path is 108 bytes;
    -- an abstract name needs no terminator). Go accepts it too.
    local name = "@" .. string.rep("a", 107)
    local ln, err = net.listen("unix", name)
    lu.assertNotNil(ln, "abstract name of 107 bytes: " .. tostring(err))
    defer(ln)
    lu.assertEquals(tostring(ln:addr()), name)
    -- one byte more is a clear error, not a raise
    local ln2, err2 = net.listen("unix", name .. "a")
    lu.assertNil(ln2)
    lu.assertTrue(is_err(err2))
end)

TestStreamUnix.test_path_too_long_is_an_error = T(function()
    local long = "/tmp/" .. string.rep("x", 200)
    local ok, c, err = pcall(net.dial, "unix", long)
    lu.assertTrue(ok, tostring(c))
    lu.assertNil(c)
    lu.assertTrue(is_err(err))
    local ok2, ln, err2 = pcall(net.listen, "unix", long)
    lu.assertTrue(ok2, tostring(ln))
    lu.assertNil(ln)
    lu.assertTrue(is_err(err2))
end)

-- ===== reading =====

TestStreamRead = {}

-- A read that parks keeps its max (and its ctx) for when it wakes.
TestStreamRead.test_read_max_holds_after_parking = T(function(defer)
    local c, s = pair(defer)
    local ctx = net.context.background()
    for _, args in ipairs({{3}, {2, ctx}, {4, nil}}) do
        local r = net.go(function() return c:read(table.unpack(args, 1, 2)) end)
        while (net.debug.stats().blocked or {}).read == 0 do net.sleep(0) end
        s:write("abcdefgh")
        local d = r:wait()
        lu.assertEquals(#d, args[1])
        lu.assertEquals(d, ("abcdefgh"):sub(1, args[1]))
        local rest = c:read_full(8 - args[1])               -- drain the rest
        lu.assertEquals(d .. rest, "abcdefgh")
    end
end)

TestStreamRead.test_read_returns_prefixes_then_eof = T(function(defer)
    local c, s = pair(defer)
    s:write("hello world")
    lu.assertEquals(c:read_full(1), "h")                -- everything arrived
    local d = c:read(4)
    lu.assertTrue(#d >= 1 and #d <= 4)
    lu.assertEquals(d, ("ello world"):sub(1, #d))
    s:close()
    local rest, err = read_all(c)
    lu.assertEquals(d .. rest, "ello world")
    lu.assertNil((c:read()))
    lu.assertTrue(errors.is(err, net.EOF))
    lu.assertEquals(err, net.EOF)
    -- EOF is sticky
    local v, err2 = c:read(10)
    lu.assertNil(v)
    lu.assertTrue(errors.is(err2, net.EOF))
    lu.assertTrue(err2:is(net.EOF))
    lu.assertEquals(tostring(err2), "EOF")
end)

TestStreamRead.test_read_default_max_and_cap = T(function(defer)
    local c, s = pair(defer)
    local big = pattern(200000, 3)
    local w = spawn(function() return s:write(big) end)
    local got = {}
    local n = 0
    while n < #big do
        local d = assert(c:read())
        lu.assertTrue(#d <= 65536, "read() returns at most 64 KiB")
        got[#got + 1] = d
        n = n + #d
    end
    lu.assertEquals(join(w), #big)
    lu.assertTrue(table.concat(got) == big)
    -- a max over 64 KiB is fine (it is capped, not an error)
    s:write("x")
    lu.assertEquals(c:read(1 << 20), "x")
end)

-- read() takes at most 16 KiB; read(max) up to max, to 64 KiB (the loop's
-- shared buffer). With the writer blocked, the kernel holds a full window
-- of data for c, far more than 16 KiB, so one recv can fill either.
TestStreamRead.test_read_takes_what_max_allows = T(function(defer)
    local c, s = pair(defer)
    local big = pattern(4 << 20, 5)
    local w = spawn(function() return s:write(big) end)
    wait_blocked("write")
    local got, n = {}, 0
    local first = assert(c:read())
    lu.assertEquals(#first, 16384, "read() with no max: 16 KiB")
    got[1], n = first, #first
    local most = 0
    while n < #big do
        local d = assert(c:read(65536))
        lu.assertTrue(#d <= 65536, "read(65536) returns at most 64 KiB")
        if #d > most then most = #d end
        got[#got + 1] = d
        n = n + #d
    end
    lu.assertEquals(join(w), #big)
    lu.assertTrue(table.concat(got) == big)
    lu.assertTrue(most > 16384, "read(65536) took more than 16 KiB at a time: " .. most)
end)

TestStreamRead.test_read_waits_for_data = T(function(defer)
    local c, s = pair(defer)
    local r = spawn(function() return c:read(100) end)
    wait_blocked("read")
    lu.assertFalse(r:is_done())
    s:write("late")
    lu.assertEquals(join(r), "late")
end)

TestStreamRead.test_read_full_exactly_n_across_writes = T(function(defer)
    local c, s = pair(defer)
    local r = spawn(function() return c:read_full(10) end)
    wait_blocked("read")
    s:write("abc")
    net.yield()
    s:write("defg")
    net.yield()
    s:write("hijklmn")                                  -- 14 bytes in total
    lu.assertEquals(join(r), "abcdefghij")
    lu.assertEquals(c:read_full(4), "klmn")
    lu.assertEquals(c:read_full(0), "")
end)

TestStreamRead.test_read_full_unexpected_eof_returns_partial = T(function(defer)
    local c, s = pair(defer)
    s:write("abc")
    s:close()
    local v, err, partial = c:read_full(10)
    lu.assertNil(v)
    lu.assertTrue(errors.is(err, net.ErrUnexpectedEOF))
    lu.assertEquals(partial, "abc")
    lu.assertEquals(tostring(err), "unexpected EOF")
    -- at EOF with nothing read: plain EOF and an empty partial
    local v2, err2, partial2 = c:read_full(5)
    lu.assertNil(v2)
    lu.assertTrue(errors.is(err2, net.EOF))
    lu.assertEquals(partial2, "")
end)

-- A length taken from a hostile peer: read_full(4 GiB) must cost memory for
-- what arrives, not for what was claimed.
TestStreamRead.test_read_full_huge_n_costs_only_what_arrives = T(function(defer)
    local c, s = pair(defer)
    collectgarbage()
    local m0 = collectgarbage("count")
    local w = spawn(function()
        s:write("0123456789")
        s:close_write()
    end)
    local v, err, partial = c:read_full(4 * 1024 * 1024 * 1024)
    join(w)
    lu.assertNil(v)
    lu.assertIs(err, net.ErrUnexpectedEOF)
    lu.assertEquals(partial, "0123456789")
    lu.assertTrue(collectgarbage("count") - m0 < 1024, "grew by a claimed length")
end)

TestStreamRead.test_read_full_takes_a_ctx_after_a_nil = T(function(defer)
    local c = pair(defer)
    local ctx, cancel = net.context.with_cancel(net.context.background())
    cancel()
    local v, err = c:read_full(5, nil, ctx)
    H.assert_err(v, err, "canceled")
end)

TestStreamRead.test_read_full_large = T(function(defer)
    local c, s = pair(defer)
    local big = pattern(3 << 20, 5)
    local w = spawn(function() return s:write(big) end)
    local got = c:read_full(#big)
    lu.assertTrue(got == big, "read_full returned different bytes")
    lu.assertEquals(join(w), #big)
end)

TestStreamRead.test_bad_arguments_raise = T(function(defer)
    local c = pair(defer)
    lu.assertErrorMsgContains("max must be positive", function() return c:read(0) end)
    lu.assertErrorMsgContains("negative", function() return c:read_full(-1) end)
    lu.assertError(function() return c:read("x") end)
    lu.assertError(function() return c:write(nil) end)
    lu.assertError(function() return c:write({}) end)
end)

-- ===== writing =====

TestStreamWrite = {}

TestStreamWrite.test_write_ranges_like_string_sub = T(function(defer)
    local c, s = pair(defer)
    local d = "hello world"
    local expect = {}
    local function w(i, j, n)
        local got = c:write(d, i, j)
        lu.assertEquals(got, n, fmt("write(d, %s, %s)", tostring(i), tostring(j)))
        expect[#expect + 1] = d:sub(i or 1, j or -1)
    end
    w(7, nil, 5)        -- "world"
    w(1, 5, 5)          -- "hello"
    w(-5, -3, 3)        -- "wor"
    w(0, nil, 11)       -- i < 1 is 1
    w(3, 100, 9)        -- j past the end is the end
    w(5, 4, 0)          -- empty range
    w(20, nil, 0)       -- past the end
    w(-100, 2, 2)       -- "he"
    w(nil, nil, 11)
    lu.assertEquals(c:write(""), 0)
    lu.assertTrue(c:close_write())
    local got, err = read_all(s)
    lu.assertTrue(errors.is(err, net.EOF))
    lu.assertEquals(got, table.concat(expect))
end)

TestStreamWrite.test_large_writes_both_directions_concurrently = T(function(defer)
    local c, s = pair(defer)
    for _, x in ipairs{c, s} do
        assert(x:set_write_buffer(65536))
        assert(x:set_read_buffer(65536))
    end
    local up, down = pattern(6 << 20, 1), pattern((6 << 20) + 12345, 2)
    local wc = spawn(function() return c:write(up) end)
    local ws = spawn(function() return s:write(down) end)
    -- nobody reads yet: both writers fill the kernel buffers and park
    wait_blocked("write", 2)
    lu.assertFalse(wc:is_done())
    lu.assertFalse(ws:is_done())
    local rc = spawn(function() return c:read_full(#down) end)
    local rs = spawn(function()
        local parts, n = {}, 0
        while n < #up do
            local d = assert(s:read(65536))
            parts[#parts + 1] = d
            n = n + #d
        end
        return table.concat(parts), #parts
    end)
    lu.assertEquals(join(wc), #up)
    lu.assertEquals(join(ws), #down)
    local got_down = join(rc)
    local got_up, nparts = join(rs)
    lu.assertEquals(#got_down, #down)
    lu.assertTrue(got_down == down, "server->client bytes differ")
    lu.assertEquals(#got_up, #up)
    lu.assertTrue(got_up == up, "client->server bytes differ")
    lu.assertTrue(nparts > 1)
end)

-- A TCP write longer than one send piece (csrc/conn.c's TCP_SEND_PIECE)
-- that times out while parked reports exactly the bytes the peer then reads.
TestStreamWrite.test_timed_out_large_write_counts_what_the_peer_gets = T(function(defer)
    local c, s = pair(defer)
    local big = pattern((8 << 20) + 12345, 7)
    local w = park_writer(c, s, big)
    lu.assertTrue(c:set_write_deadline(0))
    local n, err, done = join(w)
    H.assert_err(n, err, "timeout")
    lu.assertTrue(done > 0 and done < #big, "n_written " .. tostring(done))
    lu.assertTrue(c:close_write())
    local got, e = read_all(s)
    lu.assertTrue(errors.is(e, net.EOF))
    lu.assertEquals(#got, done)
    lu.assertTrue(got == big:sub(1, done), "the peer got other bytes than the first n_written")
end)

TestStreamWrite.test_write_after_close_write_fails = T(function(defer)
    local c, s = pair(defer)
    lu.assertTrue(c:close_write())
    local n, err, done = c:write("x")
    H.assert_err(n, err, "EPIPE")
    lu.assertEquals(done, 0)
    lu.assertEquals(err.op, "write")
    local rest, e = read_all(s)
    lu.assertEquals(rest, "")
    lu.assertTrue(errors.is(e, net.EOF))
end)

TestStreamWrite.test_peer_reset_mid_write = T(function(defer)
    local c, s = pair(defer)
    local w, total = park_writer(c, s, string.rep("r", 16 << 20))
    lu.assertTrue(s:set_linger(0))
    lu.assertTrue(s:close())                      -- RST while c is parked in write
    local n, err, done = join(w)
    lu.assertNil(n)
    lu.assertTrue(is_err(err))
    lu.assertTrue(err.code == "ECONNRESET" or err.code == "EPIPE", tostring(err))
    lu.assertEquals(err.op, "write")
    lu.assertEquals(math.type(done), "integer")
    lu.assertTrue(done > 0 and done < total, "n_written " .. tostring(done))
    -- the process lives (no SIGPIPE) and the conn keeps failing cleanly
    local n2, err2 = c:write("more")
    lu.assertNil(n2)
    lu.assertTrue(err2.code == "EPIPE" or err2.code == "ECONNRESET", tostring(err2))
end)

-- ===== half-close =====

TestStreamHalfClose = {}

TestStreamHalfClose.test_close_write_peer_reads_eof_we_still_read = T(function(defer)
    local c, s = pair(defer)
    local srv = spawn(function()
        local req, err = read_all(s)                   -- until the client's FIN
        lu.assertTrue(errors.is(err, net.EOF))
        lu.assertEquals(s:write("reply to " .. req), 9 + #req)
        s:close()
        return req
    end)
    lu.assertEquals(c:write("request"), 7)
    lu.assertTrue(c:close_write())
    local reply, err = read_all(c)
    lu.assertEquals(reply, "reply to request")
    lu.assertTrue(errors.is(err, net.EOF))
    lu.assertEquals(join(srv), "request")
end)

TestStreamHalfClose.test_close_read = T(function(defer)
    local c, s = pair(defer)
    local r = spawn(function() return c:read() end)
    wait_blocked("read")
    lu.assertTrue(c:close_read())                 -- wakes the blocked reader
    local v, err = join(r)
    lu.assertNil(v)
    lu.assertTrue(errors.is(err, net.EOF), tostring(err))
    local v2, err2 = c:read()
    lu.assertNil(v2)
    lu.assertTrue(errors.is(err2, net.EOF))
    -- the writing half still works
    lu.assertEquals(c:write("still"), 5)
    lu.assertEquals(s:read_full(5), "still")
end)

TestStreamHalfClose.test_half_close_on_closed_conn = T(function(defer)
    local c = pair(defer)
    c:close()
    local ok, err = c:close_write()
    H.assert_err(ok, err, "closed")
    lu.assertTrue(errors.is(err, net.ErrClosed))
    local ok2, err2 = c:close_read()
    H.assert_err(ok2, err2, "closed")
end)

-- ===== deadlines =====

TestStreamDeadline = {}

TestStreamDeadline.test_past_deadline_fails_at_once_even_with_data = T(function(defer)
    local c, s = pair(defer)
    s:write("xy")
    lu.assertEquals(c:read_full(1), "x")                 -- "y" is buffered now
    lu.assertTrue(c:set_read_deadline(net.now() - 1))
    local el, v, err = timed(c.read, c)
    lu.assertTrue(el < AT_ONCE, "took " .. el)
    H.assert_err(v, err, "timeout")
    lu.assertTrue(err.timeout)
    lu.assertTrue(errors.is(err, net.ErrDeadlineExceeded))
    lu.assertStrContains(tostring(err), "i/o timeout")
    lu.assertEquals(tostring(err), fmt("read tcp %s->%s: i/o timeout",
        tostring(c:local_addr()), tostring(c:remote_addr())))
    local v2, err2, partial = c:read_full(1)
    H.assert_err(v2, err2, "timeout")
    lu.assertEquals(partial, "")
    -- nil clears: the buffered byte is still there
    lu.assertTrue(c:set_read_deadline(nil))
    lu.assertEquals(c:read(), "y")
end)

TestStreamDeadline.test_deadline_fires_and_persists_until_cleared = T(function(defer)
    local c, s = pair(defer)
    c:set_read_deadline(net.now() + 0.08)
    local el, v, err = timed(c.read, c)
    H.assert_err(v, err, "timeout")
    lu.assertTrue(el >= 0.07 and el < 0.5, "fired after " .. el)
    -- persists: the next call fails at once
    local el2, v2, err2 = timed(c.read, c)
    H.assert_err(v2, err2, "timeout")
    lu.assertTrue(el2 < AT_ONCE, "second read took " .. el2)
    -- cleared with nil: a read now waits past the old deadline for data
    c:set_read_deadline(nil)
    local r = spawn(function() return c:read() end)
    wait_blocked("read")
    net.sleep(0.1)
    lu.assertFalse(r:is_done(), "a cleared deadline still fired")
    s:write("after")
    lu.assertEquals(join(r), "after")
end)

TestStreamDeadline.test_deadline_is_absolute = T(function(defer)
    local c = pair(defer)
    local dl = net.now() + 0.3
    c:set_read_deadline(dl)
    net.sleep(0.2)                                        -- time passes before the call
    local v, err = c:read()
    local t = net.now()
    H.assert_err(v, err, "timeout")
    lu.assertTrue(t >= dl - 0.002, "fired early")
    -- relative to the call it would fire at dl + 0.2
    lu.assertTrue(t < dl + 0.15, fmt("fired %.3f s after the absolute deadline", t - dl))
end)

TestStreamDeadline.test_moving_deadline_into_past_wakes_blocked_read = T(function(defer)
    local c = pair(defer)
    local r = spawn(function() return timed(c.read, c) end)
    wait_blocked("read")
    lu.assertTrue(c:set_read_deadline(net.now() - 1))
    local el, v, err = join(r)
    H.assert_err(v, err, "timeout")
    lu.assertTrue(el < AT_ONCE)
    -- set_deadline (both directions) does it too
    c:set_read_deadline(nil)
    local r2 = spawn(function() return c:read() end)
    wait_blocked("read")
    local t0 = net.now()
    c:set_deadline(net.now() - 1)
    local v2, err2 = join(r2)
    H.assert_err(v2, err2, "timeout")
    lu.assertTrue(net.now() - t0 < AT_ONCE)
end)

TestStreamDeadline.test_moving_deadline_into_past_wakes_blocked_write = T(function(defer)
    local c, s = pair(defer)
    local w, total = park_writer(c, s)
    local t0 = net.now()
    lu.assertTrue(c:set_write_deadline(0))                -- 0 is a time in the past, not "none"
    local n, err, done = join(w)
    lu.assertTrue(net.now() - t0 < AT_ONCE)
    H.assert_err(n, err, "timeout")
    lu.assertEquals(err.op, "write")
    lu.assertTrue(done > 0 and done < total)
end)

TestStreamDeadline.test_extending_while_blocked = T(function(defer)
    local c, s = pair(defer)
    c:set_read_deadline(net.now() + 0.15)
    local r = spawn(function() return c:read() end)
    wait_blocked("read")
    c:set_read_deadline(net.now() + 10)
    net.sleep(0.25)
    lu.assertFalse(r:is_done(), "the old deadline fired after it was extended")
    s:write("in time")
    lu.assertEquals(join(r), "in time")
end)

TestStreamDeadline.test_shortening_and_clearing_while_blocked = T(function(defer)
    local c, s = pair(defer)
    c:set_read_deadline(net.now() + 10)
    local r = spawn(function() return timed(c.read, c) end)
    wait_blocked("read")
    c:set_read_deadline(net.now() + 0.05)
    local el, v, err = join(r)
    H.assert_err(v, err, "timeout")
    lu.assertTrue(el < 1, "shortened deadline fired after " .. el)
    -- clear a deadline a parked reader is waiting under
    c:set_read_deadline(net.now() + 0.15)
    local r2 = spawn(function() return c:read() end)
    wait_blocked("read")
    c:set_read_deadline(nil)
    net.sleep(0.25)
    lu.assertFalse(r2:is_done(), "a cleared deadline fired")
    s:write("z")
    lu.assertEquals(join(r2), "z")
end)

TestStreamDeadline.test_read_and_write_deadlines_are_independent = T(function(defer)
    local c, s = pair(defer)
    c:set_read_deadline(net.now() - 1)
    lu.assertEquals(c:write("w1"), 2)                     -- writes unaffected
    lu.assertEquals(s:read_full(2), "w1")
    c:set_read_deadline(nil)
    c:set_write_deadline(net.now() - 1)
    local n, err, done = c:write("w2")
    H.assert_err(n, err, "timeout")
    lu.assertEquals(done, 0)
    lu.assertStrContains(tostring(err), "write tcp ")
    s:write("r1")
    lu.assertEquals(c:read_full(2), "r1")                 -- reads unaffected
    c:set_deadline(net.now() - 1)                         -- both
    local v2, err2 = c:read()
    H.assert_err(v2, err2, "timeout")
    local n3, err3 = c:write("x")
    H.assert_err(n3, err3, "timeout")
    c:set_deadline(nil)
    lu.assertEquals(c:write("ok"), 2)
    lu.assertEquals(s:read_full(2), "ok")
end)

TestStreamDeadline.test_write_deadline_fires_while_parked = T(function(defer)
    local c, s = pair(defer)
    local w, total = park_writer(c, s)               -- parked first (slow under valgrind),
    local t0 = net.now()
    c:set_write_deadline(t0 + 0.08)                  -- then the deadline it must wake for
    local n, err, done = join(w)
    local el = net.now() - t0
    H.assert_err(n, err, "timeout")
    lu.assertTrue(err.timeout)
    lu.assertTrue(el >= 0.07 and el < 0.5, "fired after " .. el)
    lu.assertTrue(done > 0 and done < total, "n_written " .. tostring(done))
end)

TestStreamDeadline.test_listener_deadline = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local addr = tostring(ln:addr())
    -- past: fails at once
    lu.assertTrue(ln:set_deadline(net.now() - 1))
    local el, c, err = timed(ln.accept, ln)
    H.assert_err(c, err, "timeout")
    lu.assertTrue(el < AT_ONCE)
    lu.assertTrue(err.timeout)
    lu.assertEquals(tostring(err), "accept tcp " .. addr .. ": i/o timeout")
    -- future: fires then
    ln:set_deadline(net.now() + 0.06)
    local el2, c2, err2 = timed(ln.accept, ln)
    H.assert_err(c2, err2, "timeout")
    lu.assertTrue(el2 >= 0.05 and el2 < 0.5, "fired after " .. el2)
    -- moved into the past from another task while accept is blocked
    ln:set_deadline(nil)
    local a = spawn(function() return timed(ln.accept, ln) end)
    wait_blocked("accept")
    ln:set_deadline(net.now() - 1)
    local el3, c3, err3 = join(a)
    H.assert_err(c3, err3, "timeout")
    lu.assertTrue(el3 < AT_ONCE)
    -- nil clears
    ln:set_deadline(nil)
    local a2 = spawn(function() return ln:accept() end)
    wait_blocked("accept")
    local d = defer(assert(net.dial("tcp", addr)))
    defer(assert(join(a2)))
    lu.assertNotNil(d)
end)

TestStreamDeadline.test_setting_deadlines_on_closed_objects = T(function(defer)
    local c, _, ln = pair(defer)
    c:close()
    for _, m in ipairs{"set_deadline", "set_read_deadline", "set_write_deadline"} do
        local ok, err = c[m](c, net.now() + 1)
        H.assert_err(ok, err, "closed", m)
    end
    ln:close()
    local ok, err = ln:set_deadline(net.now() + 1)
    H.assert_err(ok, err, "closed")
end)

-- ===== close racing blocked calls =====

TestStreamClose = {}

TestStreamClose.test_close_wakes_blocked_read = T(function(defer)
    local c = pair(defer)
    local r = spawn(function() return timed(c.read, c) end)
    wait_blocked("read")
    lu.assertTrue(c:close())
    local el, v, err = join(r)
    H.assert_err(v, err, "closed")
    lu.assertTrue(errors.is(err, net.ErrClosed))
    lu.assertEquals(err.op, "read")
    lu.assertStrContains(tostring(err), "use of closed network connection")
    lu.assertTrue(el < AT_ONCE)
end)

TestStreamClose.test_close_wakes_blocked_read_full_with_partial = T(function(defer)
    local c, s = pair(defer)
    local r = spawn(function() return c:read_full(10) end)
    wait_blocked("read")
    s:write("ab")
    net.yield()
    wait_blocked("read")
    c:close()
    local v, err, partial = join(r)
    H.assert_err(v, err, "closed")
    lu.assertEquals(partial, "ab")
end)

TestStreamClose.test_close_wakes_blocked_write = T(function(defer)
    local c, s = pair(defer)
    local w, total = park_writer(c, s)
    lu.assertTrue(c:close())
    local n, err, done = join(w)
    H.assert_err(n, err, "closed")
    lu.assertTrue(errors.is(err, net.ErrClosed))
    lu.assertEquals(err.op, "write")
    lu.assertTrue(done > 0 and done < total, "n_written " .. tostring(done))
end)

TestStreamClose.test_close_wakes_blocked_accept = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local a = spawn(function() return ln:accept() end)
    wait_blocked("accept")
    lu.assertTrue(ln:close())
    local c, err = join(a)
    H.assert_err(c, err, "closed")
    lu.assertTrue(errors.is(err, net.ErrClosed))
    lu.assertEquals(err.op, "accept")
    -- accept after close fails the same way
    local c2, err2 = ln:accept()
    H.assert_err(c2, err2, "closed")
end)

TestStreamClose.test_second_close_returns_err_closed = T(function(defer)
    local c, _, ln = pair(defer)
    lu.assertTrue(c:close())
    local ok, err = c:close()
    H.assert_err(ok, err, "closed")
    lu.assertTrue(errors.is(err, net.ErrClosed))
    lu.assertEquals(err.op, "close")
    lu.assertStrContains(tostring(err), "close tcp ")
    lu.assertStrContains(tostring(err), "use of closed network connection")
    lu.assertTrue(ln:close())
    local ok2, err2 = ln:close()
    H.assert_err(ok2, err2, "closed")
    lu.assertTrue(errors.is(err2, net.ErrClosed))
end)

TestStreamClose.test_operations_after_close = T(function(defer)
    local c = pair(defer)
    c:close()
    lu.assertEquals(c:fd(), -1)
    local v, err = c:read()
    H.assert_err(v, err, "closed")
    local v2, err2 = c:read_full(3)
    H.assert_err(v2, err2, "closed")
    local n, err3, done = c:write("x")
    H.assert_err(n, err3, "closed")
    lu.assertEquals(done, 0)
    for _, m in ipairs{"set_nodelay", "set_keepalive", "set_keepalive_period", "set_linger",
                       "set_read_buffer", "set_write_buffer", "set_notsent_lowat"} do
        local arg = (m == "set_nodelay" or m == "set_keepalive") and true or 1
        local ok, e = c[m](c, arg)
        H.assert_err(ok, e, "closed", m)
    end
    local f, e = c:file()
    H.assert_err(f, e, "closed")
end)

-- Issue 15 item 6: values that don't fit the option's C int (or aren't
-- finite) are refused with an argument error, never truncated into a
-- `true` that set nothing (UB in the float->int cast).
TestStreamClose.test_option_setters_refuse_out_of_range_values = T(function(defer)
    local c = pair(defer)
    local bad = {
        set_keepalive_period = {1e12, 0 / 0, math.huge, -math.huge, 40000},
        set_linger = {2 ^ 40, 1 << 40},
        set_read_buffer = {2 ^ 40, 1 << 40, -1},
        set_write_buffer = {2 ^ 40, 1 << 40, -1},
        set_notsent_lowat = {2 ^ 40, 1 << 40, -1, 1.5},
    }
    for m, vals in pairs(bad) do
        for _, v in ipairs(vals) do
            local ok, e = pcall(c[m], c, v)
            lu.assertFalse(ok, m .. "(" .. tostring(v) .. ") was accepted")
            lu.assertStrContains(tostring(e), "bad argument #1 to '" .. m .. "'")
        end
    end
    -- values in range still work
    lu.assertTrue(c:set_keepalive_period(30))
    lu.assertTrue(c:set_keepalive_period(0.2))        -- rounds up to 1 s
    lu.assertTrue(c:set_linger(5))
    lu.assertTrue(c:set_read_buffer(65536))
    local pc = defer(assert(net.listen_packet("udp", "127.0.0.1:0")))
    for _, m in ipairs{"set_read_buffer", "set_write_buffer"} do
        for _, v in ipairs{2 ^ 40, 1 << 40, -1} do
            local ok, e = pcall(pc[m], pc, v)
            lu.assertFalse(ok, "packet " .. m .. "(" .. tostring(v) .. ") was accepted")
            lu.assertStrContains(tostring(e), "bad argument #1 to '" .. m .. "'")
        end
    end
    -- the listener's keepalive for accepted conns
    for _, v in ipairs{1e12, 0 / 0, math.huge} do
        local ok, e = pcall(net.listen, "tcp", "127.0.0.1:0", {keepalive = v})
        lu.assertFalse(ok, "listen keepalive " .. tostring(v) .. " was accepted")
        lu.assertStrContains(tostring(e), "keepalive")
    end
end)

-- Issue 15 item 7: argument errors name the method even when Lua can't
-- (a tail call, a call driven by the scheduler).
TestStreamClose.test_argument_errors_name_the_method = T(function(defer)
    local c = pair(defer)
    local ok, e = pcall(c.read, c, 0)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(e), "bad argument #1 to 'read' (max must be positive)")
    ok, e = pcall(c.read_full, c, -1)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(e), "bad argument #1 to 'read_full' (negative length)")
end)

-- ===== concurrency rules =====

TestStreamConcurrency = {}

TestStreamConcurrency.test_second_reader_gets_busy = T(function(defer)
    local c, s = pair(defer)
    local r = spawn(function() return c:read(100) end)
    wait_blocked("read")
    local el, v, err = timed(c.read, c, 100)
    H.assert_err(v, err, "busy")
    lu.assertTrue(el < AT_ONCE)
    local v2, err2 = c:read_full(3)
    H.assert_err(v2, err2, "busy")
    s:write("first")
    lu.assertEquals(join(r), "first")
    -- busy is not sticky: once the first reader is done, reading works
    s:write("next")
    lu.assertEquals(c:read_full(4), "next")
end)

TestStreamConcurrency.test_second_reader_busy_while_first_is_being_woken = T(function(defer)
    -- The first reader has been woken by data but has not run yet; a second
    -- reader that runs in between must still get "busy", not steal the data
    -- (and must never take the first reader's place in the handle).
    local c, s = pair(defer)
    c:set_read_deadline(net.now() + 0.3)                  -- bounds the test if it breaks
    local ra = spawn(function() return c:read(100) end)
    wait_blocked("read")
    s:write("x")                                          -- wakes ra on the next turn...
    local rb = spawn(function() return c:read_full(10) end) -- ...and rb runs before it
    local v, err = join(rb)
    lu.assertNil(v, "the second reader got data while the first was reading")
    lu.assertTrue(is_err(err))
    lu.assertEquals(err.code, "busy", tostring(err))
    lu.assertEquals(join(ra), "x")
end)

TestStreamConcurrency.test_concurrent_writers_never_interleave = T(function(defer)
    -- A writer parked mid-write; other tasks try to write meanwhile, some of
    -- them while the first has just been woken and not yet run. Their bytes
    -- must come after the first writer's block (writers are serialised, as
    -- in Go; "busy" would also keep the stream intact), never inside it.
    local c, s = pair(defer)
    c:set_write_deadline(net.now() + 2)                   -- bounds the test if it breaks
    assert(c:set_write_buffer(16384))
    assert(s:set_read_buffer(16384))
    local N = 2 << 20
    local wa = spawn(function() return c:write(string.rep("a", N)) end)
    wait_blocked("write")                                 -- it parks: the buffers are small
    local reader = spawn(function() return read_all(s) end)
    local others = {}
    while not wa:is_done() and #others < 5000 do
        others[#others + 1] = spawn(function() return c:write("b") end)
        net.yield()
    end
    lu.assertEquals(join(wa), N)
    local nb = 0
    for _, t in ipairs(others) do
        local n, err = join(t)
        if n then
            nb = nb + n
        else
            lu.assertTrue(err.code == "busy", tostring(err))
        end
    end
    c:close_write()
    local got = join(reader)
    lu.assertEquals(#got, N + nb)
    local first_b = got:find("b", 1, true)
    lu.assertTrue(first_b == nil or first_b > N,
        fmt("another task's write landed inside a pending write at byte %s of %d", tostring(first_b), N))
end)

-- As in Go, several tasks may sit in accept on one listener: each gets its
-- own conn (docs/stream.md).
TestStreamConcurrency.test_several_acceptors_each_get_a_conn = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    ln:set_deadline(net.now() + 5)                        -- bounds the test if it breaks
    local acceptors = {}
    for i = 1, 3 do acceptors[i] = spawn(function() return ln:accept() end) end
    wait_blocked("accept", 3)
    local dialed = {}
    for i = 1, 3 do dialed[tostring(defer(assert(net.dial("tcp", tostring(ln:addr())))):local_addr())] = true end
    local seen = {}
    for i = 1, 3 do
        local a, err = join(acceptors[i])
        lu.assertNotNil(a, tostring(err))
        defer(a)
        local peer = tostring(a:remote_addr())
        lu.assertTrue(dialed[peer], "accepted a conn nobody dialed: " .. peer)
        lu.assertNil(seen[peer], "two acceptors got the same conn")
        seen[peer] = true
    end
end)

TestStreamConcurrency.test_queued_acceptors_wake_on_deadline_and_close = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local ts = {}
    for i = 1, 3 do ts[i] = spawn(function() return ln:accept() end) end
    wait_blocked("accept", 3)
    ln:set_deadline(net.now() - 1)                         -- reaches the queued ones too
    for i = 1, 3 do
        local a, err = join(ts[i])
        H.assert_err(a, err, "timeout")
    end
    ln:set_deadline(nil)
    for i = 1, 2 do ts[i] = spawn(function() return ln:accept() end) end
    wait_blocked("accept", 2)
    ln:close()
    for i = 1, 2 do
        local a, err = join(ts[i])
        lu.assertNil(a)
        lu.assertTrue(net.errors.is(err, net.ErrClosed), tostring(err))
    end
end)

TestStreamConcurrency.test_queued_writers_wake_on_close_and_deadline = T(function(defer)
    local c, s = pair(defer)
    local wa, total = park_writer(c, s)
    local wb = spawn(function() return c:write("queued") end)
    wait_blocked("write", 2)
    -- a deadline moved into the past releases both; the queued one wrote nothing
    c:set_write_deadline(net.now() - 1)
    local na, ea, da = join(wa)
    H.assert_err(na, ea, "timeout")
    lu.assertTrue(da > 0 and da < total)
    local nb, eb, db = join(wb)
    H.assert_err(nb, eb, "timeout")
    lu.assertEquals(db, 0)
    -- and close wakes a parked writer and a queued one with ErrClosed
    c:set_write_deadline(nil)
    local wc = spawn(function() return c:write(string.rep("c", 8 << 20)) end)
    wait_blocked("write", 1)
    local wd = spawn(function() return c:write("queued too") end)
    wait_blocked("write", 2)
    c:close()
    local nc, ec = join(wc)
    H.assert_err(nc, ec, "closed")
    local nd, ed, dd = join(wd)
    H.assert_err(nd, ed, "closed")
    lu.assertEquals(dd, 0)
end)

TestStreamConcurrency.test_reader_writer_closer_and_deadline_setter_together = T(function(defer)
    local c, s = pair(defer)
    local r = spawn(function() return read_all(c) end)
    local w, total = park_writer(c, s)
    wait_blocked("read")
    -- another task moves deadlines around while both are parked
    local d = spawn(function()
        c:set_read_deadline(net.now() + 10)
        c:set_write_deadline(net.now() + 10)
        return true
    end)
    lu.assertTrue(join(d))
    lu.assertFalse(r:is_done())
    lu.assertFalse(w:is_done())
    c:close()
    local data, rerr = join(r)
    lu.assertEquals(data, "")
    lu.assertTrue(errors.is(rerr, net.ErrClosed))
    local n, werr, done = join(w)
    lu.assertNil(n)
    lu.assertTrue(errors.is(werr, net.ErrClosed))
    lu.assertTrue(done < total)
end)

-- ===== resets =====

TestStreamReset = {}

TestStreamReset.test_linger0_close_peer_sees_econnreset = T(function(defer)
    local c, s = pair(defer)
    local r = spawn(function() return c:read() end)
    wait_blocked("read")
    lu.assertTrue(s:set_linger(0))
    lu.assertTrue(s:close())
    local v, err = join(r)
    H.assert_err(v, err, "ECONNRESET")
    lu.assertTrue(errors.is(err, errors.ECONNRESET))
    lu.assertEquals(err.errno, errors.ECONNRESET.errno)
    lu.assertEquals(err.op, "read")
    lu.assertFalse(err.timeout)
    lu.assertStrContains(tostring(err), "connection reset by peer")
    lu.assertStrContains(tostring(err), "read tcp " .. tostring(c:local_addr()))
end)

-- ===== dial errors and malformed addresses =====

TestStreamDialErrors = {}

TestStreamDialErrors.test_refused = T(function()
    local port = free_port()
    local c, err = net.dial("tcp", "127.0.0.1:" .. port)
    H.assert_err(c, err, "ECONNREFUSED")
    lu.assertEquals(tostring(err), fmt("dial tcp 127.0.0.1:%d: connect: connection refused", port))
    -- the error object's fields
    lu.assertEquals(err.op, "dial")
    lu.assertEquals(err.net, "tcp")
    lu.assertNil(err.source)
    lu.assertEquals(err.addr, "127.0.0.1:" .. port)
    lu.assertEquals(err.errno, errors.ECONNREFUSED.errno)
    lu.assertEquals(math.type(err.errno), "integer")
    lu.assertFalse(err.timeout)
    lu.assertTrue(errors.is(err, errors.ECONNREFUSED))
    lu.assertTrue(err:is(errors.ECONNREFUSED))
    lu.assertFalse(errors.is(err, errors.ECONNRESET))
    lu.assertFalse(errors.is(err, net.ErrClosed))
end)

local MALFORMED = {
    -- {network, address, fragment of the message}
    {"tcp", "127.0.0.1", "missing port"},
    {"tcp", "127.0.0.1:", "port"},
    {"tcp", "127.0.0.1:x", "invalid port"},
    {"tcp", "127.0.0.1:-1", "invalid port"},
    {"tcp", "127.0.0.1:70000", "invalid port"},
    {"tcp", "127.0.0.1:65536", "invalid port"},
    {"tcp", "1.2.3.4.5:80", "1.2.3.4.5", lookup = true},   -- not an IP: a (failing) name lookup
    {"tcp", "::1:80", "too many colons"},
    {"tcp", "[::1:80", "missing ']'"},
    {"tcp", "", "missing port"},
    {"tcp6", "127.0.0.1:80", "no suitable address"},
    {"tcp4", "[::1]:80", "no suitable address"},
    {"foo", "127.0.0.1:80", "unknown network foo"},
    {"", "127.0.0.1:80", "unknown network"},
}

-- A resolver that answers every name with "no such host" without sending
-- anything: names in these tests must not reach a real DNS server.
local function no_dns(log)
    return {lookup_ip = function(_, _, host)
        log[#log + 1] = host
        return nil, errors.new{op = "lookup", code = "nxdomain",
                               msg = "lookup " .. host .. ": no such host"}
    end}
end

TestStreamDialErrors.test_malformed_addresses_are_errors_not_raises = T(function()
    for _, case in ipairs(MALFORMED) do
        local network, address, frag = case[1], case[2], case[3]
        -- listen has no resolver option: a name would go to the system's DNS
        for _, op in ipairs(case.lookup and {"dial"} or {"dial", "listen"}) do
            local what = fmt("%s(%q, %q)", op, network, address)
            local looked = {}
            local opts = op == "dial" and {resolver = no_dns(looked)} or nil
            local ok, v, err = pcall(net[op], network, address, opts)
            lu.assertTrue(ok, what .. " raised: " .. tostring(v))
            lu.assertNil(v, what)
            lu.assertTrue(is_err(err), what .. " error is not an error object: " .. tostring(err))
            lu.assertStrContains(tostring(err), frag, false, what)
            lu.assertEquals(tostring(err):sub(1, #op + 1), op .. " ", what)
            lu.assertEquals(err.op, op, what)
            if case.lookup then lu.assertEquals(looked, {"1.2.3.4.5"}, what) end
        end
    end
end)

TestStreamDialErrors.test_unknown_network_message = T(function()
    local c, err = net.dial("foo", "127.0.0.1:80")
    H.assert_err(c, err, "unknown_network")
    lu.assertEquals(tostring(err), "dial foo: unknown network foo")
    local ln, err2 = net.listen("foo", "127.0.0.1:0")
    H.assert_err(ln, err2, "unknown_network")
    lu.assertEquals(tostring(err2), "listen foo: unknown network foo")
    local ok, v, err3 = pcall(net.dial, "unix", "")
    lu.assertTrue(ok)
    H.assert_err(v, err3)
end)

TestStreamDialErrors.test_misuse_raises = T(function()
    lu.assertError(net.dial, "tcp", 80)
    lu.assertError(net.dial, "tcp", nil)
    lu.assertError(net.listen, "tcp", {})
    lu.assertErrorMsgContains("unknown option", net.dial, "tcp", "127.0.0.1:1", {tiemout = 1})
    lu.assertErrorMsgContains("unknown option", net.listen, "tcp", "127.0.0.1:0", {baklog = 1})
end)

TestStreamDialErrors.test_malformed_local_addr_is_an_error_not_a_raise = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    for _, la in ipairs{"bogus", "nohost:0", "127.0.0.1:x"} do
        local ok, c, err = pcall(net.dial, "tcp", tostring(ln:addr()), {local_addr = la})
        lu.assertTrue(ok, fmt("dial with local_addr %q raised: %s", la, tostring(c)))
        if c then defer(c) end
        lu.assertNil(c, la)
        lu.assertTrue(is_err(err), la .. ": " .. tostring(err))
    end
end)

-- ===== dial options =====

TestStreamDialOptions = {}

TestStreamDialOptions.test_timeout_deadline_and_backlog = T(function(defer)
    -- a listener with backlog 1 that never accepts: once its queue is full
    -- the kernel drops SYNs, so the next dial hangs until its timeout.
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0", {backlog = 1})))
    local addr = tostring(ln:addr())
    local ok_dials, el, err = 0, nil, nil
    for _ = 1, 16 do
        local c, e
        el, c, e = timed(net.dial, "tcp", addr, {timeout = 0.15})
        if not c then err = e break end
        defer(c)
        ok_dials = ok_dials + 1
    end
    lu.assertNotNil(err, "no dial ever hung: the backlog option had no effect")
    lu.assertTrue(ok_dials >= 1 and ok_dials <= 8, "dials before the queue filled: " .. ok_dials)
    H.assert_err(nil, err, "timeout")
    lu.assertTrue(err.timeout)
    lu.assertTrue(errors.is(err, net.ErrDeadlineExceeded))
    lu.assertEquals(tostring(err), "dial tcp " .. addr .. ": i/o timeout")
    lu.assertTrue(el >= 0.14 and el < 1, "timeout fired after " .. el)
    -- an absolute deadline bounds it too
    local el2, c2, err2 = timed(net.dial, "tcp", addr, {deadline = net.now() + 0.1})
    H.assert_err(c2, err2, "timeout")
    lu.assertTrue(el2 >= 0.09 and el2 < 1, "deadline fired after " .. el2)
    -- timeout and deadline together: the earlier wins
    local el3, c3, err3 = timed(net.dial, "tcp", addr, {timeout = 10, deadline = net.now() + 0.08})
    H.assert_err(c3, err3, "timeout")
    lu.assertTrue(el3 < 1)
    local el4, c4, err4 = timed(net.dial, "tcp", addr, {timeout = 0.08, deadline = net.now() + 10})
    H.assert_err(c4, err4, "timeout")
    lu.assertTrue(el4 < 1)
end)

TestStreamDialOptions.test_deadline_already_past_fails_at_once = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local el, c, err = timed(net.dial, "tcp", tostring(ln:addr()), {deadline = net.now() - 1})
    H.assert_err(c, err, "timeout")
    lu.assertTrue(err.timeout)
    lu.assertTrue(el < AT_ONCE)
    -- nothing was connected
    ln:set_deadline(net.now() + 0.03)
    local s, err2 = ln:accept()
    H.assert_err(s, err2, "timeout")
end)

TestStreamDialOptions.test_non_positive_timeout_and_deadline_fail_at_once = T(function(defer)
    -- Go: a negative timeout fails at once; in coronet every bound <= 0 is
    -- long past (a spent budget), and nil is the only "no bound".
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local addr = tostring(ln:addr())
    for i, opts in ipairs{{timeout = -5}, {timeout = 0}, {deadline = -1}, {deadline = 0},
                          {timeout = 10, deadline = 0}, {timeout = -1, deadline = net.now() + 10}} do
        local c, err = net.dial("tcp", addr, opts)
        if c then c:close() end
        H.assert_err(c, err, "timeout", "dial options case " .. i)
        lu.assertTrue(err.timeout)
    end
    local pc, perr = net.dial("udp", addr, {timeout = -5})
    if pc then pc:close() end
    H.assert_err(pc, perr, "timeout", "udp dial with timeout = -5")
    -- nothing was connected
    ln:set_deadline(net.now() + 0.03)
    local s, err2 = ln:accept()
    H.assert_err(s, err2, "timeout")
    -- nil: no bound
    local c = defer(assert(net.dial("tcp", addr, {timeout = nil, deadline = nil})))
    lu.assertNotNil(c)
end)

TestStreamDialOptions.test_local_addr = T(function(defer)
    local ln = defer(assert(net.listen("tcp", ":0")))
    local port = ln:addr().port
    for _, la in ipairs{"127.0.0.2:0", net.addr{network = "tcp", ip = "127.0.0.3", port = 0}} do
        local t = spawn(function() return ln:accept() end)
        local c = defer(assert(net.dial("tcp", "127.0.0.1:" .. port, {local_addr = la})))
        local s = defer(assert(join(t)))
        local want = type(la) == "string" and "127.0.0.2" or "127.0.0.3"
        lu.assertEquals(tostring(c:local_addr().ip), want)
        lu.assertEquals(tostring(s:remote_addr().ip), want)
    end
    -- a fixed local port
    local lport = free_port()
    local t = spawn(function() return ln:accept() end)
    local c = defer(assert(net.dial("tcp", "127.0.0.1:" .. port, {local_addr = "127.0.0.1:" .. lport})))
    defer(assert(join(t)))
    lu.assertEquals(c:local_addr().port, lport)
end)

TestStreamDialOptions.test_unix_local_addr = T(function(defer)
    local srv, cli = abstract_name(), abstract_name()
    local ln = defer(assert(net.listen("unix", srv)))
    local t = spawn(function() return ln:accept() end)
    local c = defer(assert(net.dial("unix", srv, {local_addr = cli})))
    local s = defer(assert(join(t)))
    lu.assertEquals(tostring(c:local_addr()), cli)
    lu.assertEquals(tostring(s:remote_addr()), cli)
    lu.assertEquals(tostring(c), "conn unix " .. cli .. "->" .. srv)
end)

TestStreamDialOptions.test_keepalive_zero_means_default_as_in_go = T(function(defer)
    -- Go: a zero KeepAlive means the default (on, 15 s); only a negative
    -- one turns it off. Dialed and accepted conns must agree.
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0", {keepalive = 0})))
    local t = spawn(function() return ln:accept() end)
    local c = defer(assert(net.dial("tcp", tostring(ln:addr()), {keepalive = 0})))
    local s = defer(assert(join(t)))
    lu.assertEquals(sockopt(c, "SOL_SOCKET", "SO_KEEPALIVE"), 1, "dial{keepalive = 0}")
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_KEEPIDLE"), 15, "dial{keepalive = 0}")
    lu.assertEquals(sockopt(s, "SOL_SOCKET", "SO_KEEPALIVE"), 1, "listen{keepalive = 0}")
    lu.assertEquals(sockopt(s, "IPPROTO_TCP", "TCP_KEEPIDLE"), 15, "listen{keepalive = 0}")
end)

TestStreamDialOptions.test_keepalive_option = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local addr = tostring(ln:addr())
    local function dial(opts)
        local t = spawn(function() return ln:accept() end)
        local c = defer(assert(net.dial("tcp", addr, opts)))
        defer(assert(join(t)))
        return c
    end
    local c = dial(nil)                                   -- default: on, 15 s
    lu.assertEquals(sockopt(c, "SOL_SOCKET", "SO_KEEPALIVE"), 1)
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_KEEPIDLE"), 15)
    local c2 = dial{keepalive = 30}
    lu.assertEquals(sockopt(c2, "SOL_SOCKET", "SO_KEEPALIVE"), 1)
    lu.assertEquals(sockopt(c2, "IPPROTO_TCP", "TCP_KEEPIDLE"), 30)
    local c3 = dial{keepalive = -1}
    lu.assertEquals(sockopt(c3, "SOL_SOCKET", "SO_KEEPALIVE"), 0)
end)

TestStreamDialOptions.test_control_called_before_connect = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local addr = tostring(ln:addr())
    local calls = {}
    local t = spawn(function() return ln:accept() end)
    local c = defer(assert(net.dial("tcp", addr, {control = function(fd, network, address)
        calls[#calls + 1] = {fd, network, address}
        assert(net.setsockopt(fd, "IPPROTO_TCP", "TCP_NODELAY", 0))
    end})))
    defer(assert(join(t)))
    lu.assertEquals(#calls, 1)
    lu.assertEquals(calls[1][1], c:fd())
    lu.assertEquals(math.type(calls[1][1]), "integer")
    lu.assertEquals(calls[1][2], "tcp")
    lu.assertEquals(calls[1][3], addr)
    -- what control set stays set (it ran after the defaults were applied)
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_NODELAY"), 0)
    -- a control error aborts the dial before connect: nobody connects
    local c2, err = net.dial("tcp", addr, {control = function() return nil, "control says no" end})
    lu.assertNil(c2)
    lu.assertStrContains(tostring(err), "control says no")
    ln:set_deadline(net.now() + 0.05)
    local s2, err2 = ln:accept()
    H.assert_err(s2, err2, "timeout")
    -- unix dials get the path
    local name = abstract_name()
    local uln = defer(assert(net.listen("unix", name)))
    local seen
    local ut = spawn(function() return uln:accept() end)
    defer(assert(net.dial("unix", name, {control = function(_, network, address)
        seen = {network, address}
    end})))
    defer(assert(join(ut)))
    lu.assertEquals(seen, {"unix", name})
end)

-- ===== listen options =====

TestStreamListenOptions = {}

TestStreamListenOptions.test_reuseport = T(function(defer)
    local ln1 = defer(assert(net.listen("tcp", "127.0.0.1:0", {reuseport = true})))
    local addr = tostring(ln1:addr())
    lu.assertEquals(sockopt(ln1, "SOL_SOCKET", "SO_REUSEPORT"), 1)
    local ln2, err = net.listen("tcp", addr, {reuseport = true})
    lu.assertNotNil(ln2, "second reuseport listener: " .. tostring(err))
    defer(ln2)
    lu.assertEquals(tostring(ln2:addr()), addr)
    -- without reuseport the port is taken
    local ln3, err3 = net.listen("tcp", addr)
    H.assert_err(ln3, err3, "EADDRINUSE")
    lu.assertEquals(tostring(err3), "listen tcp " .. addr .. ": bind: address already in use")
    lu.assertTrue(errors.is(err3, errors.EADDRINUSE))
    -- and a plain listener blocks later reuseport ones
    local plain = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local ln4, err4 = net.listen("tcp", tostring(plain:addr()), {reuseport = true})
    H.assert_err(ln4, err4, "EADDRINUSE")
    -- a conn to the shared port is accepted by one of the two
    local a1 = spawn(function() ln1:set_deadline(net.now() + 2) return ln1:accept() end)
    local a2 = spawn(function() ln2:set_deadline(net.now() + 2) return ln2:accept() end)
    local c = defer(assert(net.dial("tcp", addr)))
    lu.assertNotNil(c)
    -- whichever accepted, close both listeners to end the other accept
    for _ = 1, 1000 do
        if a1:is_done() or a2:is_done() then break end
        net.yield()
    end
    ln1:close()
    ln2:close()
    local s1 = join(a1)
    local s2 = join(a2)
    lu.assertTrue((s1 ~= nil) ~= (s2 ~= nil), "exactly one listener accepts")
    if s1 then s1:close() end
    if s2 then s2:close() end
end)

TestStreamListenOptions.test_reuseaddr = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    lu.assertEquals(sockopt(ln, "SOL_SOCKET", "SO_REUSEADDR"), 1, "on by default for TCP, as in Go")
    local ln2 = defer(assert(net.listen("tcp", "127.0.0.1:0", {reuseaddr = false})))
    lu.assertEquals(sockopt(ln2, "SOL_SOCKET", "SO_REUSEADDR"), 0)
end)

TestStreamListenOptions.test_control_called_before_bind = T(function(defer)
    local calls = {}
    local ln1 = defer(assert(net.listen("tcp", "127.0.0.1:0", {control = function(fd, network, address)
        calls[#calls + 1] = {fd, network, address}
        assert(net.setsockopt(fd, "SOL_SOCKET", "SO_REUSEPORT", 1))
    end})))
    lu.assertEquals(#calls, 1)
    lu.assertEquals(calls[1][1], ln1:fd())
    lu.assertEquals(calls[1][2], "tcp")
    lu.assertEquals(calls[1][3], "127.0.0.1:0")
    -- SO_REUSEPORT took effect, so it was set before bind
    defer(assert(net.listen("tcp", tostring(ln1:addr()), {reuseport = true})))
    -- a control error aborts the listen (and leaks nothing)
    local ln, err = net.listen("tcp", "127.0.0.1:0", {control = function() return nil, "no listen" end})
    lu.assertNil(ln)
    lu.assertStrContains(tostring(err), "no listen")
    -- unix listeners get the path
    local dir = H.tmpdir()
    defer(function() H.rm(dir) end)
    local seen
    defer(assert(net.listen("unix", dir .. "/c.sock", {control = function(_, network, address)
        seen = {network, address}
    end})))
    lu.assertEquals(seen, {"unix", dir .. "/c.sock"})
end)

TestStreamListenOptions.test_accepted_conn_keepalive_option = T(function(defer)
    local function accepted(opts)
        local c, s = pair(defer, "tcp", "127.0.0.1:0", opts)
        return s, c
    end
    local s = accepted(nil)
    lu.assertEquals(sockopt(s, "SOL_SOCKET", "SO_KEEPALIVE"), 1)
    lu.assertEquals(sockopt(s, "IPPROTO_TCP", "TCP_KEEPIDLE"), 15)
    local s2 = accepted{keepalive = 7}
    lu.assertEquals(sockopt(s2, "IPPROTO_TCP", "TCP_KEEPIDLE"), 7)
    local s3 = accepted{keepalive = -1}
    lu.assertEquals(sockopt(s3, "SOL_SOCKET", "SO_KEEPALIVE"), 0)
end)

TestStreamListenOptions.test_keepalive_takes_fractional_seconds = T(function(defer)
    -- keepalive is in seconds like every other duration: 2.5 must not raise
    local ok, ln, err = pcall(net.listen, "tcp", "127.0.0.1:0", {keepalive = 2.5})
    lu.assertTrue(ok, "listen{keepalive = 2.5} raised: " .. tostring(ln))
    lu.assertNotNil(ln, tostring(err))
    defer(ln)
    local ok2, c, err2 = pcall(net.dial, "tcp", tostring(ln:addr()), {keepalive = 2.5})
    lu.assertTrue(ok2, tostring(c))
    lu.assertNotNil(c, tostring(err2))
    defer(c)
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_KEEPIDLE"), 3)   -- rounded up, as Go
end)

-- ===== conn options =====

TestStreamOptions = {}

TestStreamOptions.test_nodelay_on_by_default_and_settable = T(function(defer)
    local c, s = pair(defer)
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_NODELAY"), 1, "dialed conn")
    lu.assertEquals(sockopt(s, "IPPROTO_TCP", "TCP_NODELAY"), 1, "accepted conn")
    lu.assertTrue(c:set_nodelay(false))
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_NODELAY"), 0)
    lu.assertTrue(c:set_nodelay(true))
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_NODELAY"), 1)
    local c6, s6 = pair(defer, "tcp6", "[::1]:0")
    lu.assertEquals(sockopt(c6, "IPPROTO_TCP", "TCP_NODELAY"), 1)
    lu.assertEquals(sockopt(s6, "IPPROTO_TCP", "TCP_NODELAY"), 1)
end)

-- TCP_NOTSENT_LOWAT: 64 KiB on dialed and accepted TCP conns (the
-- accepted ones inherit the listener's), set by the dial and listen option
-- notsent_lowat (0: the kernel's default) and by set_notsent_lowat (whose
-- misuse and closed-conn results are checked with the other setters').
local LOWAT = 65536

TestStreamOptions.test_notsent_lowat_by_default_and_settable = T(function(defer)
    local c, s = pair(defer)
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), LOWAT, "dialed conn")
    lu.assertEquals(sockopt(s, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), LOWAT, "accepted conn")
    lu.assertTrue(c:set_notsent_lowat(16384))
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), 16384)
    lu.assertTrue(c:set_notsent_lowat(0))
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), 0)
    local c6, s6 = pair(defer, "tcp6", "[::1]:0")
    lu.assertEquals(sockopt(c6, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), LOWAT)
    lu.assertEquals(sockopt(s6, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), LOWAT)
end)

TestStreamOptions.test_notsent_lowat_options_of_listen_and_dial = T(function(defer)
    for _, case in ipairs{{nil, LOWAT}, {0, 0}, {16384, 16384}} do
        local ln = defer(assert(net.listen("tcp", "127.0.0.1:0", {notsent_lowat = case[1]})))
        for i = 1, 3 do                          -- the first (checked) and later ones
            local t = spawn(function() return ln:accept() end)
            local c = defer(assert(net.dial("tcp", tostring(ln:addr()), {notsent_lowat = case[1]})))
            local s = defer(assert(join(t)))
            local what = ("notsent_lowat=%s conn %d"):format(tostring(case[1]), i)
            lu.assertEquals(sockopt(s, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), case[2], "accepted " .. what)
            lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), case[2], "dialed " .. what)
        end
    end
    -- a dial's control function runs after the option, so it has the last word
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local c = defer(assert(net.dial("tcp", tostring(ln:addr()), {notsent_lowat = 16384,
        control = function(fd) return net.setsockopt(fd, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT", 4096) end})))
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), 4096)
    for _, bad in ipairs{-1, 1.5, 1 << 40} do
        local ok, err = pcall(net.listen, "tcp", "127.0.0.1:0", {notsent_lowat = bad})
        lu.assertFalse(ok, tostring(bad))
        lu.assertStrContains(tostring(err), "listen: notsent_lowat")
        ok, err = pcall(net.dial, "tcp", tostring(ln:addr()), {notsent_lowat = bad})
        lu.assertFalse(ok, tostring(bad))
        lu.assertStrContains(tostring(err), "dial: notsent_lowat")
    end
end)

-- What the option is for: a write to a peer that does not read parks
-- once about notsent_lowat bytes wait unsent in the kernel (one send piece
-- may pass the mark), not once the whole send buffer is full; and it still
-- delivers every byte, in order, when the peer reads.
TestStreamOptions.test_a_write_parks_at_notsent_lowat_and_delivers_everything = T(function(defer)
    local PIECE = 32768                          -- conn.c's TCP_SEND_PIECE
    local unsent = {}
    for _, lowat in ipairs{16384, LOWAT, 0} do
        local c, s = pair(defer)
        assert(s:set_read_buffer(16384))         -- a small window: little in flight
        assert(c:set_write_buffer(1 << 20))      -- room for megabytes unsent
        assert(c:set_notsent_lowat(lowat))
        local data = pattern(4 << 20, lowat % 251)
        local w = spawn(function() return c:write(data) end)
        wait_blocked("write", 1)
        local info = assert(c:tcp_info())
        unsent[lowat] = info.notsent
        local got = s:read_full(#data)
        lu.assertEquals(join(w), #data)
        lu.assertTrue(got == data, "the bytes arrive whole and in order")
    end
    for _, lowat in ipairs{16384, LOWAT} do
        lu.assertTrue(unsent[lowat] >= lowat // 2 and unsent[lowat] <= lowat + PIECE,
                      ("notsent_lowat %d: %d bytes unsent"):format(lowat, unsent[lowat]))
    end
    lu.assertTrue(unsent[0] > 16 * LOWAT, ("the kernel's default: %d bytes unsent"):format(unsent[0]))
end)

TestStreamOptions.test_keepalive_and_period = T(function(defer)
    local c = pair(defer)
    lu.assertTrue(c:set_keepalive(false))
    lu.assertEquals(sockopt(c, "SOL_SOCKET", "SO_KEEPALIVE"), 0)
    lu.assertTrue(c:set_keepalive(true))
    lu.assertEquals(sockopt(c, "SOL_SOCKET", "SO_KEEPALIVE"), 1)
    lu.assertTrue(c:set_keepalive_period(7))
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_KEEPIDLE"), 7)
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_KEEPINTVL"), 7)
    lu.assertTrue(c:set_keepalive_period(2.5))
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_KEEPIDLE"), 3)
    lu.assertTrue(c:set_keepalive_period(0.2))
    lu.assertEquals(sockopt(c, "IPPROTO_TCP", "TCP_KEEPIDLE"), 1)
end)

TestStreamOptions.test_buffers_grow = T(function(defer)
    local c = pair(defer)
    for _, case in ipairs{{"set_read_buffer", "SO_RCVBUF"}, {"set_write_buffer", "SO_SNDBUF"}} do
        local m, opt = case[1], case[2]
        lu.assertTrue(c[m](c, 8192))
        local small = sockopt(c, "SOL_SOCKET", opt)
        lu.assertTrue(small >= 4096 and small <= 65536, opt .. " after 8192: " .. small)
        lu.assertTrue(c[m](c, 1 << 20))
        local big = sockopt(c, "SOL_SOCKET", opt)
        lu.assertTrue(big >= 1 << 20, opt .. " after 1 MiB: " .. big)
        lu.assertTrue(big > small)
    end
end)

TestStreamOptions.test_set_linger = T(function(defer)
    local c = pair(defer)
    lu.assertTrue(c:set_linger(0))
    lu.assertTrue(c:set_linger(5))
    lu.assertTrue(c:set_linger(-1))
end)

TestStreamOptions.test_fd = T(function(defer)
    local c, s, ln = pair(defer)
    for _, x in ipairs{c, s, ln} do
        lu.assertEquals(math.type(x:fd()), "integer")
        lu.assertTrue(x:fd() > 2)
        lu.assertEquals(sockopt(x, "SOL_SOCKET", "SO_TYPE"), 1)   -- SOCK_STREAM
        lu.assertTrue(fd_flags(x:fd()) & O_CLOEXEC ~= 0, "coronet's own fds are close-on-exec")
    end
    lu.assertNotEquals(c:fd(), s:fd())
    lu.assertNotEquals(c:fd(), ln:fd())
    c:close()
    ln:close()
    lu.assertEquals(c:fd(), -1)
    lu.assertEquals(ln:fd(), -1)
end)

-- ===== inherited descriptors =====

TestStreamFiles = {}

TestStreamFiles.test_file_conn_round_trip = T(function(defer)
    local c, s = pair(defer)
    local fds = fd_count()
    local fc = defer(assert(net.file_conn(c:fd())))
    lu.assertEquals(fd_count(), fds + 1)
    lu.assertNotEquals(fc:fd(), c:fd())
    lu.assertTrue(fd_flags(fc:fd()) & O_CLOEXEC ~= 0)
    lu.assertEquals(tostring(fc:local_addr()), tostring(c:local_addr()))
    lu.assertEquals(tostring(fc:remote_addr()), tostring(c:remote_addr()))
    lu.assertEquals(fc:write("via dup"), 7)
    lu.assertEquals(s:read_full(7), "via dup")
    s:write("to dup")
    lu.assertEquals(fc:read_full(6), "to dup")
    -- closing the wrapper leaves the original working
    fc:close()
    lu.assertEquals(fd_count(), fds)
    lu.assertEquals(c:write("orig"), 4)
    lu.assertEquals(s:read_full(4), "orig")
    -- unix conns come back as unix
    local name = abstract_name()
    local uc = pair(defer, "unix", name)
    local fu = defer(assert(net.file_conn(uc:fd())))
    lu.assertEquals(fu:remote_addr().network, "unix")
    lu.assertEquals(tostring(fu:remote_addr()), name)
end)

TestStreamFiles.test_file_listener_round_trip = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local fl = defer(assert(net.file_listener(ln:fd())))
    lu.assertNotEquals(fl:fd(), ln:fd())
    lu.assertEquals(tostring(fl:addr()), tostring(ln:addr()))
    local t = spawn(function() return fl:accept() end)
    local c = defer(assert(net.dial("tcp", tostring(ln:addr()))))
    local s = defer(assert(join(t)))
    c:write("via inherited listener")
    lu.assertEquals(s:read_full(22), "via inherited listener")
    lu.assertEquals(sockopt(s, "IPPROTO_TCP", "TCP_NODELAY"), 1)
    lu.assertEquals(sockopt(s, "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), 65536)
    fl:close()
    -- the original still accepts
    local t2 = spawn(function() return ln:accept() end)
    defer(assert(net.dial("tcp", tostring(ln:addr()))))
    defer(assert(join(t2)))
    -- unix listeners too
    local dir = H.tmpdir()
    defer(function() H.rm(dir) end)
    local uln = defer(assert(net.listen("unix", dir .. "/f.sock")))
    local ful = assert(net.file_listener(uln:fd()))
    lu.assertEquals(ful:addr().network, "unix")
    lu.assertEquals(tostring(ful:addr()), dir .. "/f.sock")
    ful:close()
    lu.assertTrue(exists(dir .. "/f.sock"), "closing an inherited listener must not unlink the path")
end)

TestStreamFiles.test_file_wrappers_reject_wrong_fds = T(function(defer)
    local c, _, ln = pair(defer)
    local ok, l, err = pcall(net.file_listener, c:fd())     -- a conn is not a listener
    lu.assertTrue(ok, tostring(l))
    H.assert_err(l, err)
    local ok2, c2, err2 = pcall(net.file_conn, -1)
    lu.assertTrue(ok2, tostring(c2))
    H.assert_err(c2, err2, "EBADF")
    local ok3, l3, err3 = pcall(net.file_listener, 999999)
    lu.assertTrue(ok3, tostring(l3))
    H.assert_err(l3, err3, "EBADF")
    lu.assertNotNil(ln)
end)

TestStreamFiles.test_listeners_from_env_without_env = T(function()
    local ls, err = net.listeners_from_env()
    lu.assertNil(err)
    lu.assertEquals(type(ls), "table")
    lu.assertEquals(#ls, 0)
end)

TestStreamFiles.test_file_returns_an_owned_inheritable_fd = T(function(defer)
    -- conn:file() / listener:file() return a dup without close-on-exec that
    -- the caller owns. It works with file_conn / file_listener and is
    -- inherited by a child (socket activation). The caller must then be
    -- able to close it from Lua.
    local c, s, ln = pair(defer)
    local fds = fd_count()
    local f = assert(c:file())
    lu.assertEquals(math.type(f), "integer")
    lu.assertNotEquals(f, c:fd())
    lu.assertEquals(fd_count(), fds + 1)
    lu.assertEquals(fd_flags(f) & O_CLOEXEC, 0, "file() must survive exec")
    local fc = assert(net.file_conn(f))
    fc:write("via file()")
    lu.assertEquals(s:read_full(10), "via file()")
    fc:close()
    local lf = assert(ln:file())
    lu.assertEquals(fd_flags(lf) & O_CLOEXEC, 0)
    -- a child started with LISTEN_FDS gets the listener as fd 3
    local out, errout = run_lua([[
        local net = require "coronet"
        local ls = assert(net.listeners_from_env())
        io.write(#ls, " ", tostring(ls[1] and ls[1]:addr()), "\n")
    ]], fmt("exec 3<&%d; LISTEN_PID=$$ LISTEN_FDS=1 exec ", lf))
    lu.assertEquals(out, "1 " .. tostring(ln:addr()) .. "\n", errout)
    -- the caller closes them with net.close_fd
    lu.assertNotNil(net.close_fd, "API gap: no way to close the fd that file() returns")
    lu.assertTrue(net.close_fd(f))
    lu.assertTrue(net.close_fd(lf))
    lu.assertEquals(fd_count(), fds)
end)

-- ===== lifetime: GC and <close> =====

TestStreamLifetime = {}

TestStreamLifetime.test_gc_closes_unreferenced_conns_and_listeners = T(function()
    local dir = H.tmpdir()
    local path = dir .. "/gc.sock"
    collectgarbage()
    collectgarbage()
    local fds0, lfds0 = fd_count(), net.debug.stats().fds
    local function make()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local t = net.go(function() return ln:accept() end)
        local c = assert(net.dial("tcp", tostring(ln:addr())))
        local s = assert(t:wait())
        c:write("x")
        assert(s:read() == "x")
        assert(net.listen("unix", path))
        return fd_count()
    end
    lu.assertEquals(make(), fds0 + 4)
    lu.assertTrue(exists(path))
    collectgarbage()
    collectgarbage()
    lu.assertEquals(fd_count(), fds0, "unreferenced conns/listeners were not closed by GC")
    lu.assertEquals(net.debug.stats().fds, lfds0)
    lu.assertFalse(exists(path), "a collected unix listener removes its path")
    H.rm(dir)
end)

TestStreamLifetime.test_close_variables = T(function()
    local fds0 = fd_count()
    local keep = {}
    do
        local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
        local t = net.go(function() return ln:accept() end)
        local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
        local s <close> = assert(t:wait())
        keep = {ln, c, s}
        lu.assertEquals(fd_count(), fds0 + 3)
    end
    for _, x in ipairs(keep) do lu.assertEquals(x:fd(), -1) end
    lu.assertEquals(fd_count(), fds0)
    -- closing again reports ErrClosed
    local ok, err = keep[2]:close()
    H.assert_err(ok, err, "closed")
    -- a <close> variable holding a failed dial (nil) is fine
    do
        local c <close>, err2 = net.dial("tcp", "127.0.0.1:" .. free_port())
        lu.assertNil(c)
        lu.assertNotNil(err2)
    end
end)

-- ===== error objects =====

TestStreamErrors = {}

TestStreamErrors.test_read_timeout_fields = T(function(defer)
    local c = pair(defer)
    c:set_read_deadline(net.now() - 1)
    local v, err = c:read()
    lu.assertNil(v)
    lu.assertEquals(getmetatable(err).__name, "coronet.error")
    lu.assertEquals(err.op, "read")
    lu.assertEquals(err.net, "tcp")
    lu.assertEquals(err.source, tostring(c:local_addr()))
    lu.assertEquals(err.addr, tostring(c:remote_addr()))
    lu.assertEquals(err.code, "timeout")
    lu.assertNil(err.errno)
    lu.assertTrue(err.timeout)
    lu.assertTrue(errors.is(err, net.ErrDeadlineExceeded))
    lu.assertTrue(err:is(net.ErrDeadlineExceeded))
    lu.assertFalse(errors.is(err, net.ErrClosed))
    lu.assertFalse(errors.is(err, net.EOF))
    lu.assertEquals(tostring(err), fmt("read tcp %s->%s: i/o timeout", err.source, err.addr))
end)

TestStreamErrors.test_accepted_side_and_unix_errors_render = T(function(defer)
    local _, s = pair(defer)
    s:set_read_deadline(net.now() - 1)
    local _, err = s:read()
    lu.assertEquals(tostring(err), fmt("read tcp %s->%s: i/o timeout",
        tostring(s:local_addr()), tostring(s:remote_addr())))
    local name = abstract_name()
    local uc = pair(defer, "unix", name)
    uc:set_write_deadline(net.now() - 1)
    local _, uerr = uc:write("x")
    lu.assertEquals(uerr.net, "unix")
    lu.assertEquals(uerr.op, "write")
    lu.assertStrContains(tostring(uerr), "write unix ")
    lu.assertStrContains(tostring(uerr), name .. ": i/o timeout")
end)

-- ===== contexts on stream calls =====

TestStreamContext = {}

TestStreamContext.test_cancel_wakes_read_and_conn_stays_usable = T(function(defer)
    local c, s = pair(defer)
    local ctx, cancel = net.context.with_cancel(net.context.background())
    local r = spawn(function() return c:read(100, ctx) end)
    wait_blocked("read")
    cancel()
    local v, err = join(r)
    H.assert_err(v, err, "canceled")
    lu.assertTrue(errors.is(err, net.ErrCanceled))
    s:write("still usable")
    lu.assertEquals(c:read_full(12), "still usable")
    -- an ended ctx fails at once, even with data buffered
    s:write("q")
    local v2, err2 = c:read(ctx)
    H.assert_err(v2, err2, "canceled")
    lu.assertEquals(c:read(), "q")
end)

TestStreamContext.test_ctx_timeout_on_accept_write_and_dial = T(function(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local ctx = net.context.with_timeout(net.context.background(), 0.05)
    local el, c, err = timed(ln.accept, ln, ctx)
    H.assert_err(c, err, "timeout")
    lu.assertTrue(err.timeout)
    lu.assertTrue(el >= 0.04 and el < 0.5)
    -- the listener stays usable
    local t = spawn(function() return ln:accept() end)
    local cc = defer(assert(net.dial("tcp", tostring(ln:addr()))))
    local ss = defer(assert(join(t)))
    -- a write parked under a ctx wakes when it is cancelled
    assert(cc:set_write_buffer(16384))
    assert(ss:set_read_buffer(16384))
    local wctx, cancel = net.context.with_cancel(net.context.background())
    local total = 8 << 20
    local w = spawn(function() return cc:write(string.rep("y", total), wctx) end)
    wait_blocked("write")
    cancel()
    local n, werr, done = join(w)
    H.assert_err(n, werr, "canceled")
    lu.assertTrue(done > 0 and done < total)
    -- the ctx may also come right after the data, or after i
    local v, e = cc:write("zz", 2, wctx)
    H.assert_err(v, e, "canceled")
    -- dial with an ended ctx
    local dctx, dcancel = net.context.with_cancel(net.context.background())
    dcancel()
    local d, derr = net.dial("tcp", tostring(ln:addr()), dctx)
    H.assert_err(d, derr, "canceled")
end)

-- ===== outside tasks (the REPL contract) and task failures =====

TestStreamTopLevel = {}

function TestStreamTopLevel:test_blocking_calls_outside_any_task()
    H.run_top(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        -- a watchdog: if a call below hangs, closing the listener ends it
        local ctx, cancel = net.context.with_cancel(net.context.background())
        local dog = net.go(function() if net.sleep(WATCHDOG, ctx) then ln:close() end end)
        local srv = net.go(function()
            local s = assert(ln:accept())
            local req = s:read_full(4)
            s:write("pong:" .. req)
            s:close_write()
            local rest, err = s:read()                    -- the client's close: EOF
            s:close()
            return req, rest, err
        end)
        -- none of this runs in a task: each call drives the loop itself
        local c = assert(net.dial("tcp", tostring(ln:addr())))
        lu.assertEquals(c:write("ping"), 4)
        lu.assertEquals(c:read_full(9), "pong:ping")
        local v, err = c:read()
        lu.assertNil(v)
        lu.assertTrue(errors.is(err, net.EOF))
        c:close()
        local req, rest, serr = srv:wait()
        lu.assertEquals(req, "ping")
        lu.assertNil(rest)
        lu.assertTrue(errors.is(serr, net.EOF))
        -- accept at top level while a task dials
        local dialer = net.go(function()
            local dc = assert(net.dial("tcp", tostring(ln:addr())))
            dc:write("hi")
            dc:close()
        end)
        local s = assert(ln:accept())
        lu.assertEquals(s:read_full(2), "hi")
        s:close()
        dialer:wait()
        -- deadlines work at top level too
        ln:set_deadline(net.now() + 0.03)
        local a, aerr = ln:accept()
        cancel()
        dog:wait()
        H.assert_err(a, aerr, "timeout")
        ln:close()
    end)
end

TestStreamTopLevel.test_blocking_call_in_a_plain_coroutine_raises = T(function(defer)
    local c = pair(defer)
    local co = coroutine.wrap(function() return c:read() end)
    local ok, err = pcall(co)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), "not a coronet task")
    local co2 = coroutine.wrap(function() return net.dial("tcp", "127.0.0.1:1") end)
    local ok2, err2 = pcall(co2)
    lu.assertFalse(ok2)
    lu.assertStrContains(tostring(err2), "not a coronet task")
end)

TestStreamTopLevel.test_waited_task_error_is_returned = T(function()
    local t = net.go(function() error("expected failure", 0) end)
    local v, err = t:wait()
    lu.assertNil(v)
    lu.assertStrContains(tostring(err), "expected failure")
end)

function TestStreamTopLevel:test_unwaited_task_error_surfaces_from_run_and_stderr()
    local out, err = run_lua([[
        local net = require "coronet"
        local ok, e = pcall(net.run, function()
            net.go(function() error("boom-in-task") end)
            net.sleep(0.5)
            return "main finished"
        end)
        io.write("RESULT ", tostring(ok), " ", tostring(e), "\n")
    ]])
    lu.assertStrContains(out, "RESULT false")
    lu.assertStrContains(out, "boom-in-task")
    lu.assertStrContains(err, "boom-in-task")
    lu.assertStrContains(err, "traceback")
end

if not SPEC_RUNNER then os.exit(require("luaunit").LuaUnit.run()) end
