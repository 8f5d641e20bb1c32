#!/usr/bin/env lua5.4
--- examples/proxy.lua LISTEN UPSTREAM: a TCP proxy. Each client gets a
-- conn to UPSTREAM and two tasks, one per direction, each moving bytes
-- through its own net.buffer with conn:read_into and conn:write(buf): no
-- Lua string per chunk, and no allocation at all once the buffers exist.
-- A half-close is passed on (close_write), so request/response protocols
-- that end with a FIN work; an idle direction is dropped after 5 minutes.
-- (net.io.copy(dst, src) does the same with splice; this loop is the shape
-- to start from when the proxy must look at or change the bytes.)
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 examples/proxy.lua 127.0.0.1:8000 127.0.0.1:7007
-- `--selftest` proxies to an echo server of its own on :0, checks a round
-- trip and a 1 MiB stream, and exits (used by make check).
local net = require "coronet"

local IDLE = 300

-- pipe(dst, src, done): move src to dst until EOF or a failure, then pass
-- the end on to dst and tell done. Returns the bytes moved.
local function pipe(dst, src, done)
    local buf, moved = net.buffer(65536), 0
    while true do
        src:set_read_deadline(net.now() + IDLE)
        local n, err = src:read_into(buf)
        if not n then
            if not net.errors.is(err, net.EOF) then io.stderr:write("proxy: ", tostring(err), "\n") end
            break
        end
        -- (a filtering proxy looks at buf:tostring() or rewrites buf here)
        local ok, werr = dst:write(buf)
        if not ok then
            io.stderr:write("proxy: ", tostring(werr), "\n")
            src:close_read()
            break
        end
        moved = moved + n
        buf:reset()                                  -- keep the memory for the next chunk
    end
    dst:close_write()
    done:done()
    return moved
end

-- handle(client, upstream_addr): dial upstream and pipe both ways.
local function handle(client, upstream_addr)
    local up, err = net.dial("tcp", upstream_addr, {timeout = 10})
    if not up then
        io.stderr:write("proxy: ", tostring(err), "\n")
        client:close()
        return
    end
    local wg = net.wait_group()
    wg:add(2)
    net.go(pipe, up, client, wg)
    net.go(pipe, client, up, wg)
    wg:wait()
    up:close()
    client:close()
end

local function serve(ln, upstream_addr)
    while true do
        local c, err = ln:accept()
        if not c then
            if net.errors.is(err, net.ErrClosed) then return end
            io.stderr:write("proxy: accept: ", tostring(err), "\n")
            net.sleep(0.05)                          -- EMFILE and friends: back off
        else
            net.go(handle, c, upstream_addr)
        end
    end
end

if arg[1] == "--selftest" then
    net.run(function()
        local echo = assert(net.listen("tcp", "127.0.0.1:0"))
        net.go(function()
            while true do
                local c = echo:accept()
                if not c then return end
                net.go(function()
                    net.io.copy(c, c)
                    c:close()
                end)
            end
        end)
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local srv = net.go(serve, ln, tostring(echo:addr()))
        local c = assert(net.dial("tcp", tostring(ln:addr())))
        assert(c:write("ping\n"))
        assert(assert(c:read_full(5)) == "ping\n")
        local data = string.rep("0123456789abcdef", 65536)  -- 1 MiB
        local w = net.go(function()
            assert(c:write(data))
            assert(c:close_write())
        end)
        local got = net.buffer()
        while c:read_into(got) do end
        w:wait()
        assert(got:tostring() == data, "the stream came back whole")
        c:close()
        ln:close()
        srv:wait()
        echo:close()
    end)
    print("selftest ok")
    return
end

local listen_addr, upstream_addr = arg[1], arg[2]
if not (listen_addr and upstream_addr) then
    io.stderr:write("usage: proxy.lua LISTEN UPSTREAM (e.g. 127.0.0.1:8000 127.0.0.1:7007)\n")
    os.exit(2)
end
local ln = assert(net.listen("tcp", listen_addr))
print("proxy on " .. tostring(ln:addr()) .. " -> " .. upstream_addr)
net.run(serve, ln, upstream_addr)
