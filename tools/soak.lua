--- tools/soak.lua: a bounded soak run (`make soak`; `make soak SOAK_SHORT=1`
-- for CI). Against one echo server on 127.0.0.1 it runs CYCLES
-- connect/echo/close cycles (CONC client tasks at a time), then TIMERS
-- context timers with waiters (half cancelled, half expiring), and checks
-- that the process comes back where it started: fds equal, tasks, timers,
-- blocked tasks and loop fds equal (net.debug.stats()), and the bytes
-- malloc'ed (net.debug.stats().heap, glibc's mallinfo2) flat over the
-- second half of each phase; RSS is reported and bounded loosely. Prints one line per phase with its
-- figures and exits 1 on any failure.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 tools/soak.lua [short]
local net = require "coronet"
local context = net.context

local short = arg[1] == "short" or os.getenv("SOAK_SHORT") == "1"
local CYCLES = short and 10000 or 100000
local TIMERS = short and 10000 or 100000
local CONC = 16                      -- clients at a time
local HEAP_SLACK = 1024              -- KiB malloc'ed bytes may rise over a phase's second half
local RSS_SLACK = 32 * 1024          -- KiB for RSS, which swings with glibc's pools (measured
                                     -- 30..36 MiB over 240k timers, no trend): gross leaks only
local WARMUP = 2000                 -- cycles before the baseline (timers: 10x: allocator pools settle)

net.dns.default = net.dns.resolver{servers = {"127.0.0.1:9"}, timeout = 0.2, attempts = 1}

local function rss_kib()
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("a")
    f:close()
    return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- fds this process holds, not counting either end of popen's own pipe
-- (as spec/helpers.lua's open_fds).
local function nfds()
    local p = io.popen("me=$(readlink /proc/$$/fd/1); ls -l /proc/" .. require("coronet.core").getpid()
        .. "/fd | grep -- '->' | grep -vcF \"$me\"")
    local n = tonumber(p:read("l"))
    p:close()
    return n
end

local function snapshot()
    collectgarbage()
    collectgarbage()
    local s = net.debug.stats()
    local blocked = 0
    for _, v in pairs(s.blocked) do blocked = blocked + v end
    return {rss = rss_kib(), fds = nfds(), tasks = s.tasks, timers = s.timers,
            loopfds = s.fds, blocked = blocked, lua_kib = collectgarbage("count"),
            heap_kib = s.heap and s.heap // 1024}
end

local failures = 0
local function check(what, cond, detail)
    if not cond then
        failures = failures + 1
        print("FAIL " .. what .. ": " .. detail)
    end
end

-- a: before the phase, m: after its first half, b: after it. Counts must
-- come back to a's; RSS must not grow over the second half (a leak grows
-- with the cycles; the allocator's pools settle in the first half).
local function compare(phase, a, m, b)
    print(string.format("%s: malloc'ed %s -> %s -> %s KiB, rss %d -> %d -> %d KiB, lua heap %.0f -> "
        .. "%.0f KiB, fds %d -> %d, tasks %d -> %d, timers %d -> %d, loop fds %d -> %d, "
        .. "blocked %d -> %d", phase, a.heap_kib or "?", m.heap_kib or "?", b.heap_kib or "?",
        a.rss, m.rss, b.rss, a.lua_kib, b.lua_kib, a.fds, b.fds, a.tasks, b.tasks,
        a.timers, b.timers, a.loopfds, b.loopfds, a.blocked, b.blocked))
    if b.heap_kib then
        check(phase .. " malloc'ed", b.heap_kib - m.heap_kib <= HEAP_SLACK,
              string.format("grew %d KiB over the second half (bound %d)", b.heap_kib - m.heap_kib,
                            HEAP_SLACK))
    end
    check(phase .. " fds", a.fds == b.fds, a.fds .. " -> " .. b.fds)
    check(phase .. " tasks", a.tasks == b.tasks, a.tasks .. " -> " .. b.tasks)
    check(phase .. " timers", a.timers == b.timers, a.timers .. " -> " .. b.timers)
    check(phase .. " loop fds", a.loopfds == b.loopfds, a.loopfds .. " -> " .. b.loopfds)
    check(phase .. " blocked", a.blocked == b.blocked, a.blocked .. " -> " .. b.blocked)
    check(phase .. " rss", b.rss - m.rss <= RSS_SLACK,
          string.format("grew %d KiB over the second half (bound %d)", b.rss - m.rss, RSS_SLACK))
end

-- connect/echo/close: n cycles, CONC at a time; returns the echo errors.
local function churn(addr, n)
    local left, bad = n, 0
    local wg = net.wait_group()
    for _ = 1, CONC do
        wg:add(1)
        net.go(function()
            while left > 0 do
                left = left - 1
                local c, err = net.dial("tcp", addr)
                if not c then
                    bad = bad + 1
                    print("dial: " .. tostring(err))
                else
                    c:set_deadline(net.now() + 10)
                    if c:write("ping\n") ~= 5 or c:read_full(5) ~= "ping\n" then bad = bad + 1 end
                    c:close()
                end
            end
            wg:done()
        end)
    end
    wg:wait()
    return bad
end

-- n context timers, each with a sleeping waiter: odd ones expire (1 ms),
-- even ones are cancelled first; 1000 at a time.
local function timers(n)
    local wrong = 0
    local bg = context.background()
    for base = 1, n, 1000 do
        local wg = net.wait_group()
        for i = base, math.min(base + 999, n) do
            wg:add(1)
            local ctx, cancel = context.with_timeout(bg, i % 2 == 1 and 0.001 or 60)
            net.go(function()
                local ok, err = net.sleep(60, ctx)
                local want = i % 2 == 1 and "timeout" or "canceled"
                if ok or not err or err.code ~= want then wrong = wrong + 1 end
                wg:done()
            end)
            if i % 2 == 0 then net.go(cancel) else net.go(function() net.yield() cancel() end) end
        end
        wg:wait()
    end
    return wrong
end

local t0 = net.now()
net.run(function()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local addr = tostring(ln:addr())
    local srv = net.go(function()
        while true do
            local c = ln:accept()
            if not c then return end
            net.go(function()
                c:set_deadline(net.now() + 10)
                local line = c:read_full(5)
                if line then c:write(line) end
                c:close()
            end)
        end
    end)
    churn(addr, WARMUP)
    timers(10 * WARMUP)
    net.sleep(0.01)
    local base = snapshot()
    local tc = net.now()
    local bad = churn(addr, CYCLES // 2)
    net.sleep(0.01)                                  -- let the server's handlers end
    local mid = snapshot()
    bad = bad + churn(addr, CYCLES - CYCLES // 2)
    local el = net.now() - tc
    net.sleep(0.01)
    local after = snapshot()
    print(string.format("churn: %d connect/echo/close cycles in %.1f s (%.0f/s), %d failed",
        CYCLES, el, CYCLES / el, bad))
    check("churn errors", bad == 0, bad .. " cycles failed")
    compare("churn", base, mid, after)
    local tt = net.now()
    local wrong = timers(TIMERS // 2)
    local mid2 = snapshot()
    wrong = wrong + timers(TIMERS - TIMERS // 2)
    el = net.now() - tt
    local after2 = snapshot()
    print(string.format("timers: %d context timers with waiters in %.1f s, %d wrong", TIMERS, el, wrong))
    check("timer results", wrong == 0, wrong .. " woke for the wrong reason")
    compare("timers", after, mid2, after2)
    ln:close()
    srv:wait()
end)
print(string.format("soak %s: %.1f s, %s", short and "short" or "full", net.now() - t0,
    failures == 0 and "ok" or (failures .. " failures")))
os.exit(failures == 0 and 0 or 1)
