--- spec/task_cancel_spec.lua: task:cancel() and task:context(), and where
-- net.debug.tasks() says a parked task is (the user's line, not sched.lua).
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")

TestTaskCancel = {}

function TestTaskCancel:test_cancel_ends_the_current_blocking_call_of_every_kind()
    H.run(function()
        local ch = net.chan()
        local wg = net.wait_group()
        wg:add(1)
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local blockers = {
            recv = function() return ch:recv() end,
            sleep = function() return net.sleep(100) end,
            wg = function() return wg:wait() end,
            accept = function() return ln:accept() end,
            accept_ctx = function() return ln:accept(net.context.background()) end,
            select = function() return net.select{{ch, "recv"}} end,
            wait = function() return net.go(function() ch:recv() end):wait() end,
        }
        local tasks = {}
        for name, fn in pairs(blockers) do tasks[name] = net.go(fn) end
        net.sleep(0.01)
        for name, t in pairs(tasks) do
            lu.assertFalse(t:is_done(), name)
            t:cancel()
        end
        for name, t in pairs(tasks) do
            local r = table.pack(t:wait())
            local err = r[r.n]
            lu.assertNil(r[1], name)
            lu.assertTrue(net.errors.is(err, net.ErrCanceled), name .. ": " .. tostring(err))
        end
        ch:close()                              -- ends the task "wait" started
        wg:done()
        ln:close()
    end)
end

function TestTaskCancel:test_later_blocking_calls_fail_at_once_and_the_task_decides()
    H.run(function()
        local steps = {}
        local t = net.go(function()
            local ok, e1 = net.sleep(100)
            steps[#steps + 1] = tostring(e1)
            local v, _, e2 = net.chan():recv()       -- would block: fails at once
            steps[#steps + 1] = tostring(v) .. " " .. tostring(e2)
            return "cleaned up", ok
        end)
        net.yield()
        t:cancel()
        t:cancel()                                   -- idempotent
        lu.assertEquals(t:wait(), "cleaned up")
        lu.assertEquals(steps, {"operation was canceled", "nil operation was canceled"})
        lu.assertTrue(t:is_canceled())
    end)
end

function TestTaskCancel:test_conn_read_is_canceled_and_the_conn_still_works()
    H.run(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local srv = net.go(function()
            local c = assert(ln:accept())
            local d = c:read()
            c:write("echo:" .. d)
            c:close()
        end)
        local c = assert(net.dial("tcp", tostring(ln:addr())))
        local reader = net.go(function() return c:read() end)
        net.sleep(0.01)
        reader:cancel()
        local v, err = reader:wait()
        lu.assertNil(v)
        lu.assertEquals(err.code, "canceled")
        assert(c:write("hi"))
        lu.assertEquals(c:read(), "echo:hi")             -- another task reads on
        srv:wait()
        c:close()
        ln:close()
    end)
end

function TestTaskCancel:test_task_context_ends_with_the_cancel()
    H.run(function()
        local t
        t = net.go(function()
            local child = net.go(function() return net.sleep(100, t:context()) end)
            return child:wait()
        end)
        net.yield()
        local ctx = t:context()
        lu.assertNil(ctx:err())
        t:cancel()
        local v, err = t:wait()
        lu.assertNil(v)
        lu.assertIs(err, net.ErrCanceled)
        lu.assertIs(ctx:err(), net.ErrCanceled)
        H.settle()
    end)
end

function TestTaskCancel:test_cancel_of_a_finished_task_is_a_noop()
    H.run(function()
        local t = net.go(function() return 1 end)
        lu.assertEquals(t:wait(), 1)
        t:cancel()
        lu.assertFalse(t:is_canceled())
        lu.assertEquals(t:wait(), 1)
    end)
end

function TestTaskCancel:test_where_is_the_users_line_for_sleep_chan_and_wait_group()
    H.run(function()
        local ch, wg = net.chan(), net.wait_group()
        wg:add(1)
        local src = debug.getinfo(1, "S").short_src
        local line = debug.getinfo(1, "l").currentline
        local a = net.go(function() net.sleep(100) end)        -- line + 1
        local b = net.go(function() ch:recv() end)             -- line + 2
        local c = net.go(function() wg:wait() end)             -- line + 3
        net.yield()
        local where = {}
        for _, x in ipairs(net.debug.tasks()) do where[x.id] = x.where end
        lu.assertEquals(where[a.id], src .. ":" .. (line + 1))
        lu.assertEquals(where[b.id], src .. ":" .. (line + 2))
        lu.assertEquals(where[c.id], src .. ":" .. (line + 3))
        for _, t in ipairs{a, b, c} do t:cancel() end
        for _, t in ipairs{a, b, c} do t:wait() end
    end)
end

function TestTaskCancel:test_a_canceled_happy_eyeballs_dial_returns_err_canceled()
    H.run(function()
        -- two addresses, each attempt held in the dialer's control hook
        local f = {}
        function f.lookup_ip() return {net.ip.parse("127.0.0.1"), net.ip.parse("127.0.0.2")} end
        local hold = net.chan()
        local held = 0
        local d = net.dialer{resolver = f, fallback_delay = 50, control = function()
            held = held + 1
            hold:recv()
            return nil, "released"
        end}
        local t = net.go(function() return d:dial("tcp", "two.test:9") end)
        while held == 0 do net.yield() end
        t:cancel()
        local c, err = t:wait()
        lu.assertNil(c)
        lu.assertTrue(net.errors.is(err, net.ErrCanceled), tostring(err))
        lu.assertEquals(err.op, "dial")
        hold:close()                                 -- let the attempt finish
        H.settle()
    end)
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end
