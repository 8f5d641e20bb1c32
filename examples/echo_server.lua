#!/usr/bin/env lua5.4
--- examples/echo_server.lua [ADDRESS]: a TCP echo server, one task per
-- connection. Default address 127.0.0.1:7007.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/echo_server.lua
-- `--selftest` starts it on :0, talks to it once and exits (used by make check).
local net = require "coronet"

local function handle(c)
    local peer = tostring(c:remote_addr())
    io.stderr:write("echo: ", peer, " connected\n")
    while true do
        c:set_read_deadline(net.now() + 60)     -- an idle client is dropped
        local data, err = c:read(4096)
        if not data then
            if not net.errors.is(err, net.EOF) then io.stderr:write("echo: ", tostring(err), "\n") end
            break
        end
        local _, werr = c:write(data)
        if werr then break end
    end
    c:close()
    io.stderr:write("echo: ", peer, " gone\n")
end

local function serve(ln)
    while true do
        local c, err = ln:accept()
        if not c then
            if net.errors.is(err, net.ErrClosed) then return end
            io.stderr:write("echo: accept: ", tostring(err), "\n")
            net.sleep(0.05)                        -- EMFILE and friends: back off
        else
            net.go(handle, c)
        end
    end
end

if arg[1] == "--selftest" then
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(serve, ln)
    local c = assert(net.dial("tcp", tostring(ln:addr())))
    assert(c:write("ping\n"))
    assert(assert(c:read_full(5)) == "ping\n")
    c:close()
    ln:close()
    print("selftest ok")
    return
end

local ln = assert(net.listen("tcp", arg[1] or "127.0.0.1:7007"))
print("echo server on " .. tostring(ln:addr()))
net.run(serve, ln)
