#!/usr/bin/env lua5.4
--- bench/pool/run.lua [REQUESTS] [TASKS] [CYCLES]: what a pool buys and
-- what it costs, against one redis-server (spec/redis.lua's: a free
-- loopback port, stopped by PID).
--   1. requests/s: TASKS tasks sending REQUESTS `PING`s in all through a
--      net.pool (max_open = TASKS), vs the same with a new TCP conn per
--      request (dial, PING, close); plus the TIME_WAIT sockets the
--      dial-per-request run left behind (Q27/Q34: each one holds a port).
--   2. the pool's own cost: CYCLES `p:put(p:get())` of one healthy idle
--      conn, in µs per get+put, next to one bare `core.probe` (the peek
--      syscall) and an empty loop; and the KiB allocated over the CYCLES
--      (collectgarbage("count") with the collector stopped): target 0.
-- Prints a Markdown table.
--   make && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 bench/pool/run.lua 20000 8 100000
-- Smoke run (a few seconds): ... lua5.4 bench/pool/run.lua 500 4 10000
local net = require "coronet"
local core = require "coronet.core"
local R = dofile("spec/redis.lua")

local requests = tonumber(arg[1]) or 20000
local ntasks = tonumber(arg[2]) or 8
local cycles = tonumber(arg[3]) or 100000

local function client(addr, ctx)
    local c, err = net.dial("tcp", addr, ctx)
    if not c then return nil, err end
    return {c = c, rd = net.bufio.reader(c),
            fd = function(self) return self.c:fd() end,
            close = function(self) return self.c:close() end,
            buffered = function(self) return self.rd:buffered() end}
end

local function ping(cl)
    local v, err = R.command(cl.c, cl.rd, "PING")
    if v ~= "PONG" then error("PING: " .. tostring(v or err)) end
end

-- run_tasks(fn) -> seconds: ntasks tasks share `requests` calls of fn().
local function run_tasks(fn)
    local left = requests
    local wg = net.wait_group()
    local t0 = net.now()
    for _ = 1, ntasks do
        wg:add(1)
        net.go(function()
            while left > 0 do
                left = left - 1
                fn()
            end
            wg:done()
        end)
    end
    wg:wait()
    return net.now() - t0
end

local function time_wait(port)
    local p = io.popen("ss -Htan state time-wait '( dport = :" .. port .. " )' 2>/dev/null | wc -l")
    local n = tonumber(p:read("l"))
    p:close()
    return n
end

local function bench(srv)
    local rows = {}
    -- 1a. pooled
    local dials = 0
    local pool <close> = net.pool{max_open = ntasks, max_idle = ntasks,
                                  dial = function(ctx) dials = dials + 1; return client(srv.addr, ctx) end}
    local s = run_tasks(function()
        local cl = assert(pool:get())
        local ok, err = pcall(ping, cl)
        pool:put(cl, not ok and err or nil)
        assert(ok, err)
    end)
    rows[#rows + 1] = {"pooled (net.pool, max_open = " .. ntasks .. ")",
                       string.format("%.0f req/s", requests / s), dials .. " conns"}
    -- 1b. a new conn per request
    local tw0 = time_wait(srv.port)
    s = run_tasks(function()
        local cl = assert(client(srv.addr))
        ping(cl)
        cl:close()
    end)
    local tw = time_wait(srv.port) - tw0
    rows[#rows + 1] = {"dial per request", string.format("%.0f req/s", requests / s),
                       requests .. " conns, " .. tw .. " left in TIME_WAIT"}
    -- 2. get+put of a healthy idle conn: a bare TCP conn, and the RESP
    -- client above (a Lua table whose fd() and buffered() are Lua calls)
    local now = net.now
    for _, kind in ipairs{"TCP conn", "RESP client (conn + bufio reader)"} do
        local mk = kind == "TCP conn" and function(ctx) return net.dial("tcp", srv.addr, ctx) end
            or function(ctx) return client(srv.addr, ctx) end
        local p <close> = net.pool{dial = mk, idle_timeout = 60, max_lifetime = 3600}
        p:put(assert(p:get()))
        for _ = 1, 1000 do p:put(p:get()) end
        collectgarbage()
        collectgarbage("stop")
        local k0 = collectgarbage("count")
        local t0 = now()
        for _ = 1, cycles do p:put(p:get()) end
        local t_pool = now() - t0
        local kib = collectgarbage("count") - k0
        collectgarbage("restart")
        rows[#rows + 1] = {"get + put, healthy idle " .. kind,
                           string.format("%.2f µs", t_pool / cycles * 1e6),
                           string.format("%.1f KiB allocated over %d cycles", kib, cycles)}
    end
    local probe = core.probe
    local probe_conn = assert(net.dial("tcp", srv.addr))
    local fd = probe_conn:fd()
    local t0 = now()
    for _ = 1, cycles do probe(fd) end
    local t_probe = now() - t0
    probe_conn:close()
    t0 = now()
    for _ = 1, cycles do local _ = fd + 1 end
    local t_empty = now() - t0
    rows[#rows + 1] = {"one core.probe (recv MSG_PEEK)", string.format("%.2f µs", t_probe / cycles * 1e6),
                       "get and put each peek once"}
    rows[#rows + 1] = {"empty loop", string.format("%.3f µs", t_empty / cycles * 1e6), ""}
    return rows
end

local srv = R.start()
local ok, rows = pcall(net.run, bench, srv)
srv:stop()
if not ok then error(rows, 0) end
local nproc = io.popen("nproc"):read("l")
print(string.format("redis-server on %s; %s CPUs; %d PINGs from %d tasks; %d get+put cycles\n",
                    srv.addr, nproc, requests, ntasks, cycles))
print("| what | rate / cost | notes |")
print("|---|---|---|")
for _, r in ipairs(rows) do print("| " .. table.concat(r, " | ") .. " |") end
