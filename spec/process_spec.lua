--- spec/process_spec.lua: net.process. Exit codes and signal deaths come
-- back through a pidfd on the loop; files land at fd 3.. with LISTEN_*
-- set to the child's own pid; the child has clean signal state; exec
-- failures are errors; the readiness handshake works both ways.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")

local function script(text)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
    return path
end

local function slurp(path)
    local f = assert(io.open(path))
    local s = f:read("a")
    f:close()
    os.remove(path)
    return s
end

TestProcess = {}

local notify = H.notify      -- stopped in tearDown even when a test fails

function TestProcess:tearDown()
    H.stop_notified()
end

function TestProcess:test_exit_code_and_signal_death()
    H.run(function()
        local p = assert(net.process.spawn{"sh", args = {"-c", "exit 3"}})
        lu.assertTrue(p.pid > 0)
        lu.assertEquals(p:wait(), {code = 3})
        lu.assertEquals(p:wait(), {code = 3}, "a second wait returns the same")
        local q = assert(net.process.spawn{"sleep", args = {"30"}})
        local ticks = 0
        local ticker = net.go(function()                 -- the loop runs meanwhile
            for _ = 1, 3 do ticks = ticks + 1; net.yield() end
        end)
        assert(q:kill("TERM"))
        lu.assertEquals(q:wait(), {signal = "TERM"})
        ticker:wait()
        lu.assertEquals(ticks, 3)
        local ok, err = q:kill("TERM")
        lu.assertNil(ok)
        lu.assertStrContains(tostring(err), "no such process")
    end)
end

function TestProcess:test_wait_honours_a_ctx()
    H.run(function()
        local p = assert(net.process.spawn{"sleep", args = {"30"}})
        local ctx, cancel = net.context.with_timeout(net.context.background(), 0.05)
        local st, err = p:wait(ctx)
        cancel()
        lu.assertNil(st)
        lu.assertTrue(net.errors.is(err, net.ErrDeadlineExceeded))
        assert(p:kill())
        lu.assertEquals(p:wait(), {signal = "KILL"})
    end)
end

function TestProcess:test_exec_failure_is_an_error()
    H.run(function()
        local p, err = net.process.spawn{"/nonexistent/prog"}
        lu.assertNil(p)
        lu.assertStrContains(tostring(err), "no such file")
        p, err = net.process.spawn{"no-such-program-coronet"}
        lu.assertNil(p)
        lu.assertStrContains(tostring(err), "no such file")
    end)
end

function TestProcess:test_child_has_default_dispositions_and_an_empty_mask()
    H.run(function()
        local ch = notify("TERM", "HUP")       -- caught here
        local out = os.tmpname()
        local p = assert(net.process.spawn{"sh", args = {"-c",
            "grep -E 'SigIgn|SigBlk' /proc/self/status > " .. out}})
        lu.assertEquals(p:wait(), {code = 0})
        local text = slurp(out)
        lu.assertStrContains(text, "SigIgn:\t0000000000000000")   -- SIGPIPE too
        lu.assertStrContains(text, "SigBlk:\t0000000000000000")
        net.signal.stop(ch)
    end)
end

local CHILD = [[
local net = require "coronet"
local lns = assert(net.listeners_from_env())
assert(#lns == 1, "listeners: " .. #lns)
local ln = lns[1]
ln:set_deadline(net.now() + 10)          -- never outlive the test
local c = assert(ln:accept())
local fd3 = io.open("/proc/self/fd/3") ~= nil
local extra = io.open("/proc/self/fd/4") ~= nil
c:write(string.format("names=%s env=%s fd3=%s extra=%s stdin=%s",
    lns.names[1], tostring(os.getenv("LISTEN_PID")), tostring(fd3), tostring(extra),
    io.read("a") == "" and "empty" or "?"))
c:close()
]]

function TestProcess:test_files_at_fd_3_for_listeners_from_env()
    H.run(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local r, w = net.process.pipe()
        local path = script(CHILD)
        local p = assert(net.process.spawn{"lua5.4", args = {path}, files = {ln},
                                           names = {"web"}, extra_files = {w}, stdin = "null",
                                           env = {CORONET_SPEC = "1", HOME = false}})
        net.close_fd(w)
        local c = assert(net.dial("tcp", tostring(ln:addr())))
        c:set_read_deadline(net.now() + 10)
        local got = {}
        while true do
            local d = c:read()
            if not d then break end
            got[#got + 1] = d
        end
        c:close()
        -- fd 3 was closed by listeners_from_env; fd 4 (extra) stayed open
        lu.assertEquals(table.concat(got),
                        "names=web env=nil fd3=false extra=true stdin=empty")
        lu.assertEquals(p:wait(), {code = 0})
        net.close_fd(r)
        ln:close()
        os.remove(path)
    end)
end

function TestProcess:test_readiness_handshake()
    H.run(function()
        local path = script([[
local net = require "coronet"
assert(net.process.ready() == true)
assert(os.getenv("CORONET_READY_FD") == nil)
assert(net.process.ready() == false)
]])
        local r, w = net.process.pipe()
        local p = assert(net.process.spawn{"lua5.4", args = {path}, extra_files = {w},
                                           env = {[net.process.READY_ENV] = "3"}})
        net.close_fd(w)
        local ctx, cancel = net.context.with_timeout(net.context.background(), 10)
        lu.assertTrue(net.process.wait_ready(r, ctx))
        cancel()
        lu.assertEquals(p:wait(), {code = 0})
        -- a child that exits without saying ready: EOF
        r, w = net.process.pipe()
        p = assert(net.process.spawn{"true", extra_files = {w}, env = {[net.process.READY_ENV] = "3"}})
        net.close_fd(w)
        local ok, err = net.process.wait_ready(r, net.context.background())
        lu.assertNil(ok)
        lu.assertIs(err, net.EOF)
        lu.assertEquals(p:wait(), {code = 0})
        os.remove(path)
    end)
end

function TestProcess:test_misuse_raises()
    lu.assertErrorMsgContains("path expected", net.process.spawn, {})
    lu.assertErrorMsgContains("env maps", net.process.spawn, {"true", env = {X = {}}})
    lu.assertErrorMsgContains("files[1]", net.process.spawn, {"true", files = {"x"}})
    lu.assertErrorMsgContains("':'", net.process.spawn, {"true", files = {0}, names = {"a:b"}})
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end
