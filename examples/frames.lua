#!/usr/bin/env lua5.4
--- examples/frames.lua [ADDRESS]: length-prefixed messages with net.frame.
-- A server answers each message (a 4-byte big-endian length, then the
-- body) with the body upper-cased. Messages over 64 KiB are refused
-- before anything is allocated for them, and the sender is disconnected.
-- Default address 127.0.0.1:7009.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/frames.lua
-- `--selftest` starts it on :0, sends a few messages (empty, small, 60 KiB),
-- then a hostile header announcing 4 GiB, and checks the answers.
local net = require "coronet"
local frame = net.frame

local MAX = 64 * 1024
local OPTS = {header = 4, endian = "big", max = MAX}

local function handle(c)
    local fr, fw = frame.reader(c, OPTS), frame.writer(c, OPTS)
    while true do
        c:set_read_deadline(net.now() + 60)
        local msg, err, n = fr:read()
        if not msg then
            if err == net.ErrFrameTooLarge then
                io.stderr:write("frames: ", tostring(c:remote_addr()), " announced ", n,
                                " bytes (max ", MAX, "): disconnecting\n")
            elseif not net.errors.is(err, net.EOF) then
                io.stderr:write("frames: ", tostring(err), "\n")
            end
            break
        end
        if not fw:write(msg:upper()) then break end
    end
    c:close()
end

local function serve(ln)
    while true do
        local c, err = ln:accept()
        if not c then
            if net.errors.is(err, net.ErrClosed) then return end
            io.stderr:write("frames: accept: ", tostring(err), "\n")
            net.sleep(0.05)
        else
            net.go(handle, c)
        end
    end
end

local function selftest()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(serve, ln)
    local c = assert(net.dial("tcp", tostring(ln:addr())))
    local fr, fw = frame.reader(c, OPTS), frame.writer(c, OPTS)
    for _, msg in ipairs{"", "hello, frames", string.rep("abc", 20000)} do
        assert(fw:write(msg))
        assert(fr:read() == msg:upper())
    end
    assert(select(2, fw:write(string.rep("x", MAX + 1))) == net.ErrFrameTooLarge)
    -- a hostile peer: a header that announces 4 GiB, then a trickle
    assert(c:write("\255\255\255\255tiny"))
    local msg, err = fr:read()                     -- refused and disconnected
    assert(msg == nil and (err == net.EOF or err.code == "ECONNRESET"), tostring(err))
    c:close()
    ln:close()
    print("selftest ok")
end

if arg[1] == "--selftest" then
    net.run(selftest)
    return
end

local ln = assert(net.listen("tcp", arg[1] or "127.0.0.1:7009"))
print("frame server on " .. tostring(ln:addr()))
net.run(serve, ln)
