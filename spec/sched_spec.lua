--- spec/sched_spec.lua: the scheduler (net.go, task:wait, net.run,
-- net.sleep, net.yield, net.now), blocking outside tasks, deadlock
-- detection, error surfacing and net.debug.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")

TestSched = {}

function TestSched:test_go_wait_returns_results()
    H.run(function()
        local t = net.go(function(a, b) return a + b, nil, "x" end, 2, 3)
        local r = table.pack(t:wait())
        lu.assertEquals(r.n, 3)
        lu.assertEquals(r[1], 5)
        lu.assertNil(r[2])
        lu.assertEquals(r[3], "x")
        lu.assertTrue(t:is_done())
        -- waiting again returns the same results at once
        lu.assertEquals((t:wait()), 5)
    end)
end

-- go is C's spawn itself: a bad fn is blamed on go's caller, and
-- callables and extra arguments still work
function TestSched:test_go_checks_fn_and_blames_its_caller()
    H.run(function()
        local line = debug.getinfo(1, "l").currentline + 1
        local ok, err = pcall(function() return net.go(42) end)
        lu.assertFalse(ok)
        lu.assertStrContains(err, "sched_spec.lua:" .. line .. ": bad argument #1 to 'go' (function expected, got number)")
        local callable = setmetatable({}, {__call = function(_, a, b) return a + b end})
        lu.assertEquals({net.go(callable, 2, 3):wait()}, {5})
    end)
end

-- The creation-site function net.debug.mark() installs runs before the
-- task is queued: when it fails, go fails and the task never runs.
function TestSched:test_a_failing_creation_trace_starts_no_task()
    local sched = require "coronet.sched"
    H.run(function()
        local ran, before = false, #sched.tasks()
        sched.set_trace_creation(function() error("trace boom") end)
        local ok, err = pcall(net.go, function() ran = true end)
        sched.set_trace_creation(nil)
        lu.assertFalse(ok)
        lu.assertStrContains(err, "trace boom")
        lu.assertEquals(#sched.tasks(), before)
        net.go(function() end):wait()           -- a whole turn later
        lu.assertFalse(ran)
    end)
end

function TestSched:test_go_starts_later_not_inline()
    H.run(function()
        local order = {}
        local t = net.go(function() order[#order + 1] = "task" end)
        order[#order + 1] = "caller"
        t:wait()
        lu.assertEquals(order, {"caller", "task"})
    end)
end

function TestSched:test_wait_on_failed_task_returns_nil_err()
    H.run(function()
        local t = net.go(function() error("boom", 0) end)
        local v, err = t:wait()
        lu.assertNil(v)
        lu.assertEquals(err, "boom")
    end)
end

function TestSched:test_failed_task_closes_its_to_be_closed_variables_first()
    H.run(function()
        local order = {}
        local t = net.go(function()
            local res <close> = setmetatable({}, {__close = function(_, e) -- luacheck: ignore res
                order[#order + 1] = "closed: " .. tostring(e)
            end})
            net.sleep(0)                         -- fail after a park, not on the first run
            error("boom", 0)
        end)
        local _, err = t:wait()
        order[#order + 1] = "waited"
        lu.assertEquals(err, "boom")
        lu.assertEquals(order, {"closed: boom", "waited"})
        lu.assertStrContains(t.traceback, "stack traceback:")
        lu.assertStrContains(t.traceback, "sched_spec.lua")
    end)
end

function TestSched:test_idle_task_costs_one_coroutine_and_little_else()
    -- The idle-memory bar (docs/performance.md): a task parked in a conn
    -- read costs its coroutine plus a few small objects. Measured as a
    -- ratio to a bare coroutine parked at the same depth, so the figure
    -- does not depend on the Lua build; conns are made before the first
    -- count, so only what the tasks add is measured.
    local N = 500
    local function heap()
        collectgarbage("collect"); collectgarbage("collect")
        return collectgarbage("count") * 1024
    end
    local cos, h0 = {}, heap()
    local function park() coroutine.yield() end
    local function task_fn() return park() end
    for i = 1, N do
        cos[i] = coroutine.create(function() return task_fn() end)
        coroutine.resume(cos[i])
    end
    local bare = (heap() - h0) / N
    cos = nil
    H.run(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local clients, servers = {}, {}
        for i = 1, N do
            clients[i] = assert(net.dial("tcp", tostring(ln:addr())))
            servers[i] = assert(ln:accept())
        end
        local reader = function(c) return c:read() end
        local ts = table.move({}, 1, N, 1, {})   -- sized up front
        for i = 1, N do ts[i] = false end
        local h1 = heap()
        for i = 1, N do ts[i] = net.go(reader, servers[i]) end
        net.sleep(0)                             -- every task has run and parked
        local per = (heap() - h1) / N
        for i = 1, N do clients[i]:close() end
        for i = 1, N do ts[i]:wait(); servers[i]:close() end
        ln:close()
        lu.assertTrue(per < bare * 1.5, ("a task parked in read %.0f B, a bare parked coroutine %.0f B")
            :format(per, bare))
    end)
end

function TestSched:test_many_waiters_all_woken()
    H.run(function()
        local gate = net.chan()
        local t = net.go(function() gate:recv() return "done" end)
        local got = {}
        local waiters = {}
        for i = 1, 5 do
            waiters[i] = net.go(function() got[i] = t:wait() end)
        end
        net.yield()
        gate:send(true)
        for i = 1, 5 do waiters[i]:wait() end
        lu.assertEquals(got, {"done", "done", "done", "done", "done"})
    end)
end

function TestSched:test_unobserved_error_is_raised_from_run()
    local ok, err = pcall(net.run, function()
        net.go(function() error("lost?", 0) end)
        net.sleep(0.05)
        return "should not get here"
    end)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), "lost?")
    -- the run's own task is still parked in its sleep: it finishes the next
    -- time the loop is driven
    lu.assertEquals(net.debug.stats().tasks, 1)
    H.drain()
    lu.assertEquals(net.debug.stats().tasks, 0)
end

function TestSched:test_run_raises_fn_error_with_traceback()
    local ok, err = pcall(net.run, function() error("bad thing") end)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "bad thing")
    lu.assertStrContains(err, "stack traceback")
end

function TestSched:test_run_returns_results()
    local a, b = net.run(function(x) return x, x * 2 end, 21)
    lu.assertEquals(a, 21)
    lu.assertEquals(b, 42)
end

function TestSched:test_run_inside_task_calls_directly()
    H.run(function()
        lu.assertEquals(net.run(function() return "inner" end), "inner")
    end)
end

function TestSched:test_sleep_wakes_in_deadline_order()
    H.run(function()
        local order = {}
        local ts = {}
        for _, d in ipairs{0.03, 0.01, 0.02} do
            ts[#ts + 1] = net.go(function()
                net.sleep(d)
                order[#order + 1] = d
            end)
        end
        for _, t in ipairs(ts) do t:wait() end
        lu.assertEquals(order, {0.01, 0.02, 0.03})
    end)
end

function TestSched:test_sleep_lasts_at_least_its_duration()
    H.run(function()
        local t0 = net.now()
        lu.assertTrue(net.sleep(0.05))
        lu.assertTrue(net.now() - t0 >= 0.05)
    end)
end

function TestSched:test_yield_lets_others_run()
    H.run(function()
        local trace = {}
        local function worker(name)
            for i = 1, 3 do
                trace[#trace + 1] = name .. i
                net.yield()
            end
        end
        local a, b = net.go(worker, "a"), net.go(worker, "b")
        a:wait()
        b:wait()
        lu.assertEquals(trace, {"a1", "b1", "a2", "b2", "a3", "b3"})
    end)
end

function TestSched:test_plain_coroutine_yield_in_a_task_acts_as_yield()
    H.run(function()
        local trace = {}
        local a = net.go(function()
            trace[#trace + 1] = "a1"
            coroutine.yield()
            trace[#trace + 1] = "a2"
        end)
        local b = net.go(function() trace[#trace + 1] = "b1" end)
        a:wait()
        b:wait()
        lu.assertEquals(trace, {"a1", "b1", "a2"})
    end)
end

function TestSched:test_blocking_in_plain_coroutine_inside_task_raises_clearly()
    H.run(function()
        local co = coroutine.create(function() net.sleep(0.01) end)
        local ok, err = coroutine.resume(co)
        lu.assertFalse(ok)
        lu.assertStrContains(err, "not a coronet task")
    end)
end

function TestSched:test_now_is_monotonic_seconds()
    local a = net.now()
    local b = net.now()
    lu.assertTrue(b >= a)
    lu.assertEquals(math.type(a), "float")
end

function TestSched:test_deadlock_is_detected()
    local ch = net.chan()
    local ok, err = pcall(net.run, function() ch:recv() end)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), "deadlock")
    -- the stuck task is still parked: release it so nothing leaks
    ch:close()
    net.run(function() H.settle() end)
    lu.assertEquals(net.debug.stats().tasks, 0)
end

TestSchedTopLevel = {}

-- The REPL contract: a blocking call outside any task drives the loop, so
-- tasks started with net.go make progress meanwhile, and stay parked after.
function TestSchedTopLevel:test_top_level_sleep_drives_tasks()
    local ticks = 0
    local stop = false
    local t = net.go(function()
        while not stop do
            ticks = ticks + 1
            net.sleep(0.005)
        end
    end)
    net.sleep(0.05)                               -- top level: not in a task
    lu.assertTrue(ticks >= 3, "background task ran " .. ticks .. " times")
    local before = ticks
    lu.assertEquals(ticks, before)                -- no loop runs between calls
    stop = true
    t:wait()                                      -- top-level wait drives it to the end
    lu.assertEquals(net.debug.stats().tasks, 0)
end

function TestSchedTopLevel:test_top_level_wait_and_chan()
    local ch = net.chan(1)
    local t = net.go(function() return ch:recv() end)
    ch:send("hi")                                  -- buffered: does not block
    lu.assertEquals(t:wait(), "hi")
end

function TestSchedTopLevel:test_top_level_conn_calls()
    local ln = H.echo_server()
    local c = assert(net.dial("tcp", tostring(ln:addr())))   -- outside any task
    lu.assertEquals(c:write("abc"), 3)
    lu.assertEquals(c:read_full(3), "abc")
    c:close()
    ln:close()
    net.run(H.settle)
    lu.assertEquals(net.debug.stats().tasks, 0)
end

-- Issue 15 item 4: an error that unwinds the driver of a top-level call
-- (Ctrl-C's "interrupted!", or a failed task nobody waits for) must not
-- leave the call's task parked: it would hold the conn ("busy") and later
-- steal the peer's reply.
function TestSchedTopLevel:test_interrupted_top_level_call_leaves_no_orphan()
    H.run_top(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local acc = net.go(function() return ln:accept() end)
        local a = assert(net.dial("tcp", tostring(ln:addr())))
        local b = assert(acc:wait())
        ln:close()
        local ch = net.chan()
        net.go(function() ch:recv() error("interrupted!") end)  -- unwinds the driver
        local ok, err = pcall(function()
            net.go(function() ch:send(1) end)
            return a:read(10)                   -- top level: drives the loop
        end)
        lu.assertFalse(ok)
        lu.assertStrContains(tostring(err), "interrupted!")
        lu.assertEquals(b:write("reply"), 5)
        local d, err2 = a:read(10)
        lu.assertEquals(d, "reply", "the orphaned read took the reply (" .. tostring(err2) .. ")")
        -- a Lua-level wait (a channel) is abandoned too: it must not take a value
        local ch2 = net.chan(1)
        net.go(function() ch:recv() error("interrupted!") end)
        ok = pcall(function()
            net.go(function() ch:send(1) end)
            return ch2:recv()
        end)
        lu.assertFalse(ok)
        ch2:send("v")
        lu.assertEquals(ch2:recv(), "v", "the orphaned recv took the value")
        a:close()
        b:close()
    end)
end

TestSchedDebug = {}

function TestSchedDebug:test_stats_count_tasks_blocked_and_timers()
    H.run(function()
        local base = net.debug.stats()
        local ch = net.chan()
        local ctx, cancel = net.context.with_cancel(net.context.background())
        local sleeper = net.go(function() net.sleep(10, ctx) end)
        local reader = net.go(function() ch:recv() end)
        net.yield()
        net.yield()
        local s = net.debug.stats()
        lu.assertEquals(s.tasks, base.tasks + 2)
        lu.assertEquals(s.blocked.sleep, base.blocked.sleep + 1)
        lu.assertEquals(s.blocked.chan, base.blocked.chan + 1)
        lu.assertEquals(s.timers, base.timers + 1)
        ch:close()
        cancel()
        reader:wait()
        sleeper:wait()
        s = net.debug.stats()
        lu.assertEquals(s.blocked.sleep, base.blocked.sleep)
        lu.assertEquals(s.timers, base.timers)
    end)
end

function TestSchedDebug:test_stats_count_fds_and_blocked_reads()
    H.run(function()
        local base = net.debug.stats()
        local ln = H.echo_server()
        local c = assert(net.dial("tcp", tostring(ln:addr())))
        local r = net.go(function() return c:read(10) end)
        while net.debug.stats().blocked.read < base.blocked.read + 2 do net.yield() end
        local s = net.debug.stats()
        lu.assertEquals(s.blocked.read, base.blocked.read + 2)   -- our reader + the server's
        lu.assertEquals(s.blocked.accept, base.blocked.accept + 1)
        lu.assertEquals(s.fds, base.fds + 3)                     -- listener, two conn ends
        c:close()
        r:wait()
        ln:close()
    end)
end

function TestSchedDebug:test_tasks_dump_shows_where_each_task_waits()
    H.run(function()
        local ch = net.chan()
        local t = net.go(function() ch:recv() end)
        net.yield()
        local found
        for _, info in ipairs(net.debug.tasks()) do
            if info.id == t.id then found = info end
        end
        lu.assertNotNil(found)
        lu.assertEquals(found.state, "suspended")
        lu.assertStrContains(found.traceback, "sync.lua")
        lu.assertNotNil(found.where)
        ch:close()
        t:wait()
    end)
end

function TestSchedDebug:test_ten_thousand_tasks()
    H.run(function()
        local wg = net.wait_group()
        local sum = 0
        for i = 1, 10000 do
            wg:add(1)
            net.go(function()
                net.sleep(0.001 * (i % 7))
                sum = sum + 1
                wg:done()
            end)
        end
        wg:wait()
        lu.assertEquals(sum, 10000)
    end)
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end
