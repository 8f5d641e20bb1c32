--- spec/helpers.lua: shared test helpers. `H.run(fn)` runs a test body as
-- a task and then asserts that it leaked no task and no fd: every task it
-- started has ended and the process holds the fds it held before.
-- `H.test(fn)` wraps a body taking `defer` for luaunit; the rest (pair,
-- spawn/join, timed, exists, tmpfile, sink) are fixtures specs share. Each
-- spec loads its own copy with dofile, so it may override a field.
local lu = require "luaunit"
local net = require "coronet"

local H = {}

-- Hermetic DNS: every spec resolves names through a resolver that can only
-- reach loopback (a port where nothing listens), never the server in
-- /etc/resolv.conf. Specs that test DNS make their own resolvers.
function H.hermetic_dns()
    net.dns.default = net.dns.resolver{servers = {"127.0.0.1:9"}, timeout = 0.2, attempts = 1}
end
H.hermetic_dns()

--- open_fds: the number of fds this process holds (from /proc/PID/fd),
-- not counting either end of the pipe popen uses to ask (glibc closes the
-- parent's copy of the write end only after the child starts, so a plain
-- `ls` would sometimes count it).
function H.open_fds()
    local pid = require("coronet.core").getpid()
    local p = io.popen("me=$(readlink /proc/$$/fd/1); ls -l /proc/" .. pid
        .. "/fd | grep -- '->' | grep -vcF \"$me\"")
    local n = tonumber(p:read("l"))
    p:close()
    return n
end

--- settle: let finishing tasks end (bounded: loop turns, not time).
function H.settle()
    for _ = 1, 200 do
        if net.debug.stats().tasks <= 1 then return end
        net.yield()
    end
end

--- drain: drive the loop until every task has ended (bounded: 5 s).
function H.drain()
    net.run(function()
        local limit = net.now() + 5
        while net.debug.stats().tasks > 1 and net.now() < limit do net.sleep(0.001) end
    end)
end

-- fd_baseline() -> process fds, loop fds: the counts, after a collection,
-- that assert_no_leaks compares against.
local function fd_baseline()
    collectgarbage()
    return H.open_fds(), net.debug.stats().fds
end

-- assert_no_leaks(fds0, loopfds0): after two collections, no task is left
-- and the process and loop fd counts are back at fd_baseline()'s.
local function assert_no_leaks(fds0, loopfds0)
    collectgarbage()
    collectgarbage()
    local s = net.debug.stats()
    lu.assertEquals(s.tasks, 0, "leaked tasks:\n" .. H.dump_tasks())
    lu.assertEquals(s.fds, loopfds0, "leaked loop fds")
    lu.assertEquals(H.open_fds(), fds0, "leaked process fds")
end

--- run: run fn as a task; then assert nothing leaked (tasks, loop fds, fds).
function H.run(fn)
    local fds0, loopfds0 = fd_baseline()
    local r = table.pack(net.run(function()
        local res = table.pack(fn())
        H.settle()
        return table.unpack(res, 1, res.n)
    end))
    assert_no_leaks(fds0, loopfds0)
    return table.unpack(r, 1, r.n)
end

function H.dump_tasks()
    local out = {}
    for _, t in ipairs(net.debug.tasks()) do out[#out + 1] = t.traceback end
    return table.concat(out, "\n")
end

--- tmpdir: a fresh temporary directory (removed by rmdir(path) later).
function H.tmpdir()
    local p = io.popen("mktemp -d /tmp/coronet-spec.XXXXXX")
    local d = p:read("l")
    p:close()
    return d
end

function H.rm(path) os.execute("rm -rf '" .. path .. "'") end

--- echo_server: a listener on 127.0.0.1:0 and a task echoing every conn;
-- returns the listener (close it to stop the server and its conns).
function H.echo_server(network, address)
    local ln = assert(net.listen(network or "tcp", address or "127.0.0.1:0"))
    local conns = {}
    net.go(function()
        while true do
            local c = ln:accept()
            if not c then break end
            conns[c] = true
            net.go(function()
                while true do
                    local d = c:read(65536)
                    if not d or not c:write(d) then break end
                end
                c:close()
                conns[c] = nil
            end)
        end
        for c in pairs(conns) do c:close() end
    end)
    return ln
end

--- assert_err: assert that v is nil and err is a coronet error with code.
function H.assert_err(v, err, code, msg)
    lu.assertNil(v, msg)
    lu.assertNotNil(err, msg)
    lu.assertEquals(getmetatable(err) and getmetatable(err).__name, "coronet.error", msg)
    if code then lu.assertEquals(err.code, code, (msg or "") .. " (" .. tostring(err) .. ")") end
end

--- run_top: like H.run, but fn runs outside any task (as at a script's top
-- level or in the REPL), so each blocking call in it drives the loop
-- itself; then the same leak checks.
function H.run_top(fn)
    local fds0, loopfds0 = fd_baseline()
    local r = table.pack(fn())
    for _ = 1, 200 do
        if net.debug.stats().tasks == 0 then break end
        net.yield()
    end
    assert_no_leaks(fds0, loopfds0)
    return table.unpack(r, 1, r.n)
end

-- close_all(closers): close (or call) each entry, last first, removing it
-- so that a second pass does nothing; errors are ignored.
local function close_all(closers)
    for i = #closers, 1, -1 do
        local x = closers[i]
        closers[i] = nil
        if type(x) == "function" then pcall(x) else pcall(x.close, x) end
    end
end

-- watch(wd, closers) -> stop: a task that, unless stop() comes first
-- within wd.seconds, closes closers, yields once and calls wd.unstick().
-- stop() ends the task and tells whether it fired.
local function watch(wd, closers)
    local ctx, cancel = net.context.with_cancel(net.context.background())
    local fired = false
    local dog = net.go(function()
        if net.sleep(wd.seconds, ctx) then
            fired = true
            close_all(closers)
            net.yield()
            wd.unstick()
        end
    end)
    return function()
        cancel()
        dog:wait()
        return fired
    end
end

--- test(fn [, watchdog]) -> a luaunit test function running fn(defer)
-- under H.run. defer(x) -> x registers x (anything with :close(), or a
-- function) to close or call at the end, last first, even when fn fails,
-- so a failed test wakes its parked tasks instead of leaking them. With
-- watchdog = {seconds = s, unstick = f}, a body still running after s
-- seconds has its deferred things closed and f called, and its test fails;
-- f() is also called after any failure (to wake tasks the spec tracks).
function H.test(fn, watchdog)
    return function()
        H.run(function()
            local closers = {}
            local function defer(x)
                closers[#closers + 1] = x
                return x
            end
            local stop = watchdog and watch(watchdog, closers)
            local ok, err = pcall(fn, defer)
            local fired = stop and stop()
            close_all(closers)
            if not ok or fired then
                H.settle()
                if watchdog then
                    watchdog.unstick()
                    H.settle()
                end
            end
            if fired then
                error(string.format("watchdog: the test hung for %d s (%s)", watchdog.seconds, tostring(err)), 0)
            end
            if not ok then error(err, 0) end
        end)
    end
end

--- pair(defer [, network [, address]]) -> a (dialed), b (accepted): two
-- connected stream conns (network "tcp" on 127.0.0.1:0 by default, "unix"
-- on a fresh abstract name); the listener is closed, and a and b are
-- handed to defer when it is given.
function H.pair(defer, network, address)
    network = network or "tcp"
    address = address or (network == "unix" and ("@coronet-spec-pair-" .. math.random(1 << 30)))
        or "127.0.0.1:0"
    local ln = assert(net.listen(network, address))
    local t = net.go(function() return ln:accept() end)
    local a = assert(net.dial(network, tostring(ln:addr())))
    local b = assert(t:wait())
    ln:close()
    if defer then
        defer(a)
        defer(b)
    end
    return a, b
end

--- spawn(fn, ...) -> task: a task running fn(...) whose results H.join
-- returns.
function H.spawn(fn, ...)
    return net.go(function(...) return table.pack(fn(...)) end, ...)
end

--- watched(seconds) -> T, spawn: test bodies under a watchdog. T(fn)
-- makes fn(defer) a test (H.test) that fails after seconds instead of
-- hanging, and then wakes (as canceled) every task spawn(fn, ...) started
-- in it that is still parked, so one hung test leaks no parked task into
-- the next. spawn is H.spawn, noted for that.
function H.watched(seconds)
    local sched = require "coronet.sched"
    local spawned = {}
    local function unstick()
        for t in pairs(spawned) do
            if not t:is_done() then sched.wake(t, sched.WAKE.canceled) end
        end
    end
    local function T(fn)
        local test = H.test(fn, {seconds = seconds, unstick = unstick})
        return function()
            spawned = {}
            test()
        end
    end
    local function spawn(fn, ...)
        local t = H.spawn(fn, ...)
        spawned[t] = true
        return t
    end
    return T, spawn
end

--- pattern(n) -> n bytes that are not all alike (a 251-byte cycle).
function H.pattern(n)
    local unit = {}
    for i = 0, 250 do unit[#unit + 1] = string.char(i) end
    local s = table.concat(unit)
    return s:rep(n // #s + 1):sub(1, n)
end

--- join(t) -> the results of a task from H.spawn; an error raised in it (a
-- failed assertion) is raised again here.
function H.join(t)
    local r, err = t:wait()
    if r == nil then error(err, 0) end
    return table.unpack(r, 1, r.n)
end

--- timed(fn, ...) -> seconds elapsed, then fn(...)'s results.
function H.timed(fn, ...)
    local t0 = net.now()
    local r = table.pack(fn(...))
    return net.now() - t0, table.unpack(r, 1, r.n)
end

--- exists(path) -> whether path exists (`test -e`).
function H.exists(path)
    return os.execute("test -e '" .. path .. "'") == true
end

--- tmpfile([content]) -> the path of a new temporary file holding content
-- (default ""); the caller removes it.
function H.tmpfile(content)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(content or "")
    f:close()
    return path
end

--- sink() -> a writer that keeps what it is given; :data() joins it.
function H.sink()
    local s = {parts = {}}
    function s:write(d)
        self.parts[#self.parts + 1] = d
        return #d
    end
    function s:data() return table.concat(self.parts) end
    return s
end

--- notify(...) -> chan: net.signal.notify, remembered so that
-- H.stop_notified() (call it in tearDown) stops it even when a test failed
-- half-way: a signal left caught would swallow a later TERM.
local notified = {}
function H.notify(...)
    local ch = net.signal.notify(...)
    notified[#notified + 1] = ch
    return ch
end

--- stop_notified(): stop every chan H.notify made, newest first.
function H.stop_notified()
    for i = #notified, 1, -1 do
        net.signal.stop(notified[i])
        notified[i] = nil
    end
end

--- pid_alive(pid) -> whether the process exists and is not a zombie.
function H.pid_alive(pid)
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return false end
    local st = f:read("a"):match("^%d+ %b() (%a)")
    f:close()
    return st ~= "Z"
end

--- read_to_eof(c) -> everything c delivers until EOF or an error, joined.
function H.read_to_eof(c)
    local got = {}
    while true do
        local d = c:read()
        if not d then break end
        got[#got + 1] = d
    end
    return table.concat(got)
end

return H
