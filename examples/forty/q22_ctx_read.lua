#!/usr/bin/env lua5.4
--- examples/forty/q22_ctx_read.lua: Q22, a context cancelling an in-flight read.
-- coronet differs from Go: every blocking call takes a ctx as its last
-- argument (c:read(n, ctx)), so there is no watcher to write: cancelling
-- the ctx wakes the read at once with ctx:err() and the conn stays usable.
-- Go's watcher idiom (a deadline in the past) works too, for code that
-- can't pass a ctx. examples/cancel_read.lua is the longer walk-through.
--   lua5.4 examples/forty/q22_ctx_read.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local context, errors = net.context, net.errors

net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local s <close> = assert(ln:accept())

    local ctx, cancel = context.with_cancel(context.background())
    local reader = net.go(function() return c:read(100, ctx) end)
    while net.debug.stats().blocked.read == 0 do net.yield() end
    F.say("Q22. a read is parked on a silent peer; another task calls cancel()")
    cancel()
    local d, err = reader:wait()
    F.say("  read -> %s, %s", tostring(d), tostring(err))
    F.check(d == nil and errors.is(err, net.ErrCanceled) and errors.is(err, ctx:err()),
            "the read returned ctx:err() (ErrCanceled)")
    F.check(d == nil and err.code == "canceled", "code \"canceled\"")
    s:write("still here")
    F.check(c:read(100) == "still here", "the conn is still usable after the cancel")

    local tctx = context.with_timeout(context.background(), 0.1)
    d, err = c:read(100, tctx)
    F.check(d == nil and errors.is(err, net.ErrDeadlineExceeded) and err.timeout,
            "a ctx with a timeout ends the read with ErrDeadlineExceeded")

    F.say("Q22. Go's idiom without a ctx: a watcher sets the read deadline in the past")
    reader = net.go(function() return c:read(100) end)
    while net.debug.stats().blocked.read == 0 do net.yield() end
    c:set_read_deadline(0)
    d, err = reader:wait()
    F.check(d == nil and errors.is(err, net.ErrDeadlineExceeded), "the parked read woke with a timeout")
    c:set_read_deadline(nil)
    s:write("again")
    F.check(c:read(100) == "again", "and after clearing it the conn reads again")
end)
F.done()
