#!/usr/bin/env lua5.4
--- examples/forty/q17_err_closed.lua: Q17, net.ErrClosed.
-- Every operation on a closed conn or listener returns nil, err with
-- net.errors.is(err, net.ErrClosed) (code "closed"); close itself is
-- idempotent in effect, and a second close says ErrClosed. A close from
-- another task wakes a blocked read with it. Test with errors.is, never the
-- message text.
--   lua5.4 examples/forty/q17_err_closed.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local errors = net.errors

net.run(function()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local c = assert(net.dial("tcp", tostring(ln:addr())))
    local s = assert(ln:accept())

    local reader = net.go(function() return c:read(100) end)
    while net.debug.stats().blocked.read == 0 do net.yield() end
    assert(c:close())
    local d, err = reader:wait()
    F.say("Q17. a read blocked while another task closes the conn -> %s", tostring(err))
    F.check(d == nil and errors.is(err, net.ErrClosed), "close wakes the blocked read with ErrClosed")

    local ops = {
        read = function() return c:read(1) end,
        write = function() return c:write("x") end,
        read_full = function() return c:read_full(1) end,
        set_deadline = function() return c:set_deadline(net.now() + 1) end,
        set_nodelay = function() return c:set_nodelay(true) end,
        close = function() return c:close() end,
        ["ln:accept"] = function() ln:close(); return ln:accept() end,
        ["ln:close"] = function() return ln:close() end,
    }
    for _, name in ipairs{"read", "write", "read_full", "set_deadline", "set_nodelay", "close",
                          "ln:accept", "ln:close"} do
        local v, e = ops[name]()
        F.check(v == nil and errors.is(e, net.ErrClosed) and e.code == "closed",
                name .. " on a closed " .. (name:match("^ln") and "listener" or "conn") .. " -> ErrClosed",
                tostring(v) .. " " .. tostring(e))
    end
    F.say("  e.g. %s", tostring(select(2, c:write("x"))))
    F.check(tostring(c:remote_addr()) == tostring(s:local_addr()), "addresses stay readable after close")
    s:close()
end)
F.done()
