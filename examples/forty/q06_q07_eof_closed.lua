#!/usr/bin/env lua5.4
--- examples/forty/q06_q07_eof_closed.lua: Q6 (knowing the peer closed) and
-- Q7 (leaving an accept loop cleanly).
-- Q6: after the peer's close, read returns nil, net.EOF: the sentinel itself,
-- so `err == net.EOF` and `net.errors.is(err, net.EOF)` both hold. coronet
-- differs from Go in one way: a read never returns data and EOF together
-- (Go's "n > 0 with io.EOF"); the last bytes come first, EOF on the next call.
-- Q7: ln:close() wakes the task blocked in accept with an error wrapping
-- net.ErrClosed; the loop tests for it and returns.
--   lua5.4 examples/forty/q06_q07_eof_closed.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local errors = net.errors

net.run(function()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local served = 0
    local loop = net.go(function()                    -- the accept loop
        while true do
            local c, err = ln:accept()
            if not c then
                if errors.is(err, net.ErrClosed) then return "closed", err end
                return "other", err
            end
            served = served + 1
            c:write("last bytes")
            c:close()
        end
    end)

    F.say("Q6. the server writes \"last bytes\" and closes")
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local got = {}
    while true do
        local data, err = c:read(100)
        if not data then
            F.say("  read -> nil, %s", tostring(err))
            F.check(err == net.EOF, "the error is net.EOF itself (err == net.EOF)")
            F.check(errors.is(err, net.EOF), "net.errors.is(err, net.EOF)")
            break
        end
        F.say("  read -> %q", data)
        got[#got + 1] = data
    end
    F.check(table.concat(got) == "last bytes", "every byte came before the EOF", table.concat(got))
    local again, err2 = c:read(100)
    F.check(again == nil and err2 == net.EOF, "EOF is sticky: the next read says EOF again")

    F.say("Q7. ln:close() while the loop is blocked in accept")
    while net.debug.stats().blocked.accept == 0 do net.yield() end
    assert(ln:close())
    local how, aerr = loop:wait()
    F.say("  accept -> nil, %s (code %s)", tostring(aerr), aerr and aerr.code)
    F.check(how == "closed", "errors.is(err, net.ErrClosed) holds for the woken accept", how)
    F.check(aerr.code == "closed" and aerr.op == "accept", "the error says op accept, code closed")
    F.check(tostring(aerr):find("use of closed network connection", 1, true) ~= nil,
            "its message reads like Go's")
    F.check(served == 1, "the loop served its conn before leaving", served)
end)
F.done()
