--- spec/task_object_spec.lua: a task is one userdata (csrc/task.c): the
-- fields C keeps and the ones that go to its field table, what it lets go
-- of when it ends, the resume step's handling of a plain coroutine.yield,
-- and what a parked task costs in Lua heap (the idle-memory budget of
-- docs/performance.md).
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local sched = require "coronet.sched"

TestTaskObject = {}

function TestTaskObject:test_a_task_is_a_coronet_task_userdata()
    H.run(function()
        local t = net.go(function() end)
        lu.assertEquals(type(t), "userdata")
        lu.assertEquals(getmetatable(t).__name, "coronet.task")
        lu.assertStrMatches(tostring(t), "task %d+")
        lu.assertEquals(math.type(t.id), "integer")
        local u = net.go(function() end)
        lu.assertTrue(u.id > t.id)
        t:wait()
        u:wait()
        lu.assertStrMatches(tostring(t), "task %d+ %(done%)")
    end)
end

function TestTaskObject:test_fields_c_keeps_and_fields_users_set()
    H.run(function()
        local t = net.go(function() net.sleep(0) return "r" end)
        lu.assertFalse(t.done)
        lu.assertFalse(t.started)
        lu.assertEquals(type(t.co), "thread")
        t.label = "mine"                          -- any other field is the user's
        t[1] = 42
        lu.assertEquals(t.label, "mine")
        lu.assertEquals(t[1], 42)
        lu.assertNil(t.nothing)
        lu.assertErrorMsgContains("read-only", function() t.id = 1 end)
        lu.assertErrorMsgContains("read-only", function() t.co = nil end)
        lu.assertEquals(t:wait(), "r")
        lu.assertTrue(t.done)
        lu.assertTrue(t.ok)
        lu.assertTrue(t.started)
        lu.assertTrue(t.observed)
        lu.assertEquals(t.label, "mine")          -- kept after it ended
        lu.assertEquals(t[1], 42)
        lu.assertNil(t.co)                        -- the coroutine is let go
    end)
end

-- A task that returned nothing and has no fields ends on the short path
-- (csrc/task.c, task_end_plain); a handle held after it does not keep
-- its coroutine either.
function TestTaskObject:test_a_plain_task_lets_its_coroutine_go()
    H.run(function()
        local weak = setmetatable({}, {__mode = "v"})
        local t = net.go(function() weak.co = coroutine.running() end)
        local seen = net.go(function() return t.done, t.co end)   -- runs after t's only turn
        local done, co = seen:wait()
        lu.assertTrue(done)
        lu.assertNil(co)
        collectgarbage()
        collectgarbage()
        lu.assertNil(weak.co)
        lu.assertTrue(t.ok)
    end)
end

-- The task's function is its coroutine's main function: no scheduler
-- frame lies below it (one frame fewer per task), and a callable table or
-- a C function runs as well.
function TestTaskObject:test_the_function_is_the_coroutines_main_function()
    H.run(function()
        local fn, bottom
        fn = function(a, b)
            local co, level = coroutine.running(), 0
            while debug.getinfo(co, level + 1, "f") do level = level + 1 end
            bottom = debug.getinfo(co, level, "f").func
            return a + b
        end
        local t = net.go(fn, 2, 3)
        lu.assertEquals({t:wait()}, {5})
        lu.assertIs(bottom, fn)
        local callable = setmetatable({}, {__call = function(obj, x) return obj, x end})
        local r = {net.go(callable, "x"):wait()}
        lu.assertIs(r[1], callable)
        lu.assertEquals(r[2], "x")
        lu.assertEquals({net.go(select, "#", 1, 2, 3):wait()}, {3})
    end)
end

function TestTaskObject:test_an_ended_task_lets_its_coroutine_be_collected()
    H.run(function()
        local weak = setmetatable({}, {__mode = "v"})
        local t = net.go(function() weak.co = coroutine.running() end)
        t.extra = true                            -- the coroutine's anchor is the field table now
        local u = net.go(function() weak.co2 = coroutine.running() error("x", 0) end)
        u.observed = true                         -- waited for below: not an unobserved failure
        t:wait()
        u:wait()
        collectgarbage()
        collectgarbage()
        lu.assertNil(weak.co)
        lu.assertNil(weak.co2)
        lu.assertTrue(t.done and u.done)         -- while the tasks themselves are held
        lu.assertStrContains(u.traceback, "x")
    end)
end

function TestTaskObject:test_a_live_task_is_kept_alive_without_a_reference()
    H.run(function()
        local weak = setmetatable({}, {__mode = "v"})
        local ch = net.chan()
        weak.t = net.go(function() return ch:recv() end)
        net.sleep(0)                              -- parked in recv, no one holds it
        collectgarbage()
        collectgarbage()
        lu.assertNotNil(weak.t)
        lu.assertEquals(weak.t.id, weak.t.id)
        ch:send("v")
        lu.assertEquals(weak.t:wait(), "v")
    end)
end

function TestTaskObject:test_a_plain_coroutine_yield_runs_again_next_turn()
    H.run(function()
        local order = {}
        local a = net.go(function()
            for i = 1, 3 do
                order[#order + 1] = "a" .. i
                coroutine.yield("ignored")        -- not a park: requeued behind the others
            end
        end)
        local b = net.go(function()
            for i = 1, 3 do
                order[#order + 1] = "b" .. i
                net.yield()
            end
        end)
        a:wait()
        b:wait()
        lu.assertEquals(order, {"a1", "b1", "a2", "b2", "a3", "b3"})
    end)
end

function TestTaskObject:test_task_of_and_live_tasks_find_it()
    H.run(function()
        local ch = net.chan()
        local t = net.go(function() ch:recv() end)
        net.sleep(0)
        lu.assertEquals(sched.task_of(t.co), t)
        lu.assertEquals(sched.live_tasks()[t.id], t)
        lu.assertEquals(net.go(function() return sched.current() end):wait() ~= nil, true)
        ch:send(1)
        t:wait()
        lu.assertNil(sched.live_tasks()[t.id])
    end)
end

-- parked(): park until woken, as a conn read does (a Lua frame, a C wait).
local function parked()
    sched.park(nil, sched.KIND.other)
end

-- heap_per_parked_task(n): the Lua heap each of n tasks parked in a C
-- wait costs, with the garbage collected (bytes).
local function heap_per_parked_task(n)
    collectgarbage()
    collectgarbage()
    local before = collectgarbage("count")
    local ts = {}
    for i = 1, n do ts[i] = net.go(parked) end
    net.sleep(0)                                  -- all started and parked
    collectgarbage()
    collectgarbage()
    local per = (collectgarbage("count") - before) * 1024 / n - 16   -- ts's own slot
    for i = 1, n do lu.assertTrue(sched.wake(ts[i])) end
    for i = 1, n do ts[i]:wait() end
    return per
end

function TestTaskObject:test_a_parked_task_costs_little_heap()
    H.run(function()
        local per = heap_per_parked_task(2000)
        -- A coroutine alone is ~930 bytes (its state and 45-slot minimum
        -- stack); a task parked in a C wait adds its frames, the task
        -- userdata and its slots in the task table and thread map. Before
        -- the task became one userdata this was about 1500 bytes.
        lu.assertTrue(per < 1400, ("%.0f bytes per parked task"):format(per))
        lu.assertTrue(per > 900, ("%.0f bytes per parked task: not measured?"):format(per))
    end)
end
