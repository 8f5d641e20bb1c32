#!/usr/bin/env lua5.4
--- bench/prefork_spread.lua [CONNS [WORKERS [CONCURRENCY]]]: how evenly
-- connections spread over prefork workers, for the two ways of sharing a
-- port: one inherited listening fd (one accept queue, every worker's epoll
-- watches it) and one SO_REUSEPORT listener per worker (the kernel hashes
-- each connection's 4-tuple to one listener's queue).
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/prefork_spread.lua 400 2 8
-- Each worker answers a connection with its pid; the driver counts.
-- A third run stalls one reuseport worker (it stops accepting) to show
-- that the kernel keeps hashing connections to it: they wait (here: time
-- out) while the other worker idles. With a shared fd they would not.
local net = require "coronet"

local CONNS = tonumber(arg[1]) or 400
local WORKERS = tonumber(arg[2]) or 2
local CONC = tonumber(arg[3]) or 8

local function worker(mode, port, stall)
    net.run(function()
        local ln
        if mode == "shared" then
            ln = assert(net.listeners_from_env())[1]
        else
            ln = assert(net.listen("tcp", "127.0.0.1:" .. port, {reuseport = true}))
        end
        local sigs = net.signal.notify("TERM")
        net.go(function()
            sigs:recv()
            ln:close()
        end)
        assert(net.process.ready())
        if stall == "stall" then sigs:recv() return end       -- listens, never accepts
        local pid = tostring(net.process.getpid())
        while true do
            local c = ln:accept()
            if not c then break end
            c:write(pid)
            c:close()
        end
        net.signal.stop(sigs)
    end)
end

local function start_workers(mode, ln, port, stall_one)
    local exe = net.process.self_command()
    local procs = {}
    for i = 1, WORKERS do
        local r, w = net.process.pipe()
        local files = mode == "shared" and {ln} or {}
        local stall = (stall_one and i == 1) and "stall" or "-"
        local p = assert(net.process.spawn{exe, args = {arg[0], "--worker", mode, tostring(port), stall},
            files = files, extra_files = {w},
            env = {[net.process.READY_ENV] = tostring(3 + #files)}})
        net.close_fd(w)
        local ctx, cancel = net.context.with_timeout(net.context.background(), 20)
        assert(net.process.wait_ready(r, ctx), "worker did not start")
        cancel()
        procs[i] = p
    end
    return procs
end

local function drive(addr, timeout)
    local counts, failed, next_i = {}, 0, 0
    local tasks = {}
    for k = 1, CONC do
        tasks[k] = net.go(function()
            while next_i < CONNS do
                next_i = next_i + 1
                local c = net.dial("tcp", addr)
                local who
                if c then
                    c:set_deadline(net.now() + timeout)
                    who = c:read(32)
                    c:close()
                end
                if who then counts[who] = (counts[who] or 0) + 1 else failed = failed + 1 end
            end
        end)
    end
    for _, t in ipairs(tasks) do t:wait() end
    return counts, failed
end

local function report(label, counts, failed)
    local parts, max = {}, 0
    for pid, n in pairs(counts) do
        parts[#parts + 1] = string.format("pid %s: %d", pid, n)
        if n > max then max = n end
    end
    table.sort(parts)
    print(string.format("%-22s %s; failed/timed out %d; busiest worker %.0f%%", label,
        table.concat(parts, ", "), failed, 100 * max / CONNS))
end

local function run(mode, stall_one)
    local ln, port
    if mode == "shared" then
        ln = assert(net.listen("tcp", "127.0.0.1:0"))
        port = ln:addr().port
    else
        -- a reuseport socket that only holds the port number for the workers
        ln = assert(net.listen("tcp", "127.0.0.1:0", {reuseport = true}))
        port = ln:addr().port
    end
    local procs = start_workers(mode, ln, port, stall_one)
    ln:close()           -- shared: the workers hold it; reuseport: leave the group
    local counts, failed = drive("127.0.0.1:" .. port, stall_one and 0.2 or 10)
    report(mode .. (stall_one and " (1 stalled)" or ""), counts, failed)
    for _, p in ipairs(procs) do p:kill("TERM") end
    for _, p in ipairs(procs) do p:wait() end
end

if arg[1] == "--worker" then
    worker(arg[2], arg[3], arg[4])
else
    print(string.format("%d conns, %d workers, %d concurrent clients", CONNS, WORKERS, CONC))
    net.run(function()
        run("shared")
        run("reuseport")
        run("reuseport", true)
        run("shared", true)
    end)
end
