#!/usr/bin/env lua5.4
--- examples/restart.lua [ADDRESS]: an echo server that restarts itself
-- with zero downtime on SIGHUP and drains and exits on SIGTERM/SIGINT.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/restart.lua 127.0.0.1:7008 &
--   kill -HUP $!      # a new process (new pid) takes over the same socket
-- A line "pid" is answered with the serving process's pid; anything else
-- is echoed.
-- `--selftest` starts a server (handing it a listening socket, as systemd
-- would), keeps a few clients connecting, echoing and closing, sends it
-- SIGHUP, and checks that no connection failed and that a new process
-- serves afterwards; then it stops that one with SIGTERM.
local net = require "coronet"

local function log(...)
    io.stderr:write("restart[", net.process.getpid(), "]: ", ...)
    io.stderr:write("\n")
end

---------------------------------------------------------------------------
-- The server
---------------------------------------------------------------------------
local function handle(c, wg)
    c:set_deadline(net.now() + 30)             -- nothing outlives a stuck peer
    while true do
        local data = c:read(4096)
        if not data then break end
        if data == "pid\n" then data = net.process.getpid() .. "\n" end
        if not c:write(data) then break end
    end
    c:close()
    wg:done()
end

local function accept_loop(ln, wg)
    while true do
        local c, err = ln:accept()
        if c then
            wg:add(1)
            net.go(handle, c, wg)
        elseif net.errors.is(err, net.ErrClosed) then
            return
        else
            log("accept: ", tostring(err))
            net.sleep(0.05)                    -- EMFILE and friends: back off
        end
    end
end

local function server(address)
    local up = net.restart.upgrader{ready_timeout = 20}
    local ln = assert(up:listen("tcp", address))
    log(up:is_child() and "took over " or "listening on ", tostring(ln:addr()))
    net.run(function()
        local wg = net.wait_group()
        local acceptor = net.go(accept_loop, ln, wg)
        local why = up:run{shutdown = function()
            ln:close()                          -- the socket lives on in the new copy
            acceptor:wait()
            local ctx, cancel = net.context.with_timeout(net.context.background(), 30)
            wg:wait(ctx)                        -- in-flight conns finish
            cancel()
        end}
        log("stopped after ", why)
    end)
end

---------------------------------------------------------------------------
-- The self-test: a restart under load
---------------------------------------------------------------------------
local function echo_once(addr, i, n)
    local c, err = net.dial("tcp", addr)
    if not c then return nil, err end
    c:set_deadline(net.now() + 10)
    local msg = string.format("hello %d %d\n", i, n)
    local ok, werr = c:write(msg)
    local got, rerr = nil, werr
    if ok then got, rerr = c:read_full(#msg) end
    c:close()
    if got ~= msg then return nil, rerr or ("bad echo: " .. tostring(got)) end
    return true
end

local function ask_pid(addr)
    local c = assert(net.dial("tcp", addr))
    c:set_deadline(net.now() + 10)
    assert(c:write("pid\n"))
    local line = {}
    repeat
        local d = assert(c:read(64))
        line[#line + 1] = d
    until d:find("\n")
    c:close()
    return tonumber(table.concat(line):match("%d+"))
end

local function selftest(script)
    net.process.set_subreaper(true)             -- the new copy will be our child
    net.run(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local addr = tostring(ln:addr())
        local r, w = net.process.pipe()
        local exe = net.process.self_command()
        local old = assert(net.process.spawn{exe, args = {script, "--serve", "127.0.0.1:0"},
            files = {ln}, names = {net.restart.key("tcp", "127.0.0.1:0")},
            extra_files = {w}, env = {[net.process.READY_ENV] = "4"}})
        net.close_fd(w)
        local ctx, cancel = net.context.with_timeout(net.context.background(), 20)
        assert(net.process.wait_ready(r, ctx), "the server did not start")
        cancel()
        ln:close()                              -- only the servers hold the socket now
        local old_pid = ask_pid(addr)
        assert(old_pid == old.pid)

        local stats = {ok = 0, failed = 0}
        local stop = false
        local clients = {}
        for i = 1, 4 do
            clients[i] = net.go(function()
                local n = 0
                while not stop do
                    n = n + 1
                    local ok, err = echo_once(addr, i, n)
                    if ok then stats.ok = stats.ok + 1
                    else stats.failed = stats.failed + 1; log("client: ", tostring(err)) end
                end
            end)
        end
        local function wait_ok(n) while stats.ok < n and stats.failed == 0 do net.sleep(0.005) end end
        wait_ok(50)
        local before = stats.ok
        assert(old:kill("HUP"))
        local st = old:wait()                   -- it hands over, drains, exits
        local during = stats.ok - before
        wait_ok(stats.ok + 50)
        stop = true
        for _, t in ipairs(clients) do t:wait() end
        local new_pid = ask_pid(addr)
        print(string.format("restart: old pid %d exited %s; new pid %d; %d conns during the restart, "
            .. "%d in all, %d failed", old.pid, st.code and ("code " .. st.code) or st.signal,
            new_pid, during, stats.ok, stats.failed))
        local new = assert(net.process.adopt(new_pid))
        assert(new:kill("TERM"))
        local st2 = new:wait()
        assert(st.code == 0 and st2.code == 0, "a server did not exit cleanly")
        assert(new_pid ~= old_pid, "the same process serves")
        assert(stats.failed == 0, "connections failed across the restart")
    end)
    net.process.set_subreaper(false)
    print("selftest ok")
end

-- loadfile("examples/restart.lua")("--library"): the client side, for specs
if (...) == "--library" then return {echo_once = echo_once, ask_pid = ask_pid} end

if arg[1] == "--selftest" then
    selftest(arg[0])
elseif arg[1] == "--serve" then
    server(arg[2])
else
    server(arg[1] or "127.0.0.1:7008")
end
