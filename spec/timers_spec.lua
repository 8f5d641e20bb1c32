--- spec/timers_spec.lua: what bench/timers/run.lua relies on, at a few
-- thousand instead of 100k: timers fire in deadline order whatever order
-- they were armed in, a cancel leaves no timer armed and no task behind,
-- one parent cancel wakes every select parked under its children, and a
-- live context costs a bounded number of heap bytes.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local sched = require "coronet.sched"
local context = require "coronet.context"

TestTimers = {}

local N = 2000

-- a permutation of 0..n-1: deadlines armed in scattered order
local function perm(i, n) return (i * 1000003) % n end

local function settle(cond)
    for _ = 1, 1000 do
        if cond() then return true end
        net.yield()
    end
    return cond()
end

-- one round: N tasks park with scattered deadlines base + margin .. +
-- 1.5 margin; returns nil when some task reached its deadline before it
-- parked (a slow machine, valgrind: that park returns at once and arms
-- nothing), else the deadlines in the order they fired
local function fire_round(margin)
    local s0 = net.debug.stats()
    local base = net.now() + margin
    local fired, parked, late = {}, 0, 0
    local wg = net.wait_group()
    wg:add(N)
    for i = 1, N do
        local dl = base + margin * 0.5 * perm(i, N) / N
        net.go(function()
            parked = parked + 1
            if net.now() >= dl then late = late + 1 end
            sched.park(dl, sched.KIND.sleep)    -- the absolute deadline net.sleep parks with
            fired[#fired + 1] = dl
            wg:done()
        end)
    end
    lu.assertTrue(settle(function() return parked == N end))
    local armed = net.debug.stats().timers - s0.timers
    wg:wait()
    lu.assertEquals(#fired, N)
    lu.assertEquals(net.debug.stats().timers, s0.timers)
    lu.assertEquals(net.debug.stats().tasks, s0.tasks)
    if late > 0 then return nil end
    lu.assertEquals(armed, N)
    return fired
end

function TestTimers:test_distinct_deadlines_fire_in_deadline_order()
    H.run(function()
        local fired, margin = nil, 0.02
        while not fired do                       -- widen the margin until every park armed
            fired = fire_round(margin)
            margin = margin * 4
            lu.assertTrue(margin < 100, "tasks keep reaching their deadline before they park")
        end
        local inversions = 0
        for i = 2, N do if fired[i] < fired[i - 1] then inversions = inversions + 1 end end
        lu.assertEquals(inversions, 0)
    end)
end

function TestTimers:test_cancel_before_the_deadline_leaves_nothing_armed()
    H.run(function()
        local s0 = net.debug.stats()
        local ctxs, cancels = {}, {}
        for i = 1, N do
            ctxs[i], cancels[i] = context.with_timeout(context.background(), 60 + perm(i, N) / N)
        end
        lu.assertEquals(net.debug.stats().timers, s0.timers)       -- a deadline alone costs no timer
        for i = 1, N do ctxs[i]:done() end                        -- one timer task each
        lu.assertTrue(settle(function() return net.debug.stats().timers - s0.timers == N end))
        lu.assertEquals(net.debug.stats().tasks - s0.tasks, N)
        for i = 1, N do cancels[i]() end
        for i = 1, N do lu.assertIs(ctxs[i]:err(), context.Canceled) end
        lu.assertTrue(settle(function() return net.debug.stats().tasks == s0.tasks end))
        lu.assertEquals(net.debug.stats().timers, s0.timers)
        for i = 1, N do lu.assertTrue(ctxs[i]:done():is_closed()) end
    end)
end

function TestTimers:test_one_parent_cancel_wakes_every_select_under_its_children()
    H.run(function()
        local s0 = net.debug.stats()
        local parent, cancel = context.with_cancel(context.background())
        local ch = net.chan(0)
        local parked, woke = 0, 0
        local errs = {}
        for i = 1, N do
            net.go(function()
                local ctx = context.with_timeout(parent, 60 + perm(i, N) / N)
                parked = parked + 1
                local idx, err = net.select({{ch, "recv"}}, ctx)
                if idx == nil then errs[err] = (errs[err] or 0) + 1 end
                woke = woke + 1
            end)
        end
        lu.assertTrue(settle(function() return net.debug.stats().blocked.select - s0.blocked.select == N end))
        lu.assertEquals(parked, N)
        lu.assertEquals(net.debug.stats().timers - s0.timers, N)    -- each parks bounded by its ctx's deadline
        cancel()
        lu.assertTrue(settle(function() return woke == N end))
        lu.assertEquals(errs[context.Canceled], N)
        lu.assertEquals(net.debug.stats().timers, s0.timers)
        lu.assertEquals(net.debug.stats().tasks, s0.tasks)
        lu.assertNil(ch.recvq.head)                                -- every waiter left the channel's queue
    end)
end

-- The heap bytes one live with_timeout ctx (and its cancel function) costs.
local function bytes_per_ctx(n)
    local cancels = {}                     -- a cancel function holds its ctx
    for i = 1, n do cancels[i] = false end      -- the slots are not the ctx's cost
    collectgarbage("collect"); collectgarbage("collect")
    local before = collectgarbage("count")
    local bg = context.background()
    for i = 1, n do
        local _, cancel = context.with_timeout(bg, 60)
        cancels[i] = cancel
    end
    collectgarbage("collect"); collectgarbage("collect")
    local during = collectgarbage("count")
    for i = 1, n do cancels[i]() end
    return (during - before) * 1024 / n
end

function TestTimers:test_a_live_context_costs_a_bounded_number_of_bytes()
    -- Lua 5.4, 64-bit: the ctx table, its waiters and children sets and
    -- the cancel closure are about 360 B; each ctx used to make its own
    -- weak metatable for its children set too (about 80 B more: 440 B)
    local b = bytes_per_ctx(N)
    lu.assertTrue(b < 400, string.format("%.0f B per live ctx", b))
end

-- bench/timers/run.lua itself, at a tiny n (its figures are not asserted,
-- only that it runs, prints a parseable line per figure and finds nothing
-- left behind)
function TestTimers:test_the_benchmark_runs_and_prints_parseable_results()
    local p = io.popen("lua5.4 bench/timers/run.lua --n 200,400 --base 0.05 --spread 0.05 2>&1")
    local out = p:read("a")
    local ok = p:close()
    lu.assertTrue(ok, out)
    local names = {}
    for line in out:gmatch("[^\n]+") do
        local name, n, us, bytes = line:match("^RESULT name=(%S+) n=(%d+) us_per_op=([%d.]+) bytes_per_op=(%-?[%d.]+)")
        if name then
            names[name .. "@" .. n] = true
            lu.assertNotNil(tonumber(us))
            lu.assertNotNil(tonumber(bytes))
            local after = line:match(" timers_after=(%-?%d+)")
            if after then lu.assertEquals(after, "0", line) end
            local tasks = line:match(" tasks_after=(%-?%d+)")
            if tasks then lu.assertEquals(tasks, "0", line) end
        end
    end
    for _, name in ipairs{"sleep.spawn_park", "sleep.fire", "burst.fire", "ctx.create", "ctx.cancel",
                          "ctxdone.cancel", "select.park", "select.cancel"} do
        lu.assertTrue(names[name .. "@200"] and names[name .. "@400"], name .. " missing:\n" .. out)
    end
    lu.assertStrContains(out, "| ctx.cancel |")                 -- the scaling table
end
