--- spec/restart_spec.lua: zero-downtime restart. A server process
-- (examples/restart.lua --serve) under a load of concurrent connect /
-- echo / close clients gets SIGHUP: it hands its listening socket to a new
-- copy of itself, waits until the copy is ready, drains and exits. No
-- connection fails, and the new process (another pid) serves afterwards.
-- An upgrade whose copy never becomes ready is killed in time and the old
-- process keeps its listeners; only one upgrade runs at a time.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")

local CLIENTS, BEFORE, AFTER = 16, 200, 200

-- the example's own clients: one echo round trip, and which pid answers
local example = assert(loadfile("examples/restart.lua"))("--library")
local echo_once, ask_pid = example.echo_once, example.ask_pid

local pid_alive = H.pid_alive

-- After a failed run the new copy may be left serving, reparented to us
-- (the subreaper): stop and reap every child of ours that runs the example.
local function reap_orphans()
    local pid = net.process.getpid()
    local f = io.open("/proc/" .. pid .. "/task/" .. pid .. "/children")
    if not f then return end
    local list = f:read("a")
    f:close()
    for child in list:gmatch("%d+") do
        local cf = io.open("/proc/" .. child .. "/cmdline")
        local cmd = cf and cf:read("a") or ""
        if cf then cf:close() end
        if cmd:find("examples/restart.lua", 1, true) then
            net.run(function()
                local p = net.process.adopt(tonumber(child))
                if not p then return end
                p:kill("TERM")
                local ctx, cancel = net.context.with_timeout(net.context.background(), 10)
                if not p:wait(ctx) then p:kill("KILL") p:wait() end
                cancel()
            end)
        end
    end
end

TestRestart = {}

function TestRestart:tearDown()
    reap_orphans()
    net.process.set_subreaper(false)
end

function TestRestart:test_sighup_restart_under_load_loses_no_connection()
    assert(net.process.set_subreaper(true))        -- the new copy becomes our child
    H.run(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local addr = tostring(ln:addr())
        local r, w = net.process.pipe()
        local old = assert(net.process.spawn{"lua5.4", args = {"examples/restart.lua", "--serve", "127.0.0.1:0"},
            files = {ln}, names = {net.restart.key("tcp", "127.0.0.1:0")},
            extra_files = {w}, env = {[net.process.READY_ENV] = "4"}, stderr = "null"})
        net.close_fd(w)
        local ctx, cancel = net.context.with_timeout(net.context.background(), 20)
        lu.assertTrue(net.process.wait_ready(r, ctx))
        cancel()
        ln:close()                        -- from here only the servers hold the socket
        lu.assertEquals(ask_pid(addr), old.pid)

        local ok, failed, errs = 0, 0, {}
        local stop = false
        local tasks = {}
        for i = 1, CLIENTS do
            tasks[i] = net.go(function()
                local n = 0
                while not stop do
                    n = n + 1
                    local good, err = echo_once(addr, i, n)
                    if good then ok = ok + 1
                    else failed = failed + 1; errs[#errs + 1] = tostring(err) end
                end
            end)
        end
        local function until_ok(n) while ok < n and failed == 0 do net.sleep(0.002) end end
        until_ok(BEFORE)
        local at_hup = ok
        assert(old:kill("HUP"))
        local st = old:wait()                -- handed over, drained, exited
        local during = ok - at_hup
        until_ok(ok + AFTER)
        stop = true
        for _, t in ipairs(tasks) do t:wait() end
        local new_pid = ask_pid(addr)
        print(string.format("\nrestart under load: %d clients, %d conns during the restart "
            .. "(SIGHUP to old exit), %d in all, %d failed", CLIENTS, during, ok, failed))
        lu.assertEquals(failed, 0, table.concat(errs, "\n"))
        lu.assertEquals(st, {code = 0})
        lu.assertNotEquals(new_pid, old.pid)
        lu.assertTrue(ok >= BEFORE + AFTER)
        local new = assert(net.process.adopt(new_pid))
        assert(new:kill("TERM"))
        lu.assertEquals(new:wait(), {code = 0})
        lu.assertFalse(pid_alive(old.pid))
        lu.assertFalse(pid_alive(new_pid))
    end)
end

function TestRestart:test_a_copy_that_is_never_ready_is_killed_and_the_old_one_serves()
    H.run(function()
        local up = net.restart.upgrader{path = "sleep", args = {"30"}, ready_timeout = 0.2}
        local ln = assert(up:listen("tcp", "127.0.0.1:0"))
        local second
        local t = net.go(function()
            net.yield()
            second = table.pack(up:upgrade())   -- while the first is waiting
        end)
        local child, err = up:upgrade()
        t:wait()
        lu.assertNil(child)
        lu.assertStrContains(tostring(err), "did not become ready")
        lu.assertTrue(net.errors.is(err, net.ErrDeadlineExceeded))
        lu.assertFalse(pid_alive(err.pid), "the copy was killed and reaped")
        lu.assertNil(second[1])
        lu.assertStrContains(tostring(second[2]), "in progress")
        -- the listener is still ours and works
        local acc = net.go(function() return ln:accept() end)
        local c = assert(net.dial("tcp", tostring(ln:addr())))
        local s = assert(acc:wait())
        s:close()
        c:close()
        -- a copy that exits without saying ready: EOF, at once
        up.path, up.args = "true", {}
        child, err = up:upgrade()
        lu.assertNil(child)
        lu.assertTrue(net.errors.is(err, net.EOF))
        ln:close()
    end)
end

function TestRestart:test_key_escapes_colons()
    lu.assertEquals(net.restart.key("tcp", "[::1]:80"), "tcp/[%3A%3A1]%3A80")
    lu.assertNil(net.restart.key("unix", "/tmp/a%b"):find(":"))
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end
