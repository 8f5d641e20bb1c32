--- spec/signal_spec.lua: net.signal. Signals arrive on a channel through
-- the loop while other tasks run; a burst never blocks and never holds
-- more than the channel's capacity; stop ends delivery and puts the old
-- disposition back; children see no ignored and no blocked signal.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local core = require "coronet.core"

local function recv_within(ch, s)
    local ctx, cancel = net.context.with_timeout(net.context.background(), s)
    local v, ok, err = ch:recv(ctx)
    cancel()
    return v, ok, err
end

TestSignal = {}

local notify = H.notify      -- stopped in tearDown even when a test fails

function TestSignal:tearDown()
    H.stop_notified()
end

function TestSignal:test_kill_term_arrives_on_the_chan_while_tasks_run()
    H.run(function()
        local int0 = net.signal.disposition("INT")   -- lua.c has its own SIGINT handler
        local ch = notify("TERM", "SIGINT")
        lu.assertEquals(ch:cap(), 1)
        lu.assertEquals(net.signal.disposition("TERM"), "caught")
        local ticks, stop = 0, false
        local ticker = net.go(function()
            while not stop do ticks = ticks + 1; net.yield() end
        end)
        net.yield()
        assert(os.execute("kill -TERM " .. core.getpid()))   -- a real outside sender
        local v, ok = recv_within(ch, 10)
        lu.assertEquals(v, "TERM")
        lu.assertTrue(ok)
        lu.assertTrue(ticks > 0, "the other task ran while the signal was awaited")
        net.signal.raise("INT")
        lu.assertEquals(recv_within(ch, 10), "INT")
        stop = true
        ticker:wait()
        net.signal.stop(ch)
        lu.assertEquals(net.signal.disposition("TERM"), "default")
        lu.assertEquals(net.signal.disposition("INT"), int0)
    end)
end

function TestSignal:test_a_burst_never_blocks_and_the_chan_holds_its_capacity()
    H.run(function()
        local ch = notify("USR1", {cap = 4})
        local mark = notify("USR2")
        for _ = 1, 1000 do assert(net.signal.raise("USR1")) end
        net.signal.raise("USR2")
        -- the pipe is FIFO: once USR2 is here, every USR1 was dispatched
        lu.assertEquals(recv_within(mark, 10), "USR2")
        lu.assertEquals(ch:len(), 4)
        for _ = 1, 4 do lu.assertEquals(ch:try_recv(), "USR1") end
        lu.assertNil(ch:try_recv())
        -- still delivering after the burst
        net.signal.raise("USR1")
        lu.assertEquals(recv_within(ch, 10), "USR1")
        net.signal.stop(ch)
        net.signal.stop(mark)
    end)
end

function TestSignal:test_stop_ends_delivery_and_restores_the_disposition()
    H.run(function()
        local fds0 = net.debug.stats().fds
        local a = notify("USR1")
        lu.assertEquals(net.debug.stats().fds, fds0 + 1, "the pipe watcher")
        local b = notify("USR1", "HUP")
        net.signal.stop(a)
        lu.assertEquals(net.signal.disposition("USR1"), "caught", "b still wants USR1")
        net.signal.raise("USR1")
        lu.assertEquals(recv_within(b, 10), "USR1")
        lu.assertEquals(a:len(), 0, "a stopped chan receives nothing")
        net.signal.stop(b)
        net.signal.stop(b)                                 -- idempotent
        lu.assertEquals(net.signal.disposition("USR1"), "default")
        lu.assertEquals(net.signal.disposition("HUP"), "default")
        lu.assertEquals(net.debug.stats().fds, fds0, "the pipe watcher is gone")
    end)
end

function TestSignal:test_a_stopped_signal_kills_a_child_again()
    -- a child lua that notifies TERM, stops, then gets TERM: it must die of it
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local net = require "coronet"
local ch = net.signal.notify("TERM")
net.signal.stop(ch)
net.signal.raise("TERM")
os.exit(0)
]])
    f:close()
    local ok, how, code = os.execute("lua5.4 " .. script .. " 2>/dev/null")
    os.remove(script)
    lu.assertNil(ok)
    -- sh either execs lua (a signal death) or reports 128 + 15
    lu.assertTrue((how == "signal" and code == 15) or (how == "exit" and code == 128 + 15),
                  how .. " " .. tostring(code))
end

function TestSignal:test_children_get_no_ignored_or_blocked_signal()
    H.run(function()
        local ch = notify("TERM", "INT", "HUP")
        local out = os.tmpname()
        assert(os.execute("sh -c 'grep SigIgn /proc/self/status; grep SigBlk /proc/self/status' > " .. out))
        local f = assert(io.open(out))
        local text = f:read("a")
        f:close()
        os.remove(out)
        -- the standard signals 1..31 (bits 0..30), SIGPIPE (bit 12) included;
        -- glibc's posix_spawn (system, popen) ignores its own internal
        -- signals 32 and 33 in the child, which is not ours to judge
        local ign = tonumber(text:match("SigIgn:%s*(%x+)"), 16)
        local blk = tonumber(text:match("SigBlk:%s*(%x+)"), 16)
        lu.assertEquals(ign & 0x7fffffff, 0, text)
        lu.assertEquals(blk, 0, text)
        net.signal.stop(ch)
        -- and the process itself still survives a write to a closed pipe
        lu.assertEquals(net.signal.disposition("PIPE"), "caught")
    end)
end

function TestSignal:test_misuse_raises()
    local fds0 = net.debug.stats().fds
    lu.assertErrorMsgContains("unknown signal", net.signal.notify, "NOPE")
    lu.assertErrorMsgContains("cannot be caught", net.signal.notify, "KILL")
    lu.assertErrorMsgContains("fault signal", net.signal.notify, "SEGV")
    lu.assertErrorMsgContains("at least one", net.signal.notify)
    lu.assertErrorMsgContains("cap", net.signal.notify, "HUP", {cap = 0})
    lu.assertEquals(net.debug.stats().fds, fds0)
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end
