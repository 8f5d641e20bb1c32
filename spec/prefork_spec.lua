--- spec/prefork_spec.lua: net.prefork. Two workers share the listening
-- socket; kill -9 one: the other keeps serving and the supervisor puts a
-- new worker (new pid) in its place; TERM to the supervisor ends every
-- worker and the supervisor itself, leaving no process behind.
local lu = require "luaunit"
local net = require "coronet"
local core = require "coronet.core"
local H = dofile("spec/helpers.lua")

local SUPERVISOR = [[
local net = require "coronet"
local why = net.prefork{workers = 2, listeners = assert(net.listeners_from_env()), shutdown_timeout = 10,
    log = function() end,
    on_spawn = function(pid, i) io.stdout:write("spawn ", i, " ", pid, "\n") io.stdout:flush() end,
    serve = function(lns, ctx)
        local pid = tostring(net.process.getpid())
        while true do
            local c = lns[1]:accept(ctx)
            if not c then return end           -- ctx ended: TERM
            c:write(pid)
            c:close()
        end
    end}
if not net.prefork.is_worker() then io.stdout:write("stopped ", why, "\n") io.stdout:flush() end
]]

local pid_alive = H.pid_alive

-- lines from the supervisor's stdout, read through the loop
local function line_reader(fd)
    local w = assert(core.watch_fd(fd))
    local buf = ""
    return function()
        while not buf:find("\n") do
            local d = w:read(4096)
            if not d then return nil end
            buf = buf .. d
        end
        local line
        line, buf = buf:match("^([^\n]*)\n(.*)$")
        return line
    end, function() w:close() end
end

local function who(addr)
    local c, err = net.dial("tcp", addr)
    if not c then return nil, err end
    c:set_deadline(net.now() + 10)
    local pid, rerr = c:read(32)
    c:close()
    return tonumber(pid), rerr
end

TestPrefork = {}

local live = nil      -- the supervisor, stopped in tearDown if a test failed

function TestPrefork:tearDown()
    if not live then return end
    local sup = live
    live = nil
    net.run(function()
        if sup:kill("TERM") then
            local ctx, cancel = net.context.with_timeout(net.context.background(), 20)
            if not sup:wait(ctx) then sup:kill("KILL") sup:wait() end
            cancel()
        end
    end)
end

function TestPrefork:test_kill_9_a_worker_then_term_the_supervisor()
    H.run(function()
        local path = os.tmpname()
        local f = assert(io.open(path, "w"))
        f:write(SUPERVISOR)
        f:close()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local addr = tostring(ln:addr())
        local r, w = net.process.pipe()
        local sup = assert(net.process.spawn{"lua5.4", args = {path}, files = {ln}, stdout = w})
        live = sup
        net.close_fd(w)
        ln:close()
        local next_line, close_lines = line_reader(r)
        local workers = {}
        for _ = 1, 2 do
            local i, pid = next_line():match("^spawn (%d) (%d+)$")
            workers[tonumber(i)] = tonumber(pid)
        end
        lu.assertNotNil(workers[1])
        lu.assertNotNil(workers[2])
        -- both serve (each conn is answered with the serving worker's pid)
        for _ = 1, 20 do
            local pid = assert(who(addr))
            lu.assertTrue(pid == workers[1] or pid == workers[2])
        end
        -- kill -9 worker 1: every conn is still served, by a live worker
        assert(os.execute("kill -9 " .. workers[1]))
        for _ = 1, 50 do
            local pid, err = who(addr)
            lu.assertNotNil(pid, tostring(err))
            lu.assertNotEquals(pid, workers[1])
        end
        local i, newpid = next_line():match("^spawn (%d) (%d+)$")
        lu.assertEquals(tonumber(i), 1)
        newpid = tonumber(newpid)
        lu.assertNotEquals(newpid, workers[1])
        lu.assertFalse(pid_alive(workers[1]))
        lu.assertTrue(pid_alive(newpid))
        -- TERM to the supervisor: workers get TERM, drain, exit; so does it
        assert(sup:kill("TERM"))
        lu.assertEquals(next_line(), "stopped signal")
        lu.assertEquals(sup:wait(), {code = 0})
        live = nil
        lu.assertNil(next_line(), "stdout closed: no worker holds it")
        close_lines()
        net.close_fd(r)
        for _, pid in ipairs{workers[1], workers[2], newpid, sup.pid} do
            lu.assertFalse(pid_alive(pid), "pid " .. pid .. " is gone")
        end
        local c = net.dial("tcp", addr)
        lu.assertNil(c, "nobody listens any more")
        os.remove(path)
    end)
end

function TestPrefork:test_misuse_raises()
    lu.assertErrorMsgContains("serve expected", net.prefork, {workers = 2})
    lu.assertErrorMsgContains("listeners or addresses", net.prefork, {serve = function() end})
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end
