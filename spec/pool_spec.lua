--- pool_spec.lua - net.pool and net.pool_map (lua/coronet/pool.lua,
-- lua/coronet/pool_map.lua) and the probe (csrc/probe.c), against a real
-- redis-server (spec/redis.lua: started per test class, stopped by PID)
-- and coronet server tasks. A missing redis-server fails these tests.
-- Run from the repo root:
--   make && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 spec/run.lua pool
-- Waits are on events (a server seeing EOF, a probe verdict changing, a
-- stats counter), bounded by a watchdog; nothing asserts elapsed time.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local R = dofile("spec/redis.lua")
local core = require "coronet.core"

local WATCHDOG = {seconds = 20, unstick = function() end}
local function T(fn) return H.test(fn, WATCHDOG) end

-- ===== fixtures =====

-- A pooled redis client: a conn and its bufio reader. It is conn-like for
-- the pool: close, fd, and buffered (bytes read ahead but not consumed).
local Client = {}
Client.__index = Client
function Client:fd() return self.c:fd() end
function Client:close() return self.c:close() end
function Client:buffered() return self.rd:buffered() end
function Client:cmd(...) return R.command(self.c, self.rd, ...) end

local function redis_client(addr, ctx)
    local c, err = net.dial("tcp", addr, ctx)
    if not c then return nil, err end
    return setmetatable({c = c, rd = net.bufio.reader(c)}, Client)
end

-- counting_dial(addr) -> dial fn, counter table {n = dials}
local function counting_dial(addr, make)
    local count = {n = 0}
    return function(ctx)
        count.n = count.n + 1
        if make then return make(addr, ctx) end
        return net.dial("tcp", addr, ctx)
    end, count
end

-- server(defer [, on_conn]) -> listener, conns channel: a coronet server
-- task; each accepted conn is sent on `accepted`; on_conn(c) (default: read
-- until EOF, then send c on `gone`) runs in its own task.
local function server(defer)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local accepted, gone = net.chan(64), net.chan(64)
    net.go(function()
        while true do
            local c = ln:accept()
            if not c then break end
            defer(c)
            net.go(function()
                while c:read(4096) do end
                gone:send(c)
            end)
            accepted:send(c)                 -- after its reader task exists
        end
    end)
    return ln, accepted, gone
end

-- recv_n(ch, n): receive n values (each bounded by the watchdog).
local function recv_n(ch, n)
    local out = {}
    for i = 1, n do out[i] = ch:recv() end
    return out
end

-- until_probe(fd, verdict): wait (loop turns, bounded) until the socket's
-- probe says verdict: the bytes or the FIN a peer sent have arrived.
local function until_probe(fd, verdict)
    for _ = 1, 10000 do
        if core.probe(fd) == verdict then return end
        net.yield()
    end
    error("probe never said " .. verdict)
end

-- ===== the probe =====

TestProbe = {}

TestProbe.test_verdicts = T(function(defer)
    local a, b = H.pair(defer)
    lu.assertEquals(core.probe(a:fd()), "ok")
    assert(b:write("x"))
    until_probe(a:fd(), "dubious")
    lu.assertEquals(core.probe(a:fd()), "dubious", "peek does not consume")
    lu.assertEquals(a:read(1), "x")
    lu.assertEquals(core.probe(a:fd()), "ok")
    b:close()
    until_probe(a:fd(), "dead")
    local v, err = core.probe(a:fd())
    lu.assertEquals(v, "dead")
    lu.assertIs(err, net.EOF)
    local c, d = H.pair(defer)
    d:set_linger(0)
    d:close()
    for _ = 1, 10000 do                      -- the socket error is reported once
        v, err = core.probe(c:fd())
        if v ~= "ok" then break end
        net.yield()
    end
    lu.assertEquals(v, "dead")
    lu.assertEquals(err.code, "ECONNRESET")
    v, err = core.probe(-1)                  -- a closed conn's fd()
    lu.assertEquals(v, "dead")
    lu.assertEquals(err.code, "EBADF")
end)

TestProbe.test_no_allocation_when_ok = T(function(defer)
    local a = H.pair(defer)
    local fd, probe = a:fd(), core.probe
    probe(fd)
    collectgarbage()
    collectgarbage("stop")
    local k0 = collectgarbage("count")
    for _ = 1, 10000 do probe(fd) end
    local k1 = collectgarbage("count")
    collectgarbage("restart")
    lu.assertTrue(k1 - k0 < 1, "probe allocated " .. (k1 - k0) .. " KiB over 10000 calls")
end)

-- ===== the pool against coronet servers =====

TestPool = {}

TestPool.test_reuse_newest_first_and_stats = T(function(defer)
    local ln = server(defer)
    local dial, count = counting_dial(tostring(ln:addr()))
    local p <close> = net.pool{dial = dial, max_idle = 3}
    local a, b, c = assert(p:get()), assert(p:get()), assert(p:get())
    lu.assertEquals(count.n, 3)
    lu.assertEquals(p:stats().in_use, 3)
    p:put(a); p:put(b); p:put(c)
    lu.assertIs(p:get(), c, "newest first")
    lu.assertIs(p:get(), b)
    local s = p:stats()
    lu.assertEquals({s.open, s.idle, s.in_use, s.waiting, s.hits, s.misses},
                    {3, 1, 2, 0, 2, 3})
    for _, k in ipairs{"evicted_dead", "evicted_dubious", "evicted_idle", "evicted_lifetime",
                       "dial_errors"} do
        lu.assertEquals(s[k], 0, k)
    end
    p:put(b); p:put(c)
    lu.assertEquals(count.n, 3)
end)

TestPool.test_max_idle_closes_surplus = T(function(defer)
    local ln, _, gone = server(defer)
    local p <close> = net.pool{dial = counting_dial(tostring(ln:addr())), max_idle = 1}
    local a, b = assert(p:get()), assert(p:get())
    p:put(a)
    p:put(b)                                  -- idle is full: b is closed
    recv_n(gone, 1)
    lu.assertEquals(p:stats().open, 1)
    lu.assertEquals(p:stats().idle, 1)
end)

TestPool.test_put_with_err_closes = T(function(defer)
    local ln, _, gone = server(defer)
    local p <close> = net.pool{dial = counting_dial(tostring(ln:addr()))}
    local c0 = assert(p:get())
    p:put(c0, false)                          -- false is no error: pooled
    lu.assertEquals(p:stats().idle, 1)
    local c = assert(p:get())
    lu.assertIs(c, c0)
    lu.assertTrue(p:put(c, "write failed"))
    recv_n(gone, 1)                           -- the server saw it close
    local s = p:stats()
    lu.assertEquals({s.open, s.idle, s.in_use}, {0, 0, 0})
    lu.assertEquals(c:fd(), -1)
end)

TestPool.test_dead_idle_conn_is_never_handed_out = T(function(defer)
    local ln, accepted = server(defer)
    local p <close> = net.pool{dial = counting_dial(tostring(ln:addr()))}
    local a, b = assert(p:get()), assert(p:get())
    local sa, sb = accepted:recv(), accepted:recv()
    local fa, fb = a:fd(), b:fd()
    p:put(a); p:put(b)
    sa:close()                                -- FIN while idle
    sb:set_linger(0); sb:close()              -- RST while idle
    until_probe(fa, "dead"); until_probe(fb, "dead")
    local c = assert(p:get())
    lu.assertNotIs(c, a); lu.assertNotIs(c, b)
    lu.assertEquals(p:stats().evicted_dead, 2)
    assert(c:write("ping"))
    p:put(c)
end)

TestPool.test_unsolicited_bytes_are_dubious = T(function(defer)
    local ln, accepted = server(defer)
    local p <close> = net.pool{dial = counting_dial(tostring(ln:addr()))}
    local a = assert(p:get())
    local sa = accepted:recv()
    local fa = a:fd()
    p:put(a)
    assert(sa:write("-ERR idle timeout\r\n"))  -- a server talking to an idle conn
    until_probe(fa, "dubious")
    local c = assert(p:get())
    lu.assertNotIs(c, a)
    lu.assertEquals(a:fd(), -1, "the dubious conn was closed")
    lu.assertEquals(p:stats().evicted_dubious, 1)
    -- unread bytes at put: closed at once, never pooled
    local sc = accepted:recv()
    assert(sc:write("late reply"))
    until_probe(c:fd(), "dubious")
    p:put(c)
    lu.assertEquals(p:stats().evicted_dubious, 2)
    lu.assertEquals(p:stats().idle, 0)
    -- bytes buffered above the socket (a bufio reader) count too
    local obj = {n = 3, closed = false}
    function obj.buffered(o) return o.n end
    function obj.fd() return -1 end
    function obj.close(o) o.closed = true end
    local q <close> = net.pool{dial = function() return obj end}
    assert(q:get() == obj)
    q:put(obj)
    lu.assertTrue(obj.closed)
    lu.assertEquals(q:stats().evicted_dubious, 1)
end)

TestPool.test_conn_own_probe_method_is_used = T(function()
    local verdict, probed, fds = "ok", 0, 0
    local obj = {}
    function obj.probe() probed = probed + 1; return verdict end
    function obj.fd() fds = fds + 1; return -1 end
    function obj.close() end
    local p <close> = net.pool{dial = function() return obj end}
    p:put(assert(p:get()))
    lu.assertIs(p:get(), obj, "its probe said ok")
    p:put(obj)
    verdict = "dead"
    local c = assert(p:get())                -- dials again (the same object here)
    lu.assertEquals(p:stats().evicted_dead, 1)
    lu.assertTrue(probed >= 3)
    lu.assertEquals(fds, 0, "fd() not used when probe() exists")
    p:put(c, "done")
end)

TestPool.test_health_fn = T(function(defer)
    local ln = server(defer)
    local ok, seen = true, nil
    local p <close> = net.pool{dial = counting_dial(tostring(ln:addr())),
                               health = function(_, idle) seen = idle; return ok end}
    local a = assert(p:get())
    p:put(a)
    lu.assertIs(p:get(), a)
    lu.assertTrue(type(seen) == "number" and seen >= 0)
    p:put(a)
    ok = false
    local b = assert(p:get())
    lu.assertNotIs(b, a)
    lu.assertEquals(p:stats().evicted_dead, 1)
    p:put(b)
    -- a health fn that raises: the error reaches the caller, the conn is
    -- closed and its slot freed
    local q <close> = net.pool{dial = counting_dial(tostring(ln:addr())), max_open = 1,
                               health = function() error("health bug") end}
    local c = assert(q:get())
    q:put(c)
    lu.assertErrorMsgContains("health bug", q.get, q)
    lu.assertEquals(c:fd(), -1)
    lu.assertEquals(q:stats().open, 0)
    q:put(assert(q:get()))                    -- the slot is free: a new dial
end)

TestPool.test_waiters_fifo_and_deadline = T(function(defer)
    local ln = server(defer)
    local dial, count = counting_dial(tostring(ln:addr()))
    local p <close> = net.pool{dial = dial, max_open = 1}
    local c = assert(p:get())
    local order = {}
    local tasks = {}
    for i = 1, 3 do
        tasks[i] = H.spawn(function()
            local got = assert(p:get())
            order[#order + 1] = i
            net.yield()
            p:put(got)
            return got
        end)
        while p:stats().waiting < i do net.yield() end   -- parked in this order
    end
    -- a ctx deadline ends a wait
    local ctx = net.context.with_timeout(net.context.background(), 0.05)
    local v, err = p:get(ctx)
    lu.assertNil(v)
    lu.assertIs(err, net.ErrDeadlineExceeded)
    lu.assertEquals(p:stats().waiting, 3)
    p:put(c)
    for i = 1, 3 do lu.assertIs(H.join(tasks[i]), c, "the same conn handed along") end
    lu.assertEquals(order, {1, 2, 3})
    lu.assertEquals(count.n, 1)
    local s = p:stats()
    lu.assertEquals({s.open, s.idle, s.waiting, s.hits, s.misses}, {1, 1, 0, 3, 1})
end)

TestPool.test_timed_out_waiters_leave_no_trace = T(function(defer)
    local ln = server(defer)
    local p <close> = net.pool{dial = counting_dial(tostring(ln:addr())), max_open = 1}
    local c = assert(p:get())
    local keeper = H.spawn(function() return p:get() end)     -- a live waiter throughout
    while p:stats().waiting < 1 do net.yield() end
    local ended = net.context.with_timeout(net.context.background(), 0)
    for _ = 1, 1000 do
        local v, err = p:get(ended)
        assert(v == nil and err == net.ErrDeadlineExceeded)
    end
    lu.assertEquals(p:stats().waiting, 1)
    lu.assertTrue(p._wtail - p._whead + 1 <= 40, "queue entries: " .. (p._wtail - p._whead + 1))
    p:put(c)
    lu.assertIs(H.join(keeper), c, "the live waiter still gets the conn")
    p:put(c)
end)

TestPool.test_freed_slot_goes_to_waiter = T(function(defer)
    local ln = server(defer)
    local dial, count = counting_dial(tostring(ln:addr()))
    local p <close> = net.pool{dial = dial, max_open = 1}
    local c = assert(p:get())
    local t = H.spawn(function() return assert(p:get()) end)
    while p:stats().waiting < 1 do net.yield() end
    p:put(c, "broken")                        -- the slot, not the conn, passes on
    local d = H.join(t)
    lu.assertNotIs(d, c)
    lu.assertEquals(count.n, 2)
    lu.assertEquals(p:stats().open, 1)
    p:put(d)
end)

TestPool.test_dial_error = T(function()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local addr = tostring(ln:addr())
    ln:close()                                -- nothing listens there now
    local p <close> = net.pool{dial = function(ctx) return net.dial("tcp", addr, ctx) end,
                               max_open = 1}
    local v, err = p:get()
    H.assert_err(v, err, "ECONNREFUSED")
    local s = p:stats()
    lu.assertEquals({s.dial_errors, s.open}, {1, 0}, "the slot came back")
    -- a dial that raises gives its slot back too
    local q <close> = net.pool{dial = function() error("boom") end, max_open = 1}
    lu.assertFalse(pcall(q.get, q))
    lu.assertEquals(q:stats().open, 0)
end)

TestPool.test_idle_timeout_timer = T(function(defer)
    local ln, accepted, gone = server(defer)
    local fds0 = H.open_fds()
    local tasks0 = net.debug.stats().tasks
    local p <close> = net.pool{dial = counting_dial(tostring(ln:addr())), max_idle = 3,
                               idle_timeout = 0.05}
    local cs = {assert(p:get()), assert(p:get()), assert(p:get())}
    recv_n(accepted, 3)
    tasks0 = tasks0 + 3                       -- the server's reader tasks
    for _, c in ipairs(cs) do p:put(c) end
    lu.assertEquals(p:stats().idle, 3)
    lu.assertEquals(net.debug.stats().tasks, tasks0 + 1, "a janitor while conns are idle")
    recv_n(gone, 3)                           -- closed by the timer, no get
    tasks0 = tasks0 - 3                       -- the readers end after their send
    while net.debug.stats().tasks > tasks0 do net.yield() end   -- the janitor ended
    local s = p:stats()
    lu.assertEquals({s.open, s.idle, s.evicted_idle, s.hits}, {0, 0, 3, 0})
    for _, c in ipairs(cs) do lu.assertEquals(c:fd(), -1) end
    collectgarbage()
    lu.assertEquals(H.open_fds(), fds0 + 3, "only the server's 3 accepted conns remain")
end)

TestPool.test_max_lifetime_timer_and_get = T(function(defer)
    local ln, accepted, gone = server(defer)
    local p <close> = net.pool{dial = counting_dial(tostring(ln:addr())), max_lifetime = 0.1}
    local a, b = assert(p:get()), assert(p:get())
    recv_n(accepted, 2)
    local tasks0 = net.debug.stats().tasks
    p:put(a)
    lu.assertEquals(net.debug.stats().tasks, tasks0 + 1, "a janitor")
    recv_n(gone, 1)                           -- a: retired by the timer
    lu.assertEquals(p:stats().evicted_lifetime, 1)
    while net.debug.stats().tasks > tasks0 - 1 do net.yield() end   -- a's reader and the janitor
    p:put(b)                                  -- b is past its lifetime already
    recv_n(gone, 1)
    local s = p:stats()
    lu.assertEquals({s.open, s.idle, s.evicted_lifetime}, {0, 0, 2})
end)

TestPool.test_close = T(function(defer)
    local ln, accepted, gone = server(defer)
    local p = net.pool{dial = counting_dial(tostring(ln:addr())), max_open = 2,
                       idle_timeout = 30}
    local a, b = assert(p:get()), assert(p:get())
    recv_n(accepted, 2)
    local tasks0 = net.debug.stats().tasks
    p:put(a)                                  -- idle: a janitor sleeps 30 s
    lu.assertEquals(net.debug.stats().tasks, tasks0 + 1, "a janitor")
    lu.assertIs(p:get(), a)                   -- both in use again; the janitor still sleeps
    local waiter = H.spawn(function() return p:get() end)
    while p:stats().waiting < 1 do net.yield() end
    lu.assertTrue(p:close())
    local v, err = H.join(waiter)
    lu.assertNil(v)
    lu.assertIs(err, net.ErrClosed, "a waiting get wakes with ErrClosed")
    while net.debug.stats().tasks > tasks0 do net.yield() end   -- the janitor ended at once
    v, err = p:get()
    lu.assertNil(v)
    lu.assertIs(err, net.ErrClosed)
    p:put(b)                                  -- later puts close their conn
    p:put(a)
    lu.assertEquals({a:fd(), b:fd()}, {-1, -1})
    recv_n(gone, 2)
    local s = p:stats()
    lu.assertEquals({s.open, s.in_use, s.idle, s.closed}, {0, 0, 0, true})
    v, err = p:close()
    lu.assertNil(v)
    lu.assertIs(err, net.ErrClosed)
end)

TestPool.test_close_races = T(function(defer)
    local ln = server(defer)
    -- a slot passed to a waiter, then close before the waiter runs: no dial
    local dial, count = counting_dial(tostring(ln:addr()))
    local p = net.pool{dial = dial, max_open = 1}
    local c = assert(p:get())
    local t = H.spawn(function() return p:get() end)
    while p:stats().waiting < 1 do net.yield() end
    p:put(c, "broken")
    p:close()
    local v, err = H.join(t)
    lu.assertNil(v)
    lu.assertIs(err, net.ErrClosed)
    lu.assertEquals(count.n, 1, "no dial for a closed pool")
    lu.assertEquals(p:stats().open, 0)
    -- close while `health` runs: the conn is closed, get says ErrClosed
    local gate = net.chan()
    local q = net.pool{dial = counting_dial(tostring(ln:addr())),
                       health = function() gate:recv(); return true end}
    local a = assert(q:get())
    q:put(a)
    local g = H.spawn(function() return q:get() end)
    while not gate.recvq.head do net.yield() end             -- health is running
    q:close()
    gate:send(true)
    v, err = H.join(g)
    lu.assertNil(v)
    lu.assertIs(err, net.ErrClosed)
    lu.assertEquals(a:fd(), -1)
    lu.assertEquals(q:stats().open, 0)
end)

TestPool.test_close_closes_idle = T(function(defer)
    local ln, _, gone = server(defer)
    do
        local p <close> = net.pool{dial = counting_dial(tostring(ln:addr())), max_idle = 2}
        local a, b = assert(p:get()), assert(p:get())
        p:put(a); p:put(b)
    end                                       -- <close>
    recv_n(gone, 2)
end)

TestPool.test_misuse_raises = T(function(defer)
    local ln = server(defer)
    lu.assertErrorMsgContains("dial", net.pool, {})
    lu.assertErrorMsgContains("unknown option", net.pool, {dial = print, max_opne = 3})
    lu.assertErrorMsgContains("max_open", net.pool, {dial = print, max_open = -1})
    local p <close> = net.pool{dial = counting_dial(tostring(ln:addr()))}
    local a = H.pair(defer)
    lu.assertErrorMsgContains("not in use", p.put, p, a)
    local c = assert(p:get())
    p:put(c)
    lu.assertErrorMsgContains("not in use", p.put, p, c)   -- a second put
end)

TestPool.test_get_put_allocates_nothing = T(function(defer)
    local ln = server(defer)
    local p <close> = net.pool{dial = counting_dial(tostring(ln:addr())), idle_timeout = 60,
                               max_lifetime = 600}
    p:put(assert(p:get()))
    for _ = 1, 100 do p:put(p:get()) end
    collectgarbage()
    collectgarbage("stop")
    local k0 = collectgarbage("count")
    for _ = 1, 10000 do p:put(p:get()) end
    local k1 = collectgarbage("count")
    collectgarbage("restart")
    lu.assertTrue(k1 - k0 < 1, "10000 get+put allocated " .. (k1 - k0) .. " KiB")
    lu.assertEquals(p:stats().hits, 10100)
end)

TestPool.test_pool_map_per_key = T(function(defer)
    local ln1, _, gone1 = server(defer)
    local ln2 = server(defer)
    local dials = {}
    local m <close> = net.pool_map{max_open = 1, dial = function(key, ctx)
        dials[key] = (dials[key] or 0) + 1
        return net.dial("tcp", key, ctx)
    end}
    local k1, k2 = tostring(ln1:addr()), tostring(ln2:addr())
    local a = assert(m:get(k1))
    local b = assert(m:get(k2))              -- another key: not limited by k1's max_open
    lu.assertEquals(tostring(a:remote_addr()), k1)
    lu.assertEquals(tostring(b:remote_addr()), k2)
    m:put(a); m:put(b)
    lu.assertIs(m:get(k1), a)
    lu.assertEquals(m:stats()[k1].hits, 1)
    m:put(a, "broken")                        -- k1 now holds nothing: its pool is dropped
    recv_n(gone1, 1)
    lu.assertNil(m:stats()[k1])
    lu.assertEquals(m:stats()[k2].idle, 1)
    lu.assertErrorMsgContains("not in use", m.put, m, a)
    lu.assertEquals(dials, {[k1] = 1, [k2] = 1})
end)

-- ===== against redis-server =====

local srv
TestPoolRedis = {
    setUp = function() srv = R.start() end,
    tearDown = function() if srv then srv:stop() end end,
}

TestPoolRedis.test_10000_gets_from_50_tasks_max_open_8 = T(function()
    local admin = assert(redis_client(srv.addr))
    local conns0 = R.info_field(admin.c, admin.rd, "stats", "total_connections_received")
    for i = 1, 100 do assert(admin:cmd("SET", "k" .. i, "v" .. i * 7) == "OK") end
    local dial, count = counting_dial(srv.addr, redis_client)
    local p <close> = net.pool{dial = dial, max_open = 8, max_idle = 8}
    local wrong, done, peak = 0, 0, 0
    local wg = net.wait_group()
    for t = 1, 50 do
        wg:add(1)
        net.go(function()
            for i = 1, 200 do
                local k = (t * 200 + i) % 100 + 1
                local c = assert(p:get())
                local in_use = p:stats().in_use
                if in_use > peak then peak = in_use end
                local v, err = c:cmd("GET", "k" .. k)
                if v ~= "v" .. k * 7 then wrong = wrong + 1 end
                p:put(c, err)
                done = done + 1
            end
            wg:done()
        end)
    end
    wg:wait()
    lu.assertEquals(done, 10000)
    lu.assertEquals(wrong, 0)
    lu.assertTrue(count.n <= 8, count.n .. " conns dialed")
    lu.assertTrue(peak <= 8)
    local conns1 = R.info_field(admin.c, admin.rd, "stats", "total_connections_received")
    lu.assertEquals(conns1 - conns0, count.n, "redis saw exactly the conns the pool dialed")
    local s = p:stats()
    lu.assertEquals(s.hits + s.misses, 10000)
    lu.assertEquals(s.misses, count.n)
    admin:close()
end)

TestPoolRedis.test_restart_between_put_and_get = T(function()
    local dial, count = counting_dial(srv.addr, redis_client)
    local p <close> = net.pool{dial = dial}
    local c = assert(p:get())
    assert(c:cmd("SET", "k", "before") == "OK")
    local fd = c:fd()
    p:put(c)
    srv:stop()                                -- redis closes every conn, then exits (reaped)
    srv = R.start(srv.port)                   -- a fresh redis on the same port
    until_probe(fd, "dead")
    local d = assert(p:get())
    lu.assertNotIs(d, c)
    lu.assertEquals(d:cmd("PING"), "PONG")
    lu.assertEquals(d:cmd("GET", "k"), false, "a new server: --save '' kept nothing")
    local s = p:stats()
    lu.assertEquals({s.evicted_dead, s.misses, s.hits}, {1, 2, 0})
    lu.assertEquals(count.n, 2)
    p:put(d)
end)

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end
