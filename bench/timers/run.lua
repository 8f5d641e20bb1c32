#!/usr/bin/env lua5.4
--- bench/timers/run.lua [--n 10000,100000] [--only sleep,burst,ctx,ctxdone,select]:
-- timers at scale (issue 14, deliverable 5). CPU-only, one process per
-- (benchmark, n), so every RSS figure starts from a fresh process.
--   sleep    n tasks each net.sleep(d) with a distinct d (a permutation of
--            1 s + 0..1 s, so the heap sees inserts in no particular order):
--            spawn+park per task, the whole drain per fire, the memory of a
--            parked task, timers armed while parked and after the drain;
--            fires out of deadline order by more than 100 us (the deadline is
--            read by the bench just before net.sleep reads its own, so a
--            preemption between the two reads can show as one) and lateness.
--   burst    the same with every deadline within 2 s + 0..10 ms: the drain
--            is nearly all fires, so fire is the cost of one fire alone.
--   ctx      n contexts with_timeout(background, d) (d: 60 s + 0..1 s, so
--            none can fire during the run), all live, then each
--            cancelled before it fires: create and cancel per ctx, memory
--            per live ctx, timers armed (a ctx's deadline costs no timer),
--            heap after they are dropped.
--   ctxdone  the same with ctx:done() called on each (that starts one timer
--            task per ctx): after the cancels the timer tasks must end and
--            leave nothing armed.
--   select   n tasks parked in net.select({{ch, "recv"}}, ctx) on one channel,
--            each under its own with_timeout ctx, all children of one
--            with_cancel parent; one parent cancel wakes them all.
-- Each figure is one line `RESULT name=... n=... us_per_op=... bytes_per_op=...`
-- (us: process CPU time per op, os.clock; bytes: Lua heap per op after a full
-- collect) with extra key=value fields, then a human line; last, a scaling
-- table (us_per_op at each n and the ratio of the largest n to the smallest).
--   make bench-timers            (the full run: n = 10000 and 100000)
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 bench/timers/run.lua --n 1000,5000      (a smoke run)
local net = require "coronet"
local context = require "coronet.context"

local clock, now = os.clock, net.now

local function usage()
    io.stderr:write("usage: run.lua [--n N1,N2,...] [--only sleep,burst,ctx,ctxdone,select] [--base S] [--spread S]\n")
    os.exit(2)
end

local opts = {n = "10000,100000", only = "sleep,burst,ctx,ctxdone,select", base = "1", spread = "1"}
do
    local i = 1
    while i <= #arg do
        local k = arg[i]:match("^%-%-(%w+)$")
        if not k or arg[i + 1] == nil then usage() end
        opts[k] = arg[i + 1]
        i = i + 2
    end
end
local BASE, SPREAD = tonumber(opts.base), tonumber(opts.spread)

-- memory ---------------------------------------------------------------------
local function rss_kb()
    local f = io.open("/proc/self/status")
    if not f then return 0 end
    local s = f:read("a")
    f:close()
    return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

local function heap_kb()
    collectgarbage("collect")
    collectgarbage("collect")
    return collectgarbage("count")
end

local function per_op_bytes(kb1, kb0, n) return (kb1 - kb0) * 1024 / n end

local function stats() return net.debug.stats() end

-- a permutation of 0..n-1 (a prime step coprime with n): distinct deadlines
-- inserted in scattered order
local function perm(i, n)
    local p = 1000003
    return (i * p) % n
end

local function fmt(v)
    if type(v) ~= "number" then return tostring(v) end
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    return string.format("%.3f", v)
end

local function result(name, n, us, bytes, extra, human)
    local parts = {"RESULT name=" .. name, "n=" .. n, "us_per_op=" .. fmt(us), "bytes_per_op=" .. fmt(bytes)}
    for _, kv in ipairs(extra or {}) do parts[#parts + 1] = kv[1] .. "=" .. fmt(kv[2]) end
    print(table.concat(parts, " "))
    print("  " .. human)
    io.stdout:flush()
end

-- yield until cond() holds (at most `turns` loop turns); false if it never did
local function settle(cond, turns)
    for _ = 1, turns or 1000 do
        if cond() then return true end
        net.yield()
    end
    return cond()
end

-- refill(n, heap0) -> B/op: after a drain, n more tasks that run and end at
-- once; the heap then, against heap0. Equal to the figure after the drain
-- means what stayed is reused capacity (the scheduler's tables), not a leak.
local function refill(n, heap0)
    local left = n
    for _ = 1, n do net.go(function() left = left - 1 end) end
    settle(function() return left == 0 end)
    return per_op_bytes(heap_kb(), heap0, n)
end

-- benchmarks -------------------------------------------------------------------
local bench = {}

local function sleep_bench(n, name, base, spread)
    local s0 = stats()
    local heap0, rss0 = heap_kb(), rss_kb()
    local parked, fired, early, inversions, last_dl, late_max = 0, 0, 0, 0, -math.huge, 0
    local measured = false
    local wg = net.wait_group()
    wg:add(n)
    local function sleeper(d)
        parked = parked + 1
        local dl = now() + d
        net.sleep(d)
        local t = now()
        fired = fired + 1
        if not measured then early = early + 1 end
        if dl < last_dl - 1e-4 then inversions = inversions + 1 end
        if dl > last_dl then last_dl = dl end
        if t - dl > late_max then late_max = t - dl end
        wg:done()
    end
    local c0, w0 = clock(), now()
    for i = 1, n do net.go(sleeper, base + spread * perm(i, n) / n) end
    settle(function() return parked == n end)
    local c1, w1 = clock(), now()
    local s1 = stats()
    local heap1, rss1 = heap_kb(), rss_kb()
    measured = true
    local armed = s1.timers - s0.timers
    result(name .. ".spawn_park", n, (c1 - c0) * 1e6 / n, per_op_bytes(heap1, heap0, n),
        {{"wall_us_per_op", (w1 - w0) * 1e6 / n}, {"rss_bytes_per_op", per_op_bytes(rss1, rss0, n)},
         {"timers_armed", armed}, {"fired_before_measure", early}},
        string.format(name .. ": spawn+park %.2f us/task (wall %.2f), %.0f B/task Lua heap, %.0f B/task RSS, %d timers armed",
            (c1 - c0) * 1e6 / n, (w1 - w0) * 1e6 / n, per_op_bytes(heap1, heap0, n), per_op_bytes(rss1, rss0, n), armed))
    local c2, w2 = clock(), now()
    wg:wait()
    local c3, w3 = clock(), now()
    local s3 = stats()
    local heap3, rss3 = heap_kb(), rss_kb()
    local again = refill(n, heap0)
    result(name .. ".fire", n, (c3 - c2) * 1e6 / n, per_op_bytes(heap3, heap0, n),
        {{"drain_wall_s", w3 - w2}, {"fired", fired}, {"inversions_100us", inversions}, {"late_max_ms", late_max * 1e3},
         {"timers_after", s3.timers - s0.timers}, {"tasks_after", s3.tasks - s0.tasks},
         {"rss_retained_bytes_per_op", per_op_bytes(rss3, rss0, n)}, {"heap_after_refill_bytes_per_op", again}},
        string.format(name .. ": drain %.2f us CPU/fire over %.2f s wall, %d fired, %d out of order, latest %.1f ms late;"
            .. " after: %d timers, %d tasks, heap %+.0f B/task (%+.0f after %d more tasks ran)", (c3 - c2) * 1e6 / n,
            w3 - w2, fired, inversions, late_max * 1e3, s3.timers - s0.timers, s3.tasks - s0.tasks,
            per_op_bytes(heap3, heap0, n), again, n))
    assert(fired == n and s3.timers == s0.timers and s3.tasks == s0.tasks, name .. ": tasks or timers left behind")
end

function bench.sleep(n) sleep_bench(n, "sleep", BASE, SPREAD) end
-- burst: the same with every deadline within 10 ms, so the drain is nearly
-- all fires (a few loop turns, each waking thousands) and idle turns vanish
function bench.burst(n) sleep_bench(n, "burst", BASE + 1, 0.01) end

-- ctx and ctxdone share the body; with_done calls ctx:done() on each
local function ctx_bench(n, with_done)
    local name = with_done and "ctxdone" or "ctx"
    local ctxs, cancels = {}, {}
    for i = 1, n do ctxs[i], cancels[i] = false, false end    -- the slots are not the ctx's cost
    local bg = context.background()
    local s0 = stats()
    local heap0, rss0 = heap_kb(), rss_kb()
    local c0 = clock()
    for i = 1, n do
        local c, cancel = context.with_timeout(bg, 60 + SPREAD * perm(i, n) / n)
        if with_done then c:done() end
        ctxs[i], cancels[i] = c, cancel
    end
    local c1 = clock()
    if with_done then settle(function() return stats().blocked.sleep - s0.blocked.sleep == n end) end
    local s1 = stats()
    local heap1, rss1 = heap_kb(), rss_kb()
    local live = 0
    for i = 1, n do if not ctxs[i]:err() then live = live + 1 end end
    local c2 = clock()
    for i = 1, n do cancels[i]() end
    local c3 = clock()
    local canceled = 0
    for i = 1, n do if ctxs[i]:err() == context.Canceled then canceled = canceled + 1 end end
    -- ctxdone: the timer tasks were woken by the cancel; let them end
    local ended = settle(function() return stats().tasks == s0.tasks end)
    local c4 = clock()
    local s2 = stats()
    for i = 1, n do ctxs[i], cancels[i] = false, false end
    local heap2, rss2 = heap_kb(), rss_kb()
    local create_us, cancel_us = (c1 - c0) * 1e6 / n, (c3 - c2 + c4 - c3) * 1e6 / n
    result(name .. ".create", n, create_us, per_op_bytes(heap1, heap0, n),
        {{"rss_bytes_per_op", per_op_bytes(rss1, rss0, n)}, {"timers_armed", s1.timers - s0.timers},
         {"tasks_live", s1.tasks - s0.tasks}, {"live", live}},
        string.format("%s: with_timeout%s %.2f us/ctx, %.0f B/ctx Lua heap while live, %.0f B/ctx RSS,"
            .. " %d timers armed, %d timer tasks", name, with_done and " + done()" or "", create_us,
            per_op_bytes(heap1, heap0, n), per_op_bytes(rss1, rss0, n), s1.timers - s0.timers, s1.tasks - s0.tasks))
    result(name .. ".cancel", n, cancel_us, per_op_bytes(heap2, heap0, n),
        {{"create_cancel_us_per_op", create_us + cancel_us}, {"canceled", canceled},
         {"timers_after", s2.timers - s0.timers}, {"tasks_after", s2.tasks - s0.tasks}, {"tasks_ended", ended},
         {"rss_retained_bytes_per_op", per_op_bytes(rss2, rss0, n)}},
        string.format("%s: cancel %.2f us/ctx (create+cancel %.2f), %d canceled; after: %d timers, %d tasks,"
            .. " heap %+.0f B/ctx once dropped", name, cancel_us, create_us + cancel_us, canceled,
            s2.timers - s0.timers, s2.tasks - s0.tasks, per_op_bytes(heap2, heap0, n)))
    assert(live == n and canceled == n and s2.timers == s0.timers and s2.tasks == s0.tasks,
        name .. ": a ctx fired early, or a timer or task was left behind")
end

function bench.ctx(n) ctx_bench(n, false) end
function bench.ctxdone(n) ctx_bench(n, true) end

function bench.select(n)
    local bg = context.background()
    local s0 = stats()
    local heap0, rss0 = heap_kb(), rss_kb()
    local parent, cancel_all = context.with_cancel(bg)
    local ch = net.chan(0)
    local parked, woke, right_err = 0, 0, 0
    local wg = net.wait_group()
    wg:add(n)
    local function waiter(d)
        local ctx = context.with_timeout(parent, d)
        parked = parked + 1
        local i, err = net.select({{ch, "recv"}}, ctx)
        woke = woke + 1
        if i == nil and err == context.Canceled then right_err = right_err + 1 end
        wg:done()
    end
    local c0 = clock()
    for i = 1, n do net.go(waiter, 60 + SPREAD * perm(i, n) / n) end
    settle(function() return parked == n and stats().blocked.select - s0.blocked.select == n end)
    local c1 = clock()
    local s1 = stats()
    local heap1, rss1 = heap_kb(), rss_kb()
    local c2 = clock()
    cancel_all()
    wg:wait()
    local c3 = clock()
    local s2 = stats()
    local heap2, rss2 = heap_kb(), rss_kb()
    local again = refill(n, heap0)
    result("select.park", n, (c1 - c0) * 1e6 / n, per_op_bytes(heap1, heap0, n),
        {{"rss_bytes_per_op", per_op_bytes(rss1, rss0, n)}, {"timers_armed", s1.timers - s0.timers},
         {"parked", s1.blocked.select - s0.blocked.select}},
        string.format("select: spawn + ctx + park %.2f us/task, %.0f B/task Lua heap, %.0f B/task RSS, %d timers armed",
            (c1 - c0) * 1e6 / n, per_op_bytes(heap1, heap0, n), per_op_bytes(rss1, rss0, n), s1.timers - s0.timers))
    result("select.cancel", n, (c3 - c2) * 1e6 / n, per_op_bytes(heap2, heap0, n),
        {{"woke", woke}, {"canceled_err", right_err}, {"timers_after", s2.timers - s0.timers},
         {"tasks_after", s2.tasks - s0.tasks}, {"rss_retained_bytes_per_op", per_op_bytes(rss2, rss0, n)},
         {"heap_after_refill_bytes_per_op", again}},
        string.format("select: one parent cancel wakes all: %.2f us/task, %d woke with ErrCanceled;"
            .. " after: %d timers, %d tasks, heap %+.0f B/task (%+.0f after %d more tasks ran)", (c3 - c2) * 1e6 / n,
            right_err, s2.timers - s0.timers, s2.tasks - s0.tasks, per_op_bytes(heap2, heap0, n), again, n))
    assert(right_err == n and s2.timers == s0.timers and s2.tasks == s0.tasks, "select: a waiter or timer left behind")
end

-- driver -------------------------------------------------------------------------
if opts.one then                                    -- a child: one benchmark at one n
    local fn = bench[opts.one] or usage()
    net.run(fn, tonumber(opts.n) or usage())
    os.exit(0)
end

local ns, names = {}, {}
for v in opts.n:gmatch("[^,]+") do ns[#ns + 1] = tonumber(v) or usage() end
for v in opts.only:gmatch("[^,]+") do
    if not bench[v] then usage() end
    names[#names + 1] = v
end

-- the interpreter and this script, to run each (benchmark, n) in a fresh process
local lua = arg[-1] or "lua5.4"
local self = arg[0]
local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local figures, order = {}, {}
local failed = false
print(string.format("# timers at scale: %s; n = %s; sleeps %g s + 0..%g s", table.concat(names, ","),
    table.concat(ns, ","), BASE, SPREAD))
for _, name in ipairs(names) do
    for _, n in ipairs(ns) do
        local cmd = string.format("%s %s --one %s --n %d --base %s --spread %s 2>&1", shq(lua), shq(self), name, n,
            opts.base, opts.spread)
        local p = assert(io.popen(cmd))
        for line in p:lines() do
            print(line)
            local rname, rn, us = line:match("^RESULT name=(%S+) n=(%d+) us_per_op=(%S+)")
            if rname then
                if not figures[rname] then figures[rname] = {}; order[#order + 1] = rname end
                figures[rname][tonumber(rn)] = tonumber(us)
            end
        end
        local ok, how, code = p:close()
        if not ok then
            print(string.format("FAIL %s n=%d: %s %s", name, n, tostring(how), tostring(code)))
            failed = true
        end
    end
end

if #ns > 1 then
    print()
    print("| benchmark | " .. table.concat(ns, " | ") .. " | x (n " .. ns[#ns] .. " / n " .. ns[1] .. ") |")
    print("|---|" .. string.rep("---:|", #ns + 1))
    for _, rname in ipairs(order) do
        local row = {rname}
        for _, n in ipairs(ns) do row[#row + 1] = figures[rname][n] and string.format("%.2f", figures[rname][n]) or "-" end
        local a, b = figures[rname][ns[1]], figures[rname][ns[#ns]]
        row[#row + 1] = (a and b and a > 0) and string.format("%.2f", b / a) or "-"
        print("| " .. table.concat(row, " | ") .. " |")
    end
    print("(us_per_op, process CPU time; flat is x ~1, O(log n) at 10x n is x ~1.2 for a binary heap)")
end
os.exit(failed and 1 or 0)
