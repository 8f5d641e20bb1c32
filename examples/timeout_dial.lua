#!/usr/bin/env lua5.4
--- examples/timeout_dial.lua [ADDRESS [SECONDS]]: bound a dial with a ctx.
--
-- With ADDRESS, dial it under a ctx that times out after SECONDS (default
-- 2) and say what happened (exit 1 on failure). Without arguments, a
-- self-contained demo on loopback: a listener with backlog 1 that never
-- accepts fills up after a couple of dials, and the next dial to it hangs
-- (the kernel drops its SYNs). Then:
--   1. the dialer's own timeout ends it      (Go: net.Dialer{Timeout: ...})
--   2. a ctx deadline ends it                (Go: DialContext with WithTimeout)
--   3. both: the earlier one wins
--   4. a watcher cancels it                  (Go: cancel() from another goroutine)
--
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/timeout_dial.lua
local net = require "coronet"
local context = net.context
local errors = net.errors

local function report(what, t0, c, err)
    local dt = net.now() - t0
    if c then
        print(string.format("%-34s connected %s in %.3f s", what, tostring(c:remote_addr()), dt))
    else
        print(string.format("%-34s %s (code %s, timeout %s) after %.3f s", what, tostring(err),
                            err.code, tostring(err.timeout), dt))
    end
end

if arg[1] and arg[1] ~= "--selftest" then
    local secs = tonumber(arg[2]) or 2
    local ctx, cancel = context.with_timeout(context.background(), secs)
    local t0 = net.now()
    local c, err = net.dial("tcp", arg[1], ctx)
    cancel()
    report("dial " .. arg[1], t0, c, err)
    if not c then os.exit(1) end
    c:close()
    return
end

net.run(function()
    -- a listener whose accept queue is full: one more dial stays pending
    local ln = assert(net.listen("tcp", "127.0.0.1:0", {backlog = 1}))
    local addr = tostring(ln:addr())
    local filler = {}
    for _ = 1, 16 do
        local t0 = net.now()
        local c, err = net.dialer{timeout = 0.2}:dial("tcp", addr)
        if not c then
            report("1. dialer{timeout = 0.2}", t0, c, err)
            assert(errors.is(err, net.ErrDeadlineExceeded))
            break
        end
        filler[#filler + 1] = c                       -- these connect: queue not full yet
    end
    assert(#filler < 16, "the backlog never filled up")

    -- 2. a ctx deadline
    local ctx, cancel = context.with_timeout(context.background(), 0.25)
    local t0 = net.now()
    local c, err = net.dial("tcp", addr, ctx)
    report("2. ctx with_timeout 0.25", t0, c, err)
    assert(not c and errors.is(err, net.ErrDeadlineExceeded) and ctx:err() == net.ErrDeadlineExceeded)
    cancel()                                          -- always release a ctx

    -- 3. both: the ctx says 5 s, the dialer 0.1 s; the dialer's is earlier
    ctx, cancel = context.with_timeout(context.background(), 5)
    t0 = net.now()
    c, err = net.dialer{timeout = 0.1}:dial("tcp", addr, ctx)
    report("3. dialer 0.1 + ctx 5", t0, c, err)
    assert(not c and err.timeout and ctx:err() == nil)  -- the ctx is still live
    cancel()

    -- 4. a watcher cancels a dial in flight (e.g. on shutdown)
    ctx, cancel = context.with_cancel(context.background())
    net.go(function() net.sleep(0.1) cancel() end)
    t0 = net.now()
    c, err = net.dial("tcp", addr, ctx)
    report("4. cancelled by a watcher", t0, c, err)
    assert(not c and errors.is(err, net.ErrCanceled))

    -- a listener that accepts: the same ctx-bounded dial just connects
    local ok_ln = assert(net.listen("tcp", "127.0.0.1:0"))
    ctx, cancel = context.with_timeout(context.background(), 1)
    t0 = net.now()
    c = assert(net.dial("tcp", tostring(ok_ln:addr()), ctx))
    report("5. reachable, ctx 1 s", t0, c)
    cancel()                                          -- the conn outlives its ctx
    c:close()
    ok_ln:close()
    for _, f in ipairs(filler) do f:close() end
    ln:close()
end)
