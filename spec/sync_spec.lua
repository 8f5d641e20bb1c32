-- spec/sync_spec.lua: coronet.sync (channels, select, wait groups, mutexes,
-- semaphores, after). Every test body runs inside sched.run and must leave
-- no task behind.
local lu = require "luaunit"
local sched = require "coronet.sched"
local sync = require "coronet.sync"
local errors = require "coronet.errors"
local context = require "coronet.context"

local go, yield, sleep, now = sched.go, sched.yield, sched.sleep, sched.now

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

-- run: fn(...) as a task; afterwards no task may be left alive.
local function run(fn, ...)
    local before = sched.stats().tasks
    local res = table.pack(sched.run(fn, ...))
    lu.assertEquals(sched.stats().tasks, before, "a test leaked tasks")
    return table.unpack(res, 1, res.n)
end

-- settle: let every other ready task run up to its next park.
local function settle(n)
    for _ = 1, n or 5 do yield() end
end

-- join: wait for tasks; each must return true (not raise).
local function join(...)
    for _, t in ipairs({...}) do
        local ok, err = t:wait()
        lu.assertTrue(ok, tostring(err))
    end
end

-- cancel_after: a ctx canceled by a task `s` seconds from now; returns it
-- and the task to join.
local function cancel_after(s)
    local ctx, cancel = context.with_cancel(context.background())
    local t = go(function() sleep(s); cancel(); return true end)
    return ctx, t
end

---------------------------------------------------------------------------
-- Channels
---------------------------------------------------------------------------
TestSyncChan = {}

function TestSyncChan:test_unbuffered_send_waits_for_receiver()
    run(function()
        local ch, log = sync.chan(), {}
        local t = go(function()
            log[#log + 1] = "sending"
            lu.assertTrue(ch:send("a"))
            log[#log + 1] = "sent"
            return true
        end)
        settle()
        lu.assertEquals(log, {"sending"})       -- blocked: nobody received yet
        lu.assertEquals(#ch, 0)
        local v, ok = ch:recv()
        lu.assertEquals(v, "a")
        lu.assertTrue(ok)
        join(t)
        lu.assertEquals(log, {"sending", "sent"})
    end)
end

function TestSyncChan:test_unbuffered_receiver_first_and_order()
    run(function()
        local ch, got = sync.chan(), {}
        local t = go(function()
            for _ = 1, 10 do got[#got + 1] = (ch:recv()) end
            return true
        end)
        settle()
        for i = 1, 10 do lu.assertTrue(ch:send(i)) end
        join(t)
        lu.assertEquals(got, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
    end)
end

function TestSyncChan:test_buffered_capacity_blocks()
    run(function()
        local ch, sent = sync.chan(2), 0
        local t = go(function()
            for i = 1, 3 do ch:send(i); sent = i end
            return true
        end)
        settle()
        lu.assertEquals(sent, 2)                -- the third send waits for room
        lu.assertEquals(#ch, 2)
        lu.assertEquals(ch:len(), 2)
        lu.assertEquals(ch:cap(), 2)
        lu.assertEquals({ch:recv()}, {1, true})
        join(t)
        lu.assertEquals(sent, 3)
        lu.assertEquals({ch:recv()}, {2, true})
        lu.assertEquals({ch:recv()}, {3, true})
        lu.assertEquals(#ch, 0)
    end)
end

function TestSyncChan:test_buffered_wraps_around()
    run(function()
        local ch, got = sync.chan(3), {}
        for i = 1, 20 do
            ch:send(i)
            if i % 2 == 0 then got[#got + 1] = (ch:recv()) end
            if #ch == 3 then got[#got + 1] = (ch:recv()) end
        end
        while #ch > 0 do got[#got + 1] = (ch:recv()) end
        for i = 1, 20 do lu.assertEquals(got[i], i) end
    end)
end

function TestSyncChan:test_close_semantics()
    run(function()
        local ch = sync.chan(2)
        ch:send(1); ch:send(2)
        lu.assertFalse(ch:is_closed())
        ch:close()
        lu.assertTrue(ch:is_closed())
        lu.assertEquals({ch:recv()}, {1, true})  -- buffered values survive close
        lu.assertEquals({ch:recv()}, {2, true})
        local v, ok = ch:recv()
        lu.assertNil(v); lu.assertFalse(ok)
        v, ok = ch:recv()
        lu.assertNil(v); lu.assertFalse(ok)
        lu.assertErrorMsgContains("send on closed channel", ch.send, ch, 3)
        lu.assertErrorMsgContains("send on closed channel", ch.try_send, ch, 3)
        lu.assertErrorMsgContains("close of closed channel", ch.close, ch)
    end)
end

function TestSyncChan:test_close_wakes_all_receivers()
    run(function()
        local ch, res, ts = sync.chan(), {}, {}
        for i = 1, 3 do
            ts[i] = go(function()
                local v, ok = ch:recv()
                res[i] = {v, ok}
                return true
            end)
        end
        settle()
        lu.assertEquals(sched.stats().blocked.chan, 3)
        ch:close()
        join(table.unpack(ts))
        lu.assertEquals(res, {{nil, false}, {nil, false}, {nil, false}})
    end)
end

function TestSyncChan:test_close_raises_in_blocked_sender()
    run(function()
        local ch = sync.chan()
        local t = go(function() ch:send("x"); return "not reached" end)
        settle()
        ch:close()
        local ok, err = t:wait()
        lu.assertNil(ok)
        lu.assertStrContains(tostring(err), "send on closed channel")
        lu.assertEquals({ch:recv()}, {nil, false})  -- the value was not delivered
    end)
end

function TestSyncChan:test_nil_values()
    run(function()
        local ch = sync.chan(3)
        ch:send(nil); ch:send(1); ch:send(nil)
        lu.assertEquals(#ch, 3)
        lu.assertEquals(table.pack(ch:recv()), {n = 2, nil, true})
        lu.assertEquals(table.pack(ch:recv()), {n = 2, 1, true})
        lu.assertEquals(table.pack(ch:recv()), {n = 2, nil, true})
        lu.assertEquals(#ch, 0)
        local u = sync.chan()
        local t = go(function() u:send(nil); return true end)
        local v, ok = u:recv()
        lu.assertNil(v); lu.assertTrue(ok)
        join(t)
    end)
end

function TestSyncChan:test_iter_until_closed()
    run(function()
        local ch = sync.chan()
        local t = go(function()
            for i = 1, 5 do ch:send(i * 10) end
            ch:close()
            return true
        end)
        local got = {}
        for v in ch:iter() do got[#got + 1] = v end
        join(t)
        lu.assertEquals(got, {10, 20, 30, 40, 50})
    end)
end

function TestSyncChan:test_try_send_try_recv()
    run(function()
        local u = sync.chan()
        lu.assertFalse(u:try_send(1))           -- no receiver
        lu.assertEquals(table.pack(u:try_recv()), {n = 2})  -- nothing: nil, nil
        local got
        local t = go(function() got = table.pack(u:recv()); return true end)
        settle()
        lu.assertTrue(u:try_send("x"))          -- a parked receiver takes it
        join(t)
        lu.assertEquals(got, {n = 2, "x", true})
        local s = go(function() u:send("y"); return true end)
        settle()
        lu.assertEquals({u:try_recv()}, {"y", true})
        join(s)

        local b = sync.chan(1)
        lu.assertTrue(b:try_send(1))
        lu.assertFalse(b:try_send(2))           -- full
        lu.assertEquals({b:try_recv()}, {1, true})
        b:close()
        local v, ok = b:try_recv()
        lu.assertNil(v); lu.assertFalse(ok)     -- closed: false, not nil
    end)
end

function TestSyncChan:test_fifo_receivers_and_senders()
    run(function()
        local ch, got, ts = sync.chan(), {}, {}
        for i = 1, 5 do
            ts[#ts + 1] = go(function() got[i] = ch:recv(); return true end)
        end
        settle()
        for i = 1, 5 do ch:send(i * 100) end
        join(table.unpack(ts))
        lu.assertEquals(got, {100, 200, 300, 400, 500})  -- receiver i parked i-th

        ts = {}
        for i = 1, 5 do
            ts[#ts + 1] = go(function() ch:send(i); return true end)
            yield()                             -- park in order
        end
        settle()
        local order = {}
        for i = 1, 5 do order[i] = ch:recv() end
        join(table.unpack(ts))
        lu.assertEquals(order, {1, 2, 3, 4, 5})
    end)
end

function TestSyncChan:test_ctx_cancels_recv_and_send()
    run(function()
        local ch = sync.chan()
        local ctx, ct = cancel_after(0.01)
        local v, ok, err = ch:recv(ctx)
        lu.assertNil(v); lu.assertFalse(ok)
        lu.assertIs(err, errors.ErrCanceled)
        join(ct)
        lu.assertFalse(ch:try_send(1))          -- the canceled receiver left no waiter

        ctx, ct = cancel_after(0.01)
        local r, e = ch:send("lost", ctx)
        lu.assertNil(r)
        lu.assertIs(e, errors.ErrCanceled)
        join(ct)
        lu.assertEquals(table.pack(ch:try_recv()), {n = 2})  -- nothing was sent
    end)
end

function TestSyncChan:test_ctx_deadline()
    run(function()
        local ch = sync.chan()
        local t0 = now()
        local ctx, cancel = context.with_timeout(context.background(), 0.02)
        local v, ok, err = ch:recv(ctx)
        lu.assertNil(v); lu.assertFalse(ok)
        lu.assertIs(err, errors.ErrDeadlineExceeded)
        lu.assertTrue(now() - t0 >= 0.02 - 1e-6)
        local r, e = ch:send(1, ctx)            -- already ended
        lu.assertNil(r); lu.assertIs(e, errors.ErrDeadlineExceeded)
        cancel()
        lu.assertFalse(ch:try_send(1))
    end)
end

function TestSyncChan:test_ended_ctx_only_matters_when_blocking()
    run(function()
        local ctx, cancel = context.with_cancel(context.background())
        cancel()
        local b = sync.chan(1)
        lu.assertTrue(b:send(1, ctx))           -- room: proceeds
        lu.assertEquals({b:recv(ctx)}, {1, true})
        local v, ok, err = b:recv(ctx)           -- would block: fails at once
        lu.assertNil(v); lu.assertFalse(ok); lu.assertIs(err, errors.ErrCanceled)
    end)
end

function TestSyncChan:test_blocking_outside_a_task()
    local before = sched.stats().tasks
    local ch = sync.chan()
    local t = go(function() sleep(0.01); ch:send(42); return true end)
    lu.assertEquals({ch:recv()}, {42, true})    -- drives the loop itself
    join(t)
    t = go(function() sleep(0.01); return ch:recv() end)
    lu.assertTrue(ch:send("top"))
    lu.assertEquals(t:wait(), "top")
    lu.assertEquals(sched.stats().tasks, before)
end

function TestSyncChan:test_bad_arguments_and_tostring()
    lu.assertErrorMsgContains("non-negative integer", sync.chan, -1)
    lu.assertErrorMsgContains("non-negative integer", sync.chan, 1.5)
    lu.assertErrorMsgContains("non-negative integer", sync.chan, "x")
    lu.assertEquals(sync.chan():cap(), 0)
    local ch = sync.chan(4)
    ch:try_send(1)
    lu.assertEquals(tostring(ch), "chan(4) len 1")
    lu.assertEquals(getmetatable(ch).__name, "coronet.chan")
end

---------------------------------------------------------------------------
-- select
---------------------------------------------------------------------------
TestSyncSelect = {}

function TestSyncSelect:test_fair_among_ready_cases()
    run(function()
        local chs = {sync.chan(1), sync.chan(1), sync.chan(1)}
        for i = 1, 3 do chs[i]:send(i) end
        local hits, seen = {0, 0, 0}, {0, 0, 0}
        local cases = {}
        for i = 1, 3 do
            cases[i] = {chs[i], "recv", function(v, ok)
                lu.assertTrue(ok)
                seen[v] = seen[v] + 1
            end}
        end
        local N = 3000
        for _ = 1, N do
            local i, v, ok = sync.select(cases)
            lu.assertEquals(v, i)
            lu.assertTrue(ok)
            hits[i] = hits[i] + 1
            chs[i]:send(i)                      -- keep all three ready
        end
        lu.assertEquals(seen, hits)             -- fn ran with the values
        for i = 1, 3 do
            -- expected 1000 each, sd ~26: 800 is > 7 sd away
            lu.assertTrue(hits[i] > 800, ("case %d chosen %d/%d times"):format(i, hits[i], N))
        end
    end)
end

function TestSyncSelect:test_send_case()
    run(function()
        local ch, full, got = sync.chan(), sync.chan(1), nil
        full:send("x")
        local t = go(function() got = table.pack(ch:recv()); return true end)
        settle()
        local ran = false
        local i, extra = sync.select{
            {full, "send", "never"},
            {ch, "send", "hello", function(...) ran = select("#", ...) == 0 end},
        }
        lu.assertEquals(i, 2)
        lu.assertNil(extra)                     -- a send returns only its index
        lu.assertTrue(ran)
        join(t)
        lu.assertEquals(got, {n = 2, "hello", true})
        -- blocking send: parks until a receiver comes
        t = go(function()
            return sync.select{{full, "send", "y"}, {ch, "send", nil}} == 2
        end)
        settle()
        lu.assertEquals(table.pack(ch:recv()), {n = 2, nil, true})
        join(t)
        lu.assertEquals({full:recv()}, {"x", true})  -- the other send did not happen
        lu.assertEquals(#full, 0)
    end)
end

function TestSyncSelect:test_blocking_recv_then_woken()
    run(function()
        local a, b = sync.chan(), sync.chan()
        local res
        local t = go(function()
            res = table.pack(sync.select{{a, "recv"}, {b, "recv"}})
            return true
        end)
        settle()
        lu.assertEquals(sched.stats().blocked.select, 1)
        b:send(nil)
        join(t)
        lu.assertEquals(res, {n = 3, 2, nil, true})
    end)
end

function TestSyncSelect:test_no_stale_registration()
    run(function()
        local a, b = sync.chan(), sync.chan()
        local res
        local t = go(function()
            res = {sync.select{{a, "recv"}, {b, "recv"}, {b, "recv"}}}
            return true
        end)
        settle()
        lu.assertTrue(a:send("x"))
        -- t was served through a but has not run yet: its b registrations
        -- must already be gone, so nobody receives on b.
        lu.assertFalse(b:try_send("y"))
        join(t)
        lu.assertEquals(res, {1, "x", true})
        -- a real receiver on b gets the next value, not a stale waiter
        local got
        local r = go(function() got = b:recv(); return true end)
        settle()
        b:send("z")
        join(r)
        lu.assertEquals(got, "z")
        lu.assertFalse(b:try_send("w"))
        lu.assertFalse(a:try_send("w"))
    end)
end

function TestSyncSelect:test_default()
    run(function()
        local ch = sync.chan(1)
        local ran = 0
        lu.assertEquals(sync.select{{ch, "recv"}, default = function() ran = ran + 1 end}, 0)
        lu.assertEquals(ran, 1)
        lu.assertEquals(sync.select{{ch, "recv"}, {"default", function() ran = ran + 1 end}}, 2)
        lu.assertEquals(ran, 2)
        lu.assertEquals(sync.select{{"default"}, {ch, "recv"}}, 1)
        ch:send(7)
        lu.assertEquals({sync.select{{ch, "recv"}, default = function() ran = 99 end}}, {1, 7, true})
        lu.assertEquals(ran, 2)                 -- default not run when a case is ready
        lu.assertErrorMsgContains("second default", sync.select,
                                  {{"default"}, default = function() end})
        lu.assertErrorMsgContains("second default", sync.select, {{"default"}, {"default"}})
    end)
end

function TestSyncSelect:test_closed_recv_and_send()
    run(function()
        local ch = sync.chan()
        ch:close()
        lu.assertEquals(table.pack(sync.select{{ch, "recv"}}), {n = 3, 1, nil, false})
        lu.assertErrorMsgContains("send on closed channel", sync.select, {{ch, "send", 1}})
        -- closed while select is parked on a send
        local c2 = sync.chan()
        local t = go(function() sync.select{{c2, "send", 1}} end)
        settle()
        c2:close()
        local ok, err = t:wait()
        lu.assertNil(ok)
        lu.assertStrContains(tostring(err), "send on closed channel")
    end)
end

function TestSyncSelect:test_nil_channel_case_never_proceeds()
    run(function()
        local ch = sync.chan(1)
        ch:send(1)
        for _ = 1, 50 do
            local i = sync.select{{nil, "recv"}, {false, "send", 2}, {ch, "recv"}}
            lu.assertEquals(i, 3)
            ch:send(1)
        end
        lu.assertEquals(sync.select{{nil, "recv"}, default = true}, 0)
    end)
end

function TestSyncSelect:test_ctx_cancel_and_done_channel()
    run(function()
        local a, b = sync.chan(), sync.chan()
        local ctx, ct = cancel_after(0.01)
        local i, err = sync.select({{a, "recv"}, {b, "send", 1}}, ctx)
        lu.assertNil(i)
        lu.assertIs(err, errors.ErrCanceled)
        join(ct)
        lu.assertFalse(a:try_send(1))           -- deregistered from a
        lu.assertEquals(table.pack(b:try_recv()), {n = 2})  -- and from b

        ctx, ct = cancel_after(0.01)
        local j, v, ok = sync.select{{a, "recv"}, {ctx:done(), "recv"}}
        lu.assertEquals({j, v, ok}, {2, nil, false})
        join(ct)
    end)
end

function TestSyncSelect:test_ctx_deadline()
    run(function()
        local a = sync.chan()
        local ctx, cancel = context.with_timeout(context.background(), 0.02)
        local i, err = sync.select({{a, "recv"}}, ctx)
        lu.assertNil(i)
        lu.assertIs(err, errors.ErrDeadlineExceeded)
        -- the same ctx's done channel, as a case
        local ctx2, cancel2 = context.with_timeout(context.background(), 0.02)
        lu.assertEquals({sync.select{{a, "recv"}, {ctx2:done(), "recv"}}}, {2, nil, false})
        cancel(); cancel2()
        lu.assertFalse(a:try_send(1))
    end)
end

function TestSyncSelect:test_after_as_timeout()
    run(function()
        local ch = sync.chan()
        local t0 = now()
        local i, v = sync.select{{ch, "recv"}, {sync.after(0.03), "recv"}}
        lu.assertEquals(i, 2)
        lu.assertTrue(v >= t0 + 0.03 - 1e-6)
        lu.assertTrue(now() - t0 >= 0.03 - 1e-6)
    end)
end

function TestSyncSelect:test_send_and_recv_on_one_channel_pair_up()
    run(function()
        for _ = 1, 20 do
            local ch, res = sync.chan(), {}
            local ts = {}
            for id = 1, 2 do
                ts[id] = go(function()
                    res[id] = {sync.select{{ch, "send", id}, {ch, "recv"}}}
                    return true
                end)
            end
            join(ts[1], ts[2])
            local s = res[1][1] == 1 and 1 or 2  -- the one that sent
            local r = 3 - s
            lu.assertEquals(res[s], {1})
            lu.assertEquals(res[r], {2, s, true})
        end
    end)
end

function TestSyncSelect:test_outside_a_task_and_bad_cases()
    local before = sched.stats().tasks
    local ch = sync.chan()
    local t = go(function() sleep(0.01); ch:send("v"); return true end)
    lu.assertEquals({sync.select{{ch, "recv"}}}, {1, "v", true})
    join(t)
    lu.assertEquals(sched.stats().tasks, before)
    lu.assertErrorMsgContains("table expected", sync.select, 1)
    lu.assertErrorMsgContains("case 1", sync.select, {{ch, "peek"}})
    lu.assertErrorMsgContains("channel expected", sync.select, {{{}, "recv"}})
end

---------------------------------------------------------------------------
-- WaitGroup
---------------------------------------------------------------------------
TestSyncWaitGroup = {}

function TestSyncWaitGroup:test_wait_for_all()
    run(function()
        local wg, done = sync.wait_group(), {}
        lu.assertTrue(wg:wait())                -- counter 0: at once
        wg:add(3)
        lu.assertEquals(wg:count(), 3)
        for i = 1, 3 do
            go(function() sleep(0.001 * i); done[i] = true; wg:done() end)
        end
        local waiters = {}
        for k = 1, 2 do
            waiters[k] = go(function() return wg:wait() and #done == 3 end)
        end
        lu.assertTrue(wg:wait())
        lu.assertEquals(done, {true, true, true})
        join(table.unpack(waiters))
        lu.assertEquals(wg:count(), 0)
        -- reusable
        wg:add()
        go(function() wg:done() end)
        lu.assertTrue(wg:wait())
        settle()
    end)
end

function TestSyncWaitGroup:test_negative_counter_raises()
    local wg = sync.wait_group()
    lu.assertErrorMsgContains("negative WaitGroup counter", wg.done, wg)
    wg:add(2)
    lu.assertErrorMsgContains("negative WaitGroup counter", wg.add, wg, -3)
    lu.assertEquals(wg:count(), 2)
    wg:add(-2)
    lu.assertEquals(wg:count(), 0)
    lu.assertErrorMsgContains("integer", wg.add, wg, 0.5)
end

function TestSyncWaitGroup:test_wait_ctx()
    run(function()
        local wg = sync.wait_group()
        wg:add(1)
        local ctx, ct = cancel_after(0.01)
        local ok, err = wg:wait(ctx)
        lu.assertNil(ok)
        lu.assertIs(err, errors.ErrCanceled)
        join(ct)
        wg:done()
    end)
end

---------------------------------------------------------------------------
-- Mutex
---------------------------------------------------------------------------
TestSyncMutex = {}

function TestSyncMutex:test_exclusion()
    run(function()
        local mu, wg = sync.mutex(), sync.wait_group()
        local counter, inside, max_inside = 0, 0, 0
        for _ = 1, 5 do
            wg:add(1)
            go(function()
                for _ = 1, 20 do
                    mu:lock()
                    inside = inside + 1
                    if inside > max_inside then max_inside = inside end
                    local c = counter
                    yield()                     -- others run while we hold it
                    counter = c + 1
                    inside = inside - 1
                    mu:unlock()
                end
                wg:done()
            end)
        end
        wg:wait()
        lu.assertEquals(counter, 100)
        lu.assertEquals(max_inside, 1)
        lu.assertFalse(mu:is_locked())
    end)
end

function TestSyncMutex:test_fifo_handoff()
    run(function()
        local mu, order, ts = sync.mutex(), {}, {}
        mu:lock()
        for i = 1, 5 do
            ts[i] = go(function() mu:lock(); order[#order + 1] = i; mu:unlock(); return true end)
            yield()
        end
        settle()
        mu:unlock()
        lu.assertTrue(mu:is_locked())           -- handed to the first waiter, not freed
        lu.assertFalse(mu:try_lock())           -- no barging
        join(table.unpack(ts))
        lu.assertEquals(order, {1, 2, 3, 4, 5})
        lu.assertTrue(mu:try_lock())
        mu:unlock()
        lu.assertErrorMsgContains("unlock of unlocked mutex", mu.unlock, mu)
    end)
end

function TestSyncMutex:test_lock_ctx_and_outside_task()
    run(function()
        local mu = sync.mutex()
        mu:lock()
        local ctx, ct = cancel_after(0.01)
        local ok, err = mu:lock(ctx)
        lu.assertNil(ok)
        lu.assertIs(err, errors.ErrCanceled)
        join(ct)
        mu:unlock()
        lu.assertFalse(mu:is_locked())          -- not handed to the canceled waiter
    end)
    local before = sched.stats().tasks
    local mu = sync.mutex()
    mu:lock()
    local t = go(function() sleep(0.01); mu:unlock(); return true end)
    lu.assertTrue(mu:lock())                    -- drives the loop
    join(t)
    mu:unlock()
    lu.assertEquals(sched.stats().tasks, before)
end

---------------------------------------------------------------------------
-- Semaphore
---------------------------------------------------------------------------
TestSyncSemaphore = {}

function TestSyncSemaphore:test_limit()
    run(function()
        local sem, wg = sync.semaphore(3), sync.wait_group()
        local inside, max_inside, total = 0, 0, 0
        for _ = 1, 10 do
            wg:add(1)
            go(function()
                lu.assertTrue(sem:acquire())
                inside = inside + 1
                if inside > max_inside then max_inside = inside end
                sleep(0.002)
                inside = inside - 1
                total = total + 1
                sem:release()
                wg:done()
            end)
        end
        wg:wait()
        lu.assertEquals(total, 10)
        lu.assertEquals(max_inside, 3)
        lu.assertEquals(sem:available(), 3)
    end)
end

function TestSyncSemaphore:test_try_release_ctx()
    run(function()
        local sem = sync.semaphore(2)
        lu.assertTrue(sem:try_acquire())
        lu.assertTrue(sem:try_acquire())
        lu.assertFalse(sem:try_acquire())
        local ctx, ct = cancel_after(0.01)
        local ok, err = sem:acquire(ctx)
        lu.assertNil(ok)
        lu.assertIs(err, errors.ErrCanceled)
        join(ct)
        local t = go(function() return sem:acquire() end)
        settle()
        sem:release()                           -- handed to t: no barging
        lu.assertFalse(sem:try_acquire())
        join(t)
        sem:release()
        sem:release()
        lu.assertEquals(sem:available(), 2)
        lu.assertErrorMsgContains("released more than held", sem.release, sem)
        lu.assertErrorMsgContains("positive integer", sync.semaphore, 0)
    end)
end

---------------------------------------------------------------------------
-- after, deadlock
---------------------------------------------------------------------------
TestSyncAfter = {}

function TestSyncAfter:test_fires_once_after_delay()
    run(function()
        local t0 = now()
        local ch = sync.after(0.05)
        lu.assertEquals(ch:cap(), 1)
        local v, ok = ch:recv()
        local dt = now() - t0
        lu.assertTrue(ok)
        lu.assertEquals(type(v), "number")
        lu.assertTrue(dt >= 0.05 - 1e-6, "fired after " .. dt)
        lu.assertTrue(dt < 1.0, "fired after " .. dt)
        lu.assertTrue(v >= t0 + 0.05 - 1e-6)
        lu.assertEquals(table.pack(ch:try_recv()), {n = 2})  -- once
    end)
end

function TestSyncAfter:test_zero_is_ready_at_once()
    run(function()
        local v, ok = sync.after(0):try_recv()
        lu.assertTrue(ok)
        lu.assertEquals(type(v), "number")
    end)
end

TestSyncDeadlock = {}

function TestSyncDeadlock:test_recv_forever_is_a_deadlock()
    local before = sched.stats().tasks
    local ch = sync.chan()
    local ok, err = pcall(sched.run, function() ch:recv() end)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), "deadlock")
    -- let the parked task finish so no task leaks
    ch:close()
    sched.run(function() settle() end)
    lu.assertEquals(sched.stats().tasks, before)
end

if not SPEC_RUNNER then os.exit(require("luaunit").LuaUnit.run()) end
