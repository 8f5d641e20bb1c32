#!/usr/bin/env lua5.4
--- examples/cancel_read.lua: a watcher task cancels an in-flight read.
--
-- A client reads from a server that stays silent. A watcher task waits for
-- a stop signal (here a timer, 0.2 s) and cancels the read's ctx: the read
-- returns at once with ErrCanceled, and the conn stays open and usable --
-- the next read gets the server's reply. The second half does the same with
-- the Go idiom for calls that take no ctx: the watcher moves the read
-- deadline into the past (Go's SetReadDeadline(time.Unix(1, 0))).
--
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/cancel_read.lua
local net = require "coronet"
local context = net.context
local errors = net.errors

net.run(function()
    -- a server that says nothing until `speak` gets a line to send
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local speak = net.chan()
    local server = net.go(function()
        local s <close> = assert(ln:accept())
        for line in speak:iter() do assert(s:write(line)) end
    end)
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))

    -- 1. cancel through a ctx
    local ctx, cancel = context.with_cancel(context.background())
    local stop = net.after(0.2)                      -- the stop signal
    local watcher = net.go(function()
        stop:recv()
        print("watcher: stop requested, cancelling the read")
        cancel()
    end)
    local t0 = net.now()
    local data, err = c:read(100, ctx)               -- parks until data or cancel
    print(string.format("read -> %s, %q after %.2f s", tostring(data), tostring(err),
                        net.now() - t0))
    assert(data == nil and errors.is(err, net.ErrCanceled) and err.code == "canceled")
    watcher:wait()

    speak:send("hello after the cancel\n")           -- the conn is still fine
    print("next read -> " .. assert(c:read(100)):gsub("\n", ""))

    -- 2. the same without a ctx: a watcher moves the deadline into the past
    net.go(function()
        net.sleep(0.1)
        print("watcher: setting a read deadline in the past")
        c:set_read_deadline(0)                       -- any time <= 0: "already passed"
    end)
    data, err = c:read(100)
    print(string.format("read -> %s, %q (timeout: %s)", tostring(data), tostring(err),
                        tostring(err and err.timeout)))
    assert(data == nil and errors.is(err, net.ErrDeadlineExceeded))
    c:set_read_deadline(nil)                         -- clear it: usable again
    speak:send("and after the deadline\n")
    print("next read -> " .. assert(c:read(100)):gsub("\n", ""))

    speak:close()
    server:wait()
    ln:close()
end)
