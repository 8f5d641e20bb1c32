#!/usr/bin/env lua5.4
--- examples/forty/q13_dial_context.lua: Q13, net.dial with and without a ctx.
-- coronet has one dial: net.dial(network, addr [, opts] [, ctx]) (and
-- net.dialer{timeout = ...}:dial(network, addr [, ctx]) for a reusable
-- configuration). Without a timeout or ctx a dial to a host that never
-- answers waits for the kernel's SYN retries (minutes). Here the peer is a
-- listener whose accept queue is full, so the kernel drops our SYNs.
-- A ctx cancelled by another task ends the dial at once with ErrCanceled;
-- a dialer timeout ends it with a timeout.
--   lua5.4 examples/forty/q13_dial_context.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local errors, context = net.errors, net.context

net.run(function()
    -- backlog 0: the queue holds one conn; no one accepts, so a later SYN is dropped
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0", {backlog = 0}))
    local filler = {}
    for i = 1, 4 do                               -- fill the queue (the count is the kernel's)
        local c = net.dial("tcp", tostring(ln:addr()), {timeout = 0.3})
        if not c then break end
        filler[i] = c
    end
    F.say("Q13. %d dial(s) filled the accept queue; the next one hangs in connect", #filler)

    local ctx, cancel = context.with_cancel(context.background())
    net.go(function() net.sleep(0.2); cancel() end)          -- a watcher cancels
    local t0 = net.now()
    local c, err = net.dial("tcp", tostring(ln:addr()), ctx)
    F.say("  dial(..., ctx) -> %s after %.2f s", tostring(err), net.now() - t0)
    F.check(c == nil and errors.is(err, net.ErrCanceled) and err.code == "canceled",
            "cancelling the ctx ends the dial with ErrCanceled")

    local d = net.dialer{timeout = 0.2}
    t0 = net.now()
    c, err = d:dial("tcp", tostring(ln:addr()))
    F.say("  net.dialer{timeout = 0.2}:dial -> %s after %.2f s", tostring(err), net.now() - t0)
    F.check(c == nil and err.timeout == true and errors.is(err, net.ErrDeadlineExceeded),
            "the dialer's timeout ends it with a timeout error")
    F.check(net.now() - t0 >= 0.2, "not before the timeout")
    for _, f in ipairs(filler) do f:close() end
end)
F.done()
